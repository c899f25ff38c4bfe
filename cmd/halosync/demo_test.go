package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/sqlite"
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

// TestDemoContinuesAfterRestart: `serve --demo` keeps its simulated tenant in the data
// directory, so a restart continues the same tenant (the same credentials, ids, objects
// and versions) instead of mixing a new one into the copy: nothing is refused, failed or
// wrongly deleted, and once polled again the copy is the tenant.
func TestDemoContinuesAfterRestart(t *testing.T) {
	data := t.TempDir()
	kept := filepath.Join(data, "demo-tenant-default.json")
	fast := []string{"--data", data, "--demo", "--demo-every", "50ms", "--poll-every", "100ms"}

	first := startServe(t, nil, fast...)
	waitDemoLine(t, first, "a new one, kept in "+kept)
	waitAccepted(t, first, 20)
	if code := first.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM", code)
	}
	before, err := halosim.LoadSnapshot(kept)
	if err != nil {
		t.Fatal(err)
	}

	second := startServe(t, nil, fast...)
	waitDemoLine(t, second, "continued from "+kept)
	accepted := status(t, second).count("DeliveriesAccepted", "*")
	waitAccepted(t, second, accepted+20)
	if code := second.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM", code)
	}
	after, err := halosim.LoadSnapshot(kept)
	if err != nil {
		t.Fatal(err)
	}
	if after.ClientSecret != before.ClientSecret || after.ClientID != before.ClientID {
		t.Error("the restarted demo has other client credentials")
	}
	for kind, next := range before.NextID {
		if after.NextID[kind] < next {
			t.Errorf("%s ids went back from %d to %d", kind, next, after.NextID[kind])
		}
	}

	// Still, with no new changes: every object is polled again, and the daily reconcile
	// runs after that backfill.
	if out, errOut, code := runCLI(t, nil, "sync", "--full", "--data", data); code != 0 {
		t.Fatalf("sync --full: exit %d, %q %q", code, out, errOut)
	}
	third := startServe(t, nil, "--data", data, "--demo", "--demo-every", "1h", "--poll-every", "100ms")
	waitDemoLine(t, third, "continued from "+kept)
	s, err := halosim.LoadSnapshot(kept)
	if err != nil {
		t.Fatal(err)
	}
	tenant := halosim.NewHandler(s.Options())
	if err := tenant.Restore(s); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(filepath.Join(data, "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	var diffs []string
	for {
		diffs = copyVersusTenant(t, db.Store(), tenant)
		st := status(t, third)
		done := len(diffs) == 0 && st.Queue.Visible == 0 && st.Queue.InFlight == 0 &&
			strings.Contains(third.stderr.String(), `"msg":"poll done"`)
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(diffs) > 0 {
		t.Errorf("the copy is not the tenant after the restarts (%d differences):\n%s", len(diffs), strings.Join(diffs[:min(len(diffs), 20)], "\n"))
	}
	st := status(t, third)
	for _, name := range []string{"ReconcileRefused", "ChangesFailed", "DeliveriesRejected"} {
		if n := st.count(name, "*"); n != 0 {
			t.Errorf("%s: %d, want 0", name, n)
		}
	}
}

// waitDemoLine waits for serve's line about the demo's tenant, which must hold want.
func waitDemoLine(t *testing.T, p *proc, want string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for !strings.Contains(p.stdout.String(), "demo: connection \"default\" follows a simulated Halo tenant") {
		if time.Now().After(deadline) {
			t.Fatalf("serve --demo does not say what it simulates:\n%s", p.stdout.String())
		}
		time.Sleep(pollInterval)
	}
	if !strings.Contains(p.stdout.String(), want) {
		t.Fatalf("serve --demo does not say %q:\n%s", want, p.stdout.String())
	}
}

// waitAccepted waits until serve has accepted n deliveries of the demo's, none refused or
// failed (the counts go on from the data directory's first serve).
func waitAccepted(t *testing.T, p *proc, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := status(t, p)
		if bad := s.count("DeliveriesRejected", "*") + s.count("ChangesFailed", "*") + s.count("ReconcileRefused", "*"); bad != 0 {
			t.Fatalf("the demo's changes were refused or failed: %+v", s.Counters)
		}
		if s.count("DeliveriesAccepted", "*") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d deliveries accepted after 30 s: %+v", n, s.Counters)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// markers are the change marker fields of each kind, as Halo names them.
var markers = map[change.Kind]string{change.Ticket: "last_update", change.Action: "last_updated",
	change.Client: "alastupdate", change.Contact: "ulastupdate", change.Asset: "dlastupdate"}

// copyVersusTenant lists how the copy of connection default differs from the tenant: an
// object live in one and not the other, or at another change marker.
func copyVersusTenant(t *testing.T, store *sqlite.Store, tenant *halosim.Tenant) []string {
	t.Helper()
	ctx := context.Background()
	var diffs []string
	for kind, marker := range markers {
		live := map[string]string{} // id -> marker, in the tenant
		parent := map[string]string{}
		for _, o := range tenant.Objects(kind) {
			id, _ := change.CanonicalID(o["id"])
			if kind == change.Action {
				parent[id], _ = change.CanonicalID(o["ticket_id"])
			}
			if o["deleted"] != true {
				live[id] = fmt.Sprint(o[marker])
			}
		}
		inCopy := map[string]bool{}
		err := store.StoredIDs(ctx, "default", kind, func(ids []change.StoredID) error {
			for _, s := range ids {
				if s.Deleted {
					if _, ok := live[s.ID]; ok {
						diffs = append(diffs, fmt.Sprintf("%s %s: deleted in the copy, live in the tenant", kind, s.ID))
					}
					continue
				}
				inCopy[s.ID] = true
				o, _, err := store.Get(ctx, "default", kind, s.ID, s.ParentID)
				if err != nil {
					return err
				}
				want, ok := live[s.ID]
				if got := fmt.Sprint(o.Fields[marker]); !ok || got != want {
					diffs = append(diffs, fmt.Sprintf("%s %s: %s %s in the copy, %q in the tenant", kind, s.ID, marker, got, want))
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for id := range live {
			if !inCopy[id] {
				diffs = append(diffs, fmt.Sprintf("%s %s (parent %s): in the tenant, not in the copy", kind, id, parent[id]))
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}
