package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// Operations for looking after a dead-letter queue (`halosync dlq`): reading it without
// receiving, moving messages back to the queue they came from, and deleting them.

// Peek returns up to limit messages visible now, oldest first, without receiving them:
// they stay visible, their receive counts unchanged, and carry no receipt handle. It
// reads without taking the write connection.
func (q *Queue) Peek(ctx context.Context, limit int) ([]message.Received, error) {
	if q.db.isClosed() {
		return nil, fmt.Errorf("sqlite: peek at %s: %w", q.name, ErrClosed)
	}
	tx, err := q.db.queue.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: peek at %s: %w", q.name, err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	msgs, err := q.visible(ctx, tx, time.Now().UnixMilli(), max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("sqlite: peek at %s: %w", q.name, err)
	}
	out := make([]message.Received, len(msgs))
	for i, m := range msgs {
		out[i] = m.Received
		out[i].ReceiveCount = m.receiveCount
	}
	return out, nil
}

// PeekNewest returns up to limit messages visible now, newest first, as Peek does: what
// a status page shows of a dead-letter queue.
func (q *Queue) PeekNewest(ctx context.Context, limit int) ([]message.Received, error) {
	if q.db.isClosed() {
		return nil, fmt.Errorf("sqlite: peek at %s: %w", q.name, ErrClosed)
	}
	rows, err := q.db.queue.read.QueryContext(ctx, `SELECT id, attributes, sent_at, receive_count
		FROM queue_messages INDEXED BY queue_messages_order
		WHERE queue = ? AND visible_at <= ? ORDER BY seq DESC LIMIT ?`, q.name, time.Now().UnixMilli(), max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("sqlite: peek at %s: %w", q.name, err)
	}
	defer rows.Close()
	var out []message.Received
	for rows.Next() {
		var (
			m      message.Received
			attrs  sql.NullString
			sentAt int64
		)
		if err := rows.Scan(&m.ID, &attrs, &sentAt, &m.ReceiveCount); err != nil {
			return nil, fmt.Errorf("sqlite: peek at %s: %w", q.name, err)
		}
		m.SentAt = time.UnixMilli(sentAt).UTC()
		if attrs.Valid {
			if err := json.Unmarshal([]byte(attrs.String), &m.Attributes); err != nil {
				return nil, fmt.Errorf("sqlite: peek at %s: message %s: decode attributes: %w", q.name, m.ID, err)
			}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: peek at %s: %w", q.name, err)
	}
	return out, nil
}

// MoveTo moves the visible messages pick accepts (nil: every one) to dest, another queue
// of the same database, in one transaction, and returns how many it moved. A moved
// message is as if sent to dest now: visible at once, never received, without the
// message.AttrFailureReason attribute (it told why the message failed where it was);
// it keeps its id and body. progress, when set, is told the count once it is committed.
// A process holding dest's database open elsewhere (halosync serve) finds the messages at
// its next look; its count of queued messages (MaxBacklog) does not include them until it
// opens the database again.
func (q *Queue) MoveTo(ctx context.Context, dest *Queue, pick func(message.Received) bool, progress func(moved int)) (int, error) {
	what := fmt.Sprintf("move messages from %s to %s", q.name, dest.name)
	if dest.db != q.db {
		return 0, fmt.Errorf("sqlite: %s: the queues are in different databases", what)
	}
	if dest.name == q.name {
		return 0, fmt.Errorf("sqlite: %s: a queue cannot be moved into itself", what)
	}
	moved, err := q.pickAndRun(ctx, what, pick, func(ctx context.Context, tx *sql.Tx, seq int64, nowMs int64) error {
		_, err := tx.ExecContext(ctx, `UPDATE queue_messages
			SET queue = ?, receive_count = 0, sent_at = ?, visible_at = ?, receipt = NULL,
				attributes = CASE WHEN attributes IS NULL THEN NULL
					ELSE NULLIF(json_remove(attributes, '$.`+message.AttrFailureReason+`'), '{}') END
			WHERE seq = ?`, dest.name, nowMs, nowMs, seq)
		return err
	})
	if err != nil {
		return 0, err
	}
	if moved > 0 {
		q.db.depth(q.name).Add(-int64(moved))
		q.db.depth(dest.name).Add(int64(moved))
		q.db.notify(dest.name)
	}
	if progress != nil {
		progress(moved)
	}
	return moved, nil
}

// Purge deletes the visible messages pick accepts (nil: every one) in one transaction and
// returns how many it deleted; progress, when set, is told the count once it is committed.
func (q *Queue) Purge(ctx context.Context, pick func(message.Received) bool, progress func(deleted int)) (int, error) {
	what := "purge messages from " + q.name
	deleted, err := q.pickAndRun(ctx, what, pick, func(ctx context.Context, tx *sql.Tx, seq int64, _ int64) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE seq = ?`, seq)
		return err
	})
	if err != nil {
		return 0, err
	}
	q.db.depth(q.name).Add(-int64(deleted))
	if progress != nil {
		progress(deleted)
	}
	return deleted, nil
}

// pickAndRun runs act on every visible message pick accepts, in one write transaction.
func (q *Queue) pickAndRun(ctx context.Context, what string, pick func(message.Received) bool,
	act func(ctx context.Context, tx *sql.Tx, seq, nowMs int64) error) (int, error) {
	n := 0
	err := q.db.queue.inWriteTx(ctx, what, func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		n = 0 // a group retried alone runs this again
		nowMs := time.Now().UnixMilli()
		msgs, err := q.visible(ctx, tx, nowMs, -1)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		for _, m := range msgs {
			m.ReceiveCount = m.receiveCount
			if pick != nil && !pick(m.Received) {
				continue
			}
			if err := act(ctx, tx, m.seq, nowMs); err != nil {
				return fmt.Errorf("sqlite: %s: message %s: %w", what, m.ID, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
