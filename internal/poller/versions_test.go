package poller_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/storetest"
)

// tickets is a Halo holding tickets only: the listing and the read of one may differ, as
// when Halo changes an object between the two.
type tickets struct {
	listed map[string]map[string]any
	read   map[string]map[string]any // what Read answers; listed when nil
	gets   int
}

func (h *tickets) List(_ context.Context, kind change.Kind, q haloapi.ListQuery, fn func([]map[string]any) error) error {
	if kind != change.Ticket || q.Deleted || q.IDOnly || q.ClosedOnly {
		return nil // every ticket is listed as open
	}
	var page []map[string]any
	for _, o := range h.listed {
		page = append(page, o)
	}
	return fn(page)
}

func (h *tickets) Read(_ context.Context, kind change.Kind, id, _ string) (map[string]any, error) {
	h.gets++
	src := h.read
	if src == nil {
		src = h.listed
	}
	if o, ok := src[id]; ok && kind == change.Ticket {
		return o, nil
	}
	return nil, haloapi.ErrNotFound
}

// applying is the queue and the worker in one: what is sent is applied to the store.
type applying struct {
	store *storetest.Memory
	sent  []change.Change
}

func (q *applying) Send(ctx context.Context, msgs []message.Message) error {
	for _, m := range msgs {
		env, err := message.Decode(m.Body)
		if err != nil {
			return err
		}
		q.sent = append(q.sent, env.Change)
		if _, err := q.store.Apply(ctx, env.Change); err != nil {
			return err
		}
	}
	return nil
}

var (
	readTime = time.Date(2026, 9, 25, 8, 0, 0, 0, time.UTC)
	pinnedAt = change.VersionOf(time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC))
)

func versionsPoller(halo *tickets, store *storetest.Memory, q *applying, counts *metrics.Memory) *poller.Poller {
	return poller.New("default", halo, q, store, &cursorsFake{m: map[string][]byte{}}, counts, slog.New(slog.DiscardHandler),
		poller.Options{Now: func() time.Time { return readTime }})
}

// pin stores ticket 1 at a version, as a webhook would, or as old releases could from a
// marker in 2261.
func pin(t *testing.T, store *storetest.Memory, version int64, fields map[string]any) {
	t.Helper()
	if _, err := store.Apply(context.Background(), change.Change{Connection: "default", Kind: change.Ticket, ID: "1",
		Op: change.OpUpsert, Version: version, VersionFrom: "last_update", Source: change.SourceWebhook, Fields: fields}); err != nil {
		t.Fatal(err)
	}
}

func TestPollRepairsAVersionPinnedInTheFuture(t *testing.T) {
	ctx := context.Background()
	real := map[string]any{"id": "1", "summary": "real", "last_update": "2026-09-25T07:00:00"}
	halo := &tickets{listed: map[string]map[string]any{"1": real}}
	store, counts := storetest.NewMemory(), metrics.NewMemory()
	q := &applying{store: store}
	pin(t, store, pinnedAt, map[string]any{"id": "1", "summary": "bogus", "last_update": "2261-01-01T00:00:00"})

	if _, err := versionsPoller(halo, store, q, counts).Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(q.sent) != 1 || q.sent[0].Repairs != pinnedAt {
		t.Fatalf("sent %+v; want one repair of the pinned version", q.sent)
	}
	o, _, _ := store.Get(ctx, "default", change.Ticket, "1", "")
	if o.Version != change.VersionOf(time.Date(2026, 9, 25, 7, 0, 0, 0, time.UTC)) || o.Fields["summary"] != "real" {
		t.Fatalf("after the poll: version %d summary %v; want Halo's", o.Version, o.Fields["summary"])
	}
	if n := counts.Value(metrics.Metric{Name: metrics.WebhookGap, Connection: "default", Label: "ticket"}); n != 0 {
		t.Fatalf("a repair counted as %d webhook gaps", n)
	}

	// Repaired, the copy is Halo's: the next poll finds nothing to do.
	q.sent = nil
	if _, err := versionsPoller(halo, store, q, counts).Poll(ctx); err != nil || len(q.sent) != 0 {
		t.Fatalf("second poll sent %+v, %v", q.sent, err)
	}
}

func TestPollLeavesAVersionAheadOfHalosMarkerAlone(t *testing.T) {
	listed := map[string]any{"id": "1", "summary": "listed", "last_update": "2026-09-25T07:00:00"}
	newer := change.VersionOf(time.Date(2026, 9, 25, 7, 30, 0, 0, time.UTC))
	for name, tt := range map[string]struct {
		version int64
		stored  map[string]any
		read    map[string]any // Halo's object when read again
	}{
		// Stored at a delivery timestamp after its marker (an event-only fetch): same fields.
		"same fields": {version: newer, stored: listed},
		// A webhook brought a newer change after the listing: Halo's object read again is
		// as new as the copy, so nothing is undone.
		"Halo moved on": {version: newer, stored: map[string]any{"summary": "newer"},
			read: map[string]any{"id": "1", "summary": "newer", "last_update": "2026-09-25T07:30:00"}},
	} {
		t.Run(name, func(t *testing.T) {
			halo := &tickets{listed: map[string]map[string]any{"1": listed}}
			if tt.read != nil {
				halo.read = map[string]map[string]any{"1": tt.read}
			}
			store := storetest.NewMemory()
			q := &applying{store: store}
			pin(t, store, tt.version, tt.stored)
			if _, err := versionsPoller(halo, store, q, metrics.NewMemory()).Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(q.sent) != 0 {
				t.Fatalf("sent %+v; want nothing", q.sent)
			}
		})
	}
}

// Halo's own marker in the future: what the poll reads is stored at the read time, once.
func TestPollClampsFutureMarkersAndCountsMissingOnes(t *testing.T) {
	ctx := context.Background()
	halo := &tickets{listed: map[string]map[string]any{
		"1": {"id": "1", "summary": "from the future", "last_update": "2261-01-01T00:00:00"},
		"2": {"id": "2", "summary": "no marker"},
	}}
	store, counts := storetest.NewMemory(), metrics.NewMemory()
	q := &applying{store: store}
	if _, err := versionsPoller(halo, store, q, counts).Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(q.sent) != 1 || q.sent[0].Version != change.VersionOf(readTime) || q.sent[0].VersionFrom != change.VersionFromClamped {
		t.Fatalf("sent %+v; want ticket 1 at the read time", q.sent)
	}
	for m, want := range map[metrics.Metric]int64{
		{Name: metrics.VersionsClamped, Connection: "default", Label: "ticket"}: 1,
		{Name: metrics.VersionsMissing, Connection: "default", Label: "ticket"}: 1,
	} {
		if got := counts.Value(m); got != want {
			t.Errorf("%s = %d, want %d", m.Name, got, want)
		}
	}
	q.sent = nil
	if _, err := versionsPoller(halo, store, q, counts).Poll(ctx); err != nil || len(q.sent) != 0 {
		t.Fatalf("the next poll sent %+v, %v; the copy already holds what Halo says", q.sent, err)
	}
}
