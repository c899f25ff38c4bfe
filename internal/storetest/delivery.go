package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// runPrevious holds stores to change.Result.Previous: the values the stored object had
// before an applied change, for the fields the change carries.
func runPrevious(t *testing.T, newStore func(t *testing.T) Store, conn func(t *testing.T) string) {
	t.Run("an applied change reports the previous values of the fields it carries", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		first := map[string]any{
			"summary": "old", "agent_id": json.Number("7"), "team_id": nil, "details": "not carried later",
			"obj": map[string]any{"a": json.Number("1"), "l": []any{"x", nil, json.Number("2.5")}}, "flag": true, "#odd.name": "o",
		}
		r := mustApply(t, s, ticket(c, "1", 10, first), change.Applied)
		wantPrevious(t, "a new object", r, nil)
		r = mustApply(t, s, ticket(c, "1", 20, map[string]any{
			"summary": "new", "agent_id": json.Number("11"), "team_id": json.Number("3"), "brand_new": "x",
			"obj": "flat now", "flag": true, "#odd.name": nil,
		}), change.Applied)
		// brand_new was absent: no key; team_id was null: a nil value; unchanged flag too.
		wantPrevious(t, "a merge", r, map[string]any{
			"summary": "old", "agent_id": json.Number("7"), "team_id": nil, "obj": first["obj"], "flag": true, "#odd.name": "o",
		})
		r = mustApply(t, s, ticket(c, "1", 30, map[string]any{"#odd.name": "back", "brand_new": "y"}), change.Applied)
		wantPrevious(t, "a field that was null, and one added by the last change", r, map[string]any{"#odd.name": nil, "brand_new": "x"})
	})

	t.Run("no previous values for new objects, pending markers, duplicates and stale changes", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		wantPrevious(t, "a new object", mustApply(t, s, ticket(c, "2", 10, map[string]any{"summary": "a"}), change.Applied), nil)
		mustApply(t, s, ticket(c, "2", 10, map[string]any{"summary": "b"}), change.Duplicate)
		mustApply(t, s, ticket(c, "2", 5, map[string]any{"summary": "c"}), change.Stale)
		mustApply(t, s, ticket(c, "2", 20, nil), change.Pending)
		mustApply(t, s, ticket(c, "2", 20, nil), change.Duplicate)
		// Only a pending marker is stored: the first snapshot creates the object's state.
		mustApply(t, s, ticket(c, "3", 20, nil), change.Pending)
		r := mustApply(t, s, ticket(c, "3", 20, map[string]any{"summary": "fetched"}), change.Applied)
		wantPrevious(t, "the first snapshot after a pending marker", r, nil)
		if !r.Created() {
			t.Fatal("Created() = false for the first snapshot after a pending marker")
		}
	})

	t.Run("deletes and changes without fields report what they carry", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "4", 10, map[string]any{"summary": "a", "status_id": json.Number("1")}), change.Applied)
		r := mustApply(t, s, ticket(c, "4", 15, map[string]any{}), change.Applied)
		wantPrevious(t, "an empty snapshot", r, map[string]any{})
		del := ticket(c, "4", 20, map[string]any{"status_id": json.Number("9")})
		del.Op = change.OpDelete
		wantPrevious(t, "a delete with fields", mustApply(t, s, del, change.Applied), map[string]any{"status_id": json.Number("1")})
		bare := ticket(c, "4", 25, nil)
		bare.Op = change.OpDelete
		wantPrevious(t, "a delete without fields", mustApply(t, s, bare, change.Applied), map[string]any{})
		r = mustApply(t, s, ticket(c, "4", 30, map[string]any{"summary": "revived", "status_id": json.Number("2")}), change.Applied)
		wantPrevious(t, "a revived tombstone", r, map[string]any{"summary": "a", "status_id": json.Number("9")})

		unseen := ticket(c, "5", 10, nil)
		unseen.Op = change.OpDelete
		if r = mustApply(t, s, unseen, change.Applied); !r.Created() {
			t.Fatalf("the tombstone of an unseen object: previous %v, want none", r.Previous)
		}
		r = mustApply(t, s, ticket(c, "5", 20, map[string]any{"summary": "x"}), change.Applied)
		wantPrevious(t, "a snapshot after an empty tombstone", r, map[string]any{})
	})

	t.Run("a wide snapshot reports previous values too", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "6", 10, map[string]any{"custom_field_007": "a", "custom_field_399": nil, "other": "o"}), change.Applied)
		wide := map[string]any{}
		for i := range 400 {
			wide[fmt.Sprintf("custom_field_%03d", i)] = fmt.Sprint("v", i)
		}
		r := mustApply(t, s, ticket(c, "6", 20, wide), change.Applied)
		wantPrevious(t, "a snapshot of 400 fields", r, map[string]any{"custom_field_007": "a", "custom_field_399": nil})
	})
}

// runDeliveries holds stores to the delivery record: RecordDelivery and Deliveries.
func runDeliveries(t *testing.T, newStore func(t *testing.T) Store, conn func(t *testing.T) string) {
	ctx := context.Background()
	zone := time.FixedZone("UTC+2", 2*60*60) // stores keep times in UTC

	t.Run("a delivery record round-trips with nested values", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		processed := time.Now().In(zone)
		d := change.Delivery{
			Connection: c, DeliveryID: "d-1", Kind: change.Ticket, ID: "42", Op: change.OpUpsert,
			Event: "ticket reassigned", Source: change.SourceWebhook, Endpoint: change.EndpointBackup, Outcome: change.Applied, Version: 1790318467523000000,
			Changed: map[string]change.FieldChange{
				"agent_id": {From: json.Number("7"), To: json.Number("11")},
				"team":     {From: "1st <Line> & co", To: nil},
				"customfields": {
					From: []any{map[string]any{"id": json.Number("1"), "value": "a"}},
					To:   []any{map[string]any{"id": json.Number("1"), "value": "b", "extra": []any{}}, nil},
				},
				"new_field": {To: map[string]any{"deep": []any{true, json.Number("1.5"), map[string]any{}}}, Added: true},
				"details":   {Elided: true},
				"a.b#c":     {From: "", To: false},
			},
			Summary:    "reassigned: agent_id 7 → 11, team \"1st <Line> & co\" → null; changed: a.b#c, customfields, details, new_field",
			ReceivedAt: processed.Add(-1500 * time.Millisecond), ProcessedAt: processed,
		}
		if err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		d.ReceivedAt, d.ProcessedAt = d.ReceivedAt.UTC(), d.ProcessedAt.UTC()
		wantDeliveries(t, s, c, "d-1", d)

		// Pending, with nothing changed and no time of receipt.
		p := change.Delivery{Connection: c, DeliveryID: "d-2", Kind: change.Asset, ID: "9", Op: change.OpUpsert,
			Source: change.SourceWebhook, Outcome: change.Pending, Version: 5, Summary: "pending", ProcessedAt: processed.UTC()}
		if err := s.RecordDelivery(ctx, p); err != nil {
			t.Fatal(err)
		}
		wantDeliveries(t, s, c, "d-2", p)
	})

	t.Run("a delivery lists every object it carried, per connection", func(t *testing.T) {
		s, a, b := newStore(t), conn(t), conn(t)
		now := time.Now().UTC()
		tk := record(a, "d-1", change.Ticket, "42", "", change.Applied, 20, now)
		note := record(a, "d-1", change.Action, "7", "42", change.Applied, 21, now)
		other := record(a, "d-2", change.Ticket, "42", "", change.Duplicate, 20, now)
		elsewhere := record(b, "d-1", change.Ticket, "42", "", change.Stale, 3, now)
		for _, d := range []change.Delivery{tk, note, other, elsewhere} {
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		wantDeliveries(t, s, a, "d-1", note, tk) // by sort key: action#7, ticket#42
		wantDeliveries(t, s, a, "d-2", other)
		wantDeliveries(t, s, b, "d-1", elsewhere)
		wantDeliveries(t, s, b, "d-2")
		wantDeliveries(t, s, conn(t), "d-1")
	})

	t.Run("a redelivery does not hide what the delivery did", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		now := time.Now().UTC()
		put := func(d change.Delivery) {
			t.Helper()
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		applied := record(c, "d-1", change.Ticket, "1", "", change.Applied, 10, now)
		put(applied)
		put(record(c, "d-1", change.Ticket, "1", "", change.Duplicate, 10, now.Add(time.Second)))
		put(record(c, "d-1", change.Ticket, "1", "", change.Stale, 10, now.Add(2*time.Second)))
		wantDeliveries(t, s, c, "d-1", applied)

		pending := record(c, "d-2", change.Ticket, "1", "", change.Pending, 30, now)
		put(pending)
		put(record(c, "d-2", change.Ticket, "1", "", change.Duplicate, 30, now.Add(time.Second)))
		wantDeliveries(t, s, c, "d-2", pending)

		// A duplicate of another version, and any other outcome, replace the record.
		dup := record(c, "d-1", change.Ticket, "1", "", change.Duplicate, 11, now.Add(3*time.Second))
		put(dup)
		wantDeliveries(t, s, c, "d-1", dup)
		filtered := record(c, "d-2", change.Ticket, "1", "", change.Filtered, 30, now.Add(time.Second))
		filtered.Reason = "status"
		put(filtered)
		wantDeliveries(t, s, c, "d-2", filtered)

		// A write whose answer was lost: the retry's record says applied, changes unknown,
		// where no record is kept, and never replaces one that knows what it changed.
		recovered := record(c, "d-4", change.Ticket, "1", "", change.Duplicate, 40, now).Recovered(change.Object{DeliveryID: "d-4", Version: 40})
		if recovered.Outcome != change.Applied || !recovered.ChangesUnknown {
			t.Fatalf("recovered record %+v", recovered)
		}
		put(recovered)
		wantDeliveries(t, s, c, "d-4", recovered)
		known := record(c, "d-5", change.Ticket, "1", "", change.Applied, 50, now)
		put(known)
		put(record(c, "d-5", change.Ticket, "1", "", change.Duplicate, 50, now.Add(time.Second)).Recovered(change.Object{DeliveryID: "d-5", Version: 50}))
		wantDeliveries(t, s, c, "d-5", known)

		// An expired record is replaced by anything.
		old := record(c, "d-3", change.Ticket, "1", "", change.Applied, 10, now.Add(-8*24*time.Hour))
		put(old)
		again := record(c, "d-3", change.Ticket, "1", "", change.Duplicate, 10, now)
		put(again)
		wantDeliveries(t, s, c, "d-3", again)
	})

	t.Run("delivery records expire after the retention", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		now := time.Now().UTC()
		kept := record(c, "d-1", change.Ticket, "1", "", change.Applied, 10, now.Add(-change.DeliveryRetention+time.Hour))
		gone := record(c, "d-1", change.Ticket, "2", "", change.Applied, 10, now.Add(-change.DeliveryRetention-time.Hour))
		for _, d := range []change.Delivery{kept, gone} {
			if err := s.RecordDelivery(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		wantDeliveries(t, s, c, "d-1", kept)
	})

	t.Run("a delivery record without its keys is refused", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		for _, d := range []change.Delivery{
			record(c, "", change.Ticket, "1", "", change.Applied, 1, time.Now()),
			record("", "d-1", change.Ticket, "1", "", change.Applied, 1, time.Now()),
			record(c, "d-1", change.Ticket, "", "", change.Applied, 1, time.Now()),
			record(c, "d-1", change.Ticket, "1", "", change.Applied, 1, time.Time{}),
		} {
			if err := s.RecordDelivery(ctx, d); !errors.Is(err, change.ErrInvalid) {
				t.Errorf("RecordDelivery(%+v) = %v, want change.ErrInvalid", d, err)
			}
		}
	})
}

func record(conn, delivery string, kind change.Kind, id, parent string, outcome change.Outcome, version int64, processed time.Time) change.Delivery {
	d := change.Delivery{Connection: conn, DeliveryID: delivery, Kind: kind, ID: id, ParentID: parent, Op: change.OpUpsert,
		Event: string(kind) + " updated", Source: change.SourceWebhook, Outcome: outcome, Version: version,
		ReceivedAt: processed.Add(-time.Second), ProcessedAt: processed}
	if processed.IsZero() {
		d.ReceivedAt = time.Time{}
	}
	d.Summary = d.Summarize()
	return d
}

// wantPrevious compares Result.Previous by its JSON form: a nil map (no previous state)
// is "null", a missing key differs from a null value, numbers compare as Halo wrote them.
func wantPrevious(t *testing.T, what string, r change.Result, want map[string]any) {
	t.Helper()
	g, err1 := json.Marshal(r.Previous)
	w, err2 := json.Marshal(want)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal previous: %v %v", err1, err2)
	}
	if string(g) != string(w) {
		t.Fatalf("%s: previous values\n got %s\nwant %s", what, g, w)
	}
}

// wantDeliveries reads a delivery's records and compares them, in order, by JSON form.
func wantDeliveries(t *testing.T, s Store, conn, deliveryID string, want ...change.Delivery) {
	t.Helper()
	got, err := s.Deliveries(context.Background(), conn, deliveryID)
	if err != nil {
		t.Fatalf("Deliveries(%s, %s): %v", conn, deliveryID, err)
	}
	if want == nil {
		want = []change.Delivery{}
	}
	if got == nil {
		got = []change.Delivery{}
	}
	g, err1 := json.Marshal(got)
	w, err2 := json.Marshal(want)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal deliveries: %v %v", err1, err2)
	}
	if string(g) != string(w) {
		t.Fatalf("Deliveries(%s, %s)\n got %s\nwant %s", conn, deliveryID, g, w)
	}
}
