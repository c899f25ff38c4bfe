package localserver_test

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
)

// connStatus is one connection's part of GET /status, as callers read it.
type connStatus struct {
	SyncMode string `json:"sync_mode"`
	Polled   bool   `json:"polled"`
	Fallback struct {
		Active bool       `json:"active"`
		Since  *time.Time `json:"since"`
	} `json:"fallback"`
	LastDelivery      *time.Time `json:"last_delivery"`
	LastWebhookChange *time.Time `json:"last_webhook_change"`
	Webhook           struct {
		Managed   bool       `json:"managed"`
		CheckedAt *time.Time `json:"checked_at"`
		Healthy   *bool      `json:"healthy"`
	} `json:"webhook"`
	Objects  map[string]int64 `json:"objects"`
	Backfill []struct {
		Kind  string `json:"kind"`
		State string `json:"state"`
	} `json:"backfill"`
	SyncLatencyMS struct {
		Avg         float64 `json:"avg"`
		LastHourAvg float64 `json:"last_hour_avg"`
		LastHourMax int64   `json:"last_hour_max"`
	} `json:"sync_latency_ms"`
	Errors map[string]map[string]int64 `json:"errors"`
}

type fullStatus struct {
	Counters     []metrics.Entry       `json:"counters"`
	Connections  []string              `json:"connections"`
	ByConnection map[string]connStatus `json:"by_connection"`
	DeadLetters  *struct {
		Count  int `json:"count"`
		Newest []struct {
			Connection string `json:"connection"`
			Reason     string `json:"reason"`
		} `json:"newest"`
	} `json:"dead_letters"`
}

func (s *testServer) fullStatus(t *testing.T) fullStatus {
	t.Helper()
	r := do(t, http.MethodGet, s.url+"/status", bearer, nil)
	var st fullStatus
	if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil {
		t.Fatalf("GET /status: %d %s", r.status, r.body)
	}
	return st
}

// A webhook-only connection's status: its mode, its last delivery, the objects its copy
// holds per kind, the sync latency as a mean in milliseconds, its errors by reason.
func TestStatusShowsEachConnection(t *testing.T) {
	s := startServer(t, testConfig())
	before := time.Now().UTC().Truncate(time.Millisecond) // the status keeps milliseconds
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	s.waitDeliveries(t, "default", "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10")
	if r := s.deliver(t, "default", authtest.Basic(user, "wrong"), sampleBody(t, "ingest-ticket-full.json")); r.status != http.StatusUnauthorized {
		t.Fatalf("a wrong password answered %d", r.status)
	}
	var c connStatus
	// The worker writes its heartbeat (last_webhook_change) after the record.
	eventually(t, pollTimeout, "the ticket counted", func() (bool, string) {
		st := s.fullStatus(t)
		c = st.ByConnection["default"]
		b, _ := json.Marshal(st)
		return c.Objects["ticket"] == 1 && c.LastWebhookChange != nil, string(b)
	})
	if c.SyncMode != "webhook" || c.Polled || c.Webhook.Managed || c.Webhook.CheckedAt != nil || c.Fallback.Active || len(c.Backfill) != 0 {
		t.Errorf("a connection without halo: settings: %+v, want webhook only, not polled, webhook not managed", c)
	}
	if c.LastDelivery == nil || c.LastDelivery.Before(before) || c.LastDelivery.After(time.Now()) {
		t.Errorf("last_delivery %v, want the delivery's time", c.LastDelivery)
	}
	// The sample's change is months old: its latency is large, and a mean of one.
	if c.SyncLatencyMS.Avg <= 0 || c.SyncLatencyMS.LastHourAvg != c.SyncLatencyMS.Avg || c.SyncLatencyMS.LastHourMax != int64(c.SyncLatencyMS.Avg) {
		t.Errorf("sync_latency_ms %+v, want one observation's milliseconds", c.SyncLatencyMS)
	}
	if c.Errors["rejected"]["credentials_wrong"] != 1 {
		t.Errorf("errors %v, want one rejection for credentials_wrong", c.Errors)
	}
	// The counters are still there, a timing with its mean.
	st := s.fullStatus(t)
	found := false
	for _, e := range st.Counters {
		if e.Name == metrics.SyncLatency && e.Connection == "default" {
			found = e.Observations == 1 && e.AvgMS == float64(e.Value)
		}
	}
	if !found || len(st.Connections) != 1 {
		t.Errorf("counters %+v, connections %v: want SyncLatency with its one observation", st.Counters, st.Connections)
	}
	if st.DeadLetters == nil || st.DeadLetters.Count != 0 {
		t.Errorf("dead_letters %+v, want none", st.DeadLetters)
	}
}

// The webhook endpoint's refusals and filtered changes are in the recent list with their
// reason, never with a secret or the body; a delivery to no configured connection is
// listed under _unknown.
func TestRecentListsTheEndpointsRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.Connections[0].Webhook.Filters.Clients.Deny = []string{"12"} // the sample ticket's client
	s := startServer(t, cfg)
	const guess = "a-guessed-password-7"
	body := sampleBody(t, "ingest-ticket-full.json")
	if r := s.deliver(t, "default", authtest.Basic(user, guess), body); r.status != http.StatusUnauthorized {
		t.Fatalf("a wrong password answered %d", r.status)
	}
	if r := s.deliver(t, "nosuch", authtest.Basic(user, password), body); r.status != http.StatusNotFound {
		t.Fatalf("an unknown connection answered %d", r.status)
	}
	if r := s.deliver(t, "default", authtest.Basic(user, password), []byte("{not json")); r.status != http.StatusBadRequest {
		t.Fatalf("bad JSON answered %d", r.status)
	}
	s.deliverOK(t, body)
	ds, r := s.recent(t, "")
	if len(ds) != 4 {
		t.Fatalf("recent: %s, want four records", r.body)
	}
	want := []struct {
		conn    string
		outcome change.Outcome
		reason  string
	}{{"default", change.Filtered, ""}, {"default", localserver.Rejected, "invalid_json"}, {"_unknown", localserver.Rejected, "unknown_connection"},
		{"default", localserver.Rejected, "credentials_wrong"}}
	for i, w := range want {
		d := ds[i]
		if d.Connection != w.conn || d.Outcome != w.outcome || (w.reason != "" && d.Reason != w.reason) || d.Reason == "" || d.ProcessedAt.IsZero() {
			t.Errorf("record %d: %+v, want %s %s %s", i, d, w.conn, w.outcome, w.reason)
		}
	}
	if d := ds[0]; d.Kind != change.Ticket || d.ID != "4242" || d.DeliveryID == "" {
		t.Errorf("the filtered record %+v, want ticket 4242 with its delivery id", d)
	}
	for _, leak := range []string{guess, password, "nosuch", "not json", "Printer"} {
		if strings.Contains(string(r.body), leak) {
			t.Errorf("the recent list carries %q: %s", leak, r.body)
		}
	}
}

// The per-minute trends count deliveries, refusals, changes applied and the latency, and
// they survive a restart, as the last delivery's time does.
func TestTrendsSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "halosync.db")
	s := startServer(t, testConfig(), onFile(path))
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	s.deliver(t, "default", authtest.Basic(user, "wrong"), sampleBody(t, "ingest-ticket-full.json"))
	type minute struct {
		Deliveries, Rejected, Applied int64
		LatencyMaxMS                  int64 `json:"latency_max_ms"`
	}
	trends := func(s *testServer) []minute {
		r := do(t, http.MethodGet, s.url+"/trends?connection=default&hours=24", bearer, nil)
		var out struct {
			Minutes []minute `json:"minutes"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &out) != nil {
			t.Fatalf("GET /trends: %d %s", r.status, r.body)
		}
		return out.Minutes
	}
	// A delivery at the turn of a minute counts in two: the test sums them.
	sum := func(ms []minute) (m minute) {
		for _, x := range ms {
			m.Deliveries += x.Deliveries
			m.Rejected += x.Rejected
			m.Applied += x.Applied
			m.LatencyMaxMS = max(m.LatencyMaxMS, x.LatencyMaxMS)
		}
		return m
	}
	var before []minute
	eventually(t, pollTimeout, "the trends counted", func() (bool, string) {
		before = trends(s)
		m := sum(before)
		b, _ := json.Marshal(before)
		return m.Deliveries == 1 && m.Rejected == 1 && m.Applied == 1 && m.LatencyMaxMS > 0, string(b)
	})
	last := s.fullStatus(t).ByConnection["default"].LastDelivery
	s.stop()

	s = startServer(t, testConfig(), onFile(path))
	after := trends(s)
	if b, a := sum(before), sum(after); a != b || len(after) != len(before) {
		t.Errorf("after a restart the trends are %+v, want %+v", after, before)
	}
	if got := s.fullStatus(t).ByConnection["default"].LastDelivery; got == nil || last == nil || !got.Equal(*last) {
		t.Errorf("after a restart last_delivery is %v, want %v", got, last)
	}
}

// polledConfig is the test configuration with connection default polling a seeded
// simulated tenant and managing its webhook there.
func polledConfig(t *testing.T) (*halosim.Tenant, *config.Config) {
	t.Helper()
	tenant := halotest.Start(t, halosim.Options{})
	tenant.Seed(rand.New(rand.NewPCG(3, 5)), 3)
	cfg := testConfig()
	cfg.Connections[0].Halo = config.Halo{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID, ClientSecret: tenant.Options().ClientSecret}
	cfg.Connections[0].Webhook.Manage = &config.WebhookManage{URL: "https://halosync.example.com/webhooks/halo/default"}
	return tenant, cfg
}

// A polled connection with a managed webhook: its mode, its backfill done per kind, the
// objects its copy holds, and the webhook's last check (the simulated tenant has no
// webhook yet, so the check finds it missing and the fallback engages).
func TestStatusShowsAPolledConnection(t *testing.T) {
	tenant, cfg := polledConfig(t)
	s := startServer(t, cfg)
	c := s.fullStatus(t).ByConnection["default"]
	if c.SyncMode != "hybrid" || !c.Polled || !c.Webhook.Managed || c.Webhook.CheckedAt != nil || len(c.Backfill) != 4 || c.Backfill[0].State != "pending" {
		t.Fatalf("before the first poll: %+v, want hybrid, polled, managed but not checked, backfill pending", c)
	}
	checked := time.Now()
	if _, err := s.srv.Pipeline().Poller.Run(t.Context(), true, nil); err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, pollTimeout, "the queue drained", drained)
	c = s.fullStatus(t).ByConnection["default"]
	for _, b := range c.Backfill {
		if b.State != "done" {
			t.Errorf("backfill of %s is %s, want done", b.Kind, b.State)
		}
	}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		if got, want := c.Objects[string(kind)], int64(tenant.Count(kind)); got != want {
			eventually(t, 2*time.Second, "the object counts", func() (bool, string) {
				c = s.fullStatus(t).ByConnection["default"]
				b, _ := json.Marshal(c.Objects)
				return c.Objects[string(kind)] == want, string(b)
			})
		}
	}
	if c.Webhook.CheckedAt == nil || c.Webhook.CheckedAt.Before(checked.Add(-time.Second)) || c.Webhook.Healthy == nil || *c.Webhook.Healthy {
		t.Errorf("webhook %+v, want checked now and found unhealthy (missing)", c.Webhook)
	}
	if !c.Fallback.Active || c.Fallback.Since == nil {
		t.Errorf("fallback %+v, want active since the check", c.Fallback)
	}
}
