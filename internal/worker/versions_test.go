package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// An object fetched with a change marker far in the future is stored at the time it was
// fetched, so the next real update applies; a fetched note without a marker is counted.
func TestFetchedVersionsAreChecked(t *testing.T) {
	ctx := context.Background()
	halo := &fakeHalo{
		objects: map[string]map[string]any{"ticket/42": {"id": 42, "summary": "pinned?", "last_update": "2261-01-01T00:00:00"}},
		notes:   map[string][]map[string]any{"42": {{"id": 7, "ticket_id": 42, "note": "no marker"}}},
	}
	store := storetest.NewMemory()
	counts := metrics.NewMemory()
	w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, map[string]worker.Fetcher{"default": halo})

	before := time.Now()
	if got, err := w.Process(ctx, "m1", eventOnly(t, change.Ticket, "42", change.VersionOf(before.Add(-time.Minute)))); err != nil || got != change.Applied {
		t.Fatalf("event: %s, %v", got, err)
	}
	after := time.Now()
	o, _, _ := store.Get(ctx, "default", change.Ticket, "42", "")
	if o.Version < change.VersionOf(before) || o.Version > change.VersionOf(after) {
		t.Fatalf("stored version %d; want the fetch time, between %d and %d", o.Version, change.VersionOf(before), change.VersionOf(after))
	}
	if n := counts.Value(metrics.Metric{Name: metrics.VersionsClamped, Connection: "default", Label: "ticket"}); n != 1 {
		t.Fatalf("VersionsClamped = %d, want 1", n)
	}
	if n := counts.Value(metrics.Metric{Name: metrics.VersionsMissing, Connection: "default", Label: "action"}); n != 1 {
		t.Fatalf("VersionsMissing{action} = %d, want 1", n)
	}
	if _, ok, _ := store.Get(ctx, "default", change.Action, "7", "42"); ok {
		t.Fatal("a note without a marker was stored")
	}
	next := time.Now().Add(time.Second)
	if got, err := w.Process(ctx, "m2", ticketMessage(t, "42", change.VersionOf(next), map[string]any{"summary": "real"})); err != nil || got != change.Applied {
		t.Fatalf("the next real update: %s, %v; want applied", got, err)
	}
}

// The poller's repair is written like any change, and counted when it replaces the object.
func TestRepairsAreCounted(t *testing.T) {
	ctx := context.Background()
	store := storetest.NewMemory()
	counts := metrics.NewMemory()
	w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	pinned := change.VersionOf(time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := store.Apply(ctx, change.Change{Connection: "default", Kind: change.Ticket, ID: "42", Op: change.OpUpsert,
		Version: pinned, Source: change.SourceWebhook, Fields: map[string]any{"summary": "bogus"}}); err != nil {
		t.Fatal(err)
	}
	m, err := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: "42",
		Op: change.OpUpsert, Version: 100, Source: change.SourcePoll, Fields: map[string]any{"summary": "real"}, Repairs: pinned}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []change.Outcome{change.Applied, change.Duplicate} {
		if got, err := w.Process(ctx, "m", m.Body); err != nil || got != want {
			t.Fatalf("repair %d: %s, %v; want %s", i, got, err, want)
		}
	}
	if n := counts.Value(metrics.Metric{Name: metrics.VersionsRepaired, Connection: "default", Label: "ticket"}); n != 1 {
		t.Fatalf("VersionsRepaired = %d, want 1", n)
	}
	if o, _, _ := store.Get(ctx, "default", change.Ticket, "42", ""); o.Version != 100 || o.Fields["summary"] != "real" {
		t.Fatalf("stored version %d summary %v", o.Version, o.Fields["summary"])
	}
}
