package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
)

// The outbox keeps change events for OutboxRetention, and at most OutboxKeep of them:
// long enough for a consumer that reconnects with the last event id it saw to miss
// nothing. It is trimmed in the transaction of a write, every outboxTrimEvery events.
const (
	OutboxRetention = 24 * time.Hour
	OutboxKeep      = 10000
	outboxTrimEvery = 64
)

// trimChangeEvents deletes the events before the newest OutboxKeep and those older than
// the retention, as one range of seq from the oldest: events are written in time order,
// so the first event young enough is found walking from the oldest, past only the events
// it deletes, and the delete touches only the rows it deletes (a condition on the age of
// every row would read the whole outbox each time).
const trimChangeEvents = `DELETE FROM change_events WHERE seq < MAX(
	(SELECT MAX(seq) FROM change_events) - ? + 1,
	COALESCE((SELECT seq FROM change_events WHERE created_at >= ? ORDER BY seq LIMIT 1), (SELECT MAX(seq) FROM change_events) + 1))`

// StoredEvent is one change event in the outbox: its place (Seq, increasing in write
// order), its stable id and the event as JSON (changeevent.Event.Encode).
type StoredEvent struct {
	Seq   int64
	ID    string
	Event []byte
}

// newStoredEvent is the event of change c, applied with result r, encoded; nil when the
// change tells of none.
func newStoredEvent(what string, c change.Change, r change.Result, syncedAt time.Time) (*StoredEvent, error) {
	ev, ok := changeevent.New(c, r, syncedAt)
	if !ok {
		return nil, nil
	}
	doc, err := ev.Encode()
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: encode change event: %w: %w", what, change.ErrInvalid, err)
	}
	return &StoredEvent{ID: ev.ID, Event: doc}, nil
}

// addChangeEvent writes ev (newStoredEvent; nil: nothing) into conn's outbox in the
// transaction that applied its change: an event is in the outbox exactly when its change
// is in the copy.
func (db *DB) addChangeEvent(ctx context.Context, tx *sql.Tx, what, conn string, ev *StoredEvent) error {
	if ev == nil {
		return nil
	}
	now := time.Now()
	if db.eventWrites.Add(1)%outboxTrimEvery == 1 {
		if _, err := db.exec(ctx, tx, trimChangeEvents, OutboxKeep, now.Add(-OutboxRetention).UnixMilli()); err != nil {
			return fmt.Errorf("sqlite: %s: trim the change events: %w", what, err)
		}
	}
	if _, err := db.exec(ctx, tx, insertChangeEvent, conn, ev.ID, now.UnixMilli(), string(ev.Event)); err != nil {
		return fmt.Errorf("sqlite: %s: write change event: %w", what, err)
	}
	return nil
}

// ChangeEventCursor is where a stream of conn's change events starts: after the event
// lastEventID when the outbox still holds it, before every event it holds when it no
// longer does (a consumer away for longer than the retention gets what is left), and
// after the newest event when lastEventID is empty (a new consumer gets what comes next).
func (s *Store) ChangeEventCursor(ctx context.Context, conn, lastEventID string) (int64, error) {
	what := fmt.Sprintf("change events of %s", conn)
	if s.db.isClosed() {
		return 0, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	var seq sql.NullInt64
	var err error
	if lastEventID == "" {
		err = s.db.read.QueryRowContext(ctx, `SELECT MAX(seq) FROM change_events`).Scan(&seq)
	} else {
		err = s.db.read.QueryRowContext(ctx, `SELECT MAX(seq) FROM change_events WHERE event_id = ? AND connection = ?`,
			lastEventID, conn).Scan(&seq)
	}
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return seq.Int64, nil
}

// ChangeEvents returns up to limit of conn's change events written after the one at
// after, oldest first.
func (s *Store) ChangeEvents(ctx context.Context, conn string, after int64, limit int) ([]StoredEvent, error) {
	what := fmt.Sprintf("change events of %s", conn)
	if s.db.isClosed() {
		return nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT seq, event_id, event FROM change_events
		WHERE connection = ? AND seq > ? ORDER BY seq LIMIT ?`, conn, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []StoredEvent
	for rows.Next() {
		var e StoredEvent
		var doc string
		if err := rows.Scan(&e.Seq, &e.ID, &doc); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		e.Event = []byte(doc)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}
