package localserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
)

// The counters and the newest delivery records are saved in the database: a server
// started again on the same file shows them, and counts on from them.
func TestStatusSurvivesARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "halosync.db")
	s := startServer(t, testConfig(), onFile(path))
	full := sampleBody(t, "ingest-ticket-full.json")
	const first, second = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10", "0d5e3c1a-9b8f-4c2d-8e7a-6b5c4d3e2f1a"
	s.deliverOK(t, full)
	s.waitDeliveries(t, "default", first)
	if r := s.deliver(t, "default", authtest.Basic(user, "wrong"), full); r.status != http.StatusUnauthorized {
		t.Fatalf("a wrong password answered %d, want 401", r.status)
	}
	before := s.waitStatus(t, pollTimeout, "the delivery applied", func(st status) bool {
		return st.count(metrics.ChangesApplied, "default", "applied") == 1
	})
	s.stop()

	s = startServer(t, testConfig(), onFile(path))
	after := s.status(t)
	for _, c := range []struct{ name, label string }{
		{metrics.DeliveriesAccepted, ""}, {metrics.DeliveriesRejected, "credentials_wrong"}, {metrics.ChangesApplied, "applied"},
	} {
		if got, want := after.count(c.name, "default", c.label), before.count(c.name, "default", c.label); got != want || want == 0 {
			t.Errorf("after the restart %s %s = %d, want %d as before", c.name, c.label, got, want)
		}
	}
	// The refusal, the endpoint's record, is kept as the worker's are.
	if ds, r := s.recent(t, ""); len(ds) != 2 || ds[0].Outcome != localserver.Rejected || ds[0].Reason != "credentials_wrong" || ds[1].DeliveryID != first {
		t.Fatalf("recent after the restart: %d %s, want the refusal and the first delivery's record", r.status, r.body)
	}
	// The restarted server counts on from what it loaded, and the ring grows on.
	s.deliverOK(t, redeliver(t, full, second, "ticket reassigned", map[string]any{"agent_id": 11, "last_update": "2026-09-25T06:45:00.000"}))
	s.waitDeliveries(t, "default", second)
	s.waitStatus(t, pollTimeout, "counted on", func(st status) bool {
		return st.count(metrics.DeliveriesAccepted, "default", "") == 2 && st.count(metrics.ChangesApplied, "default", "applied") == 2
	})
	s.stop()

	s = startServer(t, testConfig(), onFile(path))
	if got := s.status(t).count(metrics.DeliveriesAccepted, "default", ""); got != 2 {
		t.Errorf("after the second restart DeliveriesAccepted = %d, want 2", got)
	}
	if ds, _ := s.recent(t, ""); len(ds) != 3 || ds[0].DeliveryID != second || ds[2].DeliveryID != first {
		t.Errorf("recent after the second restart: %v, want the three records newest first", ds)
	}
}

// The server saves its counters while it runs, not only when it stops: a crash loses at
// most SaveStatusEvery's counts.
func TestStatusIsSavedWhileRunning(t *testing.T) {
	s := startServer(t, testConfig())
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	eventually(t, pollTimeout, "the counters saved", func() (bool, string) {
		counters, recent, err := s.db.LoadStatus(t.Context(), 10)
		for _, e := range counters {
			if e.Name == metrics.ChangesApplied && e.Value == 1 && len(recent) == 1 {
				return true, ""
			}
		}
		return false, fmt.Sprint(counters, recent, err)
	})
}

func TestStatusNamesTheDemoConnections(t *testing.T) {
	read := func(s *testServer) []string {
		var out struct {
			Demo []string `json:"demo_connections"`
		}
		r := do(t, http.MethodGet, s.url+"/status", bearer, nil)
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatalf("/status: %v in %s", err, r.body)
		}
		return out.Demo
	}
	if got := read(startServer(t, testConfig(), withDemo("default"))); fmt.Sprint(got) != "[default]" {
		t.Errorf("demo_connections = %v, want [default]", got)
	}
	if got := read(startServer(t, testConfig())); got != nil {
		t.Errorf("without a demo, demo_connections = %v, want none", got)
	}
}
