package poller_test

// Halo at MSP scale: what the poller costs in Halo requests and in time against a tenant
// of a managed service provider's size (halosim.MSPScale: 100,000 tickets, 600,000 notes,
// 3,000 clients, 30,000 users, 40,000 assets) that answers 429 with Retry-After beyond
// Halo's 300 requests per rolling five minutes.
//
// The poller is the one `halosync serve` and the poller function run: pipeline.Build's
// run loop (poller.Schedule) over the connection's default plan (hybrid: a poll every 15
// minutes, a daily reconcile) and its Halo client with the default budget (250 requests
// per five minutes). Everything runs on one virtual clock (halosim.Clock): the tenant's
// change markers and rate window, the poller's plan and watermarks, and the client's
// waits, which move the clock on instead of sleeping (budget waits, backoff,
// Retry-After). Each request also moves it on by a latency (mspLatency), so simulated
// hours take seconds. The copy keeps versions only (mspCopy), and the queue applies what
// the poller sends at once, as the worker would.
//
// Figures: requests/op and 429s/op as the tenant counted them, sim-min/op the simulated
// time, windows/op the five-minute windows of the tenant's whole limit the requests fill,
// %limit (backfill, day) the share of the tenant's limit they used over that time.
// `make bench` runs them at full size; HALOSYNC_BENCH_TICKETS=n scales every
// count to n tickets' worth, HALOSYNC_BENCH_LATENCY_MS sets the latency (default 250),
// HALOSYNC_BENCH_DAY_HOURS the part of a day BenchmarkMSPDay simulates (default 3).
// docs/PERFORMANCE.md, "Halo at MSP scale", records them.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
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
)

const mspConn = "msp"

// mspStart is where the virtual clock starts.
var mspStart = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// mspScale is MSPScale, or with HALOSYNC_BENCH_TICKETS=n every count scaled to n tickets.
func mspScale(b testing.TB) halosim.Scale {
	s := halosim.MSPScale()
	if v := os.Getenv("HALOSYNC_BENCH_TICKETS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("HALOSYNC_BENCH_TICKETS=%q: not a positive number", v)
		}
		s = s.Divided(max(s.Tickets/n, 1))
	}
	return s
}

// mspLatency is how long each request takes on the virtual clock.
func mspLatency(b testing.TB) time.Duration {
	ms := 250
	if v := os.Getenv("HALOSYNC_BENCH_LATENCY_MS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("HALOSYNC_BENCH_LATENCY_MS=%q: not a number of milliseconds", v)
		}
		ms = n
	}
	return time.Duration(ms) * time.Millisecond
}

// mspWorld is the tenant, the pipeline over a compact copy, and their clock.
type mspWorld struct {
	clock  *halosim.Clock
	tenant *halosim.Tenant
	copy   *mspCopy
	pipe   *pipeline.Pipeline
	rng    *rand.Rand
}

func newMSPWorld(b testing.TB, scale halosim.Scale) *mspWorld {
	b.Helper()
	clock := halosim.NewClock(mspStart)
	latency := mspLatency(b)
	tenant := halosim.New(halosim.Options{Clock: clock.Now, RateLimit: halosim.HaloRateLimit, SendRetryAfter: true,
		Faults: func(*http.Request) *halosim.Fault {
			clock.Advance(latency)
			return nil
		}})
	if err := tenant.SeedScale(1, scale); err != nil {
		b.Fatal(err)
	}
	w := &mspWorld{clock: clock, tenant: tenant, copy: newMSPCopy(), rng: rand.New(rand.NewPCG(3, 5))}
	w.pipe = w.build(b, "")
	return w
}

// incrementalKinds is the poll: section that reads clients, users and assets by their
// last-update filter instead of scanning them (whether Halo honours it there is
// unconfirmed; the simulated tenant does).
const incrementalKinds = "    poll: {kinds: {client: incremental, contact: incremental, asset: incremental}}\n"

// build makes the pipeline halosync serve makes for the tenant, with poll as the
// connection's poll: section ("" for the defaults).
func (w *mspWorld) build(b testing.TB, poll string) *pipeline.Pipeline {
	b.Helper()
	doc := `connections:
  - id: ` + mspConn + `
    halo:
      base_url: ` + w.tenant.URL() + `
      client_id: ` + w.tenant.Options().ClientID + `
      client_secret: ` + w.tenant.Options().ClientSecret + `
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["msp-benchmark-password-0123456789"]
    verify: {enabled: false}   # measured apart: BenchmarkVerifyHour
` + poll
	cfg, err := config.Parse(context.Background(), []byte(doc), nil)
	if err != nil {
		b.Fatal(err)
	}
	clock := w.clock
	pipe, err := pipeline.Build(cfg, pipeline.Ports{
		Store: w.copy, Queue: w.copy, Count: metrics.NewMemory(), Log: slog.New(slog.DiscardHandler),
		Now: clock.Now, Poll: poller.RunOptions{Now: clock.Now},
		// The client FromConfig makes, on the virtual clock.
		HaloClient: func(c *connection.Connection) (*haloapi.Client, error) {
			h := c.Config.Halo
			return haloapi.NewClient(haloapi.ClientOptions{
				BaseURL: h.BaseURL, AuthURL: h.AuthURL, Tenant: h.Tenant, ClientID: h.ClientID, ClientSecret: h.ClientSecret,
				Scope: h.Scope, Budget: haloapi.NewBudget(h.Budget.Count(), h.Budget.Window(), clock),
				Timeout: h.Timeout(), Clock: clock,
			})
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return pipe
}

// withPoll is the world with another pipeline, of poll as its poll: section, over the
// same tenant, copy and cursors: it goes on from where the world's own polls stopped. Its
// client gets its token before, so that a poll measured costs what it would in a
// pipeline running for a while ("": the world itself). Each benchmark starts with it,
// five minutes on.
func (w *mspWorld) withPoll(b testing.TB, poll string) *mspWorld {
	// Another pipeline's budget knows nothing of this one's requests: the tenant's window
	// is left to clear first, as it is between any two benchmarks.
	w.clock.Advance(5 * time.Minute)
	if poll == "" {
		return w
	}
	v := *w
	v.pipe = w.build(b, poll)
	if _, err := v.pipe.Halo[mspConn].Get(context.Background(), change.Client, "12"); err != nil {
		b.Fatal(err)
	}
	return &v
}

// run is one tick of the run loop, as the schedule makes it: each connection's plan
// decides whether a poll or the reconcile is due.
func (w *mspWorld) run(b testing.TB) []poller.ConnectionResult {
	b.Helper()
	res, err := w.pipe.Poller.Run(context.Background(), false, nil)
	if err != nil {
		b.Fatalf("run at %s: %v (%+v)", w.clock.Now().Format(time.RFC3339), err, res)
	}
	for _, r := range res {
		if r.Error != "" {
			b.Fatalf("run at %s: %s", w.clock.Now().Format(time.RFC3339), r.Error)
		}
	}
	return res
}

// cost is what an operation cost: requests the tenant answered (429s among them) and
// the simulated time it took.
type cost struct {
	requests, limited int64
	took              time.Duration
}

func (w *mspWorld) measure(fn func()) cost {
	served, limited := w.tenant.RequestTotals()
	at := w.clock.Now()
	fn()
	s2, l2 := w.tenant.RequestTotals()
	return cost{requests: s2 - served, limited: l2 - limited, took: w.clock.Now().Sub(at)}
}

// limitShare is the share of the tenant's limit requests used over d, at least one window.
func limitShare(requests int64, d time.Duration) float64 {
	windows := max(float64(d)/float64(5*time.Minute), 1)
	return 100 * float64(requests) / (halosim.HaloRateLimit * windows)
}

// report reports an operation's cost per op: requests, 429s, simulated minutes, and the
// windows of the tenant's limit its requests fill (requests / 300). A long operation also
// reports %limit; for one shorter than a few windows that share says little, as the
// budget starts it with a full window.
func report(b *testing.B, c cost, n int, prefix string, long bool) {
	b.ReportMetric(float64(c.requests)/float64(n), prefix+"requests/op")
	b.ReportMetric(float64(c.limited)/float64(n), prefix+"429s/op")
	b.ReportMetric(c.took.Minutes()/float64(n), prefix+"sim-min/op")
	b.ReportMetric(float64(c.requests)/float64(n)/halosim.HaloRateLimit, prefix+"windows/op")
	if long {
		b.ReportMetric(limitShare(c.requests, c.took), prefix+"%limit")
	}
}

// openTickets lists the tenant's open tickets.
func (w *mspWorld) openTickets() map[string]bool {
	open := map[string]bool{}
	for _, tk := range w.tenant.Objects(change.Ticket) {
		if id, _ := tk["status_id"].(int64); id != 9 && tk["deleted"] != true {
			open[fmt.Sprint(tk["id"])] = true
		}
	}
	return open
}

// backfill runs the first sync, and returns its cost and the cost until every open
// ticket was in the copy.
func (w *mspWorld) backfill(b testing.TB) (all, open cost) {
	b.Helper()
	waiting := w.openTickets()
	served, limited := w.tenant.RequestTotals()
	at := w.clock.Now()
	w.copy.onApply = func(c change.Change) {
		if c.Kind == change.Ticket && waiting[c.ID] {
			delete(waiting, c.ID)
			if len(waiting) == 0 {
				s2, l2 := w.tenant.RequestTotals()
				open = cost{requests: s2 - served, limited: l2 - limited, took: w.clock.Now().Sub(at)}
			}
		}
	}
	// The poller keeps within its share of the tenant's limit: a backfill that spent it
	// pauses, and the next tick of the schedule (every minute, as in AWS) goes on.
	all = w.measure(func() {
		for w.run(b); !w.backfilled(b); w.run(b) {
			w.clock.Advance(time.Minute)
		}
	})
	w.copy.onApply = nil
	if len(waiting) > 0 {
		b.Fatalf("after the backfill %d open tickets are not in the copy", len(waiting))
	}
	return all, open
}

// backfilled reports whether every polled kind's first sync is done.
func (w *mspWorld) backfilled(b testing.TB) bool {
	b.Helper()
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
		c, err := poller.ReadCursor(context.Background(), w.copy, mspConn, kind)
		if err != nil {
			b.Fatal(err)
		}
		if !c.Backfilled {
			return false
		}
	}
	return true
}

// settle runs the first scheduled run after the backfill: its catch-up poll and the
// first reconcile.
func (w *mspWorld) settle(b testing.TB) {
	b.Helper()
	w.clock.Advance(15 * time.Minute)
	w.run(b)
}

var (
	mspMu     sync.Mutex
	mspShared *mspWorld // backfilled and settled, for the benchmarks after the backfill
)

// sharedMSPWorld is a backfilled world, made once per process (the backfill takes a while).
func sharedMSPWorld(b *testing.B) *mspWorld {
	b.Helper()
	mspMu.Lock()
	defer mspMu.Unlock()
	if mspShared == nil {
		w := newMSPWorld(b, mspScale(b))
		w.backfill(b)
		w.settle(b)
		mspShared = w
	}
	return mspShared
}

// share makes w the world the later benchmarks use, closing the one it replaces. The
// shared world's tenant stays up until the process ends.
func share(w *mspWorld) {
	mspMu.Lock()
	defer mspMu.Unlock()
	if mspShared != nil {
		mspShared.tenant.Close()
	}
	mspShared = w
}

// BenchmarkMSPBackfill: the first sync of an MSP tenant (every kind, every ticket's
// notes), and (open-) until every open ticket is in the copy.
func BenchmarkMSPBackfill(b *testing.B) {
	var all, open cost
	for b.Loop() {
		b.StopTimer()
		w := newMSPWorld(b, mspScale(b))
		b.StartTimer()
		a, o := w.backfill(b)
		b.StopTimer()
		all.requests, all.limited, all.took = all.requests+a.requests, all.limited+a.limited, all.took+a.took
		open.requests, open.limited, open.took = open.requests+o.requests, open.limited+o.limited, open.took+o.took
		w.settle(b)
		share(w)
		b.StartTimer()
	}
	report(b, all, b.N, "", true)
	report(b, open, b.N, "open-", true)
}

// kindModes are the two ways BenchmarkMSPPoll and BenchmarkMSPDay read clients, users
// and assets: scanned in full (the default) or incrementally.
func kindModes() []struct{ name, poll string } {
	return []struct{ name, poll string }{{"kinds=scan", ""}, {"kinds=incremental", incrementalKinds}}
}

// BenchmarkMSPPoll: one scheduled poll of a backfilled MSP tenant, 15 minutes after the
// last, in which nothing changed, or in which the generator made 100 or 1,000 changes that
// no webhook brought; with clients, users and assets scanned (the default) or read
// incrementally.
func BenchmarkMSPPoll(b *testing.B) {
	for _, mode := range kindModes() {
		b.Run(mode.name, func(b *testing.B) {
			w := sharedMSPWorld(b).withPoll(b, mode.poll)
			for _, n := range []int{0, 100, 1000} {
				name := fmt.Sprintf("changes=%d", n)
				if n == 0 {
					name = "quiet"
				}
				b.Run(name, func(b *testing.B) { benchmarkPoll(b, w, n) })
			}
		})
	}
}

func benchmarkPoll(b *testing.B, w *mspWorld, n int) {
	var total cost
	for b.Loop() {
		b.StopTimer()
		// The changes come spread over the interval; the poll is due at its end.
		for range n {
			w.clock.Advance(15 * time.Minute / time.Duration(n+1))
			w.tenant.Step(w.rng)
		}
		w.clock.Advance(15*time.Minute - time.Duration(n)*(15*time.Minute/time.Duration(n+1)))
		b.StartTimer()
		var polled bool
		c := w.measure(func() {
			for _, r := range w.run(b) {
				polled = polled || r.Polled
			}
		})
		if !polled {
			b.Fatal("the poll was not due")
		}
		total.requests, total.limited, total.took = total.requests+c.requests, total.limited+c.limited, total.took+c.took
	}
	report(b, total, b.N, "", false)
}

// mspDay is how much of a day BenchmarkMSPDay simulates: HALOSYNC_BENCH_DAY_HOURS
// (default 3, so that make bench stays within minutes: a whole day of an MSP tenant's
// polls takes several minutes of real time, and its polls repeat through the day).
func mspDay(b *testing.B) time.Duration {
	hours := 3
	if v := os.Getenv("HALOSYNC_BENCH_DAY_HOURS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 24 {
			b.Fatalf("HALOSYNC_BENCH_DAY_HOURS=%q: not a number of hours from 1 to 24", v)
		}
		hours = n
	}
	return time.Duration(hours) * time.Hour
}

// BenchmarkMSPDay: hybrid mode through a day: changes arrive by webhook (the copy takes
// them as the worker would, and the worker's heartbeat is kept), changesPerDay of them
// spread evenly, while the run loop ticks every minute and polls and reconciles when the
// plan says so; with clients, users and assets scanned (the default) or read
// incrementally. It simulates mspDay of the day and reports per day: the polls repeat
// through a day, and the daily reconcile's few id listings are the only other requests.
func BenchmarkMSPDay(b *testing.B) {
	for _, mode := range kindModes() {
		b.Run(mode.name, func(b *testing.B) { benchmarkDay(b, sharedMSPWorld(b).withPoll(b, mode.poll)) })
	}
}

func benchmarkDay(b *testing.B, w *mspWorld) {
	const changesPerDay = 3000
	span := mspDay(b)
	var total cost
	polls, gap := 0, 0
	for b.Loop() {
		start := w.clock.Now()
		made := 0
		c := w.measure(func() {
			for w.clock.Now().Before(start.Add(span)) {
				due := int(float64(changesPerDay) * float64(w.clock.Now().Sub(start)) / float64(24*time.Hour))
				for ; made < due; made++ {
					w.webhook(b, w.tenant.Step(w.rng))
				}
				tick := w.clock.Now()
				for _, r := range w.run(b) {
					if r.Polled {
						polls++
					}
					for _, n := range r.Gap {
						gap += n
					}
				}
				if next := tick.Add(time.Minute); w.clock.Now().Before(next) {
					w.clock.Set(next)
				}
			}
		})
		total.requests, total.limited, total.took = total.requests+c.requests, total.limited+c.limited, total.took+c.took
	}
	days := total.took.Hours() / 24
	b.ReportMetric(float64(total.requests)/days, "requests/day")
	b.ReportMetric(float64(total.limited)/days, "429s/day")
	b.ReportMetric(float64(polls)/days, "polls/day")
	b.ReportMetric(float64(gap)/days, "gap/day")
	b.ReportMetric(limitShare(total.requests, total.took), "%limit")
}

// webhook brings an event's objects into the copy, as a webhook delivery the worker
// applies would, with the worker's heartbeat.
func (w *mspWorld) webhook(b testing.TB, e halosim.Event) {
	b.Helper()
	ctx := context.Background()
	if len(e.Objects) == 0 { // a hard delete
		c := change.Change{Connection: mspConn, Kind: e.Kind, ID: fmt.Sprint(e.ObjectID), Op: change.OpDelete,
			Version: change.VersionOf(e.Timestamp)}
		w.copy.apply(c)
	}
	for kind, obj := range e.Objects {
		spec, _ := change.Lookup(kind)
		c := change.Change{Connection: mspConn, Kind: kind, ID: fmt.Sprint(obj["id"]), Op: change.OpUpsert, Fields: obj}
		if kind == e.Kind {
			c.Op = e.Op
		}
		if spec.Parent != "" {
			c.ParentID = fmt.Sprint(obj[spec.ParentField])
		}
		marker, _, err := change.ParseHaloTime(fmt.Sprint(obj[spec.VersionField]))
		if err != nil {
			b.Fatal(err)
		}
		c.Version = change.VersionOf(marker)
		w.copy.apply(c)
	}
	if err := poller.Heartbeat(ctx, w.copy, mspConn, w.clock.Now()); err != nil {
		b.Fatal(err)
	}
}

// TestMSPWorldConverges: at a small size, the benchmarks' world brings the whole tenant
// into the copy: after the backfill, and after three hours of changes, one in ten reaching
// no webhook, then the next day's poll and reconcile (a missed hard delete is found by
// the reconcile only), every object is in the copy at the tenant's version, under the
// tenant's rate limit.
func TestMSPWorldConverges(t *testing.T) {
	w := newMSPWorld(t, halosim.MSPScale().Divided(1000))
	w.backfill(t)
	w.wantConverged(t, "after the backfill")
	start := w.clock.Now()
	for i := 0; w.clock.Now().Before(start.Add(3 * time.Hour)); i++ {
		e := w.tenant.Step(w.rng)
		if i%10 != 0 { // one change in ten reaches no webhook: the polls find it
			w.webhook(t, e)
		}
		w.run(t)
		w.clock.Advance(time.Minute)
	}
	w.clock.Advance(24 * time.Hour)
	w.run(t)
	w.wantConverged(t, "after the changes, the next poll and the reconcile")
}

// wantConverged fails the test unless the copy holds every object of the tenant at its
// version (a deleted ticket as a tombstone), and nothing else that is not deleted.
func (w *mspWorld) wantConverged(t *testing.T, when string) {
	t.Helper()
	want := map[mspKey]mspObject{}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		spec, _ := change.Lookup(kind)
		for _, o := range w.tenant.Objects(kind) {
			k := mspKey{kind: kind, id: fmt.Sprint(o["id"])}
			if spec.Parent != "" {
				k.parent = fmt.Sprint(o[spec.ParentField])
			}
			marker, _, err := change.ParseHaloTime(fmt.Sprint(o[spec.VersionField]))
			if err != nil {
				t.Fatal(err)
			}
			want[k] = mspObject{version: change.VersionOf(marker), deleted: o["deleted"] == true}
		}
	}
	w.copy.mu.Lock()
	defer w.copy.mu.Unlock()
	for k, o := range want {
		if got, ok := w.copy.objects[k]; !ok || got != o {
			t.Errorf("%s: %s %s (under %q): copy %+v (held %v), tenant %+v", when, k.kind, k.id, k.parent, got, ok, o)
		}
	}
	for k, o := range w.copy.objects {
		if _, ok := want[k]; !ok && !o.deleted {
			t.Errorf("%s: the copy holds %s %s, which the tenant does not", when, k.kind, k.id)
		}
	}
	if _, limited := w.tenant.RequestTotals(); limited > 0 {
		t.Errorf("%s: %d requests answered 429", when, limited)
	}
}

// ---- the copy ----

// mspCopy is a store and a queue in one: what is sent is applied at once, newest version
// wins, and only versions and tombstones are kept (the poller reads no more of the copy
// unless a version of Halo's goes back, which this tenant's never do).
type mspCopy struct {
	mu      sync.Mutex
	objects map[mspKey]mspObject
	cursors map[string][]byte
	onApply func(change.Change) // called with each change applied
}

type mspKey struct {
	kind       change.Kind
	id, parent string
}

type mspObject struct {
	version int64
	deleted bool
}

func newMSPCopy() *mspCopy {
	return &mspCopy{objects: map[mspKey]mspObject{}, cursors: map[string][]byte{}}
}

// Send applies the changes the poller enqueues.
func (m *mspCopy) Send(_ context.Context, msgs []message.Message) error {
	for _, msg := range msgs {
		env, err := message.Decode(msg.Body)
		if err != nil {
			return fmt.Errorf("decode a queued change: %w", err)
		}
		m.apply(env.Change)
	}
	return nil
}

func (m *mspCopy) apply(c change.Change) bool {
	m.mu.Lock()
	k := mspKey{kind: c.Kind, id: c.ID, parent: c.ParentID}
	applied := c.Version > m.objects[k].version
	if applied {
		m.objects[k] = mspObject{version: c.Version, deleted: c.Op == change.OpDelete || c.Deleted()}
	}
	hook := m.onApply
	m.mu.Unlock()
	if applied && hook != nil {
		hook(c)
	}
	return applied
}

func (m *mspCopy) Apply(_ context.Context, c change.Change) (change.Result, error) {
	if m.apply(c) {
		return change.Result{Outcome: change.Applied}, nil
	}
	return change.Result{Outcome: change.Stale}, nil
}

func (m *mspCopy) Get(_ context.Context, conn string, kind change.Kind, id, parent string) (change.Object, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[mspKey{kind: kind, id: id, parent: parent}]
	return change.Object{Connection: conn, Kind: kind, ID: id, ParentID: parent, Version: o.version, Deleted: o.deleted}, ok, nil
}

func (m *mspCopy) RecordDelivery(context.Context, change.Delivery) error { return nil }

func (m *mspCopy) LoadCursor(_ context.Context, _, name string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	doc, ok := m.cursors[name]
	return doc, ok, nil
}

func (m *mspCopy) SaveCursor(_ context.Context, _, name string, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursors[name] = append([]byte(nil), doc...)
	return nil
}

func (m *mspCopy) StoredIDs(_ context.Context, _ string, kind change.Kind, fn func([]change.StoredID) error) error {
	m.mu.Lock()
	var ids []change.StoredID
	for k, o := range m.objects {
		if k.kind == kind {
			ids = append(ids, change.StoredID{ID: k.id, ParentID: k.parent, Deleted: o.deleted})
		}
	}
	m.mu.Unlock()
	return fn(ids)
}
