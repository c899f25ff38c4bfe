package sqsqueue

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// Operations for looking after a dead-letter queue (`halosync dlq`). SQS has no way to
// read a message without receiving it, so each of them receives: every receive counts
// in a message's ApproximateReceiveCount, and on a queue with a redrive policy brings the
// message closer to being moved. Use them on a dead-letter queue.

const (
	// scanVisibility hides the messages a scan has seen from its own next receives, so
	// that it sees each once; they are made visible again when the scan ends.
	scanVisibility = 60 * time.Second
	// scanWait is the long poll of each of a scan's receives: a short poll may answer
	// nothing from a queue that holds messages.
	scanWait = time.Second
)

// Peek returns up to limit visible messages without consuming them: it receives them,
// hidden from other receivers only while it reads on, then makes them visible again at
// once. A peeked message's ReceiveCount is its receives before this peek (each peek
// counts as one); it carries no receipt handle.
func (q *Queue) Peek(ctx context.Context, limit int) ([]message.Received, error) {
	var out []message.Received
	err := q.scan(ctx, func(batch []message.Received) ([]message.Received, error) {
		for _, m := range batch {
			if len(out) < limit {
				r := m
				r.ReceiptHandle = ""
				r.ReceiveCount = max(m.ReceiveCount-1, 0)
				out = append(out, r)
			}
		}
		return batch, nil // all released at the end
	}, func() bool { return len(out) >= limit })
	if err != nil {
		return nil, fmt.Errorf("sqs peek at %s: %w", q.url, err)
	}
	return out, nil
}

// MoveTo moves the visible messages pick accepts (nil: every one) to dest, returning how
// many it moved: each is sent to dest, as a new message with a new id, without the
// message.AttrFailureReason attribute, then deleted here (a failure in between leaves it
// in both: delivery is at least once). The messages not picked are visible again when
// it returns. progress, when set, is told the running count after each batch.
func (q *Queue) MoveTo(ctx context.Context, dest *Queue, pick func(message.Received) bool, progress func(moved int)) (int, error) {
	if dest.url == q.url {
		return 0, fmt.Errorf("sqs move from %s: a queue cannot be moved into itself", q.url)
	}
	moved := 0
	err := q.scan(ctx, func(batch []message.Received) ([]message.Received, error) {
		take, keep := split(batch, pick)
		if len(take) == 0 {
			return keep, nil
		}
		msgs := make([]message.Message, len(take))
		for i, m := range take {
			attrs := maps.Clone(m.Attributes)
			delete(attrs, message.AttrFailureReason)
			msgs[i] = message.Message{Body: m.Body, Attributes: attrs}
		}
		if err := dest.Send(ctx, msgs); err != nil {
			return append(keep, take...), err
		}
		if err := q.Delete(ctx, handles(take)...); err != nil {
			return keep, fmt.Errorf("sent to %s, but: %w", dest.url, err)
		}
		moved += len(take)
		if progress != nil {
			progress(moved)
		}
		return keep, nil
	}, nil)
	if err != nil {
		return moved, fmt.Errorf("sqs move from %s to %s after %d moved: %w", q.url, dest.url, moved, err)
	}
	return moved, nil
}

// Purge deletes the visible messages pick accepts (nil: every one) and returns how many
// it deleted; the others are visible again when it returns. progress, when set, is told
// the running count after each batch.
func (q *Queue) Purge(ctx context.Context, pick func(message.Received) bool, progress func(deleted int)) (int, error) {
	deleted := 0
	err := q.scan(ctx, func(batch []message.Received) ([]message.Received, error) {
		take, keep := split(batch, pick)
		if len(take) == 0 {
			return keep, nil
		}
		if err := q.Delete(ctx, handles(take)...); err != nil {
			return keep, err
		}
		deleted += len(take)
		if progress != nil {
			progress(deleted)
		}
		return keep, nil
	}, nil)
	if err != nil {
		return deleted, fmt.Errorf("sqs purge of %s after %d deleted: %w", q.url, deleted, err)
	}
	return deleted, nil
}

// scan receives the queue's visible messages batch by batch, each hidden for
// scanVisibility, and hands each batch to act, which returns the messages still in the
// queue. It ends when a receive finds nothing, a message comes round again, act fails, or
// done (when set) says so; then every message act left is made visible again at once.
func (q *Queue) scan(ctx context.Context, act func([]message.Received) ([]message.Received, error), done func() bool) error {
	seen := map[string]bool{}
	var held []message.Received
	var err error
	for err == nil && (done == nil || !done()) {
		var batch []message.Received
		batch, err = q.receive(ctx, MaxBatch, scanWait, scanVisibility)
		if err != nil || len(batch) == 0 {
			break
		}
		fresh := batch[:0]
		for _, m := range batch {
			if seen[m.ID] {
				held = append(held, m) // back after its visibility: the scan went round
				continue
			}
			seen[m.ID] = true
			fresh = append(fresh, m)
		}
		var kept []message.Received
		kept, err = act(fresh)
		held = append(held, kept...)
		if len(fresh) < len(batch) {
			break
		}
	}
	// Released even when ctx ended, so nothing stays hidden for scanVisibility.
	if rerr := q.release(context.WithoutCancel(ctx), held); err == nil {
		err = rerr
	}
	return err
}

// release makes msgs visible again at once, in batches of ten.
func (q *Queue) release(ctx context.Context, msgs []message.Received) error {
	for start := 0; start < len(msgs); start += MaxBatch {
		chunk := msgs[start:min(start+MaxBatch, len(msgs))]
		visibleNow := 0
		entries := make([]handleEntry, len(chunk))
		for i, m := range chunk {
			entries[i] = handleEntry{ID: strconv.Itoa(start + i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: &visibleNow}
		}
		var out batchResult
		if err := q.client.Call(ctx, "ChangeMessageVisibilityBatch", handleBatchRequest{QueueURL: q.url, Entries: entries}, &out); err != nil {
			return fmt.Errorf("make %d messages visible again: %w", len(msgs)-start, err)
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("make messages visible again: %d failed: %w", len(out.Failed), entryError(out.Failed[0]))
		}
	}
	return nil
}

// split parts a batch into the messages pick accepts (nil: every one) and the others.
func split(batch []message.Received, pick func(message.Received) bool) (take, keep []message.Received) {
	for _, m := range batch {
		if pick == nil || pick(m) {
			take = append(take, m)
		} else {
			keep = append(keep, m)
		}
	}
	return take, keep
}

// handles are the messages' receipt handles.
func handles(msgs []message.Received) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ReceiptHandle
	}
	return out
}
