package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// objectOf is a nested object of a kind, as a full payload carries it.
func objectOf(kind change.Kind, marker string) map[string]any {
	spec, _ := change.Lookup(kind)
	o := map[string]any{"id": 7, "name": "n", spec.VersionField: marker}
	switch kind {
	case change.Action:
		o["ticket_id"] = 42
		o["note"] = "called back"
	case change.Ticket, change.Contact, change.Asset:
		o["client_id"] = 12
	}
	return o
}

// TestEveryKnownEventReachesTheCopy: each Halo event name halosync knows, delivered with
// its object, is stored as an object of its kind (a note under its ticket) or, for a
// delete, as a tombstone; a later delete of the same object after it leaves a tombstone.
func TestEveryKnownEventReachesTheCopy(t *testing.T) {
	received := time.Date(2026, 9, 25, 7, 0, 0, 0, time.UTC)
	for _, ev := range halo.KnownEvents() {
		t.Run(ev.Name, func(t *testing.T) {
			store := storetest.NewMemory()
			w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
			spec, _ := change.Lookup(ev.Kind)
			body := map[string]any{"id": "d-" + ev.Name, "event": ev.Name, "object_id": 7, "timestamp": "2026-09-25T06:41:08.7895915Z",
				spec.PayloadKey: objectOf(ev.Kind, "2026-09-25T06:41:07.523")}
			raw, _ := json.Marshal(body)
			events, err := halo.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			changes, err := events[0].Changes("default", halo.Events{}, received)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range changes {
				m, err := message.Encode(message.Envelope{Change: c, Raw: events[0].Raw, ReceivedAt: received})
				if err != nil {
					t.Fatal(err)
				}
				if got, err := w.Process(context.Background(), "m", m.Body); err != nil || got != change.Applied {
					t.Fatalf("%s %s: %s, %v", c.Kind, c.ID, got, err)
				}
			}
			parent := ""
			if spec.Parent != "" {
				parent = "42"
			}
			o, ok, _ := store.Get(context.Background(), "default", ev.Kind, "7", parent)
			if !ok {
				t.Fatalf("%s 7 not stored", ev.Kind)
			}
			if o.Deleted != (ev.Op == change.OpDelete) || o.Fields["name"] != "n" {
				t.Fatalf("stored %+v, want deleted=%v with its fields", o, ev.Op == change.OpDelete)
			}
			wantClient := map[change.Kind]string{change.Ticket: "12", change.Contact: "12", change.Asset: "12", change.Client: "7", change.Action: ""}[ev.Kind]
			if o.ClientID != wantClient {
				t.Fatalf("client id %q, want %q", o.ClientID, wantClient)
			}
		})
	}
}
