package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
)

// outbox reads conn's events after seq, decoded.
func outbox(t *testing.T, s *Store, conn string, after int64) ([]changeevent.Event, []StoredEvent) {
	t.Helper()
	stored, err := s.ChangeEvents(context.Background(), conn, after, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []changeevent.Event
	for _, e := range stored {
		ev, err := changeevent.Decode(e.Event)
		if err != nil || ev.ID != e.ID {
			t.Fatalf("stored event %s: %v (id %q)", e.Event, err, e.ID)
		}
		out = append(out, ev)
	}
	return out, stored
}

func TestTheOutboxHoldsOneEventPerChangeThatAlteredTheCopy(t *testing.T) {
	_, s := newTestStore(t)
	apply(t, s, upsert(change.Ticket, "1", 10, map[string]any{"agent_id": json.Number("7")}), change.Applied)
	apply(t, s, upsert(change.Ticket, "1", 20, map[string]any{"agent_id": json.Number("11")}), change.Applied)
	apply(t, s, upsert(change.Ticket, "1", 20, map[string]any{"agent_id": json.Number("11")}), change.Duplicate)
	apply(t, s, upsert(change.Ticket, "1", 15, map[string]any{"agent_id": json.Number("9")}), change.Stale)
	apply(t, s, change.Change{Connection: "c1", Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 30, Source: change.SourceWebhook}, change.Pending)
	apply(t, s, change.Change{Connection: "c2", Kind: change.Client, ID: "5", Op: change.OpUpsert, Version: 1, Fields: map[string]any{}}, change.Applied)

	events, stored := outbox(t, s, "c1", 0)
	if len(events) != 2 {
		t.Fatalf("%d events: %+v", len(events), events)
	}
	if events[0].DetailType != "ticket created" || events[1].DetailType != "ticket updated" {
		t.Fatalf("detail-types %q, %q", events[0].DetailType, events[1].DetailType)
	}
	want := map[string]change.FieldChange{"agent_id": {From: json.Number("7"), To: json.Number("11")}}
	if !reflect.DeepEqual(events[1].Detail.Changed, want) || events[1].Detail.Summary != "reassigned: agent_id 7 → 11" {
		t.Fatalf("changed %v, summary %q", events[1].Detail.Changed, events[1].Detail.Summary)
	}
	if events[1].ID != changeevent.ID("c1", change.Ticket, "1", "", 20, 0) {
		t.Fatalf("event id %q is not the change's", events[1].ID)
	}
	if stored[0].Seq >= stored[1].Seq {
		t.Fatalf("seqs %d, %d", stored[0].Seq, stored[1].Seq)
	}
	if other, _ := outbox(t, s, "c2", 0); len(other) != 1 {
		t.Fatalf("connection c2: %d events", len(other))
	}
}

func TestAStreamResumesAfterTheLastEventItSaw(t *testing.T) {
	_, s := newTestStore(t)
	ctx := context.Background()
	apply(t, s, upsert(change.Ticket, "1", 10, map[string]any{"status_id": json.Number("1")}), change.Applied)
	fresh, err := s.ChangeEventCursor(ctx, "c1", "")
	if err != nil {
		t.Fatal(err)
	}
	if events, _ := outbox(t, s, "c1", fresh); len(events) != 0 {
		t.Fatalf("a new stream starts with %d old events", len(events))
	}
	first, _ := outbox(t, s, "c1", 0)
	apply(t, s, upsert(change.Ticket, "1", 20, map[string]any{"status_id": json.Number("2")}), change.Applied)
	apply(t, s, upsert(change.Ticket, "2", 20, map[string]any{"status_id": json.Number("2")}), change.Applied)

	after, err := s.ChangeEventCursor(ctx, "c1", first[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	events, _ := outbox(t, s, "c1", after)
	if len(events) != 2 || events[0].Detail.Version != 20 || events[1].Detail.ID != "2" {
		t.Fatalf("resumed with %+v", events)
	}
	gone, err := s.ChangeEventCursor(ctx, "c1", "an id the outbox no longer holds")
	if err != nil || gone != 0 {
		t.Fatalf("unknown id: cursor %d, %v; want 0 (every event kept)", gone, err)
	}
}

// TestTheOutboxKeepsADay: an event older than OutboxRetention is deleted by the next
// trim (the first event written after the database is opened), the others stay.
func TestTheOutboxKeepsADay(t *testing.T) {
	db, s := newTestStore(t)
	ctx := context.Background()
	err := db.inWriteTx(ctx, "an old event", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO change_events (connection, event_id, created_at, event) VALUES
			('c1', 'old', ?, '{}'), ('c1', 'recent', ?, '{}')`,
			time.Now().Add(-OutboxRetention-time.Minute).UnixMilli(), time.Now().Add(-time.Hour).UnixMilli())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, upsert(change.Ticket, "1", 10, map[string]any{"status_id": json.Number("1")}), change.Applied)
	stored, err := s.ChangeEvents(ctx, "c1", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[0].ID != "recent" {
		t.Fatalf("the outbox holds %+v, want the recent event and the new one", stored)
	}
}

// TestTheOutboxKeepsTheNewestEvents: beyond OutboxKeep events, the next trim deletes the
// oldest, whatever their age.
func TestTheOutboxKeepsTheNewestEvents(t *testing.T) {
	db, s := newTestStore(t)
	ctx := context.Background()
	err := db.inWriteTx(ctx, "many recent events", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO change_events (connection, event_id, created_at, event) SELECT 'c1', 'e' || i, ?, '{}' FROM n`,
			OutboxKeep+5, time.Now().Add(-time.Hour).UnixMilli())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, upsert(change.Ticket, "1", 10, map[string]any{"status_id": json.Number("1")}), change.Applied)
	stored, err := s.ChangeEvents(ctx, "c1", 0, OutboxKeep+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != OutboxKeep+1 || stored[0].ID != "e6" {
		t.Fatalf("the outbox holds %d events from %q, want %d from e6", len(stored), stored[0].ID, OutboxKeep+1)
	}
}
