package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

// runChanged checks the listing of what changed: every object of a kind that has been
// written, tombstones included and pending markers not, ascending by the time the store
// wrote it (change.ChangedIndexSort), from a position, a page at a time.
func runChanged(t *testing.T, newStore func(t *testing.T) Store, conn func(t *testing.T) string) {
	ctx := context.Background()
	up := func(c string, kind change.Kind, id, parent string, v int64, fields map[string]any) change.Change {
		return change.Change{Connection: c, Kind: kind, ID: id, ParentID: parent, Op: change.OpUpsert, Version: v,
			Source: change.SourcePoll, Fields: fields}
	}
	f := map[string]any{"x": "y"}

	t.Run("nothing written, nothing changed", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		if got := changed(t, s, c, change.Ticket, "", change.MaxChangedPage); len(got) != 0 {
			t.Fatalf("Changed on an empty connection = %q", got)
		}
	})

	t.Run("what changed is listed in write order, a rewrite moving last", func(t *testing.T) {
		s, a, b := newStore(t), conn(t), conn(t)
		for _, ch := range []change.Change{
			up(a, change.Ticket, "3", "", 10, f),
			up(a, change.Ticket, "1", "", 10, f),
			up(a, change.Ticket, "10", "", 10, nil), // a pending marker: nothing written yet
			up(a, change.Action, "7", "1", 10, f),
			up(a, change.Action, "7", "2", 10, f), // the same note id under another ticket
			up(a, change.Client, "12", "", 10, f),
			up(b, change.Ticket, "1", "", 10, f), // another connection
			up(a, change.Ticket, "2", "", 10, f),
		} {
			mustApplyAny(t, s, ch)
		}
		del := up(a, change.Ticket, "3", "", 20, nil)
		del.Op = change.OpDelete
		mustApplyAny(t, s, del)                                    // the tombstone moves 3 last
		mustApplyAny(t, s, up(a, change.Ticket, "1", "", 5, f))    // stale: 1 stays where it was
		mustApplyAny(t, s, up(a, change.Ticket, "2", "", 30, nil)) // pending: 2 stays too
		mustApplyAny(t, s, up(a, change.Ticket, "10", "", 5, nil)) // still only pending
		mustApplyAny(t, s, up(a, change.Action, "7", "1", 11, f))  // the note of ticket 1 moves last

		if got, want := changed(t, s, a, change.Ticket, "", change.MaxChangedPage), []string{"1", "2", "3 deleted"}; !equal(got, want) {
			t.Errorf("tickets changed = %q, want %q", got, want)
		}
		if got, want := changed(t, s, a, change.Action, "", change.MaxChangedPage), []string{"7 of 2", "7 of 1"}; !equal(got, want) {
			t.Errorf("notes changed = %q, want %q", got, want)
		}
		if got, want := changed(t, s, b, change.Ticket, "", change.MaxChangedPage), []string{"1"}; !equal(got, want) {
			t.Errorf("another connection's tickets = %q, want %q", got, want)
		}
		if got := changed(t, s, a, change.Contact, "", change.MaxChangedPage); len(got) != 0 {
			t.Errorf("contacts changed = %q, want none", got)
		}
	})

	t.Run("pages resume after the last object listed, and since a time", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		const n = 7
		for i := range n {
			mustApplyAny(t, s, up(c, change.Asset, fmt.Sprint(100+i), "", 10, f))
		}
		all := list(t, s, c, change.Asset, "", n+1)
		if len(all) != n {
			t.Fatalf("listed %d assets, want %d", len(all), n)
		}
		for i := 1; i < n; i++ {
			prev, cur := all[i-1], all[i]
			if prev.SyncedAt.After(cur.SyncedAt) || position(prev) >= position(cur) {
				t.Fatalf("not in write order: %s at %v before %s at %v", prev.ID, prev.SyncedAt, cur.ID, cur.SyncedAt)
			}
			if stored := mustGet(t, s, c, change.Asset, cur.ID, ""); !stored.SyncedAt.Equal(cur.SyncedAt) || stored.Version != cur.Version {
				t.Fatalf("listed %+v, stored %+v", cur, stored)
			}
		}
		var paged []string
		after := ""
		for range n {
			page := list(t, s, c, change.Asset, after, 3)
			if len(page) == 0 {
				break
			}
			for _, o := range page {
				paged = append(paged, o.ID)
			}
			after = position(page[len(page)-1])
		}
		if want := ids(all); !equal(paged, want) {
			t.Errorf("paged by 3 = %q, want %q", paged, want)
		}
		// Since the fourth object's write: it and those written after.
		since := change.ChangedFrom(all[3].SyncedAt)
		var want []string
		for _, o := range all {
			if !o.SyncedAt.Before(all[3].SyncedAt) {
				want = append(want, o.ID)
			}
		}
		if got := changed(t, s, c, change.Asset, since, n); !equal(got, want) {
			t.Errorf("changed since %s = %q, want %q", since, got, want)
		}
	})

	t.Run("listing with an unknown kind, a bad position or page size is refused", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		for _, tc := range []struct {
			kind  change.Kind
			after string
			limit int
		}{
			{"widget", "", 10},
			{change.Ticket, "yesterday", 10},
			{change.Ticket, "2026-09-25T06:45:00Z", 10}, // not the index's layout
			{change.Ticket, "", 0},
			{change.Ticket, "", change.MaxChangedPage + 1},
		} {
			if _, err := s.Changed(ctx, c, tc.kind, tc.after, tc.limit); !errors.Is(err, change.ErrInvalid) {
				t.Errorf("Changed(%q, %q, %d) = %v, want an error wrapping ErrInvalid", tc.kind, tc.after, tc.limit, err)
			}
		}
	})
}

func mustApplyAny(t *testing.T, s Store, c change.Change) {
	t.Helper()
	if _, err := s.Apply(context.Background(), c); err != nil {
		t.Fatalf("Apply %s %s v%d: %v", c.Kind, c.ID, c.Version, err)
	}
}

func list(t *testing.T, s Store, conn string, kind change.Kind, after string, limit int) []change.Object {
	t.Helper()
	os, err := s.Changed(context.Background(), conn, kind, after, limit)
	if err != nil {
		t.Fatalf("Changed(%s, %q, %d): %v", kind, after, limit, err)
	}
	if len(os) > limit {
		t.Fatalf("Changed(%s, %q, %d) listed %d", kind, after, limit, len(os))
	}
	for _, o := range os {
		if o.Connection != conn || o.Kind != kind {
			t.Fatalf("Changed(%s, %s) listed %s %s %s", conn, kind, o.Connection, o.Kind, o.ID)
		}
		if after != "" && position(o) <= after {
			t.Fatalf("Changed after %q listed %s at %q", after, o.ID, position(o))
		}
	}
	return os
}

// changed lists the objects as describeID names them.
func changed(t *testing.T, s Store, conn string, kind change.Kind, after string, limit int) []string {
	t.Helper()
	var out []string
	for _, o := range list(t, s, conn, kind, after, limit) {
		out = append(out, describeID(change.StoredID{ID: o.ID, ParentID: o.ParentID, Deleted: o.Deleted}))
	}
	return out
}

func position(o change.Object) string {
	return change.ChangedIndexSort(o.SyncedAt, o.Kind, o.ID, o.ParentID)
}

func ids(os []change.Object) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}

func equal(a, b []string) bool { return strings.Join(a, "|") == strings.Join(b, "|") }
