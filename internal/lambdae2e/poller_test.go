package lambdae2e

// The poller through the emulated Lambda path: the poller function's bootstrap under the
// runtime interface emulator, invoked with the sample scheduled event (what EventBridge
// sends every minute), reading a seeded fake Halo tenant and enqueueing on the SQS
// stand-in; the event source mapping (played) has the worker function apply what it
// enqueued to DynamoDB Local.
//
// 1. The first run backfills: every object of the seeded tenant (which raised no webhook
//    events for them) is enqueued, applied, and the copy equals the tenant.
// 2. The tenant then changes; its webhook (a halotest sender, full payloads, through API
//    Gateway played in-test into the ingest function under its emulator) loses 30% of
//    its deliveries. What it delivered is applied.
// 3. The poller runs again, forced by the event's detail: the connection's schedule
//    (hybrid mode) would poll it only 15 minutes after the first run, and the test runs in
//    seconds. The poll enqueues exactly what the copy lacks (every object whose tenant
//    change marker is newer than the copy's version, the tickets Halo deleted among them,
//    counted as WebhookGap per kind), and the reconcile that follows (the first since the
//    backfill) leaves tombstones for the hard deletes whose webhooks were lost. Once
//    applied, the copy equals the tenant exactly (converge.Compare, as the convergence run
//    compares).
//
// Hard deletes the copy never heard of (an object created and deleted with both webhooks
// lost) are not expected in the copy: nothing anywhere still knows of them, and the copy
// must not hold them (wantTableHoldsOnly).

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
)

// The run's shape.
const (
	pollerSeed      = 20261127
	pollerClients   = 4   // seeded clients, each with contacts, assets, tickets and notes
	pollerSteps     = 60  // tenant changes after the backfill
	pollerDropRate  = 0.3 // share of webhook deliveries lost
	pollerWebhookPw = "poller-basic-secret"
	pollerDrain     = 30 * time.Second
)

// pollerConfig is the connection: the fake tenant's API with a generous budget, and the
// webhook's authentication. poll: is left at its defaults (hybrid, every 15 minutes).
func pollerConfig(tenantURL string) string {
	return `connections:
  - id: default
    halo:
      base_url: ` + tenantURL + `
      client_id: halotest-client
      client_secret: halotest-secret
      budget: {requests: 100000, window_seconds: 300}
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["` + pollerWebhookPw + `"]
`
}

// TestPollerCatchesWhatTheWebhooksMissed runs the scenario above.
func TestPollerCatchesWhatTheWebhooksMissed(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := newStack(t, "poller")
	// The tenant's clock starts at ours and only moves on: Halo's clock is not behind ours
	// by more than the poller's overlap (2 minutes).
	clock := halosim.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	tenant := halotest.Start(t, halosim.Options{Clock: clock.Now})
	rng := rand.New(rand.NewPCG(pollerSeed, 1))
	tenant.Seed(rng, pollerClients)
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, []byte(pollerConfig(tenant.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	ingestFn := startConfigured(t, s, "ingest", cfgFile, warmupIngest)
	workerFn := startConfigured(t, s, "worker", cfgFile, events.SQSEvent{Records: []events.SQSMessage{}})
	get := func(kind change.Kind, id, parentID string) (change.Object, bool, error) {
		return s.store.Get(t.Context(), conn, kind, id, parentID)
	}
	p := newPlayer(t, s.queue, workerFn, s.player.arn)
	p.wait = 200 * time.Millisecond

	// 1. The first run, with the sample scheduled event: the backfill. (It is the
	// function's warm-up invoke, so its cold start is in it.)
	scheduled := sampleEvent(t, "poller-schedule.json")
	pollerFn, out := startPollerFunction(t, s, cfgFile, scheduled)
	first := decodeAs[awslambda.PollResult](t, pollerFn, out)
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(scheduled, &ev); err != nil {
		t.Fatal(err)
	}
	if len(first.Connections) != 1 || first.EventID != ev.ID {
		t.Fatalf("first run: %+v", first)
	}
	backfill := first.Connections[0]
	if !backfill.Polled || backfill.Error != "" || len(backfill.Gap) != 0 {
		t.Fatalf("first run: %+v; want the connection polled, without error or webhook gap", backfill)
	}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		if n := tenant.Count(kind); n == 0 || backfill.Enqueued[kind] != n {
			t.Errorf("backfill: %s: enqueued %d of the tenant's %d", kind, backfill.Enqueued[kind], n)
		}
	}
	p.runUntil(pollerDrain, "the backfill applied", func() bool { return s.depth(t, s.qURL) == 0 })
	converge.WantConverged(t, converge.Expectations(t, tenant, nil), nil, get)
	if t.Failed() {
		t.FailNow()
	}

	// 2. The tenant changes; its webhook loses some of the deliveries.
	gw := httptest.NewServer(&apiGateway{t: t, fn: ingestFn})
	t.Cleanup(gw.Close)
	sender := halosim.NewSender(halosim.SenderOptions{
		URL: gw.URL + ingest.PathPrefix + conn, Auth: halosim.BasicAuth("halo", pollerWebhookPw),
		PayloadType: halosim.PayloadFull, DropRate: pollerDropRate, Rand: rand.New(rand.NewPCG(pollerSeed, 2)),
		Tenant: tenant, HTTPClient: &http.Client{Timeout: 30 * time.Second},
	})
	clock.Set(later(clock.Now(), time.Now().UTC()))
	var sent []converge.SentEvent
	for range pollerSteps {
		clock.Advance(time.Second + time.Duration(rng.Int64N(int64(20*time.Second))))
		e := tenant.Step(rng)
		sent = append(sent, converge.SentEvent{Event: e, Payload: halosim.PayloadFull})
		sender.Send(e)
	}
	// And, whatever the random steps did, two hard deletes whose deliveries are lost for
	// certain: only the reconcile can find them.
	lost := halosim.NewSender(halosim.SenderOptions{URL: gw.URL, PayloadType: halosim.PayloadFull, DropRate: 1, Tenant: tenant})
	for _, ct := range []halosim.ChangeType{halosim.DeleteUser, halosim.DeleteAsset} {
		clock.Advance(time.Second)
		e, ok := tenant.Do(rng, ct)
		if !ok {
			t.Fatalf("the tenant has nothing to %s", ct)
		}
		sent = append(sent, converge.SentEvent{Event: e, Payload: halosim.PayloadFull})
		lost.Send(e)
	}
	clock.Advance(2 * time.Second) // Halo delivers after it raised the events
	delivered, err := sender.Flush(t.Context())
	if err != nil || delivered.Failed != 0 || delivered.Dropped == 0 || delivered.Sent == 0 {
		t.Fatalf("webhook: %+v, %v; want some deliveries sent, some dropped, none refused", delivered, err)
	}
	if c, err := lost.Flush(t.Context()); err != nil || c.Dropped != 2 || c.Sent+c.Failed != 0 {
		t.Fatalf("the lost deliveries: %+v, %v", c, err)
	}
	p.runUntil(pollerDrain, "the delivered changes applied", func() bool { return s.depth(t, s.qURL) == 0 })

	// What the copy lacks now: every object whose tenant change marker is newer than the
	// copy's version (the poll's gap), and every hard delete whose object the copy still
	// holds alive (the reconcile's).
	exps := converge.Expectations(t, tenant, sent)
	wantGap := map[change.Kind]int{}
	wantDeletes := map[converge.Key]bool{}
	deletedTickets := map[converge.Key]bool{} // the tickets Halo deleted that the copy does not show deleted yet
	var kept []converge.Expectation
	for _, x := range exps {
		o, ok, err := get(x.Kind, x.ID, x.ParentID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case x.Fields == nil: // a hard delete
			if !ok {
				continue // the copy never heard of it
			}
			if !o.Deleted {
				wantDeletes[x.Key] = true
			}
		case !ok || o.Version < x.Marker:
			wantGap[x.Kind]++
			if x.Deleted {
				deletedTickets[x.Key] = true
			}
		}
		kept = append(kept, x)
	}
	exps = kept
	if len(wantGap) == 0 || len(wantDeletes) < 2 {
		t.Fatalf("after %d of %d deliveries were lost the copy lacks %v and holds %d deleted objects alive: the scenario tests too little",
			delivered.Dropped, pollerSteps, wantGap, len(wantDeletes))
	}

	// 3. The poller again, forced.
	ev.ID, ev.Time = "forced-"+strconv.FormatInt(time.Now().UnixNano(), 36), time.Now().UTC().Truncate(time.Second)
	ev.Detail = json.RawMessage(`{"force": true}`)
	second := invokeAs[awslambda.PollResult](t, pollerFn, ev)
	if len(second.Connections) != 1 || !second.Connections[0].Polled || second.Connections[0].Error != "" {
		t.Fatalf("second run: %+v", second)
	}
	gap := second.Connections[0].Gap
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		if gap[kind] != wantGap[kind] || second.Connections[0].Enqueued[kind] != wantGap[kind] {
			t.Errorf("second run: %s: gap %d, enqueued %d; the copy lacked %d", kind, gap[kind], second.Connections[0].Enqueued[kind], wantGap[kind])
		}
	}
	p.runUntil(pollerDrain, "the poll's changes applied", func() bool { return s.depth(t, s.qURL) == 0 })
	converge.WantConverged(t, exps, sent, get)
	wantTableHoldsOnly(t, s, exps)

	// The reconcile (after the poll, in the same run) tombstones every hard delete the copy
	// still held alive. It may also tombstone a ticket Halo deleted that the poll has just
	// found and enqueued: the worker has not applied that yet, and Halo's id list leaves
	// deleted tickets out.
	reconciled := map[converge.Key]bool{}
	for _, r := range logRecords(t, pollerFn, "INFO") {
		var msg, kind, id string
		_ = json.Unmarshal(r["msg"], &msg)
		if msg != "reconcile: deleted in Halo" {
			continue
		}
		_ = json.Unmarshal(r["kind"], &kind)
		_ = json.Unmarshal(r["id"], &id)
		reconciled[converge.Key{Kind: change.Kind(kind), ID: id}] = true
	}
	for k := range wantDeletes {
		if !reconciled[k] {
			t.Errorf("the reconcile left %s, which Halo deleted, alive", k)
		}
	}
	for k := range reconciled {
		if !wantDeletes[k] && !deletedTickets[k] {
			t.Errorf("the reconcile deleted %s, which is neither gone from Halo nor a deleted ticket the poll found", k)
		}
	}

	// The poller's EMF output counts the gap: the poll's, and the reconcile's deletes.
	totalGap := int64(len(reconciled))
	for _, n := range wantGap {
		totalGap += int64(n)
	}
	emf := awaitTotal(t, pollerFn, metrics.WebhookGap, totalGap)
	for kind, n := range gap {
		if got := emf[metrics.Metric{Name: metrics.WebhookGap, Connection: conn, Label: string(kind)}]; got < int64(n) {
			t.Errorf("WebhookGap{%s} = %d in the EMF output, the poll reported %d", kind, got, n)
		}
	}
	if failed := emf.only(metrics.PollsFailed); len(failed) != 0 {
		t.Errorf("PollsFailed:%s", failed)
	}
	for id, n := range p.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, truncate(p.bodies[id], 300))
	}
	if d := s.depth(t, s.dlqURL); d != 0 {
		t.Errorf("%d messages on the dead-letter queue", d)
	}
	for _, f := range []*function{pollerFn, workerFn, ingestFn} {
		if errs := logRecords(t, f, "ERROR"); len(errs) > 0 {
			t.Errorf("%s logged %d errors, the first: %s", f.name, len(errs), mustJSON(errs[0]))
		}
	}
	t.Logf("%d changes, %d deliveries lost; the poll found %v, the reconcile deleted %v (hard deletes expected: %d); %d worker invokes; %v in all",
		pollerSteps, delivered.Dropped, gap, slices.Collect(maps.Keys(reconciled)), len(wantDeletes), p.invokes, time.Since(start).Round(time.Millisecond))
}

// startPollerFunction runs the poller's bootstrap under its own emulator on the stack's
// queue and table, configured by cfgFile, with warmup (a scheduled event: the first run)
// as its warm-up invoke, and returns that invoke's answer too.
func startPollerFunction(t *testing.T, s *stack, cfgFile string, warmup []byte) (*function, []byte) {
	t.Helper()
	bins := build(t)
	env := s.env(t, "poller", cfgFile, "info")
	return startFunction(t, bins.rie, "poller", bins.bootstrap["poller"], env, warmup)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
