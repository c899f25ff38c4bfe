package queuetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// Admin is a queue with the operations `halosync dlq` uses on a dead-letter queue:
// reading without receiving, moving messages to another queue of the same kind, and
// deleting them, each choosing messages with pick (nil: every visible one).
type Admin[Q any] interface {
	Queue
	Peek(ctx context.Context, limit int) ([]message.Received, error)
	MoveTo(ctx context.Context, dest Q, pick func(message.Received) bool, progress func(int)) (int, error)
	Purge(ctx context.Context, pick func(message.Received) bool, progress func(int)) (int, error)
}

// RunAdmin runs the contract of the dead-letter queue operations; newQueues makes a fresh,
// empty queue and its dead-letter queue, as for Run.
func RunAdmin[Q Admin[Q]](t *testing.T, newQueues func(t *testing.T, o Options) (main, dlq Q)) {
	ctx := context.Background()
	opts := Options{Visibility: 30 * time.Second, MaxReceive: 5}
	dead := func(body, reason string) message.Message {
		return message.Message{Body: []byte(body), Attributes: map[string]string{
			message.AttrFailureReason: reason, message.AttrConnection: "acme"}}
	}
	byBody := func(bodies ...string) func(message.Received) bool {
		return func(m message.Received) bool { return slices.Contains(bodies, string(m.Body)) }
	}

	t.Run("peeking reads messages without receiving them", func(t *testing.T) {
		_, dlq := newQueues(t, opts)
		if err := dlq.Send(ctx, []message.Message{dead(`{"m":1}`, "invalid"), dead(`{"m":2}`, "unknown_event"), dead(`{"m":3}`, "undecodable")}); err != nil {
			t.Fatal(err)
		}
		first := peekN(t, dlq, 3)
		for _, m := range first {
			if m.ID == "" || m.ReceiptHandle != "" || m.ReceiveCount != 0 || m.SentAt.IsZero() || time.Since(m.SentAt) > time.Minute {
				t.Fatalf("peeked id %q receipt %q receive count %d sent %v", m.ID, m.ReceiptHandle, m.ReceiveCount, m.SentAt)
			}
			if m.Attributes[message.AttrConnection] != "acme" || m.Attributes[message.AttrFailureReason] == "" {
				t.Fatalf("peeked attributes %v", m.Attributes)
			}
		}
		if got := bodies(first); !slices.Equal(got, []string{`{"m":1}`, `{"m":2}`, `{"m":3}`}) {
			t.Fatalf("peeked %v", got)
		}
		if again := peekN(t, dlq, 3); !slices.Equal(ids(again), ids(first)) {
			t.Fatalf("a second peek saw %v, the first %v", ids(again), ids(first))
		}
		if some, err := dlq.Peek(ctx, 2); err != nil || len(some) != 2 {
			t.Fatalf("peek of at most 2: %d messages, %v", len(some), err)
		}
		// Nothing was consumed: every message is received at once.
		if got := receiveN(t, dlq, 3, 10*time.Second); len(got) != 3 {
			t.Fatalf("received %d after peeking", len(got))
		}
	})

	t.Run("moving sends the picked messages to the other queue as new", func(t *testing.T) {
		main, dlq := newQueues(t, opts)
		if err := dlq.Send(ctx, []message.Message{dead(`{"m":"a"}`, "unknown_event"), dead(`{"m":"b"}`, "unknown_event"), dead(`{"m":"c"}`, "invalid")}); err != nil {
			t.Fatal(err)
		}
		peekN(t, dlq, 3)
		progressed := 0
		n, err := dlq.MoveTo(ctx, main, byBody(`{"m":"a"}`, `{"m":"b"}`), func(moved int) { progressed = moved })
		if err != nil || n != 2 || progressed != 2 {
			t.Fatalf("moved %d (progress said %d), %v; want 2", n, progressed, err)
		}
		got := receiveN(t, main, 2, 10*time.Second)
		slices.SortFunc(got, func(a, b message.Received) int { return strings.Compare(string(a.Body), string(b.Body)) })
		for i, m := range got {
			if want := []string{`{"m":"a"}`, `{"m":"b"}`}[i]; string(m.Body) != want || m.ReceiveCount != 1 {
				t.Fatalf("main queue received %s (count %d), want %s", m.Body, m.ReceiveCount, want)
			}
			if _, ok := m.Attributes[message.AttrFailureReason]; ok || m.Attributes[message.AttrConnection] != "acme" {
				t.Fatalf("moved message's attributes %v: want the connection, not the failure reason", m.Attributes)
			}
		}
		if rest := bodies(peekN(t, dlq, 1)); !slices.Equal(rest, []string{`{"m":"c"}`}) {
			t.Fatalf("dead-letter queue keeps %v", rest)
		}
		if n, err := dlq.MoveTo(ctx, main, byBody("none"), nil); err != nil || n != 0 {
			t.Fatalf("moving nothing: %d, %v", n, err)
		}
		if n, err := dlq.MoveTo(ctx, main, nil, nil); err != nil || n != 1 {
			t.Fatalf("moving every message: %d, %v; want 1", n, err)
		}
		if rest, err := dlq.Peek(ctx, 10); err != nil || len(rest) != 0 {
			t.Fatalf("after moving all: %d left, %v", len(rest), err)
		}
	})

	t.Run("purging deletes the picked messages only", func(t *testing.T) {
		_, dlq := newQueues(t, opts)
		if err := dlq.Send(ctx, []message.Message{dead(`{"p":1}`, "invalid"), dead(`{"p":2}`, "invalid"), dead(`{"p":3}`, "invalid")}); err != nil {
			t.Fatal(err)
		}
		peekN(t, dlq, 3)
		progressed := 0
		if n, err := dlq.Purge(ctx, byBody(`{"p":2}`), func(d int) { progressed = d }); err != nil || n != 1 || progressed != 1 {
			t.Fatalf("purged %d (progress said %d), %v; want 1", n, progressed, err)
		}
		if rest := bodies(peekN(t, dlq, 2)); !slices.Equal(rest, []string{`{"p":1}`, `{"p":3}`}) {
			t.Fatalf("left %v", rest)
		}
		if n, err := dlq.Purge(ctx, nil, nil); err != nil || n != 2 {
			t.Fatalf("purged all: %d, %v; want 2", n, err)
		}
		if rest, err := dlq.Peek(ctx, 10); err != nil || len(rest) != 0 {
			t.Fatalf("after purging all: %d left, %v", len(rest), err)
		}
	})
}

// peekN peeks until n messages are seen (SQS may need a few looks), sorted by body.
func peekN(t *testing.T, q interface {
	Peek(context.Context, int) ([]message.Received, error)
}, n int) []message.Received {
	t.Helper()
	var got []message.Received
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		var err error
		if got, err = q.Peek(context.Background(), 100); err != nil {
			t.Fatal(err)
		}
		if len(got) >= n {
			break
		}
	}
	if len(got) != n {
		t.Fatalf("peeked %d messages, want %d", len(got), n)
	}
	slices.SortFunc(got, func(a, b message.Received) int { return strings.Compare(string(a.Body), string(b.Body)) })
	return got
}

func bodies(msgs []message.Received) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	return out
}

func ids(msgs []message.Received) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	slices.Sort(out)
	return out
}
