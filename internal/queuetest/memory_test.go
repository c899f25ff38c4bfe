package queuetest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/queuetest"
)

func TestMemoryQueueContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queuetest.Options) (queuetest.Queue, queuetest.Queue) {
		dlq := queuetest.NewMemory(queuetest.Options{Visibility: o.Visibility}, nil)
		return queuetest.NewMemory(o, dlq), dlq
	})
}

// clock is a clock a test steps by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func receive(t *testing.T, q *queuetest.Memory) []message.Received {
	t.Helper()
	got, err := q.Receive(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestMemoryVisibilityByClock steps the queue's clock instead of waiting: a received message
// stays hidden until its timeout, comes back with its count raised, and after MaxReceive
// receives moves to the dead-letter queue, where it arrives fresh.
func TestMemoryVisibilityByClock(t *testing.T) {
	ctx := context.Background()
	c := &clock{t: time.Date(2026, 9, 25, 6, 41, 0, 0, time.UTC)}
	dlq := queuetest.NewMemory(queuetest.Options{}, nil)
	q := queuetest.NewMemory(queuetest.Options{Visibility: time.Minute, MaxReceive: 2}, dlq)
	q.Now, dlq.Now = c.now, c.now
	if err := q.Send(ctx, []message.Message{{Body: []byte(`{"m":1}`), Attributes: map[string]string{"kind": "ticket"}}}); err != nil {
		t.Fatal(err)
	}

	first := receive(t, q)
	if len(first) != 1 || first[0].ReceiveCount != 1 || !first[0].SentAt.Equal(c.t) {
		t.Fatalf("first receive: %+v", first)
	}
	first[0].Body[0], first[0].Attributes["kind"] = 'x', "changed" // a receiver's copy is its own
	c.advance(time.Minute - time.Millisecond)
	if got := receive(t, q); len(got) != 0 {
		t.Fatalf("visible before its timeout: %+v", got)
	}
	if v, f, _ := q.Stats(ctx); v != 0 || f != 1 {
		t.Fatalf("stats %d visible, %d in flight; want 0, 1", v, f)
	}
	c.advance(time.Millisecond)
	second := receive(t, q)
	if len(second) != 1 || second[0].ID != first[0].ID || second[0].ReceiveCount != 2 ||
		string(second[0].Body) != `{"m":1}` || second[0].Attributes["kind"] != "ticket" {
		t.Fatalf("second receive: %+v", second)
	}
	if err := q.ChangeVisibility(ctx, first[0].ReceiptHandle, 0); !errors.Is(err, queuetest.ErrUnknownReceipt) {
		t.Fatalf("change visibility with a stale receipt: %v", err)
	}
	if err := q.ChangeVisibility(ctx, second[0].ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, q); len(got) != 0 {
		t.Fatalf("received a third time with MaxReceive 2: %+v", got)
	}
	dead := receive(t, dlq)
	if len(dead) != 1 || dead[0].ID != first[0].ID || dead[0].ReceiveCount != 1 || string(dead[0].Body) != `{"m":1}` {
		t.Fatalf("dead-letter queue: %+v", dead)
	}
	if err := dlq.Delete(ctx, dead[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*queuetest.Memory{q, dlq} {
		if v, f, _ := m.Stats(ctx); v != 0 || f != 0 {
			t.Fatalf("stats %d visible, %d in flight; want none", v, f)
		}
	}
}

func TestMemorySendIsAllOrNone(t *testing.T) {
	ctx := context.Background()
	q := queuetest.NewMemory(queuetest.Options{}, nil)
	err := q.Send(ctx, []message.Message{{Body: []byte(`{}`)}, {Body: []byte(strings.Repeat("x", message.MaxMessageBytes+1))}})
	if !errors.Is(err, message.ErrTooLarge) {
		t.Fatalf("an oversize message: %v", err)
	}
	if v, f, _ := q.Stats(ctx); v != 0 || f != 0 {
		t.Fatalf("after a refused send: %d visible, %d in flight", v, f)
	}
}

func TestMemoryAdminContract(t *testing.T) {
	queuetest.RunAdmin(t, func(t *testing.T, o queuetest.Options) (*queuetest.Memory, *queuetest.Memory) {
		dlq := queuetest.NewMemory(queuetest.Options{Visibility: o.Visibility}, nil)
		return queuetest.NewMemory(o, dlq), dlq
	})
}
