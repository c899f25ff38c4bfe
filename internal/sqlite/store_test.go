package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/storetest"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db")).Store()
		s.pageSize = 64 // so that the contract's listing needs several pages
		return s
	})
}

func newTestStore(t *testing.T) (*DB, *Store) {
	t.Helper()
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	return db, db.Store()
}

func apply(t *testing.T, s *Store, c change.Change, want change.Outcome) {
	t.Helper()
	got, err := s.Apply(context.Background(), c)
	if err != nil || got.Outcome != want {
		t.Fatalf("Apply %s %s v%d = %q, %v; want %q", c.Kind, c.ID, c.Version, got.Outcome, err, want)
	}
}

func upsert(kind change.Kind, id string, version int64, fields map[string]any) change.Change {
	return change.Change{Connection: "c1", Kind: kind, ID: id, Op: change.OpUpsert, Version: version,
		Source: change.SourcePoll, Fields: fields}
}

func TestStoreRejectsInvalidChanges(t *testing.T) {
	_, s := newTestStore(t)
	ctx := context.Background()
	bad := upsert(change.Ticket, "1", 0, map[string]any{"summary": "x"})
	if _, err := s.Apply(ctx, bad); !errors.Is(err, change.ErrInvalid) {
		t.Fatalf("version 0: err %v, want change.ErrInvalid", err)
	}
	nan := upsert(change.Ticket, "1", 1, map[string]any{"value": math.NaN()})
	if _, err := s.Apply(ctx, nan); !errors.Is(err, change.ErrInvalid) {
		t.Fatalf("NaN field: err %v, want change.ErrInvalid", err)
	}
	if _, ok, err := s.Get(ctx, "c1", change.Ticket, "1", ""); ok || err != nil {
		t.Fatalf("a rejected change left state: ok %v err %v", ok, err)
	}
}

func TestStoreKeepsNumbersExactlyAsWritten(t *testing.T) {
	_, s := newTestStore(t)
	fields := map[string]any{"a": json.Number("12.50"), "b": json.Number("1e3"), "c": json.Number("90071992547409931"),
		"nested": []any{json.Number("-0.0")}, "html": "<b>&</b>"}
	apply(t, s, upsert(change.Ticket, "1", 1, fields), change.Applied)
	o, ok, err := s.Get(context.Background(), "c1", change.Ticket, "1", "")
	if err != nil || !ok {
		t.Fatalf("Get: ok %v err %v", ok, err)
	}
	if !reflect.DeepEqual(o.Fields, fields) {
		t.Fatalf("fields = %#v\nwant %#v", o.Fields, fields)
	}
}

func TestStoreUsesTheDynamoDBKeys(t *testing.T) {
	db, s := newTestStore(t)
	apply(t, s, upsert(change.Ticket, "7", 1, map[string]any{"client_id": json.Number("12")}), change.Applied)
	note := upsert(change.Action, "3", 1, map[string]any{"note": "n"})
	note.ParentID = "7"
	apply(t, s, note, change.Applied)

	rows, err := db.read.Query(`SELECT pk, sk, COALESCE(gsi1pk, '-'), COALESCE(gsi1sk, '-') FROM objects ORDER BY pk, sk`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var pk, sk, g1, g2 string
		if err := rows.Scan(&pk, &sk, &g1, &g2); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", pk, sk, g1, g2))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"C#c1#ticket#7|ACTION#3|-|-",
		"C#c1#ticket#7|STATE|C#c1#CLIENT#12|ticket#7",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows = %q\nwant %q", got, want)
	}
}

func TestStoreListByClient(t *testing.T) {
	_, s := newTestStore(t)
	ctx := context.Background()
	apply(t, s, upsert(change.Client, "12", 1, map[string]any{"name": "Acme"}), change.Applied)
	apply(t, s, upsert(change.Ticket, "2", 1, map[string]any{"client_id": json.Number("12")}), change.Applied)
	apply(t, s, upsert(change.Ticket, "10", 1, map[string]any{"client_id": "12"}), change.Applied)
	apply(t, s, upsert(change.Asset, "5", 1, map[string]any{"client_id": json.Number("12.0")}), change.Applied)
	apply(t, s, upsert(change.Ticket, "3", 1, map[string]any{"client_id": json.Number("13")}), change.Applied)
	apply(t, s, upsert(change.Ticket, "4", 1, map[string]any{"client_id": json.Number("0")}), change.Applied)
	other := upsert(change.Ticket, "2", 1, map[string]any{"client_id": json.Number("12")})
	other.Connection = "c2"
	apply(t, s, other, change.Applied)
	del := upsert(change.Ticket, "10", 2, nil)
	del.Op = change.OpDelete
	apply(t, s, del, change.Applied)

	ids := func(client string) []string {
		t.Helper()
		objs, err := s.ListByClient(ctx, "c1", client)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range objs {
			out = append(out, fmt.Sprintf("%s#%s deleted=%v", o.Kind, o.ID, o.Deleted))
		}
		return out
	}
	want := []string{"asset#5 deleted=false", "client#12 deleted=false", "ticket#10 deleted=true", "ticket#2 deleted=false"}
	if got := ids("12"); !reflect.DeepEqual(got, want) {
		t.Fatalf("client 12 = %q\nwant %q", got, want)
	}

	// A ticket moved to another client leaves the old client's list.
	apply(t, s, upsert(change.Ticket, "2", 2, map[string]any{"client_id": json.Number("13")}), change.Applied)
	if got := ids("13"); !reflect.DeepEqual(got, []string{"ticket#2 deleted=false", "ticket#3 deleted=false"}) {
		t.Fatalf("client 13 = %q", got)
	}
	if got := ids("99"); len(got) != 0 {
		t.Fatalf("unknown client = %q", got)
	}
}

// benchTicketFields are the 20 fields of the benchmarks' ticket i.
func benchTicketFields(i int) map[string]any {
	return map[string]any{
		"id": json.Number(fmt.Sprint(i)), "summary": fmt.Sprintf("Printer %d on fire", i),
		"details":   "The printer on the second floor is on fire again. Please send someone with an extinguisher.",
		"client_id": json.Number("12"), "client_name": "Acme Ltd", "site_id": json.Number("3"), "site_name": "Head office",
		"user_id": json.Number("44"), "user_name": "Jane Doe", "agent_id": json.Number("7"), "team": "1st Line",
		"status_id": json.Number("2"), "priority_id": json.Number("3"), "tickettype_id": json.Number("1"),
		"category_1": "Hardware>Printer", "dateoccurred": "2025-01-02T10:11:12", "last_update": "2025-01-02T10:11:12.123",
		"sla_id": json.Number("1"), "estimate": json.Number("1.5"), "customfields": []any{map[string]any{"id": json.Number("1"), "value": "x"}},
	}
}

// BenchmarkStoreApply applies changes of 20 fields: "new" to an ever-growing set of
// tickets, "update" as newer versions of 1,000 stored tickets (read, merge, write).
func BenchmarkStoreApply(b *testing.B) {
	fields := benchTicketFields
	ctx := context.Background()
	b.Run("new", func(b *testing.B) {
		db := openTestDB(b, filepath.Join(b.TempDir(), "bench.db"))
		s := db.Store()
		i := 0
		for b.Loop() {
			i++
			if out, err := s.Apply(ctx, upsert(change.Ticket, fmt.Sprint(i), 1, fields(i))); err != nil || out.Outcome != change.Applied {
				b.Fatalf("Apply = %s, %v", out.Outcome, err)
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		db := openTestDB(b, filepath.Join(b.TempDir(), "bench.db"))
		s := db.Store()
		const tickets = benchTickets
		for i := range tickets {
			if _, err := s.Apply(ctx, upsert(change.Ticket, fmt.Sprint(i), 1, fields(i))); err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		for b.Loop() {
			i++
			c := upsert(change.Ticket, fmt.Sprint(i%tickets), int64(2+i/tickets), fields(i))
			if out, err := s.Apply(ctx, c); err != nil || out.Outcome != change.Applied {
				b.Fatalf("Apply = %s, %v", out.Outcome, err)
			}
		}
	})
	// The same from 64 goroutines at once, as the local server's worker pool writes: the
	// writer commits what is waiting in one transaction.
	for _, prefill := range []bool{false, true} {
		name := map[bool]string{false: "new", true: "update"}[prefill] + "-64-writers"
		b.Run(name, func(b *testing.B) {
			s := openTestDB(b, filepath.Join(b.TempDir(), "bench.db")).Store()
			if prefill {
				for i := range benchTickets {
					if _, err := s.Apply(ctx, upsert(change.Ticket, fmt.Sprint(i), 1, fields(i))); err != nil {
						b.Fatal(err)
					}
				}
			}
			parallelWriters(b, prefill, func(id int, version int64) error {
				_, err := s.Apply(ctx, upsert(change.Ticket, fmt.Sprint(id), version, fields(id)))
				return err
			})
		})
	}
}

// benchTickets is how many tickets the update benchmarks write newer versions of.
const benchTickets = 1000

// parallelWriters runs write from 64 goroutines (on 2 cores; 32 per core elsewhere), each
// call a new ticket, or with update a newer version of one of benchTickets stored ones.
// Consecutive versions of a ticket are benchTickets calls apart, so they do not overtake
// each other.
func parallelWriters(b *testing.B, update bool, write func(id int, version int64) error) {
	var n atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			id, version := i, int64(1)
			if update {
				id, version = i%benchTickets, int64(2+i/benchTickets)
			}
			if err := write(id, version); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestDeliveryRecordKeys(t *testing.T) {
	db, s := newTestStore(t)
	now := time.Now()
	for _, d := range []change.Delivery{
		{Connection: "c1", DeliveryID: "d-1", Kind: change.Ticket, ID: "42", Outcome: change.Applied, Version: 3, ProcessedAt: now},
		{Connection: "c1", DeliveryID: "d-1", Kind: change.Action, ID: "7", ParentID: "42", Outcome: change.Applied, Version: 4, ProcessedAt: now},
	} {
		if err := s.RecordDelivery(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.read.Query(`SELECT pk, sk, outcome, version, expires_at FROM deliveries ORDER BY pk, sk`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var pk, sk, outcome string
		var version, expires int64
		if err := rows.Scan(&pk, &sk, &outcome, &version, &expires); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%s|%s|%d|%v", pk, sk, outcome, version, expires == now.Add(change.DeliveryRetention).Unix()))
	}
	want := []string{"C#c1#DELIVERY#d-1|action#7|applied|4|true", "C#c1#DELIVERY#d-1|ticket#42|applied|3|true"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows = %q\nwant %q", got, want)
	}
}

// TestExpiredDeliveriesAreDeleted: the first write after opening and every
// expiredCleanupEvery-th write after it delete the expired records.
func TestExpiredDeliveriesAreDeleted(t *testing.T) {
	db, s := newTestStore(t)
	ctx := context.Background()
	record := func(id string, processed time.Time) {
		t.Helper()
		d := change.Delivery{Connection: "c1", DeliveryID: "d-" + id, Kind: change.Ticket, ID: id, Outcome: change.Applied, Version: 1, ProcessedAt: processed}
		if err := s.RecordDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	rows := func() (n int) {
		t.Helper()
		if err := db.read.QueryRow(`SELECT count(*) FROM deliveries`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	record("old", time.Now().Add(-change.DeliveryRetention-time.Minute)) // write 1 cleans first, then inserts
	for i := range expiredCleanupEvery - 1 {                             // writes 2 to expiredCleanupEvery
		record(fmt.Sprint(i), time.Now())
	}
	if n := rows(); n != expiredCleanupEvery {
		t.Fatalf("%d rows before the cleanup, want %d", n, expiredCleanupEvery)
	}
	if got, err := s.Deliveries(ctx, "c1", "d-old"); err != nil || len(got) != 0 {
		t.Fatalf("an expired record is read: %v, %v", got, err)
	}
	record("next", time.Now()) // the cleanup write
	if n := rows(); n != expiredCleanupEvery {
		t.Fatalf("%d rows after the cleanup, want %d (the expired one gone, one added)", n, expiredCleanupEvery)
	}
}

// BenchmarkRecordDelivery writes delivery records of a reassigned ticket: the worker's
// second write per webhook change.
func BenchmarkRecordDelivery(b *testing.B) {
	db := openTestDB(b, filepath.Join(b.TempDir(), "bench.db"))
	s := db.Store()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		d := change.Delivery{Connection: "c1", DeliveryID: fmt.Sprint("d-", i), Kind: change.Ticket, ID: fmt.Sprint(i % 1000),
			Op: change.OpUpsert, Event: "ticket reassigned", Source: change.SourceWebhook, Outcome: change.Applied, Version: int64(i),
			Changed: map[string]change.FieldChange{
				"agent_id": {From: json.Number("7"), To: json.Number("11")}, "team_id": {From: json.Number("2"), To: json.Number("3")},
				"last_update": {From: "2025-01-02T10:11:12.123", To: "2025-01-02T10:12:12.123"},
			},
			Summary: "reassigned: agent_id 7 → 11, team_id 2 → 3", ReceivedAt: time.Now(), ProcessedAt: time.Now()}
		if err := s.RecordDelivery(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStoredIDsPages(t *testing.T) {
	for _, n := range []int{0, 6, 7, 28, 30} {
		t.Run(fmt.Sprint(n, " ids"), func(t *testing.T) {
			_, s := newTestStore(t)
			s.pageSize = 7
			for i := range n {
				apply(t, s, upsert(change.Ticket, fmt.Sprint(i), 1, map[string]any{"n": "x"}), change.Applied)
			}
			var sizes []int
			total := 0
			err := s.StoredIDs(context.Background(), "c1", change.Ticket, func(ids []change.StoredID) error {
				sizes = append(sizes, len(ids))
				total += len(ids)
				// The listing holds no read open while the callback writes (the reconcile
				// enqueues into the same database).
				apply(t, s, upsert(change.Client, fmt.Sprint(len(sizes)), 1, map[string]any{"n": "x"}), change.Applied)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var want []int
			for left := n; left > 0; left -= 7 {
				want = append(want, min(7, left))
			}
			if total != n || fmt.Sprint(sizes) != fmt.Sprint(want) {
				t.Fatalf("pages %v (%d ids), want %v", sizes, total, want)
			}
		})
	}
}

func TestCursorRows(t *testing.T) {
	db, s := newTestStore(t)
	ctx := context.Background()
	before := time.Now().Add(-time.Second)
	if err := s.SaveCursor(ctx, "c1", "ticket", []byte(`{"a": 1}`)); err != nil {
		t.Fatal(err)
	}
	var pk, sk, doc, updated string
	if err := db.read.QueryRowContext(ctx, `SELECT pk, sk, doc, updated_at FROM cursors`).Scan(&pk, &sk, &doc, &updated); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, updated)
	if pk != "C#c1#CURSOR" || sk != "ticket" || doc != `{"a": 1}` || err != nil || at.Before(before) || at.Location() != time.UTC {
		t.Fatalf("row = %q %q %q %q (%v)", pk, sk, doc, updated, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCursor(ctx, "c1", "ticket", []byte(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("SaveCursor after Close = %v", err)
	}
	if _, _, err := s.LoadCursor(ctx, "c1", "ticket"); !errors.Is(err, ErrClosed) {
		t.Errorf("LoadCursor after Close = %v", err)
	}
	if err := s.StoredIDs(ctx, "c1", change.Ticket, func([]change.StoredID) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("StoredIDs after Close = %v", err)
	}
}
