package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/filter"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

var received = time.Date(2026, 9, 25, 6, 41, 8, 0, time.UTC)

// webhook is a queued change as ingest makes it from a delivery: numbers as json.Number.
func webhook(t testing.TB, kind change.Kind, id, deliveryID, event string, version int64, fields map[string]any) []byte {
	t.Helper()
	m, err := message.Encode(message.Envelope{ReceivedAt: received, Change: change.Change{Connection: "default", Kind: kind, ID: id,
		Op: change.OpUpsert, Version: version, VersionFrom: "last_update", Source: change.SourceWebhook,
		DeliveryID: deliveryID, Event: event, Fields: fields}})
	if err != nil {
		t.Fatal(err)
	}
	return m.Body
}

func process(t *testing.T, w *worker.Worker, body []byte, want change.Outcome) {
	t.Helper()
	got, err := w.Process(context.Background(), "m", body)
	if err != nil || got != want {
		t.Fatalf("Process = %s, %v; want %s", got, err, want)
	}
}

// onlyDelivery reads the one record of a delivery.
func onlyDelivery(t *testing.T, s *storetest.Memory, deliveryID string) change.Delivery {
	t.Helper()
	ds, err := s.Deliveries(context.Background(), "default", deliveryID)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Deliveries(%s) = %+v, %v; want one record", deliveryID, ds, err)
	}
	return ds[0]
}

func wantChanged(t *testing.T, d change.Delivery, want string) {
	t.Helper()
	if b, _ := json.Marshal(d.Changed); string(b) != want {
		t.Fatalf("changed\n got %s\nwant %s", b, want)
	}
}

func TestTicketReassignedIsShownInItsDeliveryRecord(t *testing.T) {
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	process(t, w, webhook(t, change.Ticket, "42", "d-new", "ticket logged", 10, map[string]any{
		"id": 42, "summary": "Printer on fire", "agent_id": 7, "team_id": 2, "team": "1st Line", "status_id": 1,
		"client_id": 12, "last_update": "2026-09-25T06:00:00",
	}), change.Applied)
	if d := onlyDelivery(t, store, "d-new"); !d.Created || d.Changed != nil || d.Summary != "created" {
		t.Fatalf("the new ticket's record = %+v", d)
	}

	// Halo's reassignment: a full ticket whose agent and team moved; the other fields are
	// as stored, and numbers arrive as JSON numbers again.
	process(t, w, webhook(t, change.Ticket, "42", "d-reassign", "ticket reassigned", 20, map[string]any{
		"id": 42, "summary": "Printer on fire", "agent_id": 11, "team_id": 3, "team": "1st Line", "status_id": 1.0,
		"client_id": "12", "last_update": "2026-09-25T06:41:07",
	}), change.Applied)

	o, _, _ := store.Get(context.Background(), "default", change.Ticket, "42", "")
	if o.Fields["agent_id"] != json.Number("11") || o.Fields["team_id"] != json.Number("3") {
		t.Fatalf("state agent %v team %v; want 11 and 3", o.Fields["agent_id"], o.Fields["team_id"])
	}
	d := onlyDelivery(t, store, "d-reassign")
	if d.Event != "ticket reassigned" || d.Outcome != change.Applied || d.Kind != change.Ticket || d.ID != "42" || d.Version != 20 || d.Created {
		t.Fatalf("record = %+v", d)
	}
	// status_id 1 and 1.0 are one value; client_id 12 and "12" are not (the type changed).
	wantChanged(t, d, `{"agent_id":{"from":7,"to":11},"client_id":{"from":12,"to":"12"},"last_update":{"from":"2026-09-25T06:00:00","to":"2026-09-25T06:41:07"},"team_id":{"from":2,"to":3}}`)
	if want := "reassigned: agent_id 7 → 11, team_id 2 → 3; changed: client_id"; d.Summary != want {
		t.Fatalf("summary %q, want %q", d.Summary, want)
	}
	if !d.ReceivedAt.Equal(received) || d.ProcessedAt.IsZero() {
		t.Fatalf("received %v processed %v", d.ReceivedAt, d.ProcessedAt)
	}
}

func TestAssetMovedIsShownInItsDeliveryRecord(t *testing.T) {
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	process(t, w, webhook(t, change.Asset, "900", "d-1", "asset created", 10, map[string]any{
		"id": 900, "inventory_number": "LT-0042", "user_id": 5, "site_id": 1, "client_id": 12, "dlastupdate": "2026-09-25T06:00:00",
	}), change.Applied)
	process(t, w, webhook(t, change.Asset, "900", "d-2", "asset updated", 20, map[string]any{
		"id": 900, "user_id": 9, "site_id": 2, "client_id": 12, "dlastupdate": "2026-09-25T06:41:07",
	}), change.Applied)
	o, _, _ := store.Get(context.Background(), "default", change.Asset, "900", "")
	if o.Fields["user_id"] != json.Number("9") || o.Fields["site_id"] != json.Number("2") || o.Fields["inventory_number"] != "LT-0042" {
		t.Fatalf("state %v", o.Fields)
	}
	d := onlyDelivery(t, store, "d-2")
	wantChanged(t, d, `{"dlastupdate":{"from":"2026-09-25T06:00:00","to":"2026-09-25T06:41:07"},"site_id":{"from":1,"to":2},"user_id":{"from":5,"to":9}}`)
	if want := "assigned: user_id 5 → 9, site_id 1 → 2"; d.Summary != want {
		t.Fatalf("summary %q, want %q", d.Summary, want)
	}

	// Moved to another client: the record says so, and the copy's by-client key follows.
	process(t, w, webhook(t, change.Asset, "900", "d-3", "asset updated", 30, map[string]any{"client_id": 13, "site_id": 7}), change.Applied)
	if d := onlyDelivery(t, store, "d-3"); d.Summary != "assigned: site_id 2 → 7, client_id 12 → 13" {
		t.Fatalf("summary %q", d.Summary)
	}
	if o, _, _ := store.Get(context.Background(), "default", change.Asset, "900", ""); o.ClientID != "13" {
		t.Fatalf("client %q, want 13", o.ClientID)
	}
}

func TestEveryOutcomeIsRecorded(t *testing.T) {
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	first := webhook(t, change.Ticket, "42", "d-1", "ticket updated", 20, map[string]any{"status_id": 1})
	process(t, w, first, change.Applied)

	// Halo sends one change under two events (say "ticket updated" and "ticket status
	// changed"): the second delivery is a duplicate, and its record says so.
	process(t, w, webhook(t, change.Ticket, "42", "d-2", "ticket status changed", 20, map[string]any{"status_id": 1}), change.Duplicate)
	d := onlyDelivery(t, store, "d-2")
	if d.Outcome != change.Duplicate || d.Changed != nil || d.Summary != "duplicate: this version is already stored; nothing changed" {
		t.Fatalf("duplicate delivery's record = %+v", d)
	}
	// The same message again (SQS redelivers, Halo retries): the record still says what
	// the delivery did.
	process(t, w, first, change.Duplicate)
	if d := onlyDelivery(t, store, "d-1"); d.Outcome != change.Applied {
		t.Fatalf("redelivered message's record = %+v", d)
	}

	process(t, w, webhook(t, change.Ticket, "42", "d-3", "ticket updated", 10, map[string]any{"status_id": 0}), change.Stale)
	if d := onlyDelivery(t, store, "d-3"); d.Outcome != change.Stale || d.Summary != "stale: a newer version is stored; nothing changed" {
		t.Fatalf("stale delivery's record = %+v", d)
	}
	process(t, w, webhook(t, change.Ticket, "42", "d-4", "ticket updated", 30, nil), change.Pending)
	if d := onlyDelivery(t, store, "d-4"); d.Outcome != change.Pending {
		t.Fatalf("event-only delivery's record = %+v", d)
	}
	process(t, w, webhook(t, change.Ticket, "42", "d-5", "ticket status changed", 40, map[string]any{"status_id": 2}), change.Applied)
	if d := onlyDelivery(t, store, "d-5"); d.Summary != "status: 1 → 2" {
		t.Fatalf("status change's summary %q", d.Summary)
	}

	// A poll result has no delivery id, so no record.
	m, _ := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: "43", Op: change.OpUpsert,
		Version: 1, Source: change.SourcePoll, Fields: map[string]any{"a": 1}}})
	process(t, w, m.Body, change.Applied)
	if ds, _ := store.Deliveries(context.Background(), "default", ""); len(ds) != 0 {
		t.Fatalf("records of a poll result: %+v", ds)
	}
}

func TestFilteredDeliveriesAreRecorded(t *testing.T) {
	rules, err := filter.New(config.Filters{Clients: config.IDFilter{Deny: []string{"12"}}})
	if err != nil {
		t.Fatal(err)
	}
	// A webhook's snapshot is filtered at ingest; the worker filters what it fetches for an
	// event-only delivery, and records that delivery as filtered.
	halo := &fakeHalo{objects: map[string]map[string]any{"ticket/42": {"id": 42, "client_id": 12, "last_update": "2026-09-25T06:41:07.523"}}}
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default", Filter: rules}}, map[string]worker.Fetcher{"default": halo})
	process(t, w, webhook(t, change.Ticket, "42", "d-1", "ticket updated", 20, nil), change.Filtered)
	d := onlyDelivery(t, store, "d-1")
	if d.Outcome != change.Filtered || d.Reason == "" || d.Summary != "filtered: "+d.Reason {
		t.Fatalf("filtered delivery's record = %+v", d)
	}
	if store.Len() != 0 {
		t.Fatal("a filtered change was stored")
	}
}

// recordFails is a store whose delivery records cannot be written.
type recordFails struct{ *storetest.Memory }

func (recordFails) RecordDelivery(context.Context, change.Delivery) error {
	return errors.New("throttled")
}

func TestARecordThatCannotBeWrittenDoesNotFailTheMessage(t *testing.T) {
	store := recordFails{storetest.NewMemory()}
	counts := metrics.NewMemory()
	w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	process(t, w, webhook(t, change.Ticket, "42", "d-1", "ticket updated", 20, map[string]any{"status_id": 1}), change.Applied)
	if o, ok, _ := store.Get(context.Background(), "default", change.Ticket, "42", ""); !ok || o.Version != 20 {
		t.Fatalf("state %+v, %v", o, ok)
	}
	if n := counts.Value(metrics.Metric{Name: metrics.ChangesFailed, Connection: "default", Label: "delivery_record"}); n != 1 {
		t.Fatalf("ChangesFailed{delivery_record} = %d, want 1", n)
	}
	if n := counts.Value(metrics.Metric{Name: metrics.ChangesApplied, Connection: "default", Label: "applied"}); n != 1 {
		t.Fatalf("ChangesApplied{applied} = %d, want 1", n)
	}
}

// lostAnswer applies a change and then fails as if its answer were lost on the way back
// (a timeout or a dropped connection after the store acted), once.
type lostAnswer struct {
	*storetest.Memory
	lost bool
}

func (s *lostAnswer) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	res, err := s.Memory.Apply(ctx, c)
	if err == nil && !s.lost {
		s.lost = true
		return change.Result{}, errors.New("connection reset after the write")
	}
	return res, err
}

func TestALostAnswerIsRecordedAsApplied(t *testing.T) {
	store := &lostAnswer{Memory: storetest.NewMemory()}
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	body := webhook(t, change.Ticket, "42", "d-1", "ticket updated", 20, map[string]any{"status_id": 1})
	if _, err := w.Process(context.Background(), "m", body); err == nil {
		t.Fatal("the lost answer did not fail the message")
	}
	// The retry finds the delivery's own version stored.
	process(t, w, body, change.Duplicate)
	d := onlyDelivery(t, store.Memory, "d-1")
	if d.Outcome != change.Applied || !d.ChangesUnknown || !strings.Contains(d.Summary, "not known") {
		t.Fatalf("record %+v; want applied, its changes not known", d)
	}
	// A redelivery from another delivery of the same version is a plain duplicate.
	process(t, w, webhook(t, change.Ticket, "42", "d-2", "ticket status changed", 20, map[string]any{"status_id": 1}), change.Duplicate)
	if d := onlyDelivery(t, store.Memory, "d-2"); d.Outcome != change.Duplicate {
		t.Fatalf("record of another delivery %+v; want duplicate", d)
	}
}
