package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// A note event that carries no note but nests its ticket is resolved by reading the note
// from Halo with that ticket (GET /api/Actions/{id}?ticket_id=), which the simulated
// tenant, like Halo, needs.
func TestEventOnlyNoteIsReadWithTheTicketItsDeliveryNames(t *testing.T) {
	ctx := context.Background()
	tenant := halotest.Start(t, halosim.Options{StrictParams: true})
	tk := tenant.Upsert(change.Ticket, map[string]any{"summary": "printer"})
	note := tenant.Upsert(change.Action, map[string]any{"ticket_id": tk["id"], "note": "called back"})
	client, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID,
		ClientSecret: tenant.Options().ClientSecret, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"id":"d1","event":"action added","object_id":%d,"timestamp":"2026-09-25T06:41:08Z","ticket":{"id":%d}}`, note["id"], tk["id"])
	events, err := halo.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	changes, err := events[0].Changes("default", halo.Events{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, map[string]worker.Fetcher{"default": client})
	for _, c := range changes {
		if c.Kind != change.Action {
			continue
		}
		if c.HasSnapshot() {
			t.Fatalf("the note change carries fields: %+v", c)
		}
		m, err := message.Encode(message.Envelope{Change: c, ReceivedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := w.Process(ctx, "m", m.Body); err != nil || got != change.Applied {
			t.Fatalf("note: %s, %v", got, err)
		}
	}
	id, ticket := fmt.Sprint(note["id"]), fmt.Sprint(tk["id"])
	if o, ok, _ := store.Get(ctx, "default", change.Action, id, ticket); !ok || o.Fields["note"] != "called back" {
		t.Fatalf("note stored %+v, %v", o, ok)
	}
	read := false
	for _, r := range tenant.Requests() {
		if r.Method == http.MethodGet && r.Path == "/api/Actions/"+id {
			read = true
			if r.Query.Get("ticket_id") != ticket || r.Status != http.StatusOK {
				t.Errorf("note read as %s?%s: %d", r.Path, r.Query.Encode(), r.Status)
			}
		}
	}
	if !read {
		t.Fatal("the note was not read from the tenant")
	}
}
