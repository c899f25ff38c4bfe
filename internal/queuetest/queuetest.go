// Package queuetest is the contract every queue adapter must pass: the embedded SQLite
// queue and SQS behave alike for sending, receiving, visibility, deletion and redrive to
// the dead-letter queue (Run), and for the operations on a dead-letter queue: peeking,
// moving and purging (RunAdmin). Memory, an in-memory queue for tests, passes both too.
package queuetest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// Queue is the port under test.
type Queue interface {
	Send(ctx context.Context, msgs []message.Message) error
	Receive(ctx context.Context, max int, wait time.Duration) ([]message.Received, error)
	Delete(ctx context.Context, receiptHandles ...string) error
	ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error
}

// Options configure a fresh queue pair.
type Options struct {
	Visibility time.Duration // whole seconds
	MaxReceive int           // receives before a message moves to the dead-letter queue
}

// Factory makes a fresh, empty queue and its dead-letter queue.
type Factory func(t *testing.T, o Options) (main, dlq Queue)

// Run runs the contract.
func Run(t *testing.T, newQueues Factory) {
	ctx := context.Background()

	t.Run("messages round-trip with attributes, in batches larger than ten", func(t *testing.T) {
		// A visibility timeout past receiveN's deadline: however slow the queue, no
		// message comes back a second time while the others are still being received.
		q, _ := newQueues(t, Options{Visibility: 5 * time.Minute, MaxReceive: 5})
		var sent []message.Message
		for i := range 25 {
			sent = append(sent, message.Message{
				Body:       []byte(fmt.Sprintf(`{"n":%d,"text":"héllo ✓"}`, i)),
				Attributes: map[string]string{"connection": "default", "n": fmt.Sprint(i)},
			})
		}
		if err := q.Send(ctx, sent); err != nil {
			t.Fatal(err)
		}
		got := receiveN(t, q, 25, time.Minute)
		seen := map[string]bool{}
		var handles []string
		for _, m := range got {
			if m.ID == "" || m.ReceiptHandle == "" || m.ReceiveCount != 1 {
				t.Fatalf("received id %q receipt %q count %d", m.ID, m.ReceiptHandle, m.ReceiveCount)
			}
			if m.SentAt.IsZero() || time.Since(m.SentAt) > time.Minute {
				t.Fatalf("sent at %v", m.SentAt)
			}
			n := m.Attributes["n"]
			if m.Attributes["connection"] != "default" || string(m.Body) != fmt.Sprintf(`{"n":%s,"text":"héllo ✓"}`, n) {
				t.Fatalf("message %s: body %s attrs %v", m.ID, m.Body, m.Attributes)
			}
			seen[n] = true
			handles = append(handles, m.ReceiptHandle)
		}
		if len(seen) != 25 {
			t.Fatalf("received %d distinct messages, want 25", len(seen))
		}
		if err := q.Delete(ctx, handles...); err != nil {
			t.Fatal(err)
		}
		if rest, err := q.Receive(ctx, 10, 0); err != nil || len(rest) != 0 {
			t.Fatalf("after delete: %d messages, err %v", len(rest), err)
		}
	})

	t.Run("sending nothing is a no-op", func(t *testing.T) {
		q, _ := newQueues(t, Options{Visibility: 30 * time.Second, MaxReceive: 5})
		if err := q.Send(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := q.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a received message is invisible until its visibility timeout", func(t *testing.T) {
		q, _ := newQueues(t, Options{Visibility: time.Second, MaxReceive: 5})
		send(t, q, `{"m":"vis"}`)
		first := receiveN(t, q, 1, 30*time.Second)[0]
		if again, err := q.Receive(ctx, 10, 0); err != nil || len(again) != 0 {
			t.Fatalf("message visible during its timeout: %d, err %v", len(again), err)
		}
		second := receiveN(t, q, 1, 30*time.Second)[0]
		if second.ID != first.ID || string(second.Body) != `{"m":"vis"}` || second.ReceiveCount != 2 {
			t.Fatalf("redelivery: id %q (first %q) body %s count %d", second.ID, first.ID, second.Body, second.ReceiveCount)
		}
	})

	t.Run("changing visibility to zero redelivers at once", func(t *testing.T) {
		q, _ := newQueues(t, Options{Visibility: 60 * time.Second, MaxReceive: 5})
		send(t, q, `{"m":"cv"}`)
		m := receiveN(t, q, 1, 30*time.Second)[0]
		if err := q.ChangeVisibility(ctx, m.ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
		again := receiveN(t, q, 1, 30*time.Second)[0]
		if again.ID != m.ID || again.ReceiveCount != 2 {
			t.Fatalf("after visibility 0: id %q count %d", again.ID, again.ReceiveCount)
		}
	})

	t.Run("a message received too often moves to the dead-letter queue", func(t *testing.T) {
		q, dlq := newQueues(t, Options{Visibility: 60 * time.Second, MaxReceive: 2})
		send(t, q, `{"m":"poison"}`)
		send(t, q, `{"m":"fine"}`)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			got, err := q.Receive(ctx, 10, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range got {
				if string(m.Body) == `{"m":"fine"}` {
					if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if m.ReceiveCount > 2 {
					t.Fatalf("poison received %d times with max 2", m.ReceiveCount)
				}
				if err := q.ChangeVisibility(ctx, m.ReceiptHandle, 0); err != nil {
					t.Fatal(err)
				}
			}
			dead, err := dlq.Receive(ctx, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) > 0 {
				if len(dead) != 1 || string(dead[0].Body) != `{"m":"poison"}` {
					t.Fatalf("dead-letter queue holds %d messages, first %s", len(dead), dead[0].Body)
				}
				if rest, err := q.Receive(ctx, 10, 0); err != nil || len(rest) != 0 {
					t.Fatalf("main queue still holds %d messages, err %v", len(rest), err)
				}
				return
			}
		}
		t.Fatal("poison message never reached the dead-letter queue")
	})

	t.Run("a long poll returns a message sent while it waits", func(t *testing.T) {
		q, _ := newQueues(t, Options{Visibility: 30 * time.Second, MaxReceive: 5})
		type result struct {
			msgs []message.Received
			err  error
		}
		done := make(chan result, 1)
		started := make(chan struct{})
		go func() {
			close(started)
			msgs, err := q.Receive(ctx, 10, 10*time.Second)
			done <- result{msgs, err}
		}()
		<-started
		send(t, q, `{"m":"late"}`)
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(r.msgs) == 0 {
			// The receive may have begun after the send landed elsewhere; one more short poll
			// must then find it.
			r.msgs = receiveN(t, q, 1, 5*time.Second)
		}
		if string(r.msgs[0].Body) != `{"m":"late"}` {
			t.Fatalf("long poll got %s", r.msgs[0].Body)
		}
	})

	t.Run("a cancelled receive returns", func(t *testing.T) {
		q, _ := newQueues(t, Options{Visibility: 30 * time.Second, MaxReceive: 5})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if msgs, _ := q.Receive(cctx, 10, 20*time.Second); len(msgs) != 0 {
			t.Fatalf("cancelled receive returned %d messages", len(msgs))
		}
	})
}

func send(t *testing.T, q Queue, body string) {
	t.Helper()
	if err := q.Send(context.Background(), []message.Message{{Body: []byte(body)}}); err != nil {
		t.Fatal(err)
	}
}

// receiveN polls until n messages arrived or the deadline passed. The deadlines callers give
// are generous: a working queue answers at once, but a stand-in on a loaded machine can
// take seconds, and a deadline is a failure, never a wait.
func receiveN(t *testing.T, q Queue, n int, within time.Duration) []message.Received {
	t.Helper()
	var got []message.Received
	deadline := time.Now().Add(within)
	for len(got) < n && time.Now().Before(deadline) {
		msgs, err := q.Receive(context.Background(), 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs...)
	}
	if len(got) < n {
		t.Fatalf("received %d messages within %v, want %d", len(got), within, n)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	return got
}
