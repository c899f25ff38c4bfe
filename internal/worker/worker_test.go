package worker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

func ticketMessage(t testing.TB, id string, version int64, fields map[string]any) []byte {
	t.Helper()
	m, err := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: id,
		Op: change.OpUpsert, Version: version, Source: change.SourceWebhook, Fields: fields}})
	if err != nil {
		t.Fatal(err)
	}
	return m.Body
}

func TestProcessCountsEveryOutcome(t *testing.T) {
	store := storetest.NewMemory()
	counts := metrics.NewMemory()
	w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	ctx := context.Background()
	steps := []struct {
		version int64
		summary string
		want    change.Outcome
	}{
		{20, "v20", change.Applied},
		{20, "v20", change.Duplicate},
		{20, "v20", change.Duplicate},
		{10, "v10", change.Stale},
		{30, "v30", change.Applied},
	}
	for _, s := range steps {
		got, err := w.Process(ctx, "m", ticketMessage(t, "42", s.version, map[string]any{"summary": s.summary}))
		if err != nil || got != s.want {
			t.Fatalf("v%d: %s, %v; want %s", s.version, got, err, s.want)
		}
	}
	o, _, _ := store.Get(ctx, "default", change.Ticket, "42", "")
	if o.Version != 30 || o.Fields["summary"] != "v30" {
		t.Fatalf("stored %d %v", o.Version, o.Fields["summary"])
	}
	for outcome, n := range map[change.Outcome]int64{change.Applied: 2, change.Duplicate: 2, change.Stale: 1} {
		if got := counts.Value(metrics.Metric{Name: metrics.ChangesApplied, Connection: "default", Label: string(outcome)}); got != n {
			t.Fatalf("%s counted %d, want %d", outcome, got, n)
		}
	}
}

type failingStore struct{ err error }

func (f failingStore) Apply(context.Context, change.Change) (change.Result, error) {
	return change.Result{}, f.err
}

func (f failingStore) RecordDelivery(context.Context, change.Delivery) error { return f.err }

func (f failingStore) Get(context.Context, string, change.Kind, string, string) (change.Object, bool, error) {
	return change.Object{}, false, f.err
}

func TestProcessFailures(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	w := worker.New(storetest.NewMemory(), metrics.Discard{}, log, connection.Set{{ID: "default"}}, nil)
	if _, err := w.Process(ctx, "m", []byte("not json")); !errors.Is(err, worker.ErrPermanent) {
		t.Fatalf("undecodable message: %v, want permanent", err)
	}
	if _, err := w.Process(ctx, "m", []byte(`{"change":{"connection":"default","kind":"invoice","id":"1","op":"upsert","version":1}}`)); !errors.Is(err, worker.ErrPermanent) {
		t.Fatalf("unknown kind: %v, want permanent", err)
	}
	down := worker.New(failingStore{errors.New("throttled")}, metrics.Discard{}, log, connection.Set{{ID: "default"}}, nil)
	_, err := down.Process(ctx, "m", ticketMessage(t, "1", 1, map[string]any{}))
	if err == nil || errors.Is(err, worker.ErrPermanent) {
		t.Fatalf("store failure: %v, want a retryable error", err)
	}
}

// TestUnknownConnectionIsRefused: a change queued for a connection the configuration does
// not name fails permanently (visible at once, so the redrive policy dead-letters it),
// counted and logged with its reason, and nothing is written: no object, no delivery
// record, no heartbeat.
func TestUnknownConnectionIsRefused(t *testing.T) {
	store, counts := storetest.NewMemory(), metrics.NewMemory()
	var logs strings.Builder
	w := worker.New(store, counts, slog.New(slog.NewJSONHandler(&logs, nil)), connection.Set{{ID: "configured"}}, nil)
	ctx := context.Background()
	m, err := message.Encode(message.Envelope{Change: change.Change{Connection: "gone", Kind: change.Ticket, ID: "7",
		Op: change.OpUpsert, Version: 5, Source: change.SourceWebhook, DeliveryID: "d-1", Fields: map[string]any{"a": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	vis := delays{}
	failed := w.HandleBatch(ctx, []message.Received{{ID: "m", ReceiptHandle: "r", ReceiveCount: 4, Body: m.Body}}, vis)
	if len(failed) != 1 || failed[0] != "m" {
		t.Fatalf("failed %v, want m", failed)
	}
	if d, ok := vis["r"]; !ok || d != 0 {
		t.Fatalf("visibility %v (set %v), want 0: a permanent failure goes to the dead-letter queue without waiting", d, ok)
	}
	if _, err := w.Process(ctx, "m", m.Body); !errors.Is(err, worker.ErrPermanent) {
		t.Fatalf("Process: %v, want a permanent failure", err)
	}
	if _, ok, _ := store.Get(ctx, "gone", change.Ticket, "7", ""); ok {
		t.Error("the change was applied under a connection nobody configured")
	}
	if ds, _ := store.Deliveries(ctx, "gone", "d-1"); len(ds) != 0 {
		t.Errorf("delivery records written: %+v", ds)
	}
	if doc, ok, _ := store.LoadCursor(ctx, "gone", "_webhook"); ok {
		t.Errorf("heartbeat written: %s", doc)
	}
	if got := counts.Value(metrics.Metric{Name: metrics.ChangesFailed, Connection: "gone", Label: "unknown_connection"}); got != 2 {
		t.Errorf("ChangesFailed{gone, unknown_connection} = %d, want 2", got)
	}
	if !strings.Contains(logs.String(), `"reason":"unknown_connection"`) || !strings.Contains(logs.String(), `"connection":"gone"`) {
		t.Errorf("log does not name the reason and connection: %s", logs.String())
	}
}

// TestProcessedLinesNameTheHaloClient: the "change processed" line carries the client the
// object belongs to, which the dashboard's most active clients rank by.
func TestProcessedLinesNameTheHaloClient(t *testing.T) {
	var logs bytes.Buffer
	w := worker.New(storetest.NewMemory(), metrics.Discard{}, slog.New(slog.NewJSONHandler(&logs, nil)), connection.Set{{ID: "default"}}, nil)
	if _, err := w.Process(context.Background(), "m", ticketMessage(t, "42", 10, map[string]any{"client_id": 12})); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"change processed"`) || !strings.Contains(logs.String(), `"client_id":"12"`) {
		t.Fatalf("log %s; want the change processed line with client_id 12", logs.String())
	}
}
