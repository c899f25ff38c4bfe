package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// ErrUnknownReceipt is returned by ChangeVisibility for a receipt handle that is not the
// latest of a message still in the queue (it was deleted, moved to the dead-letter queue,
// or received again since), like SQS's ReceiptHandleIsInvalid.
var ErrUnknownReceipt = errors.New("sqlite: unknown or stale receipt handle")

const (
	// DefaultVisibility is the visibility timeout of a queue whose options give none,
	// SQS's default.
	DefaultVisibility = 30 * time.Second
	// MaxReceiveBatch is the most messages one Receive returns, as in SQS.
	MaxReceiveBatch = 10
	// recheckInterval bounds a long poll's sleep between looks at the queue, so that a
	// message sent by another process on the same file is found without an in-process
	// wake-up.
	recheckInterval = time.Second
)

// QueueOptions configure a queue.
type QueueOptions struct {
	// Visibility is how long a received message stays invisible to other receivers
	// before it is delivered again; 0 means DefaultVisibility.
	Visibility time.Duration
	// MaxReceive is how many receives a message gets; one that has been received this
	// often is moved to the DeadLetter queue when it would be received again. 0 means
	// never. Without a DeadLetter queue the message simply stays (nothing is dropped).
	MaxReceive int
	// DeadLetter is the name of another queue in the same DB; empty means none.
	DeadLetter string
	// MaxBacklog is how many messages (visible and in flight) the queue holds before Send
	// refuses more, with an error wrapping message.ErrBacklogFull; 0 means no limit. A
	// send is refused only once the queue is full, so one send may take it past the limit
	// (a delivery's changes are queued together or not at all).
	MaxBacklog int
}

// Queue is a durable queue with SQS semantics: at-least-once delivery, oldest first, each
// received message invisible for the visibility timeout until it is deleted, and moved
// to the dead-letter queue after too many receives. The options belong to the handle,
// not to the stored queue. It is safe for concurrent use.
type Queue struct {
	db   *DB
	name string
	opts QueueOptions
}

// Queue returns the queue called name kept in db. Queues need no creation: a name is a
// queue.
func (db *DB) Queue(name string, opts QueueOptions) *Queue {
	if opts.Visibility <= 0 {
		opts.Visibility = DefaultVisibility
	}
	return &Queue{db: db, name: name, opts: opts}
}

// Name is the queue's name.
func (q *Queue) Name() string { return q.name }

// Send enqueues msgs in one transaction: when it returns nil, every message is on disk
// and any receiver of this queue waiting in this process is woken; while the queue has a
// consumer in this process (Consume), the messages are handed straight to its receives,
// bodies and attributes as they are: the caller must not change them after Send. A body
// larger than message.MaxMessageBytes is an error wrapping message.ErrTooLarge, and
// nothing is sent.
func (q *Queue) Send(ctx context.Context, msgs []message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	what := "send " + strconv.Itoa(len(msgs)) + " message(s) to " + q.name
	depth := q.db.depth(q.name)
	if n := depth.Load(); q.opts.MaxBacklog > 0 && n >= int64(q.opts.MaxBacklog) {
		// Refused before the writer: a full queue costs the sender no write.
		return fmt.Errorf("sqlite: %s: %d messages queued, the most is %d: %w", what, n, q.opts.MaxBacklog, message.ErrBacklogFull)
	}
	rows := make([]messageRow, len(msgs))
	for i, m := range msgs {
		if len(m.Body) > message.MaxMessageBytes {
			return fmt.Errorf("sqlite: %s: message %d is %d bytes, over %d: %w", what, i, len(m.Body), message.MaxMessageBytes, message.ErrTooLarge)
		}
		rows[i] = messageRow{id: newMessageID(), body: m.Body}
		if m.Body == nil {
			rows[i].body = []byte{}
		}
		if len(m.Attributes) > 0 {
			a, err := json.Marshal(m.Attributes)
			if err != nil {
				return fmt.Errorf("sqlite: %s: encode attributes of message %d: %w", what, i, err)
			}
			rows[i].attrs = sql.NullString{String: string(a), Valid: true}
		}
	}
	h := q.db.handoff(q.name, false)
	if l := q.db.handedLog(); l.usable() && h.reserve(ctx, len(msgs)) {
		handed, err := q.hand(ctx, l, msgs, rows)
		// A send whose messages the consumer left meanwhile puts them back.
		q.putBack(context.WithoutCancel(ctx), h.settle(len(msgs), handed))
		if err == nil {
			depth.Add(int64(len(msgs)))
			q.db.notify(q.name)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		// The log failed, and takes no more messages: the table takes them.
	}
	err := q.db.queue.hotWriteTx(ctx, what, func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		nowMs := time.Now().UnixMilli()
		for _, r := range rows {
			if _, err := q.db.queue.exec(ctx, tx, insertMessage, q.name, r.id, r.body, r.attrs, nowMs, nowMs, 0, nil); err != nil {
				return fmt.Errorf("sqlite: %s: insert: %w", what, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	h.tableAt(time.Time{})
	depth.Add(int64(len(msgs)))
	q.db.notify(q.name)
	return nil
}

// messageRow is a sent message's id, body and attributes as the table stores them.
type messageRow struct {
	id    string
	body  []byte
	attrs sql.NullString
}

// hand appends msgs, stored as rows, to the hand-off log l, as received by this
// process's consumer (a receive count of 1, a receipt, invisible for the visibility
// timeout from now), and returns them once they are on disk.
func (q *Queue) hand(ctx context.Context, l *handedLog, msgs []message.Message, rows []messageRow) ([]*handedEntry, error) {
	first, err := l.seqs(ctx, len(msgs))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	sentAt := time.UnixMilli(now.UnixMilli()).UTC()
	visibleAt := now.Add(q.opts.Visibility)
	entries := make([]*handedEntry, len(msgs))
	for i, m := range msgs {
		seq, token := first+int64(i), newReceiptToken()
		r := rows[i]
		entries[i] = &handedEntry{seq: seq, token: token, queue: q.name, attrs: r.attrs, visibleAt: visibleAt,
			Received: message.Received{ID: r.id, Body: r.body, Attributes: m.Attributes, ReceiptHandle: receiptHandle(seq, token),
				ReceiveCount: 1, SentAt: sentAt, Envelope: m.Handed()}}
	}
	if err := l.append(ctx, entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// Receive returns up to maxMessages (clamped to 1..MaxReceiveBatch) visible messages, oldest
// first, each with a fresh receipt handle, its receive count incremented, and invisible
// for the visibility timeout. When none is visible it waits up to wait for one (a long
// poll; 0 returns at once). A message already received MaxReceive times is moved to the
// dead-letter queue instead of being returned. When ctx ends while waiting, Receive
// returns nothing and ctx's error; messages are only ever returned once they have been
// committed as received.
func (q *Queue) Receive(ctx context.Context, maxMessages int, wait time.Duration) ([]message.Received, error) {
	limit := min(MaxReceiveBatch, max(1, maxMessages))
	deadline := time.Now().Add(wait)
	h := q.db.handoff(q.name, false)
	for {
		woken := q.db.signal(q.name) // before looking, so a send meanwhile is not missed
		now := time.Now()
		consuming := h.active()
		var nextVisible time.Time
		due, marks := true, uint64(0)
		if consuming {
			due, marks = h.due(now)
		}
		if due {
			handedNext, err := q.moveExpired(ctx, now)
			var got []message.Received
			var next time.Time
			if err == nil {
				got, next, err = q.receiveOnce(ctx, limit)
			}
			if err != nil {
				if ctxErr := ctx.Err(); ctxErr != nil {
					return nil, ctxErr
				}
				return nil, err
			}
			if len(got) > 0 {
				return got, nil
			}
			nextVisible = earliest(next, handedNext)
			if consuming {
				h.checked(now, nextVisible, marks)
			}
		}
		if consuming {
			got, stale, ends := h.take(q.db.handedLog(), limit, now)
			q.putBack(ctx, stale)
			if len(got) > 0 {
				h.tableAt(ends) // its timeout ends: the next receive moves it to the table
				return got, nil
			}
			if len(stale) > 0 {
				continue // put back: visible in the table now
			}
			nextVisible = h.next(nextVisible)
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, nil
		}
		pause := min(remaining, recheckInterval)
		if !nextVisible.IsZero() {
			pause = min(pause, max(time.Until(nextVisible), time.Millisecond))
		}
		timer := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-q.db.closed:
			timer.Stop()
			return nil, fmt.Errorf("sqlite: receive from %s: %w", q.name, ErrClosed)
		case <-woken:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// receiveOnce receives what is visible now, in one transaction. When it finds nothing it
// also tells when the next in-flight message becomes visible (zero when none is in
// flight). With a context from DeferCommits it is answered before its commit: a receive
// whose commit is lost leaves its messages visible, to be received again, which
// at-least-once delivery allows (and a restart's Claim does for every message in flight).
func (q *Queue) receiveOnce(ctx context.Context, limit int) ([]message.Received, time.Time, error) {
	what := "receive from " + q.name
	var (
		out         []message.Received
		nextVisible time.Time
		movedToDLQ  int64
	)
	err := q.db.queue.hotWriteTx(ctx, what, func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		now := time.Now()
		nowMs := now.UnixMilli()
		visibleAt := now.Add(q.opts.Visibility).UnixMilli()
		for len(out) < limit {
			batch, err := q.visible(ctx, tx, nowMs, limit-len(out))
			if err != nil {
				return fmt.Errorf("sqlite: %s: %w", what, err)
			}
			if len(batch) == 0 {
				break
			}
			for _, m := range batch {
				if q.opts.MaxReceive > 0 && q.opts.DeadLetter != "" && m.receiveCount >= q.opts.MaxReceive {
					// SQS redrive: the message keeps its id, body, attributes and sent time.
					if _, err := q.db.queue.exec(ctx, tx, `UPDATE queue_messages
						SET queue = ?, receive_count = 0, visible_at = ?, receipt = NULL WHERE seq = ?`,
						q.opts.DeadLetter, nowMs, m.seq); err != nil {
						return fmt.Errorf("sqlite: %s: move message %s to %s: %w", what, m.ID, q.opts.DeadLetter, err)
					}
					movedToDLQ++
					continue
				}
				token := newReceiptToken()
				m.ReceiptHandle = receiptHandle(m.seq, token)
				m.ReceiveCount = m.receiveCount + 1
				if _, err := q.db.queue.exec(ctx, tx, markReceived, m.ReceiveCount, visibleAt, token, m.seq); err != nil {
					return fmt.Errorf("sqlite: %s: mark message %s received: %w", what, m.ID, err)
				}
				out = append(out, m.Received)
			}
		}
		if len(out) > 0 {
			return nil
		}
		var next sql.NullInt64
		if err := q.db.queue.queryRow(ctx, tx, selectNextVisible, q.name, nowMs).Scan(&next); err != nil {
			return fmt.Errorf("sqlite: %s: next visible message: %w", what, err)
		}
		if next.Valid {
			nextVisible = time.UnixMilli(next.Int64)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	if movedToDLQ > 0 {
		q.db.depth(q.name).Add(-movedToDLQ)
		q.db.depth(q.opts.DeadLetter).Add(movedToDLQ)
		q.db.notify(q.opts.DeadLetter)
	}
	return out, nextVisible, nil
}

// stored is a message as read from the table, before it is marked received.
type stored struct {
	message.Received
	seq          int64
	receiveCount int
}

// visible reads up to limit messages visible at nowMs, oldest first.
func (q *Queue) visible(ctx context.Context, tx *sql.Tx, nowMs int64, limit int) ([]stored, error) {
	rows, err := q.db.queue.query(ctx, tx, selectVisible, q.name, nowMs, limit)
	if err != nil {
		return nil, fmt.Errorf("read visible messages: %w", err)
	}
	defer rows.Close()
	var out []stored
	for rows.Next() {
		var (
			m      stored
			attrs  sql.NullString
			sentAt int64
		)
		if err := rows.Scan(&m.seq, &m.ID, &m.Body, &attrs, &sentAt, &m.receiveCount); err != nil {
			return nil, fmt.Errorf("read visible messages: %w", err)
		}
		m.SentAt = time.UnixMilli(sentAt).UTC()
		if attrs.Valid {
			if err := json.Unmarshal([]byte(attrs.String), &m.Attributes); err != nil {
				return nil, fmt.Errorf("message %s: decode attributes: %w", m.ID, err)
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read visible messages: %w", err)
	}
	return out, nil
}

// Delete removes the messages received with receiptHandles. A handle that is unknown or
// stale (the message was received again since, or is already gone) is ignored, as in
// SQS. With a context from DeferCommits it is answered before its commit, and a handed
// message's delete before its mark is written (handedLog): a delete lost to a crash
// delivers its messages again, as at-least-once delivery allows.
func (q *Queue) Delete(ctx context.Context, receiptHandles ...string) error {
	if len(receiptHandles) == 0 {
		return nil
	}
	what := "delete " + strconv.Itoa(len(receiptHandles)) + " message(s) from " + q.name
	type receipt struct {
		seq   int64
		token string
	}
	l := q.db.handedLog()
	var deleted int64
	var inTable []receipt
	for _, h := range receiptHandles {
		seq, token, ok := parseReceipt(h)
		if !ok {
			continue // not a handle of ours: unknown
		}
		if found, gone := l.delete(q.name, seq, token); found {
			if gone {
				deleted++
			}
			continue
		}
		inTable = append(inTable, receipt{seq, token})
	}
	var err error
	if len(inTable) > 0 {
		err = q.db.queue.hotWriteTx(ctx, what, func(tx *sql.Tx) error {
			ctx := inGroup(ctx)
			for _, r := range inTable {
				res, err := q.db.queue.exec(ctx, tx, deleteReceived, r.seq, q.name, r.token)
				if err != nil {
					return fmt.Errorf("sqlite: %s: %w", what, err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return fmt.Errorf("sqlite: %s: %w", what, err)
				}
				deleted += n
			}
			return nil
		})
	}
	q.db.depth(q.name).Add(-deleted)
	return err
}

// ChangeVisibility makes the message received with receiptHandle visible again after
// timeout from now (0: at once). A handle that is not the message's latest is an error
// wrapping ErrUnknownReceipt.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error {
	what := "change visibility in " + q.name
	if timeout < 0 {
		return fmt.Errorf("sqlite: %s: negative timeout %v", what, timeout)
	}
	seq, token, ok := parseReceipt(receiptHandle)
	if !ok {
		return fmt.Errorf("sqlite: %s: %w", what, ErrUnknownReceipt)
	}
	if l := q.db.handedLog(); l != nil {
		if e := l.received(q.name, seq, token); e != nil {
			return q.moveHanded(ctx, l, []*handedEntry{e}, time.Now().Add(timeout))
		}
	}
	err := q.db.queue.hotWriteTx(ctx, what, func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		res, err := q.db.queue.exec(ctx, tx, `UPDATE queue_messages SET visible_at = ? WHERE seq = ? AND queue = ? AND receipt = ?`,
			time.Now().Add(timeout).UnixMilli(), seq, q.name, token)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		if n == 0 {
			return fmt.Errorf("sqlite: %s: %w", what, ErrUnknownReceipt)
		}
		return nil
	})
	if err != nil {
		return err
	}
	q.db.handoff(q.name, false).tableAt(time.Now().Add(timeout))
	if timeout == 0 {
		q.db.notify(q.name)
	}
	return nil
}

// Stats counts the queue's messages: visible ones (waiting to be received) and in-flight
// ones (received, neither deleted nor visible again yet), like SQS's approximate counts.
// The messages handed to this process's consumer count as in flight; another process
// does not see them (Consume).
func (q *Queue) Stats(ctx context.Context) (visible, inFlight int, err error) {
	if q.db.isClosed() {
		return 0, 0, fmt.Errorf("sqlite: stats of %s: %w", q.name, ErrClosed)
	}
	now := time.Now().UnixMilli()
	err = q.db.queue.read.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0)
		FROM queue_messages WHERE queue = ?`, now, now, q.name).Scan(&visible, &inFlight)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: stats of %s: %w", q.name, err)
	}
	return visible, inFlight + q.db.handedLog().inFlight(q.name), nil
}

// earliest is the earlier of a and b, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// inGroup is the context of statements run inside a group transaction: the caller's,
// without its cancellation. SQLite rolls back a whole transaction when a write statement
// in it is interrupted, which would take the other callers' writes with it; a caller that
// leaves is answered by inWriteTx, and the writes in flight finish.
func inGroup(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// newMessageID returns a random id in the form of a UUID (version 4), like SQS's.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it aborts the program instead
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// A receipt handle is "<seq>.<token>": the message's seq, so that it is found by its
// primary key, and 128 random bits, the token, which the message's row keeps (receipt)
// until it is received again.

// newReceiptToken returns a fresh receipt token.
func newReceiptToken() string { return rand.Text() }

// receiptHandle is the handle of the receive of message seq with token.
func receiptHandle(seq int64, token string) string { return strconv.FormatInt(seq, 10) + "." + token }

// parseReceipt is the seq and token a receipt handle names; false when h is not a handle
// Receive made.
func parseReceipt(h string) (seq int64, token string, ok bool) {
	s, token, ok := strings.Cut(h, ".")
	if !ok || token == "" {
		return 0, "", false
	}
	seq, err := strconv.ParseInt(s, 10, 64)
	return seq, token, err == nil
}
