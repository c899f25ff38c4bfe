package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// runCursors holds stores to the poller's cursor port: one opaque JSON document per
// connection and name (item C#<conn>#CURSOR, <name>), kept byte for byte, replaced by a
// plain put.
func runCursors(t *testing.T, newStore func(t *testing.T) Store, conn func(t *testing.T) string) {
	ctx := context.Background()

	t.Run("a missing cursor is not found", func(t *testing.T) {
		s := newStore(t)
		doc, ok, err := s.LoadCursor(ctx, conn(t), "ticket")
		if err != nil || ok || doc != nil {
			t.Fatalf("LoadCursor of nothing saved = %q, %v, %v; want nil, false, nil", doc, ok, err)
		}
	})

	t.Run("a cursor round-trips byte for byte", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		// Key order, spacing, escapes and non-ASCII text are the poller's: none may change.
		doc := []byte(`{"watermark":"2026-11-27T10:00:00.123456789Z", "last_run" : "2026-11-27T10:02:00Z","backfilled":true,` +
			`"n":12.50,"note":"h\u00e9llo ✓ <&>","list":[1,null,{"z":1,"a":2}]}`)
		saved := bytes.Clone(doc)
		mustSaveCursor(t, s, c, "ticket", saved)
		saved[2] = 'X' // the store kept its own copy
		got := mustLoadCursor(t, s, c, "ticket")
		if !bytes.Equal(got, doc) {
			t.Fatalf("LoadCursor =\n %s\nwant\n %s", got, doc)
		}
		got[2] = 'Y' // and hands out a copy
		if again := mustLoadCursor(t, s, c, "ticket"); !bytes.Equal(again, doc) {
			t.Fatalf("LoadCursor after changing the returned bytes = %s", again)
		}
	})

	t.Run("any JSON value and a large document are kept", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		for i, doc := range []string{`"just a string"`, `42`, `[]`, `null`, `{}`, ` {"padded": true} `} {
			name := fmt.Sprint("doc-", i)
			mustSaveCursor(t, s, c, name, []byte(doc))
			if got := mustLoadCursor(t, s, c, name); string(got) != doc {
				t.Fatalf("cursor %s = %q, want %q", name, got, doc)
			}
		}
		big, err := json.Marshal(map[string]any{"pages": strings.Repeat("0123456789", 10_000)})
		if err != nil {
			t.Fatal(err)
		}
		mustSaveCursor(t, s, c, "big", big)
		if got := mustLoadCursor(t, s, c, "big"); !bytes.Equal(got, big) {
			t.Fatalf("a %d-byte cursor came back as %d bytes", len(big), len(got))
		}
	})

	t.Run("saving again replaces the cursor", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustSaveCursor(t, s, c, "client", []byte(`{"watermark":"2026-01-01T00:00:00Z","next_page":7,"backfill_started":"2026-01-01T00:00:00Z"}`))
		mustSaveCursor(t, s, c, "client", []byte(`{"backfilled":true}`))
		if got := mustLoadCursor(t, s, c, "client"); string(got) != `{"backfilled":true}` {
			t.Fatalf("after overwrite: %s", got)
		}
		// A plain put: an older document written later still wins (the poller of one
		// connection runs alone, so last write is the newest).
		mustSaveCursor(t, s, c, "client", []byte(`{"backfilled":false}`))
		if got := mustLoadCursor(t, s, c, "client"); string(got) != `{"backfilled":false}` {
			t.Fatalf("after second overwrite: %s", got)
		}
	})

	t.Run("cursors are isolated by connection and name", func(t *testing.T) {
		s, a, b := newStore(t), conn(t), conn(t)
		docs := map[[2]string]string{
			{a, "ticket"}:   `{"who":"a ticket"}`,
			{a, "tickets"}:  `{"who":"a tickets"}`,
			{a, "client"}:   `{"who":"a client"}`,
			{a, "schedule"}: `{"who":"a schedule"}`,
			{b, "ticket"}:   `{"who":"b ticket"}`,
		}
		for k, doc := range docs {
			mustSaveCursor(t, s, k[0], k[1], []byte(doc))
		}
		for k, doc := range docs {
			if got := mustLoadCursor(t, s, k[0], k[1]); string(got) != doc {
				t.Errorf("cursor %s of %s = %s, want %s", k[1], k[0], got, doc)
			}
		}
		if _, ok, err := s.LoadCursor(ctx, b, "client"); ok || err != nil {
			t.Errorf("connection b sees a client cursor: %v, %v", ok, err)
		}
		if _, ok, err := s.LoadCursor(ctx, a, "tick"); ok || err != nil {
			t.Errorf("a prefix of a name finds a cursor: %v, %v", ok, err)
		}
		// Cursors are no objects, and objects do not disturb cursors.
		mustApply(t, s, ticket(a, "ticket", 10, map[string]any{"summary": "s"}), change.Applied)
		if got := mustLoadCursor(t, s, a, "ticket"); string(got) != docs[[2]string{a, "ticket"}] {
			t.Errorf("cursor after an object write = %s", got)
		}
		ids := collect(t, s, a, change.Ticket)
		if len(ids) != 1 || ids[0].ID != "ticket" {
			t.Errorf("StoredIDs(ticket) = %v; want only the ticket object", ids)
		}
	})

	t.Run("invalid cursors are refused", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		for _, tc := range []struct {
			conn, name, doc string
		}{
			{"", "ticket", `{}`}, {c, "", `{}`}, {c, "ticket", ``}, {c, "ticket", `{"open":`}, {c, "ticket", "\"\xff\""},
		} {
			if err := s.SaveCursor(ctx, tc.conn, tc.name, []byte(tc.doc)); !errors.Is(err, change.ErrInvalid) {
				t.Errorf("SaveCursor(%q, %q, %q) = %v; want change.ErrInvalid", tc.conn, tc.name, tc.doc, err)
			}
		}
		if _, ok, err := s.LoadCursor(ctx, c, "ticket"); ok || err != nil {
			t.Errorf("a refused cursor was stored: %v, %v", ok, err)
		}
		if _, _, err := s.LoadCursor(ctx, c, ""); !errors.Is(err, change.ErrInvalid) {
			t.Errorf("LoadCursor with an empty name = %v; want change.ErrInvalid", err)
		}
	})
}

// runStoredIDs holds stores to the reconcile's listing: every object of a kind stored in a
// connection, tombstones marked, notes with their tickets, page by page.
func runStoredIDs(t *testing.T, newStore func(t *testing.T) Store, conn func(t *testing.T) string) {
	ctx := context.Background()

	t.Run("no stored ids, no pages", func(t *testing.T) {
		s := newStore(t)
		calls := 0
		err := s.StoredIDs(ctx, conn(t), change.Ticket, func([]change.StoredID) error { calls++; return nil })
		if err != nil || calls != 0 {
			t.Fatalf("StoredIDs of an empty connection = %d pages, %v", calls, err)
		}
	})

	t.Run("every kind lists its ids, tombstones marked, notes with their tickets", func(t *testing.T) {
		s, a, b := newStore(t), conn(t), conn(t)
		up := func(c string, kind change.Kind, id, parent string, v int64, fields map[string]any) change.Change {
			return change.Change{Connection: c, Kind: kind, ID: id, ParentID: parent, Op: change.OpUpsert, Version: v,
				Source: change.SourcePoll, Fields: fields}
		}
		del := func(ch change.Change) change.Change { ch.Op = change.OpDelete; return ch }
		f := map[string]any{"x": "y"}
		for _, ch := range []change.Change{
			up(a, change.Ticket, "1", "", 10, f),
			up(a, change.Ticket, "2", "", 10, f),
			del(up(a, change.Ticket, "3", "", 20, nil)), // a tombstone of an object never seen
			up(a, change.Ticket, "4", "", 10, f),
			del(up(a, change.Ticket, "4", "", 20, nil)), // a tombstone
			up(a, change.Ticket, "5", "", 10, f),
			del(up(a, change.Ticket, "5", "", 20, nil)),
			up(a, change.Ticket, "5", "", 30, f),       // restored
			up(a, change.Ticket, "10", "", 10, nil),    // a pending marker only
			up(a, change.Action, "7", "1", 10, f),      // notes of ticket 1
			up(a, change.Action, "8", "1", 10, f),      //
			up(a, change.Action, "7", "2", 10, f),      // the same note id under another ticket
			del(up(a, change.Action, "9", "2", 10, f)), // a deleted note
			up(a, change.Client, "12", "", 10, f),
			up(a, change.Contact, "301", "", 10, map[string]any{"client_id": json.Number("12")}),
			up(a, change.Asset, "900", "", 10, map[string]any{"client_id": json.Number("12")}),
			del(up(a, change.Asset, "901", "", 10, nil)),
			up(b, change.Ticket, "1", "", 10, f), // another connection, same ids
			up(b, change.Ticket, "99", "", 10, f),
			up(b, change.Action, "7", "1", 10, f),
			up(b, change.Client, "13", "", 10, f),
		} {
			if _, err := s.Apply(ctx, ch); err != nil {
				t.Fatalf("Apply %+v: %v", ch, err)
			}
		}
		// Neither delivery records nor cursors are objects.
		if err := s.RecordDelivery(ctx, change.Delivery{Connection: a, DeliveryID: "d1", Kind: change.Ticket, ID: "77", Op: change.OpUpsert,
			Source: change.SourceWebhook, Outcome: change.Applied, Version: 5, ProcessedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		mustSaveCursor(t, s, a, "ticket", []byte(`{}`))

		want := map[string]map[change.Kind][]string{
			a: {
				change.Ticket:  {"1", "10", "2", "3 deleted", "4 deleted", "5"},
				change.Action:  {"7 of 1", "7 of 2", "8 of 1", "9 of 2 deleted"},
				change.Client:  {"12"},
				change.Contact: {"301"},
				change.Asset:   {"900", "901 deleted"},
			},
			b: {
				change.Ticket: {"1", "99"},
				change.Action: {"7 of 1"},
				change.Client: {"13"},
			},
		}
		for _, c := range []string{a, b} {
			for _, k := range change.Kinds() {
				got := describeIDs(collect(t, s, c, k.Kind))
				if w := want[c][k.Kind]; fmt.Sprint(got) != fmt.Sprint(w) {
					who := "a"
					if c == b {
						who = "b"
					}
					t.Errorf("StoredIDs(%s, %s) = %q, want %q", who, k.Kind, got, w)
				}
			}
		}
	})

	t.Run("stored ids come complete over many pages", func(t *testing.T) {
		s, c, other := newStore(t), conn(t), conn(t)
		const tickets, notes = 260, 90
		var changes []change.Change
		want := map[string]bool{}
		for i := range tickets {
			ch := ticket(c, fmt.Sprint(i+1), 10, map[string]any{"n": json.Number(fmt.Sprint(i))})
			if i%10 == 3 {
				ch.Op = change.OpDelete
			}
			changes = append(changes, ch)
			want[describeID(change.StoredID{ID: ch.ID, Deleted: ch.Op == change.OpDelete})] = true
		}
		wantNotes := map[string]bool{}
		for i := range notes {
			ch := change.Change{Connection: c, Kind: change.Action, ID: fmt.Sprint(1000 + i), ParentID: fmt.Sprint(i%7 + 1),
				Op: change.OpUpsert, Version: 10, Source: change.SourcePoll, Fields: map[string]any{"note": "n"}}
			changes = append(changes, ch)
			wantNotes[describeID(change.StoredID{ID: ch.ID, ParentID: ch.ParentID})] = true
		}
		changes = append(changes, ticket(other, "1", 10, map[string]any{"n": "other"}))
		applyAll(t, s, changes)

		for _, tc := range []struct {
			kind change.Kind
			want map[string]bool
		}{{change.Ticket, want}, {change.Action, wantNotes}} {
			pages, seen := 0, map[string]bool{}
			err := s.StoredIDs(ctx, c, tc.kind, func(ids []change.StoredID) error {
				pages++
				if len(ids) == 0 {
					t.Errorf("page %d is empty", pages)
				}
				for _, id := range ids {
					d := describeID(id)
					if seen[d] {
						t.Errorf("%s listed twice", d)
					}
					seen[d] = true
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(seen) != len(tc.want) {
				t.Errorf("StoredIDs(%s) listed %d ids in %d pages, want %d", tc.kind, len(seen), pages, len(tc.want))
			}
			for d := range tc.want {
				if !seen[d] {
					t.Errorf("StoredIDs(%s) misses %s", tc.kind, d)
				}
			}
			t.Logf("%s: %d ids in %d pages", tc.kind, len(seen), pages)
		}
	})

	t.Run("an error from the callback stops the listing", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		var changes []change.Change
		for i := range 3 {
			changes = append(changes, ticket(c, fmt.Sprint(i), 10, map[string]any{"n": "x"}))
		}
		applyAll(t, s, changes)
		stop := errors.New("stop")
		calls := 0
		err := s.StoredIDs(ctx, c, change.Ticket, func([]change.StoredID) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("StoredIDs with a failing callback = %v after %d calls; want the callback's error after 1", err, calls)
		}
	})

	t.Run("listing an unknown kind is refused", func(t *testing.T) {
		s := newStore(t)
		err := s.StoredIDs(ctx, conn(t), "widget", func([]change.StoredID) error { return nil })
		if !errors.Is(err, change.ErrInvalid) {
			t.Fatalf("StoredIDs(widget) = %v; want change.ErrInvalid", err)
		}
	})
}

func mustSaveCursor(t *testing.T, s Store, conn, name string, doc []byte) {
	t.Helper()
	if err := s.SaveCursor(context.Background(), conn, name, doc); err != nil {
		t.Fatalf("SaveCursor %s %s: %v", conn, name, err)
	}
}

func mustLoadCursor(t *testing.T, s Store, conn, name string) []byte {
	t.Helper()
	doc, ok, err := s.LoadCursor(context.Background(), conn, name)
	if err != nil || !ok {
		t.Fatalf("LoadCursor %s %s = ok %v, err %v", conn, name, ok, err)
	}
	return doc
}

// collect lists every stored id of a kind.
func collect(t *testing.T, s Store, conn string, kind change.Kind) []change.StoredID {
	t.Helper()
	var out []change.StoredID
	err := s.StoredIDs(context.Background(), conn, kind, func(ids []change.StoredID) error {
		out = append(out, ids...)
		return nil
	})
	if err != nil {
		t.Fatalf("StoredIDs %s %s: %v", conn, kind, err)
	}
	return out
}

// describeIDs is ids as sorted text ("7 of 1 deleted"), to compare without an order.
func describeIDs(ids []change.StoredID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, describeID(id))
	}
	sort.Strings(out)
	return out
}

func describeID(id change.StoredID) string {
	s := id.ID
	if id.ParentID != "" {
		s += " of " + id.ParentID
	}
	if id.Deleted {
		s += " deleted"
	}
	return s
}

// applyAll applies changes with a few writers at once, each expected to apply.
func applyAll(t *testing.T, s Store, changes []change.Change) {
	t.Helper()
	const writers = 8
	work := make(chan change.Change)
	errs := make(chan error, len(changes))
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range work {
				r, err := s.Apply(context.Background(), ch)
				if err == nil && r.Outcome != change.Applied {
					err = fmt.Errorf("%s %s = %s, want applied", ch.Kind, ch.ID, r.Outcome)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for _, ch := range changes {
		work <- ch
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
