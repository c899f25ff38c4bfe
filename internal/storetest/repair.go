package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

// runRepairs checks repairs (change.Change.Repairs): the one write that lowers a stored
// version, when the poller finds an object pinned at a version Halo's own marker is behind.
func runRepairs(t *testing.T, newStore func(t *testing.T) Store, conn func(t *testing.T) string) {
	ctx := context.Background()
	const pinned = 9_000_000 // a version from a marker far in the future, as old releases stored it

	repairOf := func(c, id string, version, repairs int64, fields map[string]any) change.Change {
		r := ticket(c, id, version, fields)
		r.Source, r.Event, r.VersionFrom, r.Repairs = change.SourcePoll, "", "last_update", repairs
		return r
	}

	t.Run("a repair lowers a pinned version and replaces the object", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "1", pinned, map[string]any{"summary": "bogus", "last_update": "2261-01-01T00:00:00", "webhook_only": "x"}), change.Applied)
		mustApply(t, s, ticket(c, "1", pinned+5, nil), change.Pending)
		halo := map[string]any{"summary": "real", "last_update": "2026-05-01T10:00:00", "client_id": json.Number("12")}
		res := mustApply(t, s, repairOf(c, "1", 100, pinned, halo), change.Applied)
		sameFields(t, res.Previous, map[string]any{"summary": "bogus", "last_update": "2261-01-01T00:00:00"})
		o := mustGet(t, s, c, change.Ticket, "1", "")
		if o.Version != 100 || o.IsPending() || o.PendingVersion != 0 || o.Deleted || o.ClientID != "12" || o.Source != change.SourcePoll {
			t.Fatalf("repaired = version %d pending %d deleted %v client %q source %q", o.Version, o.PendingVersion, o.Deleted, o.ClientID, o.Source)
		}
		sameFields(t, o.Fields, halo)
		mustApply(t, s, repairOf(c, "1", 100, pinned, halo), change.Duplicate)
		mustApply(t, s, ticket(c, "1", 90, map[string]any{"summary": "older"}), change.Stale)
		mustApply(t, s, ticket(c, "1", 150, map[string]any{"summary": "next real update"}), change.Applied)
		if o = mustGet(t, s, c, change.Ticket, "1", ""); o.Version != 150 || o.Fields["summary"] != "next real update" {
			t.Fatalf("after the next update: version %d summary %v", o.Version, o.Fields["summary"])
		}
	})

	t.Run("a repair applies only while the version the poller saw is stored", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "2", pinned, map[string]any{"summary": "pinned"}), change.Applied)
		mustApply(t, s, repairOf(c, "2", 100, pinned-1, map[string]any{"summary": "from an older read"}), change.Stale)
		if o := mustGet(t, s, c, change.Ticket, "2", ""); o.Version != pinned || o.Fields["summary"] != "pinned" {
			t.Fatalf("after a stale repair: version %d summary %v", o.Version, o.Fields["summary"])
		}
		mustApply(t, s, repairOf(c, "3", 100, pinned, map[string]any{"summary": "never stored"}), change.Stale)
		if _, ok, err := s.Get(ctx, c, change.Ticket, "3", ""); ok || err != nil {
			t.Fatalf("a repair of nothing stored = found %v, err %v; want nothing", ok, err)
		}
	})

	t.Run("a repair revives a pinned tombstone when Halo has the object", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		del := ticket(c, "4", pinned, map[string]any{"summary": "gone"})
		del.Op = change.OpDelete
		mustApply(t, s, del, change.Applied)
		mustApply(t, s, repairOf(c, "4", 100, pinned, map[string]any{"summary": "alive"}), change.Applied)
		if o := mustGet(t, s, c, change.Ticket, "4", ""); o.Deleted || o.Version != 100 || o.Fields["summary"] != "alive" {
			t.Fatalf("repaired tombstone = deleted %v version %d summary %v", o.Deleted, o.Version, o.Fields["summary"])
		}
	})

	t.Run("a repair at the stored version replaces fields the copy holds wrongly", func(t *testing.T) {
		s, c := newStore(t), conn(t)
		mustApply(t, s, ticket(c, "5", 100, map[string]any{"summary": "wrong", "webhook_only": "x"}), change.Applied)
		halo := map[string]any{"summary": "right", "last_update": "2026-05-01T10:00:00"}
		res := mustApply(t, s, repairOf(c, "5", 100, 100, halo), change.Applied)
		sameFields(t, res.Previous, map[string]any{"summary": "wrong"})
		o := mustGet(t, s, c, change.Ticket, "5", "")
		if o.Version != 100 || o.Deleted {
			t.Fatalf("repaired = version %d deleted %v; want 100, live", o.Version, o.Deleted)
		}
		sameFields(t, o.Fields, halo)
		mustApply(t, s, ticket(c, "5", 150, map[string]any{"summary": "next"}), change.Applied)
		mustApply(t, s, repairOf(c, "5", 100, 100, halo), change.Stale) // the object moved on: too late
		if o = mustGet(t, s, c, change.Ticket, "5", ""); o.Version != 150 || o.Fields["summary"] != "next" {
			t.Fatalf("after a late repair: version %d summary %v", o.Version, o.Fields["summary"])
		}
	})
}
