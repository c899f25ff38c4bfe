package worker_test

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// recorder keeps every count as it was made, kind included.
type recorder struct {
	mu  sync.Mutex
	got []metrics.Entry
}

func (r *recorder) Count(m metrics.Metric, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, metrics.Entry{Metric: m, Value: n})
}

// values lists the values counted under name.
func (r *recorder) values(name string) []metrics.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []metrics.Entry
	for _, e := range r.got {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// slowStore takes 40 ms of the fake clock to write.
type slowStore struct {
	*storetest.Memory
	clock *time.Time
}

func (s slowStore) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	*s.clock = s.clock.Add(40 * time.Millisecond)
	return s.Memory.Apply(ctx, c)
}

func TestSyncLatencyAndApplyDuration(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	marker := t0.Add(-10 * time.Second)
	tests := []struct {
		name       string
		occurredAt time.Time
		version    int64
		from       string
		repeat     bool // applied twice: the second is a duplicate
		source     change.Source
		backfill   bool
		want       []int64
	}{
		// received at t0+2s, applied at t0+5s+40ms: the delivery's timestamp is Halo's
		// event time, ahead of the marker.
		{"from the delivery timestamp", t0, change.VersionOf(marker), "last_update", false, "", false, []int64{5040}},
		{"timestamp as the version", t0, change.VersionOf(t0), "timestamp", false, "", false, []int64{5040}},
		// no timestamp: ingest put the receipt time in occurred-at; the marker counts.
		{"from the change marker", t0.Add(2 * time.Second), change.VersionOf(marker), "last_update", false, "", false, []int64{15040}},
		{"neither", t0.Add(2 * time.Second), change.VersionOf(t0.Add(2 * time.Second)), "received", false, "", false, nil},
		{"a duplicate is not applied", t0, change.VersionOf(marker), "last_update", true, "", false, []int64{5040}},
		// a poll's change counts from its marker; a backfill's marker may be months old.
		{"a poll's change", marker, change.VersionOf(marker), "last_update", false, change.SourcePoll, false, []int64{15040}},
		{"a backfill's change", marker, change.VersionOf(marker), "last_update", false, change.SourcePoll, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0.Add(5 * time.Second)
			rec := &recorder{}
			w := worker.New(slowStore{storetest.NewMemory(), &now}, rec, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
			worker.SetClock(w, func() time.Time { return now })
			m, err := message.Encode(message.Envelope{ReceivedAt: t0.Add(2 * time.Second), Change: change.Change{Connection: "default",
				Kind: change.Ticket, ID: "7", Op: change.OpUpsert, Version: tt.version, VersionFrom: tt.from, OccurredAt: tt.occurredAt,
				Source: cmp.Or(tt.source, change.SourceWebhook), Backfill: tt.backfill, Fields: map[string]any{"summary": "s"}}})
			if err != nil {
				t.Fatal(err)
			}
			runs := 1
			if tt.repeat {
				runs = 2
			}
			for range runs {
				now = t0.Add(5 * time.Second)
				if _, err := w.Process(t.Context(), "m", m.Body); err != nil {
					t.Fatal(err)
				}
			}
			var got []int64
			for _, e := range rec.values(metrics.SyncLatency) {
				if e.Connection != "default" || e.Kind != "ticket" || e.Label != "" {
					t.Errorf("SyncLatency counted as %+v", e.Metric)
				}
				got = append(got, e.Value)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("SyncLatency %v, want %v", got, tt.want)
			}
			durations := rec.values(metrics.ApplyDuration)
			if len(durations) != runs {
				t.Fatalf("ApplyDuration counted %d times, want %d", len(durations), runs)
			}
			for _, e := range durations {
				if e.Value != 40 || e.Kind != "ticket" {
					t.Errorf("ApplyDuration %+v = %d, want 40 ms for a ticket", e.Metric, e.Value)
				}
			}
			for _, e := range rec.values(metrics.ChangesApplied) {
				if e.Kind != "ticket" {
					t.Errorf("ChangesApplied without its kind: %+v", e.Metric)
				}
			}
		})
	}
}

func TestChangesRetriedCountsMessagesReceivedAgain(t *testing.T) {
	rec := &recorder{}
	w := worker.New(storetest.NewMemory(), rec, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	attrs := map[string]string{message.AttrConnection: "default", message.AttrKind: "ticket"}
	msgs := []message.Received{
		{ID: "first", Body: ticketMessage(t, "1", 10, map[string]any{}), ReceiveCount: 1, Attributes: attrs},
		{ID: "again", Body: ticketMessage(t, "2", 10, map[string]any{}), ReceiveCount: 3, Attributes: attrs},
		{ID: "local", Body: ticketMessage(t, "3", 10, map[string]any{}), ReceiveCount: 0},
	}
	if failed := w.HandleBatch(t.Context(), msgs, nil); len(failed) != 0 {
		t.Fatalf("failed %v", failed)
	}
	got := rec.values(metrics.ChangesRetried)
	want := metrics.Metric{Name: metrics.ChangesRetried, Connection: "default", Kind: "ticket"}
	if len(got) != 1 || got[0].Metric != want || got[0].Value != 1 {
		t.Fatalf("ChangesRetried %+v, want one count of %+v", got, want)
	}
}
