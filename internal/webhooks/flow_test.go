package webhooks_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/sqlite"
	"github.com/halosync/halosync/internal/webhooks"
)

// ours is our endpoint for real: the local server (ingest, embedded queue, worker, store),
// behind a switch that plays an outage (503 to everything).
type ours struct {
	url   string
	down  atomic.Bool
	store interface {
		Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error)
	}
}

func startOurs(t *testing.T) *ours {
	t.Helper()
	cfg, err := config.Parse(context.Background(), []byte(`connections:
  - id: acme
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["an-old-password-1", "`+secret+`"]
        - scheme: hmac
          header: Token
          secrets: ["`+hmacSecret+`"]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, dlq := localserver.Queues(db, cfg.Queue)
	srv, err := localserver.New(cfg, localserver.Options{Store: db.Store(), Queue: q, DeadLetter: dlq, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	o := &ours{store: db.Store()}
	h := srv.Handler()
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.down.Load() {
			http.Error(w, `{"error":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Pump(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	o.url = front.URL + "/webhooks/halo/acme"
	return o
}

// ticketEvents makes ticket changes of the kinds the webhook is subscribed to.
func ticketEvents(t *testing.T, tn *halosim.Tenant, rng *rand.Rand, n int) []halosim.Event {
	t.Helper()
	kinds := []halosim.ChangeType{halosim.NewTicket, halosim.ChangeStatus, halosim.AddNote, halosim.UpdateTicket}
	var out []halosim.Event
	for i := 0; i < n; i++ {
		e, ok := tn.Do(rng, kinds[i%len(kinds)])
		if !ok {
			t.Fatalf("no %s change possible", kinds[i%len(kinds)])
		}
		out = append(out, e)
	}
	return out
}

// TestReplayConvergesTheCopy: deliveries lost in an outage of our endpoint are read from
// Halo's delivery log and sent again through the same ingest path; the copy then holds
// every ticket as Halo has it. Status tells the outage from the log first.
func TestReplayConvergesTheCopy(t *testing.T) {
	o := startOurs(t)
	s := newSetup(t, halosim.Options{}, strings.Replace(manageYAML, endpoint, o.url, 1))
	s.mgr.Probe = webhooks.ProbeSpec(nil)
	started := time.Now().Add(-time.Minute)
	id := s.apply()
	rng := rand.New(rand.NewPCG(6, 7))
	s.tenant.Seed(rng, 3)
	sender, err := s.tenant.WebhookSender(id, halosim.SenderOptions{PayloadType: halosim.PayloadFull})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// deliver flushes after each event: one delivery per event (a batch of one, as the
	// webhook batches), so the log has one entry per event.
	deliver := func(events []halosim.Event) (c halosim.Counts) {
		for _, e := range events {
			sender.Send(e)
			n, err := sender.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c.Sent, c.Failed = c.Sent+n.Sent, c.Failed+n.Failed
		}
		return c
	}
	events := ticketEvents(t, s.tenant, rng, 3)
	if c := deliver(events); c.Sent != 3 {
		t.Fatalf("before the outage: %+v", c)
	}
	o.down.Store(true)
	lost := ticketEvents(t, s.tenant, rng, 14)
	events = append(events, lost...)
	const queued = 14
	if c := deliver(lost); c.Failed != queued {
		t.Fatalf("during the outage: %+v", c)
	}
	o.down.Store(false)

	st, err := s.mgr.Status(ctx, s.spec, started)
	if err != nil || !st.Healthy || st.Deliveries == nil || st.Deliveries.Succeeded != 3 || st.Deliveries.Failed != queued ||
		!strings.HasPrefix(st.Deliveries.LastError, "HTTP 503") || st.Deliveries.LastSuccess == nil || st.Deliveries.LastFailure.Before(*st.Deliveries.LastSuccess) {
		t.Fatalf("status: %+v %+v %v", st, st.Deliveries, err)
	}

	dry, err := s.mgr.Replay(ctx, s.spec, webhooks.EndpointFor(s.spec), webhooks.ReplayOptions{Since: started, DryRun: true})
	if err != nil || dry.Sent != 0 || dry.ToSend() != queued || dry.Failed != queued || dry.Read != queued+3 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	r, err := s.mgr.Replay(ctx, s.spec, webhooks.EndpointFor(s.spec), webhooks.ReplayOptions{Since: started})
	if err != nil || r.Sent != queued || r.Accepted != queued || r.Refused != 0 {
		t.Fatalf("replay: %+v %v", r, err)
	}

	// Every ticket an event named is in the copy as the tenant has it now.
	want := map[string]string{}
	for _, e := range events {
		tk, ok := s.tenant.Object(change.Ticket, e.ObjectID)
		if !ok {
			t.Fatalf("ticket %d gone", e.ObjectID)
		}
		want[fmt.Sprint(e.ObjectID)] = fmt.Sprint(tk["last_update"])
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := []string{}
		for id, lu := range want {
			obj, ok, err := o.store.Get(ctx, "acme", change.Ticket, id, "")
			if err != nil {
				t.Fatal(err)
			}
			if !ok || fmt.Sprint(obj.Fields["last_update"]) != lu {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tickets %v not converged after the replay", missing)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Replaying again sends the failed bodies once more: nothing changes, all accepted
	// (the worker counts them duplicate).
	again, err := s.mgr.Replay(ctx, s.spec, webhooks.EndpointFor(s.spec), webhooks.ReplayOptions{Since: started})
	if err != nil || again.Accepted != queued {
		t.Fatalf("replay again: %+v %v", again, err)
	}
	// A window before the outage finds nothing.
	none, err := s.mgr.Replay(ctx, s.spec, webhooks.EndpointFor(s.spec), webhooks.ReplayOptions{Since: started, Until: started.Add(time.Second)})
	if err != nil || none.Read != 0 || none.Sent != 0 {
		t.Fatalf("empty window: %+v %v", none, err)
	}
}

// halosTest plays Halo's test delivery: asked for one, the tenant delivers an event
// through the webhook (the fake itself ignores _test).
type halosTest struct {
	*haloapi.Client
	send func()
}

func (h halosTest) TestWebhook(ctx context.Context, id string) error {
	if err := h.Client.TestWebhook(ctx, id); err != nil {
		return err
	}
	h.send()
	return nil
}

// TestTestDelivery: Halo's test delivery is found in its log and judged by our answer;
// when Halo logs none, a signed sample is sent from here instead.
func TestTestDelivery(t *testing.T) {
	o := startOurs(t)
	s := newSetup(t, halosim.Options{}, strings.Replace(manageYAML, endpoint, o.url, 1))
	ctx := context.Background()
	quick := webhooks.TestOptions{Wait: 50 * time.Millisecond, Every: 10 * time.Millisecond}
	if _, err := s.mgr.Test(ctx, s.spec, webhooks.EndpointFor(s.spec), quick); err == nil || !strings.Contains(err.Error(), "apply") {
		t.Fatalf("test without a webhook: %v", err)
	}
	id := s.apply()

	r, err := s.mgr.Test(ctx, s.spec, webhooks.EndpointFor(s.spec), quick)
	if err != nil || r.Via != "direct" || !r.Arrived || !r.Accepted || r.Status != 200 || !strings.Contains(r.HaloTest, "no delivery appeared") {
		t.Fatalf("fallback: %+v %v", r, err)
	}

	rng := rand.New(rand.NewPCG(8, 9))
	s.tenant.Seed(rng, 2)
	sender, err := s.tenant.WebhookSender(id, halosim.SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := &webhooks.Manager{API: halosTest{Client: s.client, send: func() {
		sender.Send(ticketEvents(t, s.tenant, rng, 1)...)
		if _, err := sender.Flush(ctx); err != nil {
			t.Error(err)
		}
	}}}
	if r, err = m.Test(ctx, s.spec, webhooks.EndpointFor(s.spec), quick); err != nil || r.Via != "halo" || !r.Accepted || r.Status != 200 {
		t.Fatalf("Halo's test: %+v %v", r, err)
	}
	o.down.Store(true)
	if r, err = m.Test(ctx, s.spec, webhooks.EndpointFor(s.spec), quick); err != nil || r.Via != "halo" || !r.Arrived || r.Accepted || !strings.Contains(r.Detail, "503") {
		t.Fatalf("Halo's test, refused: %+v %v", r, err)
	}
	if r, err = s.mgr.Test(ctx, s.spec, webhooks.EndpointFor(s.spec), quick); err != nil || r.Via != "direct" || !r.Arrived || r.Accepted || r.Status != 503 {
		t.Fatalf("fallback, refused: %+v %v", r, err)
	}
	s.tenant.SetWebhookAccess(false)
	if _, err := s.mgr.Test(ctx, s.spec, webhooks.EndpointFor(s.spec), quick); !errors.Is(err, haloapi.ErrForbidden) {
		t.Fatalf("forbidden: %v", err)
	}
}

// TestStatus: a healthy webhook, then one Halo disabled and someone edited.
func TestStatus(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	ctx := context.Background()
	st, err := s.mgr.Status(ctx, s.spec, time.Time{})
	if err != nil || st.Exists || st.Healthy || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "webhooks apply") {
		t.Fatalf("before apply: %+v %v", st, err)
	}
	id := s.apply()
	st, err = s.mgr.Status(ctx, s.spec, time.Now().Add(-time.Hour))
	if err != nil || !st.Healthy || !st.Exists || st.WebhookID != id || !st.Active || !st.URLOK || !st.AuthOK || !st.EventsOK ||
		st.Deliveries == nil || st.Deliveries.Succeeded+st.Deliveries.Failed != 0 {
		t.Fatalf("healthy: %+v %v", st, err)
	}
	s.raw("/api/Webhook", `[{"id":"`+id+`","active":true,"disabled":true,"basic_password":"other-password","batch_limit":7}]`)
	s.raw("/api/Notification", `[{"webhook_id":"`+id+`","eventno":999}]`)
	st, err = s.mgr.Status(ctx, s.spec, time.Time{})
	if err != nil || st.Healthy || !st.Disabled || st.AuthOK || !st.URLOK || st.EventsOK || len(st.ExtraEvents) != 1 || st.Deliveries != nil {
		t.Fatalf("unhealthy: %+v %v", st, err)
	}
	all := strings.Join(st.Problems, "\n")
	for _, want := range []string{"disabled by Halo", "authentication differs", "settings differ: batch_limit", "also subscribed to eventno [999]"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(fmt.Sprintf("%+v %#v %v", st, s.spec, s.plan()), secret) {
		t.Fatal("a secret prints")
	}
}

// TestSignedBodyWebhook: a webhook managed with auth hmac is set up as Halo's signed body
// (authentication_type 3, Token), and the deliveries Halo then signs pass our endpoint.
func TestSignedBodyWebhook(t *testing.T) {
	o := startOurs(t)
	s := newSetup(t, halosim.Options{}, strings.Replace(manageYAML, endpoint, o.url, 1)+"        auth: hmac\n")
	s.mgr.Probe = webhooks.ProbeSpec(nil)
	id := s.apply()
	w, _ := s.tenant.Webhook(id)
	if text(w["authentication_type"]) != "3" || text(w["authentication_header"]) != "Token" || text(w["basic_password"]) != hmacSecret {
		t.Fatalf("webhook %v", w)
	}
	rng := rand.New(rand.NewPCG(4, 5))
	s.tenant.Seed(rng, 2)
	sender, err := s.tenant.WebhookSender(id, halosim.SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ticketEvents(t, s.tenant, rng, 4) {
		sender.Send(e)
		if c, err := sender.Flush(context.Background()); err != nil || c.Sent != 1 {
			t.Fatalf("delivery: %+v %v", c, err)
		}
	}
	if p := s.plan(); p.Changes() {
		t.Fatalf("second plan: %v", p.Lines())
	}
}

// TestBackupWebhook: with backup_url, apply makes two webhooks, the primary and the
// backup, with the same events and authentication; Halo delivers every change to both.
// The primary's endpoint refuses connections: every change reaches the copy through the
// backup, and status names the primary as the failing endpoint, not the backup.
func TestBackupWebhook(t *testing.T) {
	o := startOurs(t)
	primaryURL := halotest.RefusedURL(t, "/webhooks/halo/acme")
	s := newSetup(t, halosim.Options{}, strings.Replace(manageYAML, endpoint, primaryURL, 1)+"        backup_url: "+o.url+"\n")
	if len(s.specs) != 2 {
		t.Fatalf("specs %v, want the primary and the backup", s.specs)
	}
	primary, backup := s.specs[0], s.specs[1]
	if primary.Endpoint != change.EndpointPrimary || primary.Name != "halosync:acme" || primary.URL != primaryURL ||
		backup.Endpoint != change.EndpointBackup || backup.Name != "halosync:acme (backup)" || backup.URL != o.url ||
		fmt.Sprint(backup.Events) != fmt.Sprint(primary.Events) || backup.Auth != primary.Auth {
		t.Fatalf("primary %v\nbackup %v", primary, backup)
	}
	ctx := context.Background()
	started := time.Now().Add(-time.Minute)
	ids := map[string]string{}
	for _, spec := range s.specs {
		p, err := s.mgr.Plan(ctx, spec)
		if err != nil || !p.Create {
			t.Fatalf("%s: plan %v %v", spec.Name, p.Lines(), err)
		}
		if ids[spec.Endpoint], err = s.mgr.Apply(ctx, p); err != nil {
			t.Fatalf("%s: %v", spec.Name, err)
		}
	}
	// Each is recognised as itself, not as the other's duplicate: a second apply changes nothing.
	for _, spec := range s.specs {
		if p, err := s.mgr.Plan(ctx, spec); err != nil || p.Changes() || p.WebhookID != ids[spec.Endpoint] {
			t.Fatalf("%s: second plan %v %v", spec.Name, p.Lines(), err)
		}
	}
	if len(s.tenant.Webhooks()) != 2 {
		t.Fatalf("%d webhooks in Halo, want 2", len(s.tenant.Webhooks()))
	}

	rng := rand.New(rand.NewPCG(10, 11))
	s.tenant.Seed(rng, 3)
	var senders []*halosim.Sender
	for i, spec := range s.specs {
		sender, err := s.tenant.WebhookSender(ids[spec.Endpoint], halosim.SenderOptions{PayloadType: halosim.PayloadFull, Rand: rand.New(rand.NewPCG(uint64(i), 12))})
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, sender)
	}
	events := ticketEvents(t, s.tenant, rng, 8)
	for _, e := range events {
		for _, sender := range senders {
			sender.Send(e)
			if _, err := sender.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if p, b := senders[0].Stats(), senders[1].Stats(); p.Sent != 0 || p.Failed != len(events) || b.Sent != len(events) || b.Failed != 0 {
		t.Fatalf("primary %+v, backup %+v", p, b)
	}

	var sts []webhooks.Status
	for _, spec := range s.specs {
		st, err := s.mgr.Status(ctx, spec, started)
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	if st := sts[0]; st.Endpoint != change.EndpointPrimary || !st.Failing || !st.Healthy || st.Deliveries.Failed != len(events) ||
		!strings.Contains(strings.Join(st.Problems, "\n"), "primary endpoint failing: "+primaryURL) {
		t.Fatalf("primary status %+v %+v", st, st.Deliveries)
	}
	if st := sts[1]; st.Endpoint != change.EndpointBackup || st.Failing || !st.Healthy || st.Deliveries.Succeeded != len(events) || len(st.Problems) != 0 {
		t.Fatalf("backup status %+v %+v", st, st.Deliveries)
	}
	if got := webhooks.FailingEndpoints(sts); len(got) != 1 || got[0] != "acme primary ("+primaryURL+")" {
		t.Fatalf("failing endpoints %q", got)
	}

	// Every ticket an event named is in the copy as the tenant has it now.
	deadline := time.Now().Add(10 * time.Second)
	for _, e := range events {
		tk, _ := s.tenant.Object(change.Ticket, e.ObjectID)
		for {
			obj, ok, err := o.store.Get(ctx, "acme", change.Ticket, fmt.Sprint(e.ObjectID), "")
			if err != nil {
				t.Fatal(err)
			}
			if ok && fmt.Sprint(obj.Fields["last_update"]) == fmt.Sprint(tk["last_update"]) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ticket %d not in the copy as Halo has it", e.ObjectID)
			}
			time.Sleep(20 * time.Millisecond) // polling the worker's writes, bounded by deadline
		}
	}

	// Removing one leaves the other.
	if r, err := s.mgr.Remove(ctx, primary, false); err != nil || len(r.Webhooks) != 1 || r.Webhooks[0] != ids[change.EndpointPrimary] {
		t.Fatalf("remove primary: %+v %v", r, err)
	}
	if _, ok := s.tenant.Webhook(ids[change.EndpointBackup]); !ok {
		t.Fatal("removing the primary removed the backup")
	}
}
