package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/verify"
)

// TestStatusShowsCountsPerConnection: `halosync status` reads a running server and prints
// its counters per connection, rejections by reason included.
func TestStatusShowsCountsPerConnection(t *testing.T) {
	// The data dir is .halosync of the directory status runs in, as `make run` leaves it.
	cwd := t.TempDir()
	data := filepath.Join(cwd, ".halosync")
	p := startServe(t, nil, "--data", data)
	s := samples(t)
	mustPost(t, p.url, "default", authtest.Basic("halo", p.password), s["ticket-full"].body, http.StatusOK)
	mustPost(t, p.url, "default", authtest.Basic("halo", "not-the-password"), s["ticket-full"].body, http.StatusUnauthorized)
	waitObject(t, p, "/connections/default/tickets/4242", nil)
	// The pump deletes a message after the worker applied it: wait for the queue to drain.
	deadline := time.Now().Add(10 * time.Second)
	for q := status(t, p).Queue; q.Visible+q.InFlight > 0; q = status(t, p).Queue {
		if time.Now().After(deadline) {
			t.Fatalf("the queue did not drain: %+v", q)
		}
		time.Sleep(20 * time.Millisecond)
	}

	out, errOut, code := runCLIIn(t, cwd, nil, "status", "--url", p.url)
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, errOut)
	}
	for _, row := range []string{
		`default\s+DeliveriesAccepted\s+-\s+1`,
		`default\s+DeliveriesRejected\s+credentials_wrong\s+1`,
		`default\s+ChangesApplied\s+applied\s+1`,
		`queue: 0 waiting, 0 in flight`,
		`dead-letter queue: 0`,
		// A timing reads as its mean in milliseconds, not as a sum.
		`default\s+SyncLatency\s+-\s+avg [0-9.]+ ms over 1\n`,
		`connection default\n`,
		`sync mode:\s+webhook only \(no halo: settings, not polled\)`,
		`poll fallback:\s+off`,
		`last delivery:\s+\d{4}-\d\d-\d\dT[0-9:]+Z \(\d+s ago\)`,
		`deliveries by endpoint:\s+primary 1, backup 0\n`,
		`managed webhook:\s+not managed`,
		`objects:\s+ticket 1\n`,
		`sync latency:\s+avg [0-9.]+ ms( \([0-9hms]+\))?; last hour avg [0-9.]+ ms( \([0-9hms]+\))?, max \d+ ms`,
		`errors:\s+rejected credentials_wrong 1\n`,
	} {
		if !regexp.MustCompile(row).MatchString(out) {
			t.Errorf("status output lacks %q:\n%s", row, out)
		}
	}
	if out, _, code := runCLI(t, nil, "status", "--url", p.url, "--data", data, "--json"); code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "{") {
		t.Errorf("status --json: exit %d, %q", code, out)
	}
	if _, errOut, code := runCLI(t, nil, "status", "--url", "http://127.0.0.1:1", "--data", data); code == 0 || !strings.Contains(errOut, "is halosync serve running") {
		t.Errorf("status without a server: exit %d, %q", code, errOut)
	}
	// The counters are kept in the data dir's database: a serve started again shows them.
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d on SIGTERM", code)
	}
	p = startServe(t, nil, "--data", data)
	out, errOut, code = runCLIIn(t, cwd, nil, "status", "--url", p.url)
	if code != 0 {
		t.Fatalf("status after a restart exited %d: %s", code, errOut)
	}
	for _, row := range []string{`default\s+DeliveriesAccepted\s+-\s+1`, `default\s+DeliveriesRejected\s+credentials_wrong\s+1`, `default\s+ChangesApplied\s+applied\s+1`,
		`default\s+SyncLatency\s+-\s+avg [0-9.]+ ms over 1\n`, `last delivery:\s+\d{4}-\d\d-\d\dT`} {
		if !regexp.MustCompile(row).MatchString(out) {
			t.Errorf("status after a restart lacks %q:\n%s", row, out)
		}
	}
	// Without the server's token: none found, or the wrong one.
	empty := t.TempDir()
	if _, errOut, code := runCLI(t, nil, "status", "--url", p.url, "--data", empty); code == 0 || !strings.Contains(errOut, "no read token") || !strings.Contains(errOut, "--data") {
		t.Errorf("status with no token: exit %d, %q", code, errOut)
	}
	writeFile(t, filepath.Join(empty, "read-token"), "not-the-token-of-this-server\n")
	if _, errOut, code := runCLI(t, nil, "status", "--url", p.url, "--data", empty); code == 0 || !strings.Contains(errOut, "refused the read token") {
		t.Errorf("status with a wrong token: exit %d, %q", code, errOut)
	}
}

// TestStatusWithConfiguredReadTokens: with server.read_tokens in the configuration, serve
// generates none and accepts each listed token; `status --config` sends the first, and a
// `curl`-style read with another works too.
func TestStatusWithConfiguredReadTokens(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "halosync.yaml")
	writeFile(t, cfg, `
connections:
  - id: default
    webhook:
      auth:
        - {scheme: basic, username: halo, passwords: ["long-enough-password"]}
server:
  read_tokens: ["env:HALOSYNC_E2E_READ_TOKEN", "the-next-read-token-0123"]
`)
	env := []string{"HALOSYNC_E2E_READ_TOKEN=the-first-read-token-0123"}
	p := startServe(t, env, "--config", cfg, "--data", data)
	if !strings.Contains(p.stdout.String(), "read token: server.read_tokens of the configuration") {
		t.Errorf("serve does not say its read tokens are configured:\n%s", p.stdout.String())
	}
	if _, err := os.Stat(filepath.Join(data, "read-token")); err == nil {
		t.Error("serve generated a read token although the configuration lists some")
	}
	if out, errOut, code := runCLI(t, env, "status", "--url", p.url, "--config", cfg, "--data", data); code != 0 || !strings.Contains(out, "queue: 0 waiting") {
		t.Errorf("status --config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	p.token = "the-next-read-token-0123"
	if code, _, err := getJSON(p, "/connections/default/tickets/1"); err != nil || code != http.StatusNotFound {
		t.Errorf("a read with the second token: %d %v, want 404 (no such ticket)", code, err)
	}
}

// A polled connection's state as status prints it: the mode, the fallback, the managed
// webhook's last check, the backfill's progress per kind, the objects per kind.
func TestStatusPrintsAPolledConnection(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	unhealthy := false
	r := localserver.Report{
		Counters: []metrics.Entry{{Metric: metrics.Metric{Name: metrics.SyncLatency, Connection: "acme"}, Value: 900, Observations: 4, AvgMS: 225}},
		Demo:     []string{"acme"},
		ByConnection: map[string]localserver.ConnectionReport{"acme": {
			SyncMode: "hybrid", Polled: true,
			Fallback:     localserver.FallbackReport{Active: true, Since: at(3 * time.Minute)},
			LastDelivery: at(2 * time.Hour),
			Webhook:      localserver.WebhookReport{Managed: true, CheckedAt: at(time.Minute), Healthy: &unhealthy},
			Objects:      map[change.Kind]int64{change.Ticket: 120, change.Client: 7},
			Backfill: []localserver.BackfillReport{{Kind: change.Client, State: "done"},
				{Kind: change.Ticket, State: "running", Phase: "open tickets", Done: 120, Total: 300, PerSecond: 4.5, LeftSeconds: 40, Left: "40s"}},
			SyncLatencyMS: localserver.LatencyReport{Avg: 225, LastHourAvg: 200.5, LastHourMax: 90000},
			Errors:        map[string]localserver.LabelCounts{"failed": {"store_error": 2}},
			Verification: &verify.Report{WindowHours: 24,
				All: verify.KindReport{Checked: 1500, Equal: 1494, Differing: map[string]int{"fields": 1, "stale": 2, "missing": 1, "ahead": 2},
					Repaired: 6, Estimate: 0.9962, Low: 0.98934, High: 0.99919, LastCheckedAt: now.Add(-90 * time.Second)},
				Kinds: map[string]verify.KindReport{
					"ticket": {Checked: 1200, Equal: 1195, Differing: map[string]int{"fields": 1, "stale": 2, "ahead": 2}, Repaired: 5, Estimate: 0.997, Low: 0.9903, High: 0.9982},
					"client": {Checked: 300, Equal: 300, Estimate: 1, Low: 0.98736, High: 1},
					"asset":  {},
				},
			},
		}},
	}
	var b strings.Builder
	if err := printServerStatus(&b, r, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, row := range []string{
		`acme\s+SyncLatency\s+-\s+avg 225 ms over 4\n`,
		`connection acme \(demo traffic\)\n`,
		`sync mode:\s+hybrid \(webhooks and polls\)\n`,
		`poll fallback:\s+on since 2026-12-01T09:57:00Z \(3m0s ago\)`,
		`last delivery:\s+2026-12-01T08:00:00Z \(2h0m0s ago\)`,
		`managed webhook:\s+unhealthy, checked 2026-12-01T09:59:00Z \(1m0s ago\)`,
		`objects:\s+client 7, ticket 120\n`,
		`backfill:\s+client done, ticket 120/300 \(open tickets, 4.5/s, 40s left\)\n`,
		`sync latency:\s+avg 225 ms; last hour avg 200.5 ms, max 90000 ms \(1m30s\)`,
		`errors:\s+failed store_error 2\n`,
		// Verification: the estimate with its interval, checked, differing by cause in
		// verify.Causes' order, repaired; per kind after the connection's.
		`verification:\s+over the last 24 h, last check 2026-12-01T09:58:30Z \(1m30s ago\)\n`,
		`verified, all kinds:\s+99\.6% equal \(98\.9–99\.9%, 95%\); 1500 checked, 1494 equal; differing missing 1, stale 2, ahead 2, fields 1; repaired 6\n` +
			`\s+verified, asset:\s+nothing checked\n` +
			`\s+verified, client:\s+100% equal \(98\.7–100%, 95%\); 300 checked, 300 equal; differing none; repaired 0\n` +
			`\s+verified, ticket:\s+99\.7% equal \(99\.0–99\.8%, 95%\); 1200 checked, 1195 equal; differing stale 2, ahead 2, fields 1; repaired 5\n`,
	} {
		if !regexp.MustCompile(row).MatchString(out) {
			t.Errorf("status output lacks %q:\n%s", row, out)
		}
	}

	// A connection without verification prints none.
	c := r.ByConnection["acme"]
	c.Verification = nil
	r.ByConnection["acme"] = c
	b.Reset()
	if err := printServerStatus(&b, r, now); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "verif") {
		t.Errorf("a connection without verification prints some:\n%s", b.String())
	}
}

// TestStatusReadsVerificationFromTheServer: the verification a server's /status carries
// reaches `halosync status` whole: printed per connection and kind, and in --json as the
// server sent it.
func TestStatusReadsVerificationFromTheServer(t *testing.T) {
	checked := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	v := &verify.Report{WindowHours: 12,
		All: verify.KindReport{Checked: 40, Equal: 39, Differing: map[string]int{"extra": 1}, Repaired: 1,
			Estimate: 0.975, Low: 0.8712, High: 0.9956, LastCheckedAt: checked},
		Kinds: map[string]verify.KindReport{"contact": {Checked: 40, Equal: 39, Differing: map[string]int{"extra": 1}, Repaired: 1,
			Estimate: 0.975, Low: 0.8712, High: 0.9956, LastCheckedAt: checked}},
	}
	doc, err := json.Marshal(localserver.Report{Counters: []metrics.Entry{}, Connections: []string{"acme"},
		ByConnection: map[string]localserver.ConnectionReport{"acme": {SyncMode: "poll", Polled: true, Verification: v}}})
	if err != nil {
		t.Fatal(err)
	}
	const token = "a-read-token-of-this-server"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	data := t.TempDir()
	writeFile(t, filepath.Join(data, readTokenFile), token+"\n")

	var out, errOut strings.Builder
	if err := statusCmd(t.Context(), []string{"--url", srv.URL, "--data", data}, &out, &errOut); err != nil {
		t.Fatalf("status: %v (%s)", err, errOut.String())
	}
	for _, row := range []string{
		`verification:\s+over the last 12 h, last check ` + regexp.QuoteMeta(checked.Format(time.RFC3339)) + ` \([0-9hms]+ ago\)\n`,
		`verified, all kinds:\s+97\.5% equal \(87\.1–99\.5%, 95%\); 40 checked, 39 equal; differing extra 1; repaired 1\n`,
		`verified, contact:\s+97\.5% equal \(87\.1–99\.5%, 95%\); 40 checked, 39 equal; differing extra 1; repaired 1\n`,
	} {
		if !regexp.MustCompile(row).MatchString(out.String()) {
			t.Errorf("status output lacks %q:\n%s", row, out.String())
		}
	}

	out.Reset()
	if err := statusCmd(t.Context(), []string{"--url", srv.URL, "--data", data, "--json"}, &out, &errOut); err != nil {
		t.Fatalf("status --json: %v (%s)", err, errOut.String())
	}
	var got struct {
		ByConnection map[string]struct {
			Verification *verify.Report `json:"verification"`
		} `json:"by_connection"`
	}
	if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
		t.Fatalf("status --json: %v in %s", err, out.String())
	}
	if g := got.ByConnection["acme"].Verification; g == nil || !reflect.DeepEqual(*g, *v) {
		t.Errorf("status --json carries verification %+v, want %+v", g, v)
	}
}
