package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// TestMigrationKeysWhatChangedBefore opens a file written before the by-change index: the
// migration gives every written row the key Changed lists by, from its synced_at, whatever
// its number of fractional digits; a pending marker gets none.
func TestMigrationKeysWhatChangedBefore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	db := openTestDB(t, path)
	s := db.Store()
	up := func(kind change.Kind, id, parent string, fields map[string]any) change.Change {
		return change.Change{Connection: "c", Kind: kind, ID: id, ParentID: parent, Op: change.OpUpsert, Version: 10,
			Source: change.SourcePoll, Fields: fields}
	}
	for _, c := range []change.Change{
		up(change.Ticket, "1", "", map[string]any{"x": 1}),
		up(change.Ticket, "2", "", map[string]any{"x": 2}),
		up(change.Ticket, "3", "", map[string]any{"x": 3}),
		up(change.Ticket, "4", "", nil), // pending only
		up(change.Action, "7", "1", map[string]any{"x": 7}),
	} {
		if _, err := s.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	synced := map[string]string{
		"1": "2026-09-25T06:45:00.5Z", "2": "2026-09-25T06:45:00Z", "3": "2026-09-25T06:45:00.123456789Z", "7": "2026-09-25T06:44:00.25Z",
	}
	for id, at := range synced {
		if _, err := db.write.ExecContext(ctx, `UPDATE objects SET synced_at = ? WHERE id = ?`, at, id); err != nil {
			t.Fatal(err)
		}
	}
	// The file as the previous schema left it.
	for _, q := range []string{"DROP INDEX objects_changed", "ALTER TABLE objects DROP COLUMN changed_sk", "PRAGMA user_version = 5"} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestDB(t, path).Store()

	tickets, err := s.Changed(ctx, "c", change.Ticket, "", change.MaxChangedPage)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range tickets {
		want, _ := time.Parse(time.RFC3339Nano, synced[o.ID])
		if !o.SyncedAt.Equal(want) {
			t.Errorf("ticket %s synced at %v, want %v", o.ID, o.SyncedAt, want)
		}
		got = append(got, o.ID)
	}
	if want := "[2 3 1]"; fmt.Sprint(got) != want {
		t.Errorf("tickets changed = %v, want %s (by synced_at, the pending marker left out)", got, want)
	}
	// The keys are the ones a new write computes: a position from one finds the rest.
	after := change.ChangedIndexSort(tickets[0].SyncedAt, change.Ticket, tickets[0].ID, "")
	rest, err := s.Changed(ctx, "c", change.Ticket, after, change.MaxChangedPage)
	if err != nil || len(rest) != 2 || rest[0].ID != "3" {
		t.Errorf("changed after %s = %d objects (%v), want 3 then 1", after, len(rest), err)
	}
	notes, err := s.Changed(ctx, "c", change.Action, change.ChangedFrom(time.Date(2026, 9, 25, 6, 44, 0, 250000000, time.UTC)), 10)
	if err != nil || len(notes) != 1 || notes[0].ParentID != "1" {
		t.Errorf("notes changed since their write = %+v (%v), want note 7 of ticket 1", notes, err)
	}
}
