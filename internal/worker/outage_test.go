package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/queuetest"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// downUntil says whether a dependency is still down.
type downUntil struct {
	clock *halosim.Clock
	until time.Time
}

func (d downUntil) err(what string) error {
	if d.clock.Now().Before(d.until) {
		return fmt.Errorf("%s unavailable: %w", what, context.DeadlineExceeded)
	}
	return nil
}

// outageStore is a store that fails every call until the outage ends (DynamoDB throttling
// or errors).
type outageStore struct {
	*storetest.Memory
	down downUntil
}

func (s outageStore) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	if err := s.down.err("store"); err != nil {
		return change.Result{}, err
	}
	return s.Memory.Apply(ctx, c)
}

func (s outageStore) Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error) {
	if err := s.down.err("store"); err != nil {
		return change.Object{}, false, err
	}
	return s.Memory.Get(ctx, conn, kind, id, parentID)
}

// outageHalo is Halo's API answering 5xx (or timing out) until the outage ends.
type outageHalo struct {
	down downUntil
}

func (h outageHalo) Fetch(_ context.Context, kind change.Kind, id, _ string) (map[string]any, bool, error) {
	if err := h.down.err("halo"); err != nil {
		return nil, false, err
	}
	return map[string]any{"id": id, "summary": "fetched " + id}, true, nil
}

func (h outageHalo) FetchNotes(context.Context, string) ([]map[string]any, error) {
	if err := h.down.err("halo"); err != nil {
		return nil, err
	}
	return nil, nil
}

// TestAnHourLongOutageIsWaitedOut: the store, or Halo's API, is down for an hour of the
// queue's clock. Every change (snapshots, and event-only ones the worker fetches) is
// retried with the worker's backoff under the embedded queue's default receive limit
// (the template's maxReceiveCount, internal/samtemplate checks) and applied once the
// dependency recovers; nothing reaches the dead-letter queue.
func TestAnHourLongOutageIsWaitedOut(t *testing.T) {
	const outage = time.Hour
	for _, down := range []string{"store", "halo"} {
		t.Run(down, func(t *testing.T) {
			ctx := context.Background()
			clock := halosim.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
			start := clock.Now()
			d := downUntil{clock: clock, until: start.Add(outage)}
			up := downUntil{clock: clock}
			mem := storetest.NewMemory()
			store, halo := outageStore{mem, up}, outageHalo{up}
			if down == "store" {
				store.down = d
			} else {
				halo.down = d
			}
			counts := metrics.NewMemory()
			w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}},
				map[string]worker.Fetcher{"default": halo})

			dlq := queuetest.NewMemory(queuetest.Options{Visibility: config.Queue{}.Visibility()}, nil)
			dlq.Now = clock.Now
			q := queuetest.NewMemory(queuetest.Options{Visibility: config.Queue{}.Visibility(), MaxReceive: config.Queue{}.Receives()}, dlq)
			q.Now = clock.Now

			const n = 25
			var msgs []message.Message
			for i := range n {
				c := change.Change{Connection: "default", Kind: change.Ticket, ID: fmt.Sprint(100 + i), Op: change.OpUpsert,
					Version: 10, Source: change.SourceWebhook}
				if i%2 == 0 {
					c.Fields = map[string]any{"summary": "snapshot"} // odd ones are event-only: fetched
				}
				m, err := message.Encode(message.Envelope{Change: c})
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			if err := q.Send(ctx, msgs); err != nil {
				t.Fatal(err)
			}

			// The local pump's loop (and the SQS event source mapping's), a second of the
			// queue's clock at a time.
			var done time.Time
			for clock.Now().Sub(start) < 6*time.Hour {
				batch, err := q.Receive(ctx, 10, 0)
				if err != nil {
					t.Fatal(err)
				}
				failed := map[string]bool{}
				for _, id := range w.HandleBatch(ctx, batch, q) {
					failed[id] = true
				}
				var handles []string
				for _, m := range batch {
					if !failed[m.ID] {
						handles = append(handles, m.ReceiptHandle)
					}
				}
				if err := q.Delete(ctx, handles...); err != nil {
					t.Fatal(err)
				}
				visible, inFlight, _ := q.Stats(ctx)
				if visible+inFlight == 0 {
					done = clock.Now()
					break
				}
				clock.Advance(time.Second)
			}

			if v, f, _ := dlq.Stats(ctx); v+f != 0 {
				t.Fatalf("%d changes reached the dead-letter queue during a %v outage of the %s", v+f, outage, down)
			}
			if done.IsZero() {
				v, f, _ := q.Stats(ctx)
				t.Fatalf("after 6 h, %d changes are still queued", v+f)
			}
			// Once the dependency is back, each message waits at most its last delay
			// (15 minutes + 20 %) before it is tried again.
			if took := done.Sub(start); took < outage || took > outage+18*time.Minute+time.Minute {
				t.Errorf("the queue drained %v after the outage began, want within 19 minutes of its end", took)
			}
			for i := range n {
				o, ok, err := mem.Get(ctx, "default", change.Ticket, fmt.Sprint(100+i), "")
				if err != nil || !ok || o.IsPending() || len(o.Fields) == 0 {
					t.Errorf("ticket %d: stored %v, %+v, %v; want its fields", 100+i, ok, o, err)
				}
			}
			if got := counts.Value(metrics.Metric{Name: metrics.ChangesApplied, Connection: "default", Label: string(change.Applied)}); got != n {
				t.Errorf("ChangesApplied{applied} = %d, want %d", got, n)
			}
		})
	}
}

// TestRetryHorizonCoversHours: the default receive limit retries a failing change for well
// over an hour whatever the jitter, and Backoff stays within its bounds.
func TestRetryHorizonCoversHours(t *testing.T) {
	if h := worker.RetryHorizon(config.Queue{}.Receives()); h < 2*time.Hour {
		t.Fatalf("RetryHorizon(%d) = %v, want at least 2 h", config.Queue{}.Receives(), h)
	}
	if h := worker.RetryHorizon(8); h >= time.Hour {
		t.Fatalf("RetryHorizon(8) = %v: the horizon no longer grows with the receive limit as expected", h)
	}
	for n := 1; n <= 30; n++ {
		nominal := min(2*time.Second<<min(n-1, 20), 15*time.Minute)
		for range 50 {
			d := worker.Backoff(n)
			if d < nominal*8/10 || d > nominal*12/10 {
				t.Fatalf("Backoff(%d) = %v, want %v ± 20 %%", n, d, nominal)
			}
		}
	}
	if worker.Backoff(30) > 18*time.Minute {
		t.Fatal("Backoff exceeds 18 minutes")
	}
}
