package queuetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// ErrUnknownReceipt is returned by Memory.ChangeVisibility for a receipt handle that is not
// the latest of a message still in the queue, like SQS's ReceiptHandleIsInvalid.
var ErrUnknownReceipt = errors.New("queuetest: unknown or stale receipt handle")

// DefaultVisibility is the visibility timeout of a Memory queue made without one, SQS's
// default.
const DefaultVisibility = 30 * time.Second

// maxReceiveBatch is the most messages one Receive returns, as in SQS.
const maxReceiveBatch = 10

// Memory is an in-memory queue for tests of the packages that use a queue, with the
// embedded SQLite queue's semantics: at-least-once delivery, oldest first, a received
// message invisible for the visibility timeout until it is deleted, and moved to the
// dead-letter queue after too many receives. It passes the same contract as the real
// adapters. It is safe for concurrent use.
type Memory struct {
	// Now is the clock visibility is measured by (default time.Now). A test that steps it
	// receives with wait 0: a long poll's wait is real time. Set it before use.
	Now func() time.Time

	visibility time.Duration
	maxReceive int
	deadLetter *Memory

	mu   sync.Mutex
	msgs []*held       // oldest first
	wake chan struct{} // closed, and replaced, when a message may have become visible
}

// held is a message in the queue.
type held struct {
	message.Received
	visibleAt time.Time
}

var _ Queue = (*Memory)(nil)

// NewMemory returns an empty queue. A message already received o.MaxReceive times moves
// to deadLetter when it would be received again; without a dead-letter queue, or with
// MaxReceive 0, it stays.
func NewMemory(o Options, deadLetter *Memory) *Memory {
	if o.Visibility <= 0 {
		o.Visibility = DefaultVisibility
	}
	return &Memory{visibility: o.Visibility, maxReceive: o.MaxReceive, deadLetter: deadLetter, wake: make(chan struct{})}
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// notifyLocked wakes every waiting receiver; m.mu is held.
func (m *Memory) notifyLocked() {
	close(m.wake)
	m.wake = make(chan struct{})
}

// Send enqueues msgs, all or none: a body larger than message.MaxMessageBytes is an error
// wrapping message.ErrTooLarge, and nothing is sent.
func (m *Memory) Send(_ context.Context, msgs []message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	for i, msg := range msgs {
		if len(msg.Body) > message.MaxMessageBytes {
			return fmt.Errorf("queuetest: message %d is %d bytes, over %d: %w", i, len(msg.Body), message.MaxMessageBytes, message.ErrTooLarge)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, msg := range msgs {
		h := &held{visibleAt: now, Received: message.Received{
			ID:     rand.Text(),
			Body:   append([]byte{}, msg.Body...),
			SentAt: time.UnixMilli(now.UnixMilli()).UTC(), // the SQLite queue keeps milliseconds
		}}
		if len(msg.Attributes) > 0 {
			h.Attributes = maps.Clone(msg.Attributes)
		}
		m.msgs = append(m.msgs, h)
	}
	m.notifyLocked()
	return nil
}

// Receive returns up to maxMessages (clamped to 1..10) visible messages, oldest first,
// each with a fresh receipt handle, its receive count incremented, and invisible for the
// visibility timeout. When none is visible it waits up to wait for one (0 returns at
// once). When ctx ends, it returns nothing and ctx's error.
func (m *Memory) Receive(ctx context.Context, maxMessages int, wait time.Duration) ([]message.Received, error) {
	limit := min(maxReceiveBatch, max(1, maxMessages))
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for last := wait <= 0; ; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		got, next, woken := m.receiveOnce(limit)
		if len(got) > 0 || last {
			return got, nil
		}
		var err error
		if last, err = m.pause(ctx, deadline, woken, next); err != nil {
			return nil, err
		}
	}
}

// pause waits until ctx ends, the deadline passes (last), a waiting receiver is woken, or
// next, when a message becomes visible again.
func (m *Memory) pause(ctx context.Context, deadline <-chan time.Time, woken <-chan struct{}, next time.Time) (last bool, err error) {
	var soon <-chan time.Time
	if !next.IsZero() {
		t := time.NewTimer(max(next.Sub(m.now()), time.Millisecond))
		defer t.Stop()
		soon = t.C
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-deadline:
		return true, nil // one more look, then give up
	case <-woken:
	case <-soon:
	}
	return false, nil
}

// receiveOnce receives what is visible now. It also returns when the next in-flight
// message becomes visible (zero when none is in flight) and the channel that is closed
// when that may change sooner.
func (m *Memory) receiveOnce(limit int) (out []message.Received, next time.Time, woken <-chan struct{}) {
	var dead []*held
	m.mu.Lock()
	woken = m.wake
	now := m.now()
	kept := m.msgs[:0]
	for _, h := range m.msgs {
		switch {
		case len(out) == limit || h.visibleAt.After(now):
			if h.visibleAt.After(now) && (next.IsZero() || h.visibleAt.Before(next)) {
				next = h.visibleAt
			}
		case m.deadLetter != nil && m.maxReceive > 0 && h.ReceiveCount >= m.maxReceive:
			dead = append(dead, h) // SQS redrive: id, body, attributes and sent time stay
			continue
		default:
			h.ReceiveCount++
			h.ReceiptHandle = rand.Text()
			h.visibleAt = now.Add(m.visibility)
			out = append(out, h.copy())
		}
		kept = append(kept, h)
	}
	clear(m.msgs[len(kept):])
	m.msgs = kept
	m.mu.Unlock()
	if len(dead) > 0 {
		m.deadLetter.take(dead)
	}
	if len(out) > 0 {
		next = time.Time{}
	}
	return out, next, woken
}

// take adds messages moved from another queue, visible at once, never received here.
func (m *Memory) take(msgs []*held) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, h := range msgs {
		h.ReceiveCount, h.ReceiptHandle, h.visibleAt = 0, "", now
		m.msgs = append(m.msgs, h)
	}
	m.notifyLocked()
}

// copy is the message as a receiver gets it, sharing nothing with the queue.
func (h *held) copy() message.Received {
	r := h.Received
	r.Body = slices.Clone(h.Body)
	r.Attributes = maps.Clone(h.Attributes)
	return r
}

// Delete removes the messages received with receiptHandles. A handle that is unknown or
// stale is ignored, as in SQS.
func (m *Memory) Delete(_ context.Context, receiptHandles ...string) error {
	if len(receiptHandles) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = slices.DeleteFunc(m.msgs, func(h *held) bool {
		return h.ReceiptHandle != "" && slices.Contains(receiptHandles, h.ReceiptHandle)
	})
	return nil
}

// ChangeVisibility makes the message received with receiptHandle visible again after
// timeout from now (0: at once). A handle that is not the message's latest is an error
// wrapping ErrUnknownReceipt.
func (m *Memory) ChangeVisibility(_ context.Context, receiptHandle string, timeout time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("queuetest: change visibility: negative timeout %v", timeout)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.msgs {
		if receiptHandle != "" && h.ReceiptHandle == receiptHandle {
			h.visibleAt = m.now().Add(timeout)
			if timeout == 0 {
				m.notifyLocked()
			}
			return nil
		}
	}
	return fmt.Errorf("queuetest: change visibility: %w", ErrUnknownReceipt)
}

// Stats counts the queue's messages: visible ones and in-flight ones (received, neither
// deleted nor visible again yet).
func (m *Memory) Stats(context.Context) (visible, inFlight int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for _, h := range m.msgs {
		if h.visibleAt.After(now) {
			inFlight++
		} else {
			visible++
		}
	}
	return visible, inFlight, nil
}

// Peek returns up to limit messages visible now, oldest first, without receiving them:
// their receive counts stay, and they carry no receipt handle.
func (m *Memory) Peek(_ context.Context, limit int) ([]message.Received, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []message.Received
	for _, h := range m.msgs {
		if len(out) >= limit {
			break
		}
		if !h.visibleAt.After(now) {
			r := h.copy()
			r.ReceiptHandle = ""
			out = append(out, r)
		}
	}
	return out, nil
}

// MoveTo moves the visible messages pick accepts (nil: every one) to dest and returns how
// many it moved. A moved message is as if sent to dest now: visible, never received,
// without the message.AttrFailureReason attribute; it keeps its id and body. progress,
// when set, is told the count.
func (m *Memory) MoveTo(_ context.Context, dest *Memory, pick func(message.Received) bool, progress func(moved int)) (int, error) {
	if dest == m {
		return 0, fmt.Errorf("queuetest: move: a queue cannot be moved into itself")
	}
	taken := m.takeVisible(pick)
	now := dest.now()
	for _, h := range taken {
		delete(h.Attributes, message.AttrFailureReason)
		if len(h.Attributes) == 0 {
			h.Attributes = nil
		}
		h.SentAt = time.UnixMilli(now.UnixMilli()).UTC()
	}
	dest.take(taken)
	if progress != nil {
		progress(len(taken))
	}
	return len(taken), nil
}

// Purge deletes the visible messages pick accepts (nil: every one) and returns how many
// it deleted; progress, when set, is told the count.
func (m *Memory) Purge(_ context.Context, pick func(message.Received) bool, progress func(deleted int)) (int, error) {
	n := len(m.takeVisible(pick))
	if progress != nil {
		progress(n)
	}
	return n, nil
}

// takeVisible removes and returns the visible messages pick accepts (nil: every one).
func (m *Memory) takeVisible(pick func(message.Received) bool) []*held {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var taken []*held
	m.msgs = slices.DeleteFunc(m.msgs, func(h *held) bool {
		if h.visibleAt.After(now) || (pick != nil && !pick(h.copy())) {
			return false
		}
		taken = append(taken, h)
		return true
	})
	return taken
}
