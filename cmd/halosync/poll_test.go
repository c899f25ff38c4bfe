package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
)

// TestServePollsTheTenantAndSyncRestarts: serve polls a connection's Halo on its own
// schedule (the same poller as in AWS): the first poll backfills every object; `sync
// --full` makes the next poll read everything again.
func TestServePollsTheTenantAndSyncRestarts(t *testing.T) {
	tenant := halotest.Start(t, halosim.Options{})
	tenant.Seed(rand.New(rand.NewPCG(1, 2)), 3)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "halosync.yaml")
	writeFile(t, cfgPath, fmt.Sprintf(`connections:
  - id: acme
    halo:
      base_url: %s
      client_id: %s
      client_secret: %s
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["correct-horse-battery"]
`, tenant.URL(), tenant.Options().ClientID, tenant.Options().ClientSecret))
	data := filepath.Join(dir, "data")
	p := startServe(t, nil, "--config", cfgPath, "--data", data, "--poll-every", "100ms")

	tickets := tenant.Objects(change.Ticket)
	id, _ := change.CanonicalID(tickets[len(tickets)-1]["id"])
	waitObject(t, p, "/connections/acme/tickets/"+id, nil)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && status(t, p).count("ChangesApplied", "applied") < int64(len(tickets)) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := status(t, p).count("ChangesApplied", "applied"); n < int64(len(tickets)) {
		t.Fatalf("after the first poll %d objects applied, want at least the %d tickets", n, len(tickets))
	}

	// The first poll saves its cursors after enqueueing; a reset before it ends would be
	// overwritten.
	p.waitLog(t, `"msg":"poll done"`, `"connection":"acme"`)
	out, errOut, code := runCLI(t, nil, "sync", "--full", "--config", cfgPath, "--data", data)
	if code != 0 || !strings.Contains(out, "connection acme: the next poll reads every object again") {
		t.Fatalf("sync --full: exit %d, %q %q", code, out, errOut)
	}
	// The next poll backfills again: everything is read, nothing is newer than the copy.
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && strings.Count(p.stderr.String(), `"msg":"backfill","connection":"acme","kind":"ticket"`) < 2 {
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(p.stderr.String(), `"msg":"backfill","connection":"acme","kind":"ticket"`); n < 2 {
		p.logTails(t)
		t.Fatalf("tickets backfilled %d times, want a second backfill after sync --full", n)
	}
	if _, errOut, code := runCLI(t, nil, "sync", "--data", data); code == 0 || !strings.Contains(errOut, "usage: halosync sync --full") {
		t.Errorf("sync without --full: exit %d, %q", code, errOut)
	}
}
