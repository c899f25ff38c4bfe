package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// While a queue has a consumer in this process (Consume) and the database is claimed by
// it (Claim), a send hands its messages straight to that consumer's receives: the send
// appends them to the hand-off log (handedLog) instead of the queues' table, and once
// they are on disk they wait in memory for the next Receive, which returns them without
// reading or writing the table. A delete of such a message only marks it gone in the log
// (docs/PERFORMANCE.md, "Fifth pass" and "Sixth pass"). A crash loses nothing: Claim
// puts what the log holds into the table at the next start, visible, as it does every
// message a dead consumer held.
//
// Its visibility timeout starts when it is sent, not when it is received: a message that
// has waited longer than handoffMaxWait for a receive is put back (inserted into the
// table visible, its receive not counted) and received from the table instead, with a
// full timeout. While handoffCapacity messages wait, a send waits up to handoffFullWait
// for room, and then inserts its messages in the table, as without a consumer; a receive
// then reads the table first, so the older messages are not passed by newer ones for long.
const (
	handoffCapacity = 512
	handoffMaxWait  = time.Second
	handoffFullWait = 50 * time.Millisecond
)

// handoff is the messages handed to one queue's consumers in this process, and when the
// table may hold visible messages of the queue.
type handoff struct {
	mu        sync.Mutex
	consumers int
	reserved  int            // slots taken by sends not yet on disk
	ready     []*handedEntry // in the hand-off log, waiting for a receive, oldest first
	// tableDue is when the queue's table may next hold a visible message that was not
	// handed here (a send that found no room, a retry's visibility, a message sent by
	// another process): a receive reads the table first once it is due. Zero: now.
	tableDue time.Time
	marks    uint64        // tableAt calls, so that a read of the table does not overrule one made meanwhile
	room     chan struct{} // closed when a receive takes messages: room for the sends waiting
	maxWait  time.Duration // handoffMaxWait
	fullWait time.Duration // handoffFullWait
}

// handoff is queue name's hand-off, nil while it has no consumer in this process.
func (db *DB) handoff(name string, create bool) *handoff {
	db.mu.Lock()
	defer db.mu.Unlock()
	h := db.handoffs[name]
	if h == nil && create {
		h = &handoff{maxWait: handoffMaxWait, fullWait: handoffFullWait}
		db.handoffs[name] = h
	}
	return h
}

// Consume tells the queue that this process receives from it continuously (the local
// server's pump) until stop is called: until then, sends hand their messages straight to
// Receive (see handoff). Receive behaves as before, oldest messages first, each returned
// once per receive; only a message's visibility timeout starts at its send rather than
// its receive (at most handoffMaxWait earlier). stop puts back the messages handed and
// not yet received. Consume is for a database claimed by this process (Claim): the
// hand-off relies on this process being the queue's one consumer.
func (q *Queue) Consume() (stop func()) {
	h := q.db.handoff(q.name, true)
	h.mu.Lock()
	h.consumers++
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.consumers--
			var back []*handedEntry
			if h.consumers == 0 {
				back, h.ready = h.ready, nil
				h.roomMade()
			}
			h.mu.Unlock()
			q.putBack(context.Background(), back)
		})
	}
}

// active tells whether the queue has a consumer in this process; nil-safe.
func (h *handoff) active() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.consumers > 0
}

// next is the earlier of t (zero: none) and when the table is next due to be read.
func (h *handoff) next(t time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	due := h.tableDue
	if due.IsZero() {
		due = time.Now()
	}
	if t.IsZero() || due.Before(t) {
		return due
	}
	return t
}

// reserve takes n slots for a send's messages, all or none. While the hand-off is full
// (the consumer is behind) it waits up to fullWait for a receive to make room, so that
// under overload senders wait their turn rather than pile a backlog into the table; false
// when the queue has no consumer, or still no room (a consumer held up for longer, by
// Halo's API say, costs each send that wait, not its acceptance).
func (h *handoff) reserve(ctx context.Context, n int) bool {
	if h == nil {
		return false
	}
	var timeout <-chan time.Time
	for {
		h.mu.Lock()
		switch {
		case h.consumers == 0 || n > handoffCapacity:
			h.mu.Unlock()
			return false
		case h.reserved+len(h.ready)+n <= handoffCapacity:
			h.reserved += n
			h.mu.Unlock()
			return true
		}
		if h.room == nil {
			h.room = make(chan struct{})
		}
		room := h.room
		h.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(h.fullWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-room:
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// roomMade wakes the sends waiting for room; h.mu held.
func (h *handoff) roomMade() {
	if h.room != nil {
		close(h.room)
		h.room = nil
	}
}

// settle frees a send's n reserved slots and, when its messages are in the log (msgs not
// nil), queues them for the next receive. It returns the messages it could not hand on
// because the last consumer left meanwhile: they are to be put back.
func (h *handoff) settle(n int, msgs []*handedEntry) (back []*handedEntry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reserved -= n
	if h.consumers == 0 {
		return msgs
	}
	h.ready = append(h.ready, msgs...)
	return nil
}

// tableAt notes that the table may hold a visible message from at; zero: now.
func (h *handoff) tableAt(at time.Time) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.marks++
	if at.Before(h.tableDue) {
		h.tableDue = at
	}
}

// due tells whether a receive should read the table before taking handed messages, and
// the marks to give checked after that read.
func (h *handoff) due(now time.Time) (bool, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !now.Before(h.tableDue), h.marks
}

// checked records a read of the table at now that found nothing visible; next is when
// its next message in flight becomes visible (zero: none), marks what due said before
// the read. The table is read again then, and at the latest after recheckInterval, for
// what other processes send; sooner when tableAt was told of a message meanwhile.
func (h *handoff) checked(now, next time.Time, marks uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.marks != marks {
		return
	}
	due := now.Add(recheckInterval)
	if !next.IsZero() && next.Before(due) {
		due = next
	}
	h.tableDue = due
}

// take returns up to limit handed messages still in log, oldest first, marked received,
// the ones that waited too long (handoffMaxWait) to be handed on, which are to be put
// back, and when the visibility timeout of the first returned ends (zero: none returned).
func (h *handoff) take(l *handedLog, limit int, now time.Time) (got []message.Received, stale []*handedEntry, ends time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	i := 0
	for ; i < len(h.ready) && len(got) < limit; i++ {
		e := h.ready[i]
		if now.Sub(e.SentAt) > h.maxWait {
			stale = append(stale, e)
			continue
		}
		if !l.take(e) {
			continue // moved to the table: its visibility timeout ended
		}
		if got == nil {
			got = make([]message.Received, 0, min(limit, len(h.ready)-i))
			ends = e.visibleAt
		}
		got = append(got, e.Received)
	}
	h.ready = h.ready[i:]
	if len(h.ready) == 0 {
		h.ready = nil // let the backing array go
	}
	if i > 0 {
		h.roomMade()
	}
	return got, stale, ends
}

// putBack makes handed messages not received visible again at once, their receive
// uncounted, in the table. Failing to put one back only delays it: it stays in the log,
// and goes to the table when its visibility timeout ends, or at the next Claim.
func (q *Queue) putBack(ctx context.Context, msgs []*handedEntry) {
	if len(msgs) == 0 {
		return
	}
	l := q.db.handedLog()
	if msgs = l.claimMoving(msgs); len(msgs) > 0 {
		_ = q.moveHanded(ctx, l, msgs, time.Now())
	}
}

// moveHanded inserts handed messages of the queue, marked moving, into the table with
// their seq, visible at visibleAt, and notes them gone from the log once the insert is on
// disk, whatever ctx's DeferCommits says. A message received through the hand-off keeps its receive and its receipt
// handle (a visibility changed, a timeout ended); one not received is inserted as never
// received.
func (q *Queue) moveHanded(ctx context.Context, l *handedLog, es []*handedEntry, visibleAt time.Time) error {
	what := fmt.Sprintf("move %d handed message(s) to the table of %s", len(es), q.name)
	// Never answered before its commit (DeferCommits): once answered, the log marks the
	// messages gone, and a mark on disk before the insert would lose them to a crash.
	ctx = undeferred(ctx)
	err := q.db.queue.hotWriteTx(ctx, what, func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		for _, e := range es {
			receives, receipt := 0, sql.NullString{}
			if e.taken {
				receives, receipt = 1, sql.NullString{String: e.token, Valid: true}
			}
			res, err := q.db.queue.exec(ctx, tx, insertHanded, e.seq, q.name, e.ID, e.Body, e.attrs,
				e.SentAt.UnixMilli(), visibleAt.UnixMilli(), receives, receipt)
			if err != nil {
				return fmt.Errorf("sqlite: %s: %w", what, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				continue
			}
			// Moved before, by a move whose fsync failed (SQLite kept its commit): the
			// row must be this message's, or the seqs set aside were not.
			var id string
			if err := q.db.queue.queryRow(ctx, tx, `SELECT id FROM queue_messages WHERE seq = ?`, e.seq).Scan(&id); err != nil || id != e.ID {
				return fmt.Errorf("sqlite: %s: seq %d holds message %q, not %s (%v)", what, e.seq, id, e.ID, err)
			}
		}
		return nil
	})
	l.moved(es, err)
	if err != nil {
		return err
	}
	q.db.handoff(q.name, false).tableAt(visibleAt)
	if !visibleAt.After(time.Now()) {
		q.db.notify(q.name)
	}
	return nil
}

// moveExpired moves the queue's handed messages whose visibility timeout has ended into
// the table, visible, and tells when the next one's ends (zero: none is in the log).
func (q *Queue) moveExpired(ctx context.Context, now time.Time) (time.Time, error) {
	l := q.db.handedLog()
	if l == nil {
		return time.Time{}, nil
	}
	expired, next := l.expired(q.name, now)
	if len(expired) == 0 {
		return next, nil
	}
	return next, q.moveHanded(ctx, l, expired, now)
}
