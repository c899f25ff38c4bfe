package localserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halotest/pollscenario"
	"github.com/halosync/halosync/internal/metrics"
)

// A delivery whose last_update lies in 2261 is stored at its receipt time, so the next
// real update of the ticket applies (docs/ARCHITECTURE.md, "Versions").
func TestServeClampsAFutureVersion(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig())
	body := sampleBody(t, "ingest-ticket-full.json")
	before := time.Now()
	s.deliverOK(t, editTicket(t, body, map[string]any{"id": 7001, "summary": "from 2261", "last_update": "2261-01-01T00:00:00"}))
	o := s.waitObject(t, "/connections/default/tickets/7001", nil)
	if o.Version < change.VersionOf(before) || o.Version > change.VersionOf(time.Now()) || o.Fields["summary"] != "from 2261" {
		t.Fatalf("stored at version %d (summary %v); want the receipt time", o.Version, o.Fields["summary"])
	}
	real := time.Now().UTC().Add(time.Second).Format("2006-01-02T15:04:05.000")
	s.deliverOK(t, editTicket(t, body, map[string]any{"id": 7001, "summary": "real update", "last_update": real}))
	s.waitObject(t, "/connections/default/tickets/7001", func(o change.Object) bool { return o.Fields["summary"] == "real update" })
	if n := countOf(t, s, metrics.VersionsClamped, "ticket"); n != 1 {
		t.Fatalf("VersionsClamped{ticket} = %d, want 1", n)
	}
}

// A ticket an older release stored at a version from a marker in 2261 is repaired by the
// next poll that reads it: Halo's object replaces it, at Halo's marker.
func TestServePollRepairsAVersionPinnedInTheFuture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newPollHarness(t, false)
	sc := pollscenario.New(t, h, pollscenario.Setup{Seed: 21})
	sc.Seed(1)
	sc.Start()
	h.Poll(t, true)
	h.Drain(t)

	halo := sc.Tenant.Objects(change.Ticket)[0]
	id, _ := change.CanonicalID(halo["id"])
	if _, err := h.s.store.Apply(ctx, change.Change{Connection: pollscenario.Conn, Kind: change.Ticket, ID: id, Op: change.OpUpsert,
		Version: change.VersionOf(time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC)), VersionFrom: "last_update", Source: change.SourceWebhook,
		Fields: map[string]any{"summary": "pinned", "last_update": "2261-01-01T00:00:00"}}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)
	halo = sc.Tenant.Upsert(change.Ticket, map[string]any{"id": halo["id"], "summary": "changed in Halo"})

	h.Poll(t, true)
	h.Drain(t)
	o, ok, err := h.s.store.Get(ctx, pollscenario.Conn, change.Ticket, id, "")
	marker, _, _ := change.ParseHaloTime(halo["last_update"].(string))
	if err != nil || !ok || o.Version != change.VersionOf(marker) || o.Fields["summary"] != "changed in Halo" {
		t.Fatalf("after the poll: version %d summary %v (%v, %v); want Halo's, at %d", o.Version, o.Fields["summary"], ok, err, change.VersionOf(marker))
	}
	if n := countOf(t, h.s, metrics.VersionsRepaired, "ticket"); n != 1 {
		t.Fatalf("VersionsRepaired{ticket} = %d, want 1", n)
	}
}

// countOf reads one counter of connection default or the scenario's from /status.
func countOf(t *testing.T, s *testServer, name, label string) int64 {
	t.Helper()
	var n int64
	for _, e := range s.status(t).Counters {
		if e.Name == name && e.Label == label {
			n += e.Value
		}
	}
	return n
}
