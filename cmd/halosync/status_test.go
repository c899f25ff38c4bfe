package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
)

// TestStatusShowsCountsPerConnection: `halosync status` reads a running server and prints
// its counters per connection, rejections by reason included.
func TestStatusShowsCountsPerConnection(t *testing.T) {
	p := startServe(t, nil, "--data", t.TempDir())
	s := samples(t)
	mustPost(t, p.url, "default", authtest.Basic("halo", p.password), s["ticket-full"].body, http.StatusOK)
	mustPost(t, p.url, "default", authtest.Basic("halo", "not-the-password"), s["ticket-full"].body, http.StatusUnauthorized)
	waitObject(t, p.url, "/connections/default/tickets/4242", nil)
	// The pump deletes a message after the worker applied it: wait for the queue to drain.
	deadline := time.Now().Add(10 * time.Second)
	for q := status(t, p.url).Queue; q.Visible+q.InFlight > 0; q = status(t, p.url).Queue {
		if time.Now().After(deadline) {
			t.Fatalf("the queue did not drain: %+v", q)
		}
		time.Sleep(20 * time.Millisecond)
	}

	out, errOut, code := runCLI(t, nil, "status", "--url", p.url)
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, errOut)
	}
	for _, row := range []string{
		`default\s+DeliveriesAccepted\s+-\s+1`,
		`default\s+DeliveriesRejected\s+credentials_wrong\s+1`,
		`default\s+ChangesApplied\s+applied\s+1`,
		`queue: 0 waiting, 0 in flight`,
		`dead-letter queue: 0`,
	} {
		if !regexp.MustCompile(row).MatchString(out) {
			t.Errorf("status output lacks %q:\n%s", row, out)
		}
	}
	if out, _, code := runCLI(t, nil, "status", "--url", p.url, "--json"); code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Errorf("status --json: exit %d, %q", code, out)
	}
	if _, errOut, code := runCLI(t, nil, "status", "--url", "http://127.0.0.1:1"); code == 0 || !strings.Contains(errOut, "is halosync serve running") {
		t.Errorf("status without a server: exit %d, %q", code, errOut)
	}
}
