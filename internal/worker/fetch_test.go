package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/filter"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storedfields"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// fakeHalo answers fetches from a map and counts them. Notes are keyed
// action/<ticket>/<id>: like Halo, it reads a note only with its ticket.
type fakeHalo struct {
	objects map[string]map[string]any
	notes   map[string][]map[string]any // by ticket id
	err     error
	calls   int
}

func (f *fakeHalo) FetchNotes(_ context.Context, ticketID string) ([]map[string]any, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.notes[ticketID], nil
}

func (f *fakeHalo) Fetch(_ context.Context, kind change.Kind, id, parentID string) (map[string]any, bool, error) {
	f.calls++
	if f.err != nil {
		return nil, false, f.err
	}
	key := string(kind) + "/" + id
	if kind == change.Action {
		if parentID == "" {
			return nil, false, errors.New("400: ticket_id is required")
		}
		key = string(kind) + "/" + parentID + "/" + id
	}
	o, ok := f.objects[key]
	return o, ok, nil
}

func eventOnly(t testing.TB, kind change.Kind, id string, version int64) []byte {
	t.Helper()
	return eventOnlyUnder(t, kind, id, "", version)
}

// eventOnlyUnder is an event-only change naming its parent (a note's ticket), as a
// delivery nesting the ticket or the note's ticket_id names it.
func eventOnlyUnder(t testing.TB, kind change.Kind, id, parentID string, version int64) []byte {
	t.Helper()
	m, err := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: kind, ID: id, ParentID: parentID,
		Op: change.OpUpsert, Version: version, VersionFrom: "timestamp", Source: change.SourceWebhook, Event: string(kind) + " updated"}})
	if err != nil {
		t.Fatal(err)
	}
	return m.Body
}

// The version of "2026-09-25T06:41:07.523", the fetched ticket's last_update.
const fetchedVersion int64 = 1790318467523000000

func TestEventOnlyDeliveriesAreFetched(t *testing.T) {
	ctx := context.Background()
	halo := &fakeHalo{objects: map[string]map[string]any{
		"ticket/42":   {"id": 42, "summary": "fetched", "client_id": 12, "last_update": "2026-09-25T06:41:07.523", "details_html": "<p>x</p>"},
		"action/42/7": {"id": 7, "ticket_id": 42, "note": "called back", "last_updated": "2026-09-25T06:41:07.523"},
	}}
	fields, _ := storedfields.New(map[string]config.FieldList{"ticket": {Exclude: []string{"details_html"}}})
	store := storetest.NewMemory()
	counts := metrics.NewMemory()
	w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default", Fields: fields}}, map[string]worker.Fetcher{"default": halo})

	// An event older than the object's marker: stored at the marker.
	if got, err := w.Process(ctx, "m1", eventOnly(t, change.Ticket, "42", fetchedVersion-1000)); err != nil || got != change.Applied {
		t.Fatalf("first event: %s, %v", got, err)
	}
	o, _, _ := store.Get(ctx, "default", change.Ticket, "42", "")
	if o.Version != fetchedVersion || o.IsPending() || o.Fields["summary"] != "fetched" || o.Fields["details_html"] != nil || o.ClientID != "12" {
		t.Fatalf("stored %+v", o)
	}
	// The same event again: the copy is as new, so no second fetch.
	if got, err := w.Process(ctx, "m2", eventOnly(t, change.Ticket, "42", fetchedVersion-1000)); err != nil || got != change.Stale || halo.calls != 1 {
		t.Fatalf("repeat: %s, %v, %d fetches", got, err, halo.calls)
	}
	// An event newer than the marker: the fetched state takes the event's version.
	if got, err := w.Process(ctx, "m3", eventOnly(t, change.Ticket, "42", fetchedVersion+5000)); err != nil || got != change.Applied {
		t.Fatalf("newer event: %s, %v", got, err)
	}
	if o, _, _ = store.Get(ctx, "default", change.Ticket, "42", ""); o.Version != fetchedVersion+5000 || o.IsPending() {
		t.Fatalf("after newer event: %+v", o)
	}
	// A note: read with the ticket the delivery names.
	if got, err := w.Process(ctx, "m4", eventOnlyUnder(t, change.Action, "7", "42", 1)); err != nil || got != change.Applied {
		t.Fatalf("note: %s, %v", got, err)
	}
	if n, ok, _ := store.Get(ctx, "default", change.Action, "7", "42"); !ok || n.Fields["note"] != "called back" {
		t.Fatalf("note stored %+v %v", n, ok)
	}
	// Gone from Halo: a tombstone.
	if got, err := w.Process(ctx, "m5", eventOnly(t, change.Ticket, "99", 50)); err != nil || got != change.Applied {
		t.Fatalf("missing ticket: %s, %v", got, err)
	}
	if o, _, _ = store.Get(ctx, "default", change.Ticket, "99", ""); !o.Deleted || o.Version != 50 {
		t.Fatalf("missing ticket stored %+v", o)
	}
	if counts.Value(metrics.Metric{Name: metrics.ChangesFetched, Connection: "default", Label: "found"}) != 3 ||
		counts.Value(metrics.Metric{Name: metrics.ChangesFetched, Connection: "default", Label: "not_found"}) != 1 {
		t.Fatalf("fetch counts %+v", counts.Snapshot())
	}
}

// A note event naming no ticket is not fetched: Halo reads a note only with its ticket,
// and the copy could not place it. It fails for good, with its reason, unfetched.
func TestEventOnlyNoteWithoutItsTicketIsNotFetched(t *testing.T) {
	halo := &fakeHalo{objects: map[string]map[string]any{
		"action/42/7": {"id": 7, "ticket_id": 42, "note": "called back", "last_updated": "2026-09-25T06:41:07.523"},
	}}
	store := storetest.NewMemory()
	counts := metrics.NewMemory()
	w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, map[string]worker.Fetcher{"default": halo})
	_, err := w.Process(context.Background(), "m", eventOnly(t, change.Action, "7", 10))
	var p *worker.PermanentError
	if !errors.As(err, &p) || p.Reason != "no_ticket" {
		t.Fatalf("note without its ticket: %v, want a permanent no_ticket failure", err)
	}
	if n := counts.Value(metrics.Metric{Name: metrics.ChangesFailed, Connection: "default", Kind: "action", Label: "no_ticket"}); n != 1 {
		t.Fatalf("ChangesFailed no_ticket = %d (%+v)", n, counts.Snapshot())
	}
	if halo.calls != 0 || store.Len() != 0 {
		t.Fatalf("%d fetches, %d stored", halo.calls, store.Len())
	}
}

func TestFetchFailuresAreRetried(t *testing.T) {
	halo := &fakeHalo{err: errors.New("429 Too Many Requests")}
	w := worker.New(storetest.NewMemory(), metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, map[string]worker.Fetcher{"default": halo})
	_, err := w.Process(context.Background(), "m", eventOnly(t, change.Ticket, "1", 10))
	if err == nil || errors.Is(err, worker.ErrPermanent) {
		t.Fatalf("fetch failure: %v, want a retryable error", err)
	}
}

func TestWithoutAFetcherEventsStayPending(t *testing.T) {
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	if got, err := w.Process(context.Background(), "m", eventOnly(t, change.Ticket, "1", 10)); err != nil || got != change.Pending {
		t.Fatalf("%s, %v", got, err)
	}
}

func TestFetchedObjectsAreFiltered(t *testing.T) {
	halo := &fakeHalo{objects: map[string]map[string]any{"ticket/1": {"id": 1, "client_id": 12}}}
	rules, err := filter.New(config.Filters{Clients: config.IDFilter{Deny: []string{"12"}}})
	if err != nil {
		t.Fatal(err)
	}
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default", Filter: rules}}, map[string]worker.Fetcher{"default": halo})
	if got, err := w.Process(context.Background(), "m", eventOnly(t, change.Ticket, "1", 10)); err != nil || got != "filtered" {
		t.Fatalf("%s, %v", got, err)
	}
	if store.Len() != 0 {
		t.Fatal("a filtered object was stored")
	}
}

func TestUnknownEventsResolveWithConfiguredNames(t *testing.T) {
	raw := []byte(`{"id":"d1","event":"invoice paid","object_id":12,"timestamp":"2026-01-01T00:00:00Z"}`)
	m, err := message.Encode(message.Envelope{Unknown: true, Raw: raw, Change: change.Change{Connection: "default", Event: "invoice paid", DeliveryID: "d1"}})
	if err != nil {
		t.Fatal(err)
	}
	store := storetest.NewMemory()
	// Without a name for it: a permanent failure, so it is kept in the dead-letter queue.
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	if _, err := w.Process(context.Background(), "m", m.Body); !errors.Is(err, worker.ErrPermanent) {
		t.Fatalf("unknown event: %v, want a permanent failure", err)
	}
	// With the name configured since (a replay from the dead-letter queue): applied.
	conns, err := connection.CompileAll(&config.Config{Connections: []config.Connection{{ID: "default",
		Events: map[string]config.EventMapping{"Invoice Paid": {Kind: "client"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	w = worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), conns, nil)
	if got, err := w.Process(context.Background(), "m", m.Body); err != nil || got != change.Pending {
		t.Fatalf("with the name configured: %s, %v", got, err)
	}
	if o, ok, _ := store.Get(context.Background(), "default", change.Client, "12", ""); !ok || !o.IsPending() {
		t.Fatalf("client stored %+v %v", o, ok)
	}
}

func TestADeletedFlagMakesATombstone(t *testing.T) {
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	for i, flag := range []any{true, "True", json.Number("1")} {
		id := fmt.Sprint(100 + i)
		m, _ := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: id, Op: change.OpUpsert,
			Version: 10, Source: change.SourcePoll, Fields: map[string]any{"id": id, "deleted": flag, "summary": "gone"}}})
		if _, err := w.Process(context.Background(), "m", m.Body); err != nil {
			t.Fatal(err)
		}
		if o, _, _ := store.Get(context.Background(), "default", change.Ticket, id, ""); !o.Deleted {
			t.Errorf("deleted %v: stored %+v, want a tombstone", flag, o)
		}
	}
}

// TestAnEventOnlyTicketEventBringsItsNotes: a note added (or a status change or a
// reassignment, which add notes) announced by an event-only ticket event reaches the copy.
func TestAnEventOnlyTicketEventBringsItsNotes(t *testing.T) {
	halo := &fakeHalo{
		objects: map[string]map[string]any{"ticket/42": {"id": 42, "summary": "s", "last_update": "2026-09-25T06:41:07.523"}},
		notes: map[string][]map[string]any{"42": {
			{"id": 1, "ticket_id": 42, "note": "first", "last_updated": "2026-09-25T06:00:00"},
			{"id": 2, "ticket_id": 42, "note": "second", "last_updated": "2026-09-25T06:41:07.523"},
			{"id": 3, "ticket_id": 42, "note": "no marker"},
		}},
	}
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, map[string]worker.Fetcher{"default": halo})
	if _, err := w.Process(context.Background(), "m", eventOnly(t, change.Ticket, "42", 1)); err != nil {
		t.Fatal(err)
	}
	for id, note := range map[string]string{"1": "first", "2": "second"} {
		o, ok, _ := store.Get(context.Background(), "default", change.Action, id, "42")
		if !ok || o.Fields["note"] != note {
			t.Errorf("note %s: %+v %v", id, o, ok)
		}
	}
	if _, ok, _ := store.Get(context.Background(), "default", change.Action, "3", "42"); ok {
		t.Error("a note without a change marker was stored")
	}
}
