package localserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

// redeliver returns body (one Halo event nesting a ticket) as another delivery: its own
// id and event name, and the ticket's fields overridden.
func redeliver(t *testing.T, body []byte, id, event string, fields map[string]any) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(editTicket(t, body, fields)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["id"], m["event"] = id, event
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// deliveries reads a delivery's records from the read API.
func (s *testServer) deliveries(t *testing.T, conn, id string) ([]change.Delivery, response) {
	t.Helper()
	r := do(t, http.MethodGet, s.url+"/connections/"+conn+"/deliveries/"+id, bearer, nil)
	var ds []change.Delivery
	if r.status == http.StatusOK {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.UseNumber()
		if err := dec.Decode(&ds); err != nil {
			t.Fatalf("deliveries %s: %v in %s", id, err, r.body)
		}
	}
	return ds, r
}

func (s *testServer) waitDeliveries(t *testing.T, conn, id string) []change.Delivery {
	t.Helper()
	var ds []change.Delivery
	eventually(t, pollTimeout, "records of delivery "+id, func() (bool, string) {
		var r response
		ds, r = s.deliveries(t, conn, id)
		return r.status == http.StatusOK, fmt.Sprintf("%d %s", r.status, r.body)
	})
	// A record is readable once its transaction commits, and in the recent list a moment
	// later, when the worker that wrote it gets on: what a test does next comes after it
	// in both.
	eventually(t, pollTimeout, "delivery "+id+" in the recent list", func() (bool, string) {
		recent, r := s.recent(t, "")
		for _, d := range recent {
			if d.DeliveryID == id {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d %s", r.status, r.body)
	})
	return ds
}

func TestDeliveryRecordsAreServed(t *testing.T) {
	s := startServer(t, testConfig())
	full := sampleBody(t, "ingest-ticket-full.json") // delivery 6f1c2a4e-…, ticket 4242 with agent 7, team 2
	const first = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10"
	s.deliverOK(t, full)
	ds := s.waitDeliveries(t, "default", first)
	if len(ds) != 1 || ds[0].Kind != change.Ticket || ds[0].ID != "4242" || ds[0].Outcome != change.Applied || ds[0].Summary != "created" {
		t.Fatalf("records of the first delivery: %+v", ds)
	}

	const reassign = "0d5e3c1a-9b8f-4c2d-8e7a-6b5c4d3e2f1a"
	s.deliverOK(t, redeliver(t, full, reassign, "ticket reassigned", map[string]any{
		"agent_id": 11, "agent_name": "Sam Agent", "team_id": 3, "team": "Network", "last_update": "2026-09-25T06:45:00.000",
	}))
	ds = s.waitDeliveries(t, "default", reassign)
	if len(ds) != 1 {
		t.Fatalf("%d records, want 1", len(ds))
	}
	d := ds[0]
	if d.Event != "ticket reassigned" || d.Outcome != change.Applied || d.DeliveryID != reassign || d.Connection != "default" || d.ReceivedAt.IsZero() {
		t.Fatalf("record %+v", d)
	}
	if want := `reassigned: agent_id 7 → 11, team_id 2 → 3, team "Service Desk" → "Network"; changed: agent_name`; d.Summary != want {
		t.Fatalf("summary %q, want %q", d.Summary, want)
	}
	if fc := d.Changed["agent_id"]; fc.From != json.Number("7") || fc.To != json.Number("11") {
		t.Fatalf("agent_id change %+v", fc)
	}
	o := s.waitObject(t, "/connections/default/tickets/4242", nil)
	if o.Fields["agent_id"] != json.Number("11") || o.Fields["team"] != "Network" {
		t.Fatalf("state agent %v team %v", o.Fields["agent_id"], o.Fields["team"])
	}

	// Halo retrying the reassignment: the state has it, the record still says what it did.
	before := s.status(t).count("ChangesApplied", "default", "duplicate")
	s.deliverOK(t, redeliver(t, full, reassign, "ticket reassigned", map[string]any{
		"agent_id": 11, "agent_name": "Sam Agent", "team_id": 3, "team": "Network", "last_update": "2026-09-25T06:45:00.000",
	}))
	s.waitStatus(t, pollTimeout, "the retry processed", func(st status) bool { return st.count("ChangesApplied", "default", "duplicate") > before })
	if ds, _ := s.deliveries(t, "default", reassign); len(ds) != 1 || ds[0].Outcome != change.Applied || ds[0].Summary != d.Summary {
		t.Fatalf("after a retry: %+v", ds)
	}

	for _, path := range []string{"/connections/default/deliveries/no-such-delivery", "/connections/other/deliveries/" + reassign} {
		r := do(t, http.MethodGet, s.url+path, bearer, nil)
		if r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
			t.Errorf("GET %s = %d %s, want 404 not_found", path, r.status, r.body)
		}
	}
	if r := do(t, http.MethodPost, s.url+"/connections/default/deliveries/"+reassign, bearer, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST to the read route = %d, want 405", r.status)
	}
}
