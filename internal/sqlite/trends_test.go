package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// The trends survive a reopen, a saved minute replaces the stored one, and a save
// prunes the minutes older than its bound.
func TestTrendsSurviveReopenAndArePruned(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	db := openTestDB(t, path)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	minute := func(conn string, i int, deliveries int64) metrics.Minute {
		return metrics.Minute{Connection: conn, Start: t0.Add(time.Duration(i) * time.Minute), Deliveries: deliveries,
			Rejected: 1, Applied: deliveries, LatencyCount: deliveries, LatencySumMS: 40 * deliveries, LatencyMaxMS: 70}
	}
	var first []metrics.Minute
	for i := range 5 {
		first = append(first, minute("a", i, 2), minute("b", i, 3))
	}
	if err := db.SaveTrends(ctx, first, t0); err != nil {
		t.Fatal(err)
	}
	// Minute 4 of a counted on; the bound moves past minutes 0 and 1.
	if err := db.SaveTrends(ctx, []metrics.Minute{minute("a", 4, 9)}, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, path)
	got, err := db.LoadTrends(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := []metrics.Minute{minute("a", 2, 2), minute("a", 3, 2), minute("a", 4, 9), minute("b", 2, 3), minute("b", 3, 3), minute("b", 4, 3)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen and prune:\n got %v\nwant %v", got, want)
	}
	if got, _ := db.LoadTrends(ctx, t0.Add(4*time.Minute)); len(got) != 2 {
		t.Errorf("LoadTrends since minute 4: %v, want a's and b's minute 4", got)
	}
	var rows int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM status_minutes`).Scan(&rows); err != nil || rows != 6 {
		t.Errorf("status_minutes holds %d rows (%v), want 6", rows, err)
	}
}

func TestMarksSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	db := openTestDB(t, path)
	at := time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC)
	if err := db.SaveMarks(ctx, []Mark{{"a", "last_delivery", at.Add(-time.Hour)}, {"b", "last_delivery", at}}); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveMarks(ctx, []Mark{{"a", "last_delivery", at}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, path)
	got, err := db.LoadMarks(ctx)
	if want := fmt.Sprint([]Mark{{"a", "last_delivery", at}, {"b", "last_delivery", at}}); err != nil || fmt.Sprint(got) != want {
		t.Errorf("LoadMarks = %v, %v; want %s", got, err, want)
	}
}

// A timing's observations are kept beside its sum, so its mean is right after a reopen.
func TestStatusKeepsATimingsObservations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	db := openTestDB(t, path)
	lat := metrics.Entry{Metric: metrics.Metric{Name: metrics.SyncLatency, Connection: "a"}, Value: 300, Observations: 4}
	if err := db.SaveStatus(ctx, []metrics.Entry{lat}, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, path)
	counters, _, err := db.LoadStatus(ctx, 0)
	if err != nil || len(counters) != 1 || counters[0].Observations != 4 || counters[0].AvgMS != 75 {
		t.Errorf("LoadStatus = %+v, %v; want 300 ms over 4 observations, avg 75", counters, err)
	}
}

// CountObjects counts what each connection's copy holds per kind, notes included,
// tombstones not.
func TestCountObjects(t *testing.T) {
	db, s := newTestStore(t)
	ctx := context.Background()
	if got, err := s.CountObjects(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v, %v", got, err)
	}
	for i := range 3 {
		apply(t, s, upsert(change.Ticket, fmt.Sprint(i+1), 10, map[string]any{"summary": "x"}), change.Applied)
	}
	apply(t, s, upsert(change.Client, "7", 10, map[string]any{"name": "acme"}), change.Applied)
	note := upsert(change.Action, "100", 10, map[string]any{"note": "n"})
	note.ParentID = "1"
	apply(t, s, note, change.Applied)
	other := upsert(change.Asset, "9", 10, map[string]any{"inventory_number": "a"})
	other.Connection = "c2"
	apply(t, s, other, change.Applied)
	gone := change.Change{Connection: "c1", Kind: change.Ticket, ID: "3", Op: change.OpDelete, Version: 20, Source: change.SourcePoll}
	apply(t, s, gone, change.Applied)
	got, err := s.CountObjects(ctx)
	want := []ObjectCount{{"c1", change.Action, 1}, {"c1", change.Client, 1}, {"c1", change.Ticket, 2}, {"c2", change.Asset, 1}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("CountObjects = %v, %v; want %v", got, err, want)
	}
	var plan string
	rows, err := db.read.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT connection, kind, count(*) FROM objects INDEXED BY objects_kind
		WHERE deleted = 0 GROUP BY connection, kind ORDER BY connection, kind`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan += detail + "; "
	}
	if want := "COVERING INDEX objects_kind"; !strings.Contains(plan, want) {
		t.Errorf("the count's plan %q does not read %s only", plan, want)
	}
}

// PeekNewest reads a dead-letter queue's newest messages first, with their attributes,
// receiving nothing.
func TestPeekNewest(t *testing.T) {
	db, _ := newTestStore(t)
	ctx := context.Background()
	q := db.Queue("changes-dlq", QueueOptions{Visibility: time.Minute})
	for i := range 4 {
		m := message.Message{Body: []byte(fmt.Sprintf(`{"n":%d}`, i)), Attributes: map[string]string{message.AttrFailureReason: fmt.Sprint("r", i)}}
		if err := q.Send(ctx, []message.Message{m}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := q.PeekNewest(ctx, 2)
	if err != nil || len(got) != 2 || got[0].Attributes[message.AttrFailureReason] != "r3" || got[1].Attributes[message.AttrFailureReason] != "r2" {
		t.Fatalf("PeekNewest(2) = %+v, %v; want r3, r2", got, err)
	}
	if v, f, err := q.Stats(ctx); v != 4 || f != 0 || err != nil {
		t.Errorf("after peeking: %d visible, %d in flight (%v), want 4, 0", v, f, err)
	}
}
