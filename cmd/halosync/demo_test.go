package main

import (
	"strings"
	"testing"
	"time"
)

// TestDemoFillsTheCopy: `serve --demo` (what `make run` starts) simulates a Halo tenant
// that changes objects of every kind and sends webhooks, full and event-only; the copy
// fills, and event-only deliveries are fetched from the simulated tenant's API.
func TestDemoFillsTheCopy(t *testing.T) {
	p := startServe(t, nil, "--data", t.TempDir(), "--demo", "--demo-every", "50ms")
	// The demo's line follows the address lines serve is ready after: wait for it.
	said := time.Now().Add(startTimeout)
	for !strings.Contains(p.stdout.String(), "demo: connection \"default\" follows a simulated Halo tenant") {
		if time.Now().After(said) {
			t.Errorf("serve --demo does not say what it simulates:\n%s", p.stdout.String())
			break
		}
		time.Sleep(pollInterval)
	}
	deadline := time.Now().Add(30 * time.Second)
	var s statusDoc
	for time.Now().Before(deadline) {
		s = status(t, p)
		if s.count("ChangesApplied", "applied") >= 20 && s.count("ChangesFetched", "found") >= 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.count("ChangesApplied", "applied") < 20 || s.count("ChangesFetched", "found") < 2 {
		p.logTails(t)
		t.Fatalf("after 30 s of the demo: %+v", s.Counters)
	}
	if n := s.count("DeliveriesRejected", "*") + s.count("ChangesFailed", "*"); n != 0 {
		p.logTails(t)
		t.Fatalf("the demo's deliveries were refused or failed: %+v", s.Counters)
	}
}
