package poller_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/pipeline"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/verify"
)

// verifyWorld is the pipeline `halosync serve` builds, in process, over a simulated
// tenant on a virtual clock: the store in memory, and a queue the test drains through
// the pipeline's worker, as the local server's pump does.
type verifyWorld struct {
	clock  *halosim.Clock
	tenant *halosim.Tenant
	store  *storetest.Memory
	counts *metrics.Memory
	pipe   *pipeline.Pipeline
	doc    string // the configuration

	mu     sync.Mutex
	queued []message.Message
	// repairs are the changes verification enqueued, by the worker applied.
	repairs []change.Change
}

const verifyConn = "acme"

func (w *verifyWorld) Send(_ context.Context, msgs []message.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queued = append(w.queued, msgs...)
	return nil
}

// drain has the worker apply what is queued.
func (w *verifyWorld) drain(t testing.TB) {
	t.Helper()
	for {
		w.mu.Lock()
		msgs := w.queued
		w.queued = nil
		w.mu.Unlock()
		if len(msgs) == 0 {
			return
		}
		for i, m := range msgs {
			env, err := message.Decode(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(env.Change.Event, "verify: ") {
				w.repairs = append(w.repairs, env.Change)
			}
			if _, err := w.pipe.Worker.Process(context.Background(), fmt.Sprintf("m-%d", i), m.Body); err != nil {
				t.Fatalf("worker: %v", err)
			}
		}
	}
}

// newVerifyWorld seeds a tenant of clients clients, builds the pipeline with section as
// the connection's settings below its webhook: (webhook mode, unless section has a poll:
// of its own) and brings the copy through its first sync. In webhook mode, after the
// first sync only the daily reconcile and verification read Halo, so whatever the copy
// lacks is verification's to find.
func newVerifyWorld(t testing.TB, clients int, section string) *verifyWorld {
	t.Helper()
	clock := halosim.NewClock(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	tenant := halosim.New(halosim.Options{Clock: clock.Now, RateLimit: halosim.HaloRateLimit, SendRetryAfter: true,
		StrictParams: true})
	t.Cleanup(tenant.Close)
	tenant.Seed(rand.New(rand.NewPCG(7, 11)), clients)
	w := &verifyWorld{clock: clock, tenant: tenant, store: storetest.NewMemory(), counts: metrics.NewMemory()}
	if !strings.Contains(section, "poll:") {
		section += "    poll: {mode: webhook}\n"
	}
	w.doc = `connections:
  - id: ` + verifyConn + `
    halo:
      base_url: ` + tenant.URL() + `
      client_id: ` + tenant.Options().ClientID + `
      client_secret: ` + tenant.Options().ClientSecret + `
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["verify-test-password-0123456789"]
` + section
	w.build(t)
	for range 20 {
		w.tick(t)
		if c, err := poller.ReadCursor(context.Background(), w.store, verifyConn, change.Asset); err != nil {
			t.Fatal(err)
		} else if c.Backfilled {
			break
		}
	}
	w.tick(t) // the first reconcile, due once the first sync is done; the next is a day away
	w.repairs = nil
	return w
}

// build makes the pipeline anew, as each run of the poller function is a new process in
// AWS: a new client, a full budget, nothing remembered but the store.
func (w *verifyWorld) build(t testing.TB) {
	t.Helper()
	cfg, err := config.Parse(context.Background(), []byte(w.doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := w.clock
	w.pipe, err = pipeline.Build(cfg, pipeline.Ports{
		Store: w.store, Queue: w, Count: w.counts, Log: testLog(t),
		Now: clock.Now, Poll: poller.RunOptions{Now: clock.Now},
		HaloClient: func(c *connection.Connection) (*haloapi.Client, error) {
			h := c.Config.Halo
			return haloapi.NewClient(haloapi.ClientOptions{
				BaseURL: h.BaseURL, ClientID: h.ClientID, ClientSecret: h.ClientSecret, Scope: h.Scope,
				Budget: haloapi.NewBudget(h.Budget.Count(), h.Budget.Window(), clock), Timeout: h.Timeout(), Clock: clock,
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tick is a minute of the run loop: one run, the queue drained, the clock on.
func (w *verifyWorld) tick(t testing.TB) {
	t.Helper()
	if _, err := w.pipe.Poller.Run(context.Background(), false, nil); err != nil {
		t.Fatal(err)
	}
	w.drain(t)
	w.clock.Advance(time.Minute)
}

func (w *verifyWorld) stored(t testing.TB, kind change.Kind, id string) change.Object {
	t.Helper()
	o, _, err := w.store.Get(context.Background(), verifyConn, kind, id, "")
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (w *verifyWorld) apply(t testing.TB, c change.Change) {
	t.Helper()
	c.Connection, c.Source = verifyConn, change.SourceWebhook
	if _, err := w.store.Apply(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// equalsHalo fails unless the copy's object of kind and id is what Halo holds.
func (w *verifyWorld) equalsHalo(t testing.TB, kind change.Kind, id int64) {
	t.Helper()
	var halo map[string]any
	if obj, ok := w.tenant.Object(kind, id); ok {
		halo = obj
	}
	o := w.stored(t, kind, fmt.Sprint(id))
	v, err := verify.Compare(kind, halo, &o, verify.Rules{Versions: change.VersionRule{MaxSkew: change.DefaultMaxVersionSkew}}, w.clock.Now())
	if err != nil || v.Cause != verify.Equal {
		t.Errorf("%s %d after repair: %+v, %v; want equal to Halo", kind, id, v, err)
	}
}

func TestVerificationFindsAndRepairsPlantedFaults(t *testing.T) {
	ctx := context.Background()
	w := newVerifyWorld(t, 3, "    verify: {window_hours: 2}\n")
	tickets := w.tenant.Objects(change.Ticket)
	id := func(o map[string]any) int64 {
		n, err := strconv.ParseInt(fmt.Sprint(o["id"]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	lost, wrong, future, gone := id(tickets[0]), id(tickets[1]), id(tickets[2]), id(tickets[3])
	client := id(w.tenant.Objects(change.Client)[0])

	// A lost webhook: Halo changes a ticket, and the delivery never arrives.
	w.tenant.Upsert(change.Ticket, map[string]any{"id": lost, "summary": "changed while the webhook was lost"})
	// A wrong field in the copy, at Halo's own version.
	o := w.stored(t, change.Ticket, fmt.Sprint(wrong))
	bad := map[string]any{}
	for k, v := range o.Fields {
		bad[k] = v
	}
	bad["summary"] = "not what Halo says"
	w.apply(t, change.Change{Kind: change.Ticket, ID: fmt.Sprint(wrong), Op: change.OpUpsert, Version: o.Version, Repairs: o.Version, Fields: bad})
	// A version from the future: the copy's fields are Halo's, its version an hour ahead.
	o = w.stored(t, change.Ticket, fmt.Sprint(future))
	w.apply(t, change.Change{Kind: change.Ticket, ID: fmt.Sprint(future), Op: change.OpUpsert,
		Version: change.VersionOf(w.clock.Now().Add(time.Hour)), Fields: o.Fields})
	// A ticket deleted in Halo without an event.
	w.tenant.Delete(change.Ticket, gone)
	// An object missing from the copy: a client the copy holds a tombstone of, alive in Halo.
	c := w.stored(t, change.Client, fmt.Sprint(client))
	w.apply(t, change.Change{Kind: change.Client, ID: fmt.Sprint(client), Op: change.OpDelete, Version: c.Version + 1})

	want := map[string]verify.Cause{
		key(change.Ticket, fmt.Sprint(lost), ""): verify.Stale, key(change.Ticket, fmt.Sprint(wrong), ""): verify.Fields,
		key(change.Ticket, fmt.Sprint(future), ""): verify.Ahead, key(change.Ticket, fmt.Sprint(gone), ""): verify.Extra,
		key(change.Client, fmt.Sprint(client), ""): verify.Missing,
	}
	found := map[string]change.Change{}
	// The window is two hours: each fault must be found and repaired well within it.
	for minute := 0; minute < 60 && len(found) < len(want); minute++ {
		w.tick(t)
		for _, r := range w.repairs {
			k := key(r.Kind, r.ID, r.ParentID)
			if cause, ok := want[k]; ok && r.Event == "verify: "+string(cause) {
				found[k] = r
			}
		}
	}
	for k, cause := range want {
		r, ok := found[k]
		if !ok {
			t.Errorf("%s (%s) not repaired within the hour", k, cause)
			continue
		}
		ds, err := w.store.Deliveries(ctx, verifyConn, r.DeliveryID)
		if err != nil || len(ds) != 1 || ds[0].Event != "verify: "+string(cause) || ds[0].Outcome != change.Applied {
			t.Errorf("%s: delivery record %+v, %v; want one applied, event %q", k, ds, err, "verify: "+string(cause))
		}
	}
	for _, tid := range []int64{lost, wrong, future, gone} {
		w.equalsHalo(t, change.Ticket, tid)
	}
	w.equalsHalo(t, change.Client, client)
	for cause, n := range map[verify.Cause]int64{verify.Stale: 1, verify.Fields: 1, verify.Ahead: 1, verify.Extra: 1} {
		if got := w.counts.Value(metrics.Metric{Name: metrics.VerifyRepaired, Connection: verifyConn, Label: string(cause)}); got < n {
			t.Errorf("VerifyRepaired{%s} = %d, want at least %d", cause, got, n)
		}
	}
	if got := w.counts.Value(metrics.Metric{Name: metrics.VerifyRepaired, Connection: verifyConn, Label: string(verify.Missing)}); got < 1 {
		t.Errorf("VerifyRepaired{missing} = %d", got)
	}
	rep, err := poller.ReadVerification(ctx, w.store, verifyConn, 2*time.Hour, w.clock.Now())
	if err != nil || rep == nil || rep.All.Repaired < len(want) || rep.All.Checked <= rep.All.Repaired {
		t.Fatalf("report %+v, %v", rep, err)
	}
}

func TestVerificationWithoutFaultsEstimatesAllEqual(t *testing.T) {
	ctx := context.Background()
	w := newVerifyWorld(t, 3, "")
	for range 10 {
		w.tick(t)
	}
	if len(w.repairs) != 0 {
		t.Fatalf("repairs with no fault planted: %+v", w.repairs)
	}
	rep, err := poller.ReadVerification(ctx, w.store, verifyConn, 24*time.Hour, w.clock.Now())
	if err != nil || rep == nil {
		t.Fatalf("report %v, %v", rep, err)
	}
	low, high := verify.Wilson(rep.All.Checked, rep.All.Checked)
	if rep.All.Checked < 100 || rep.All.Equal != rep.All.Checked || rep.All.Estimate != 1 || rep.All.Low != low || rep.All.High != high || low >= 1 {
		t.Fatalf("estimate %+v; want every check equal, 100%% within [%.4f, %.4f]", rep.All, low, high)
	}
	for _, kind := range []change.Kind{change.Ticket, change.Client, change.Contact, change.Asset, change.Action} {
		if rep.Kinds[string(kind)].Checked == 0 {
			t.Errorf("no %s checked in ten minutes", kind)
		}
	}
	if got := w.counts.Value(metrics.Metric{Name: metrics.VerifyEqualShare, Connection: verifyConn, Label: "all"}); got != 100 {
		t.Errorf("VerifyEqualShare{all} = %d, want 100", got)
	}
	if got := w.counts.Value(metrics.Metric{Name: metrics.VerifyEqualShareLow, Connection: verifyConn, Label: "all"}); got >= 100 || got < 90 {
		t.Errorf("VerifyEqualShareLow{all} = %d, want the Wilson bound below 100", got)
	}
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tw{t}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type tw struct{ t testing.TB }

func (w tw) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// TestVerificationReadsHaloAgainBeforeItRepairsAVersionAhead: Halo's listing is read
// before the copy, so a change the webhooks brought in between looks like a version
// ahead of Halo's. Verification reads the object again, after the copy, and judges by
// that: equal, and nothing undone. Halo's object still behind the copy is a version
// from the future: repaired whatever its fields.
func TestVerificationReadsHaloAgainBeforeItRepairsAVersionAhead(t *testing.T) {
	ctx := context.Background()
	listed := map[string]any{"id": "1", "summary": "before", "last_update": "2026-09-25T07:00:00"}
	newer := map[string]any{"id": "1", "summary": "after", "last_update": "2026-09-25T07:30:00"}
	for name, tt := range map[string]struct {
		read      map[string]any // Halo's object read again
		wantCause verify.Cause
	}{
		"a webhook's change in between": {read: newer, wantCause: verify.Equal},
		"a version from the future":     {read: listed, wantCause: verify.Ahead},
	} {
		t.Run(name, func(t *testing.T) {
			store := storetest.NewMemory()
			q := &applying{store: store}
			pin(t, store, change.VersionOf(time.Date(2026, 9, 25, 7, 30, 0, 0, time.UTC)), newer)
			halo := &tickets{listed: map[string]map[string]any{"1": listed}, read: map[string]map[string]any{"1": tt.read}}
			p := versionsPoller(halo, store, q, metrics.NewMemory())
			res, err := p.Verify(ctx, poller.VerifyRun{Budget: 5, Repair: true})
			if err != nil || len(res.Findings) == 0 {
				t.Fatalf("findings %+v, %v", res.Findings, err)
			}
			if f := res.Findings[0]; f.Verdict.Cause != tt.wantCause || f.Repaired != (tt.wantCause != verify.Equal) || halo.gets == 0 {
				t.Fatalf("finding %+v after %d reads by id; want %s", f, halo.gets, tt.wantCause)
			}
			o, _, _ := store.Get(ctx, "default", change.Ticket, "1", "")
			if want := tt.read["summary"]; o.Fields["summary"] != want {
				t.Fatalf("the copy's summary %v; want %v", o.Fields["summary"], want)
			}
			if tt.wantCause == verify.Ahead && (len(q.sent) != 1 || q.sent[0].Repairs == 0 || q.sent[0].Event != "verify: ahead" ||
				o.Version != change.VersionOf(time.Date(2026, 9, 25, 7, 0, 0, 0, time.UTC))) {
				t.Fatalf("sent %+v, stored version %d; want a repair down to Halo's marker", q.sent, o.Version)
			}
		})
	}
}

// TestVerificationLeavesTheEndOfTheRunAlone: a pass near its run's deadline reads nothing,
// so that the run's state is saved in time.
func TestVerificationLeavesTheEndOfTheRunAlone(t *testing.T) {
	listed := map[string]any{"id": "1", "summary": "x", "last_update": "2026-09-25T07:00:00"}
	halo := &tickets{listed: map[string]map[string]any{"1": listed}}
	store := storetest.NewMemory()
	p := versionsPoller(halo, store, &applying{store: store}, metrics.NewMemory())
	for _, tt := range []struct {
		left  time.Duration
		reads bool
	}{{time.Second, false}, {time.Minute, true}} {
		ctx, cancel := context.WithTimeout(context.Background(), tt.left)
		res, err := p.Verify(ctx, poller.VerifyRun{Budget: 5, Repair: true})
		cancel()
		if err != nil || (len(res.Findings) > 0) != tt.reads {
			t.Errorf("%s before the deadline: %d findings, %v; want reads %v", tt.left, len(res.Findings), err, tt.reads)
		}
	}
}
