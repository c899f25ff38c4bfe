package localserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
)

// changeStream is an open GET /connections/{connection}/events.
type changeStream struct {
	events chan sseChange
}

// sseChange is one event of a change event stream: its id line and its data.
type sseChange struct {
	id    string
	event changeevent.Event
}

// openChanges opens conn's change event stream with the read token, and Last-Event-ID
// when lastID is set; it fails the test unless the stream opens.
func (s *testServer) openChanges(t *testing.T, conn, lastID string) *changeStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/connections/"+conn+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("content-type"), "text/event-stream") {
		resp.Body.Close()
		t.Fatalf("change events: %d %s", resp.StatusCode, resp.Header.Get("content-type"))
	}
	st := &changeStream{events: make(chan sseChange, 64)}
	go func() {
		defer close(st.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					ev, err := changeevent.Decode([]byte(data))
					if err != nil {
						t.Errorf("event data %s: %v", data, err)
						return
					}
					st.events <- sseChange{id: id, event: ev}
				}
				id, data = "", ""
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return st
}

// next waits for the stream's next event.
func (st *changeStream) next(t *testing.T) sseChange {
	t.Helper()
	select {
	case ev, ok := <-st.events:
		if !ok {
			t.Fatal("the change event stream ended")
		}
		return ev
	case <-time.After(pollTimeout):
		t.Fatalf("no change event within %v", pollTimeout)
	}
	return sseChange{}
}

func TestADeliveryBecomesOneChangeEventAndDuplicatesAndStaleOnesNone(t *testing.T) {
	s := startServer(t, testConfig())
	st := s.openChanges(t, "default", "")
	full := sampleBody(t, "ingest-ticket-full.json") // ticket 4242, agent 7, team 2
	s.deliverOK(t, full)
	created := st.next(t)
	if created.event.DetailType != "ticket created" || created.event.Detail.ID != "4242" || created.id != created.event.ID ||
		created.event.Source != "halosync" || created.event.Detail.Connection != "default" {
		t.Fatalf("first event: id %q %+v", created.id, created.event)
	}

	const reassign = "0d5e3c1a-9b8f-4c2d-8e7a-6b5c4d3e2f1a"
	reassigned := redeliver(t, full, reassign, "ticket reassigned", map[string]any{
		"agent_id": 11, "team_id": 3, "team": "Network", "last_update": "2026-09-25T06:45:00.000",
	})
	s.deliverOK(t, reassigned)
	updated := st.next(t)
	wantID := changeevent.ID("default", change.Ticket, "4242", "", version("2026-09-25T06:45:00.000"), 0)
	if updated.id != wantID || updated.event.DetailType != "ticket updated" || updated.event.Detail.DeliveryID != reassign {
		t.Fatalf("second event: id %q (want %q) %+v", updated.id, wantID, updated.event)
	}
	changed := updated.event.Detail.Changed
	if len(changed) != 4 || changed["agent_id"].From != json.Number("7") || changed["agent_id"].To != json.Number("11") ||
		changed["team"].To != "Network" || changed["team_id"].To != json.Number("3") {
		t.Fatalf("changed fields %+v", changed)
	}
	records := s.waitDeliveries(t, "default", reassign)
	if updated.event.Detail.Summary != records[0].Summary {
		t.Fatalf("event summary %q, delivery record's %q", updated.event.Detail.Summary, records[0].Summary)
	}

	// Halo retries the reassignment, and an older version arrives late: neither alters
	// the copy, so neither has an event. Once both are recorded, a new change's event is
	// the next on the stream.
	s.deliverOK(t, redeliver(t, reassigned, "retry-of-reassign", "ticket reassigned", nil))
	s.deliverOK(t, redeliver(t, full, "late-older", "ticket updated", map[string]any{"last_update": "2026-09-25T06:00:00.000", "status_id": 9}))
	if d := s.waitDeliveries(t, "default", "retry-of-reassign"); d[0].Outcome != change.Duplicate {
		t.Fatalf("the retry's outcome %s", d[0].Outcome)
	}
	if d := s.waitDeliveries(t, "default", "late-older"); d[0].Outcome != change.Stale {
		t.Fatalf("the late delivery's outcome %s", d[0].Outcome)
	}
	s.deliverOK(t, redeliver(t, reassigned, "status-change", "ticket status changed", map[string]any{"last_update": "2026-09-25T07:00:00.000", "status_id": 4}))
	next := st.next(t)
	if next.event.Detail.DeliveryID != "status-change" || next.event.Detail.Summary != "status: 2 → 4" {
		t.Fatalf("the event after a duplicate and a stale delivery: %+v", next.event)
	}

	// A client that reconnects with the last id it saw misses nothing, and sees nothing twice.
	resumed := s.openChanges(t, "default", created.id)
	for _, want := range []string{updated.id, next.id} {
		if got := resumed.next(t); got.id != want {
			t.Fatalf("resumed stream: event %q, want %q", got.id, want)
		}
	}
}

func TestChangeEventsNeedTheReadTokenAndAConfiguredConnection(t *testing.T) {
	s := startServer(t, testConfig())
	if r := do(t, http.MethodGet, s.url+"/connections/default/events", "", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", r.status)
	}
	if r := do(t, http.MethodGet, s.url+"/connections/default/events", "Bearer wrong", nil); r.status != http.StatusUnauthorized {
		t.Fatalf("with a wrong token: %d", r.status)
	}
	if r := do(t, http.MethodGet, s.url+"/connections/nobody/events", bearer, nil); r.status != http.StatusNotFound {
		t.Fatalf("an unknown connection: %d", r.status)
	}
}

// TestChangeEventsOutliveARestart: events are kept with the copy, so a client that
// reconnects to a restarted server with the last id it saw gets what came after it, and a
// change applied while it was away.
func TestChangeEventsOutliveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "halosync.db")
	first := startServer(t, testConfig(), onFile(path))
	st := first.openChanges(t, "default", "")
	full := sampleBody(t, "ingest-ticket-full.json")
	first.deliverOK(t, full)
	seen := st.next(t)
	first.deliverOK(t, redeliver(t, full, "second", "ticket updated", map[string]any{"last_update": "2026-09-25T06:50:00.000", "status_id": 3}))
	first.waitDeliveries(t, "default", "second")
	first.stop()

	again := startServer(t, testConfig(), onFile(path))
	again.deliverOK(t, redeliver(t, full, "third", "ticket updated", map[string]any{"last_update": "2026-09-25T06:55:00.000", "status_id": 4}))
	resumed := again.openChanges(t, "default", seen.id)
	for _, want := range []string{"second", "third"} {
		if ev := resumed.next(t); ev.event.Detail.DeliveryID != want {
			t.Fatalf("after the restart: event of %q, want %q", ev.event.Detail.DeliveryID, want)
		}
	}
}
