// Package storetest is the contract every object store adapter must pass: the embedded
// SQLite store and the DynamoDB store behave alike, exactly as change.Apply describes
// (the outcome and the previous values it reports included), keep delivery records
// alike (change.Delivery: keys, expiry, change.Delivery.Replaces), keep the poller's
// cursor documents byte for byte, and list the ids stored of a kind (tombstones marked)
// for the poller's reconcile, and list what changed of a kind in the order they wrote it.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Store is the port under test.
type Store interface {
	Apply(ctx context.Context, c change.Change) (change.Result, error)
	Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error)
	RecordDelivery(ctx context.Context, d change.Delivery) error
	Deliveries(ctx context.Context, conn, deliveryID string) ([]change.Delivery, error)
	// The poller's state: one opaque JSON document per connection and name.
	LoadCursor(ctx context.Context, conn, name string) ([]byte, bool, error)
	SaveCursor(ctx context.Context, conn, name string, doc []byte) error
	// StoredIDs calls fn with every id stored of a kind in a connection, page by page.
	StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func(ids []change.StoredID) error) error
	// Changed lists up to limit objects of a kind whose by-change key
	// (change.ChangedIndexSort) sorts above after, ascending.
	Changed(ctx context.Context, conn string, kind change.Kind, after string, limit int) ([]change.Object, error)
}

// Run runs the contract against the store newStore returns. Each subtest asks for its own
// store and uses its own connection id, so a shared backing table is fine.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	seq := 0
	conn := func(t *testing.T) string {
		seq++
		return fmt.Sprintf("ct-%d-%d", time.Now().UnixNano(), seq)
	}
	ctx := context.Background()

	t.Run("absent object is not found", func(t *testing.T) {
		s := newStore(t)
		_, ok, err := s.Get(ctx, conn(t), change.Ticket, "1", "")
		if err != nil || ok {
			t.Fatalf("Get absent = ok %v, err %v; want not found", ok, err)
		}
	})

	t.Run("first change is applied with its metadata", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		before := time.Now().Add(-time.Minute)
		ch := ticket(c, "4242", 100, map[string]any{"summary": "Printer on fire", "client_id": json.Number("12"), "status_id": json.Number("1")})
		ch.DeliveryID = "d-1"
		mustApply(t, s, ch, change.Applied)
		o := mustGet(t, s, c, change.Ticket, "4242", "")
		if o.Version != 100 || o.Deleted || o.IsPending() {
			t.Fatalf("state = version %d deleted %v pending %v", o.Version, o.Deleted, o.IsPending())
		}
		if o.ClientID != "12" || o.Source != change.SourceWebhook || o.DeliveryID != "d-1" || o.Event != "ticket updated" {
			t.Fatalf("metadata = client %q source %q delivery %q event %q", o.ClientID, o.Source, o.DeliveryID, o.Event)
		}
		if o.Connection != c || o.Kind != change.Ticket || o.ID != "4242" {
			t.Fatalf("identity = %q %q %q", o.Connection, o.Kind, o.ID)
		}
		if o.SyncedAt.Before(before) || o.SyncedAt.After(time.Now().Add(time.Minute)) {
			t.Fatalf("synced at %v is not now", o.SyncedAt)
		}
		sameFields(t, o.Fields, ch.Fields)
	})

	t.Run("duplicate and stale changes change nothing", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "1", 200, map[string]any{"summary": "v200"}), change.Applied)
		mustApply(t, s, ticket(c, "1", 200, map[string]any{"summary": "v200 again"}), change.Duplicate)
		mustApply(t, s, ticket(c, "1", 150, map[string]any{"summary": "v150"}), change.Stale)
		o := mustGet(t, s, c, change.Ticket, "1", "")
		if o.Version != 200 || o.Fields["summary"] != "v200" {
			t.Fatalf("state = version %d summary %v; want 200 v200", o.Version, o.Fields["summary"])
		}
	})

	t.Run("a partial snapshot merges and never erases", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "7", 10, map[string]any{"summary": "old", "details": "keep me", "agent_id": json.Number("3")}), change.Applied)
		mustApply(t, s, ticket(c, "7", 20, map[string]any{"summary": "new", "agent_id": nil}), change.Applied)
		o := mustGet(t, s, c, change.Ticket, "7", "")
		sameFields(t, o.Fields, map[string]any{"summary": "new", "details": "keep me", "agent_id": nil})
	})

	t.Run("values of every JSON type round-trip", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		fields := map[string]any{
			"str": "héllo ✓", "empty": "", "int": json.Number("123456789012"), "dec": json.Number("12.5"),
			"neg": json.Number("-3"), "yes": true, "no": false, "null": nil,
			"obj":  map[string]any{"a": json.Number("1"), "b": []any{"x", json.Number("2"), nil}},
			"list": []any{map[string]any{"id": json.Number("5"), "value": "v"}}, "emptylist": []any{}, "emptyobj": map[string]any{},
			"a.dotted name": "dots", "#hash": "hash", ":colon": "colon",
		}
		mustApply(t, s, ticket(c, "9", 1, fields), change.Applied)
		sameFields(t, mustGet(t, s, c, change.Ticket, "9", "").Fields, fields)
		mustApply(t, s, ticket(c, "9", 2, map[string]any{"a.dotted name": "dots 2", "#hash": nil}), change.Applied)
		fields["a.dotted name"], fields["#hash"] = "dots 2", nil
		sameFields(t, mustGet(t, s, c, change.Ticket, "9", "").Fields, fields)
	})

	t.Run("an event without a snapshot marks pending and keeps the data", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "5", 10, map[string]any{"summary": "real"}), change.Applied)
		mustApply(t, s, ticket(c, "5", 30, nil), change.Pending)
		mustApply(t, s, ticket(c, "5", 30, nil), change.Duplicate)
		mustApply(t, s, ticket(c, "5", 20, nil), change.Stale)
		mustApply(t, s, ticket(c, "5", 5, nil), change.Stale)
		o := mustGet(t, s, c, change.Ticket, "5", "")
		if o.Version != 10 || o.PendingVersion != 30 || !o.IsPending() || o.Fields["summary"] != "real" {
			t.Fatalf("state = version %d pending %d summary %v", o.Version, o.PendingVersion, o.Fields["summary"])
		}
		mustApply(t, s, ticket(c, "5", 30, map[string]any{"summary": "fetched"}), change.Applied)
		o = mustGet(t, s, c, change.Ticket, "5", "")
		if o.IsPending() || o.Version != 30 || o.Fields["summary"] != "fetched" {
			t.Fatalf("after data: version %d pending %d summary %v", o.Version, o.PendingVersion, o.Fields["summary"])
		}
	})

	t.Run("an event without a snapshot for a new object stores a pending marker", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "6", 40, nil), change.Pending)
		o := mustGet(t, s, c, change.Ticket, "6", "")
		if o.Version != 0 || o.PendingVersion != 40 || !o.IsPending() || len(o.Fields) != 0 || o.Deleted {
			t.Fatalf("marker = version %d pending %d fields %v deleted %v", o.Version, o.PendingVersion, o.Fields, o.Deleted)
		}
		mustApply(t, s, ticket(c, "6", 35, map[string]any{"summary": "older data"}), change.Applied)
		o = mustGet(t, s, c, change.Ticket, "6", "")
		if !o.IsPending() || o.Version != 35 || o.Fields["summary"] != "older data" {
			t.Fatalf("after older data: version %d pending %d", o.Version, o.PendingVersion)
		}
	})

	t.Run("a delete leaves a tombstone that late updates cannot resurrect", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "8", 10, map[string]any{"summary": "doomed"}), change.Applied)
		del := ticket(c, "8", 20, nil)
		del.Op = change.OpDelete
		mustApply(t, s, del, change.Applied)
		mustApply(t, s, del, change.Duplicate)
		mustApply(t, s, ticket(c, "8", 15, map[string]any{"summary": "late"}), change.Stale)
		o := mustGet(t, s, c, change.Ticket, "8", "")
		if !o.Deleted || o.Version != 20 || o.Fields["summary"] != "doomed" {
			t.Fatalf("tombstone = deleted %v version %d summary %v", o.Deleted, o.Version, o.Fields["summary"])
		}
		mustApply(t, s, ticket(c, "8", 25, map[string]any{"summary": "restored"}), change.Applied)
		if o = mustGet(t, s, c, change.Ticket, "8", ""); o.Deleted || o.Fields["summary"] != "restored" {
			t.Fatalf("after restore: deleted %v summary %v", o.Deleted, o.Fields["summary"])
		}
		fresh := ticket(c, "99", 5, nil)
		fresh.Op = change.OpDelete
		mustApply(t, s, fresh, change.Applied)
		if o = mustGet(t, s, c, change.Ticket, "99", ""); !o.Deleted || o.Version != 5 {
			t.Fatalf("tombstone of unseen object = deleted %v version %d", o.Deleted, o.Version)
		}
	})

	t.Run("notes are stored under their ticket", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		note := change.Change{Connection: c, Kind: change.Action, ID: "3", ParentID: "4242", Op: change.OpUpsert,
			Version: 10, Source: change.SourceWebhook, Fields: map[string]any{"note": "called the user"}}
		mustApply(t, s, note, change.Applied)
		o := mustGet(t, s, c, change.Action, "3", "4242")
		if o.ParentID != "4242" || o.Fields["note"] != "called the user" {
			t.Fatalf("note = parent %q fields %v", o.ParentID, o.Fields)
		}
		if _, ok, _ := s.Get(ctx, c, change.Action, "3", "1"); ok {
			t.Fatal("note found under another ticket")
		}
		if _, ok, _ := s.Get(ctx, c, change.Ticket, "3", ""); ok {
			t.Fatal("note found as a ticket")
		}
	})

	t.Run("connections and kinds are isolated", func(t *testing.T) {
		s, a, b := newStore(t), conn(t), conn(t)
		mustApply(t, s, ticket(a, "1", 10, map[string]any{"summary": "a"}), change.Applied)
		mustApply(t, s, ticket(b, "1", 5, map[string]any{"summary": "b"}), change.Applied)
		if o := mustGet(t, s, b, change.Ticket, "1", ""); o.Fields["summary"] != "b" {
			t.Fatalf("connection b sees %v", o.Fields["summary"])
		}
		asset := change.Change{Connection: a, Kind: change.Asset, ID: "1", Op: change.OpUpsert, Version: 1, Source: change.SourcePoll, Fields: map[string]any{"inventory_number": "A1"}}
		mustApply(t, s, asset, change.Applied)
		if o := mustGet(t, s, a, change.Ticket, "1", ""); o.Fields["summary"] != "a" {
			t.Fatalf("ticket overwritten by asset: %v", o.Fields)
		}
	})

	t.Run("concurrent writers leave the newest version", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		const n = 24
		versions := rand.Perm(n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, v := range versions {
			wg.Add(1)
			go func(v int64) {
				defer wg.Done()
				_, err := s.Apply(ctx, ticket(c, "42", v, map[string]any{"summary": fmt.Sprint("v", v), fmt.Sprint("f", v): true}))
				errs <- err
			}(int64(v + 1))
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		o := mustGet(t, s, c, change.Ticket, "42", "")
		if o.Version != n || o.Fields["summary"] != fmt.Sprint("v", n) || o.Fields[fmt.Sprint("f", n)] != true {
			t.Fatalf("after concurrent writes: version %d summary %v", o.Version, o.Fields["summary"])
		}
	})

	runPrevious(t, newStore, conn)
	runDeliveries(t, newStore, conn)
	runCursors(t, newStore, conn)
	runStoredIDs(t, newStore, conn)
	runChanged(t, newStore, conn)
	runRepairs(t, newStore, conn)
}

func ticket(conn, id string, version int64, fields map[string]any) change.Change {
	return change.Change{Connection: conn, Kind: change.Ticket, ID: id, Op: change.OpUpsert, Version: version,
		VersionFrom: "last_update", Source: change.SourceWebhook, Event: "ticket updated", Fields: fields}
}

func mustApply(t *testing.T, s Store, c change.Change, want change.Outcome) change.Result {
	t.Helper()
	got, err := s.Apply(context.Background(), c)
	if err != nil {
		t.Fatalf("Apply %s %s v%d: %v", c.Kind, c.ID, c.Version, err)
	}
	if got.Outcome != want {
		t.Fatalf("Apply %s %s v%d = %s, want %s", c.Kind, c.ID, c.Version, got.Outcome, want)
	}
	if want != change.Applied && got.Previous != nil {
		t.Fatalf("Apply %s %s v%d = %s with previous values %v; only applied changes have them", c.Kind, c.ID, c.Version, got.Outcome, got.Previous)
	}
	return got
}

func mustGet(t *testing.T, s Store, conn string, kind change.Kind, id, parent string) change.Object {
	t.Helper()
	o, ok, err := s.Get(context.Background(), conn, kind, id, parent)
	if err != nil || !ok {
		t.Fatalf("Get %s %s = ok %v, err %v", kind, id, ok, err)
	}
	return o
}

// sameFields compares field sets by their JSON form, so a number read back as json.Number
// or float64 compares by value as Halo wrote it.
func sameFields(t *testing.T, got, want map[string]any) {
	t.Helper()
	g, err1 := json.Marshal(got)
	w, err2 := json.Marshal(want)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal fields: %v %v", err1, err2)
	}
	if string(g) != string(w) {
		t.Fatalf("fields\n got %s\nwant %s", g, w)
	}
}
