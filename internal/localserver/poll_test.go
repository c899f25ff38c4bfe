package localserver_test

// The poller through `halosync serve`: the real local server (the SQLite store and queue in
// a temporary directory, the worker pump, the HTTP server) with a connection whose halo:
// settings point at a fake Halo tenant (halotest) on a clock the test controls, webhook
// deliveries made over real HTTP by halotest senders, and the poller built exactly as
// cmd/halosync/serve.go builds it: one haloapi.Client per connection, shared by the worker's
// fetches and the poller, poller.OptionsOf and poller.PlanOf of the connection, the SQLite
// store as the poller's copy, cursors and stored-id listing, the server's counters.
// internal/lambdae2e/poller_test.go runs the poller through the emulated Lambda path.
//
// What differs from serve, and why:
//
//   - Options.Now is the tenant's clock shifted by a chosen skew (0 unless the scenario is
//     about skew), so that the plan's intervals, the silence window and the watermarks can
//     be walked through in fake minutes.
//   - The test drives runner.Run itself instead of srv.SetPollers: serve's loop
//     (Server.Poll) only calls Run(ctx, false) on every tick of a real-time ticker, and the
//     plan decides by the poller's clock whether a poll is due; calling Run(ctx, false) at
//     chosen fake times exercises exactly those decisions, without racing the tenant's
//     changes and the webhook flushes against a ticker. No scenario needs force. The loop
//     itself is run by cmd/halosync's TestServePollsTheTenantAndSyncRestarts.
//   - The worker records the webhook heartbeat with its own clock, worker.now, which is
//     time.Now and cannot be set from outside package worker (localserver.New builds the
//     worker). In serve both sides run on the system clock, which is consistent; with the
//     poller on a fake clock it is not: a heartbeat written at the system time would be
//     hours or months away from the poller's "now". The store the worker writes through is
//     therefore wrapped (heartbeatClock): a heartbeat the worker writes is stored at the
//     poller's clock instead, and the system time it carried is kept for assertions. The
//     worker still decides when to write one (a webhook change applied, at most every 30 s
//     of system time per process); that throttle runs on the system clock too, so within
//     the few real seconds of a test one worker process writes one heartbeat, and the
//     fallback scenario restarts the server where it needs a second (see
//     TestPollFallbackEngagesAndRecovers).
//   - Where the client's backoff would sleep for real (429 with Retry-After, retried 5xx),
//     the client is made as haloapi.FromConfig makes it but with a clock whose sleeps move the
//     tenant's clock on (tenantSleeper); serve's FromConfig has no clock to inject.
//
// TestPollChangingLists holds the cases the scenarios found: lists that change while they
// are paged (a backfill or a reconcile), and the notes of a deleted ticket.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
)

const (
	plConn       = "default"
	plTenantName = "polled"
	plWebhookPw  = "poll-basic-secret"
	plHMAC       = "poll-hmac-secret"
	plSeed       = 20261127
	plDrain      = 30 * time.Second
	plRunTimeout = 30 * time.Second
	// plHeartbeat is the worker's heartbeat cursor (poller.webhookName, documented in
	// docs/ARCHITECTURE.md as _webhook).
	plHeartbeat = "_webhook"
	plSchedule  = "_schedule"
)

// plStart is where every tenant's clock starts.
var plStart = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)

// plKinds are the kinds the copy holds, in the poller's order, notes last.
var plKinds = []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action}

// plConfig is the connection: the tenant's API with a generous budget (Halo's own limit is
// the tenant's RateLimit), Basic and signed-body webhook authentication, and poll, the
// connection's poll: section (YAML indented under the connection), if any.
func plConfig(tenantURL, poll string) string {
	return `connections:
  - id: ` + plConn + `
    halo:
      base_url: ` + tenantURL + `
      tenant: ` + plTenantName + `
      client_id: halotest-client
      client_secret: halotest-secret
      budget: {requests: 100000, window_seconds: 300}
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["` + plWebhookPw + `"]
        - scheme: hmac
          header: Token
          secrets: ["` + plHMAC + `"]
` + poll + `queue:
  visibility_seconds: 30
  max_receive: 5
`
}

// ---- the harness ----

// plSetup shapes a scenario.
type plSetup struct {
	tenant halosim.Options // Clock, Faults and TenantName are the harness's
	poll   string          // the connection's poll: section
	skew   time.Duration   // the poller's clock minus the tenant's
	// fakeSleep makes the Halo client sleep on the tenant's clock (tenantSleeper).
	fakeSleep bool
	seed      uint64
}

// plHarness is a fake tenant, its clock, the configuration and the SQLite file: what
// outlives one run of the server.
type plHarness struct {
	t       *testing.T
	tenant  *halosim.Tenant
	clock   *halosim.Clock
	skew    time.Duration
	cfg     *config.Config
	path    string
	rng     *rand.Rand
	sleeper *tenantSleeper // nil: the client is haloapi.FromConfig's, as serve makes it
	faults  atomic.Pointer[func(*http.Request) *halosim.Fault]
	sent    []converge.SentEvent // every event the tenant raised, delivered or not
}

func newPlHarness(t *testing.T, o plSetup) *plHarness {
	t.Helper()
	clock := halosim.NewClock(plStart)
	h := &plHarness{t: t, clock: clock, skew: o.skew, rng: rand.New(rand.NewPCG(plSeed, o.seed))}
	opts := o.tenant
	opts.TenantName = plTenantName
	opts.Clock = clock.Now
	opts.Faults = func(r *http.Request) *halosim.Fault {
		if f := h.faults.Load(); f != nil {
			return (*f)(r)
		}
		return nil
	}
	h.tenant = halotest.Start(t, opts)
	cfg, err := config.Parse(t.Context(), []byte(plConfig(h.tenant.URL(), o.poll)), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = cfg
	h.path = filepath.Join(t.TempDir(), "halosync.db")
	if o.fakeSleep {
		h.sleeper = &tenantSleeper{clock: clock, skew: o.skew}
	}
	return h
}

// now is the poller's clock: the tenant's, shifted by the skew.
func (h *plHarness) now() time.Time { return h.clock.Now().Add(h.skew) }

// setFaults has the tenant ask f about every request (nil: no faults).
func (h *plHarness) setFaults(f func(*http.Request) *halosim.Fault) {
	if f == nil {
		h.faults.Store(nil)
		return
	}
	h.faults.Store(&f)
}

// do makes one change of a type, at the tenant's clock, and records its event.
func (h *plHarness) do(ct halosim.ChangeType) halosim.Event {
	h.t.Helper()
	e, ok := h.tenant.Do(h.rng, ct)
	if !ok {
		h.t.Fatalf("the tenant has nothing to %s", ct)
	}
	h.sent = append(h.sent, converge.SentEvent{Event: e, Payload: halosim.PayloadFull})
	return e
}

// step makes one random change and records its event, delivered by payload.
func (h *plHarness) step(payload halosim.PayloadType) halosim.Event {
	e := h.tenant.Step(h.rng)
	h.sent = append(h.sent, converge.SentEvent{Event: e, Payload: payload})
	return e
}

// ticketsTo adds new tickets (raising events nobody delivers: the backfill finds them)
// until the tenant holds n.
func (h *plHarness) ticketsTo(n int) {
	h.t.Helper()
	for h.tenant.Count(change.Ticket) < n {
		h.clock.Advance(time.Second)
		h.do(halosim.NewTicket)
	}
}

// client makes the connection's Halo client: haloapi.FromConfig's, or the same options with
// the tenant-sleeping clock.
func (h *plHarness) client(c config.Connection) (*haloapi.Client, error) {
	if h.sleeper == nil {
		return haloapi.FromConfig(c.Halo, nil)
	}
	return haloapi.NewClient(haloapi.ClientOptions{
		BaseURL: c.Halo.BaseURL, AuthURL: c.Halo.AuthURL, Tenant: c.Halo.Tenant,
		ClientID: c.Halo.ClientID, ClientSecret: c.Halo.ClientSecret, Scope: c.Halo.Scope,
		Budget:  haloapi.NewBudget(c.Halo.Budget.Count(), c.Halo.Budget.Window(), h.sleeper),
		Timeout: c.Halo.Timeout(), Clock: h.sleeper,
	})
}

// sender makes a webhook delivering to s, losing a share of its deliveries.
func (h *plHarness) sender(s *plServer, pt halosim.PayloadType, drop float64, seed uint64) *halosim.Sender {
	auth := halosim.BasicAuth("halo", plWebhookPw)
	if pt == halosim.PayloadEventOnly {
		auth = halosim.HMACAuth(plHMAC)
	}
	return halosim.NewSender(halosim.SenderOptions{
		URL: s.url + "/webhooks/halo/" + plConn, Auth: auth, PayloadType: pt, Reorder: 4,
		DuplicateRate: 0.1, DropRate: drop, Rand: rand.New(rand.NewPCG(plSeed, seed)), Tenant: h.tenant,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	})
}

// flush delivers what the senders hold and fails the test unless every delivery made was
// accepted; it returns the sum of their counts.
func (h *plHarness) flush(senders ...*halosim.Sender) halosim.Counts {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), plDrain)
	defer cancel()
	var sum halosim.Counts
	for _, s := range senders {
		c, err := s.Flush(ctx)
		if err != nil || c.Failed != 0 {
			h.t.Fatalf("webhook flush: %+v, %v; want every delivery made accepted", c, err)
		}
		sum.Sent += c.Sent
		sum.Dropped += c.Dropped
		sum.Duplicated += c.Duplicated
	}
	return sum
}

// tenantSleeper is a haloapi.Clock on the poller's clock whose sleeps move the tenant's clock
// on: a client's backoff costs no real time, and the tenant's rate window moves with it.
type tenantSleeper struct {
	clock *halosim.Clock
	skew  time.Duration
	mu    sync.Mutex
	slept []time.Duration
}

func (c *tenantSleeper) Now() time.Time { return c.clock.Now().Add(c.skew) }

func (c *tenantSleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		c.mu.Lock()
		c.slept = append(c.slept, d)
		c.mu.Unlock()
		c.clock.Advance(d)
	}
	return nil
}

func (c *tenantSleeper) sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.slept)
}

// heartbeatClock is the store as the worker sees it, but for the webhook heartbeat: the
// worker writes it at worker.now (the system clock, which a test cannot set); it is stored
// at the poller's clock, which is what serve's wiring amounts to (both on one clock). The
// system time each heartbeat carried is kept.
type heartbeatClock struct {
	*sqlite.Store
	now func() time.Time

	mu     sync.Mutex
	system []time.Time // what the worker wrote
	stored []time.Time // what was stored
}

func (s *heartbeatClock) SaveCursor(ctx context.Context, conn, name string, doc []byte) error {
	if name != plHeartbeat {
		return s.Store.SaveCursor(ctx, conn, name, doc)
	}
	var hb struct {
		At time.Time `json:"at"`
	}
	if err := json.Unmarshal(doc, &hb); err != nil {
		return fmt.Errorf("the worker's heartbeat %s: %w", doc, err)
	}
	at := s.now().UTC()
	s.mu.Lock()
	s.system = append(s.system, hb.At)
	s.stored = append(s.stored, at)
	s.mu.Unlock()
	return poller.Heartbeat(ctx, s.Store, conn, at)
}

// writes returns the heartbeats the worker wrote: the system times, and the times stored.
func (s *heartbeatClock) writes() (system, stored []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.system), slices.Clone(s.stored)
}

// plStore is what serve's poller needs of the store (cmd/halosync/serve.go, pollStore).
type plStore interface {
	poller.Copy
	poller.Cursors
	poller.StoredIDs
}

// plServer is one run of the server on the harness's SQLite file.
type plServer struct {
	*testServer
	h      *plHarness
	beats  *heartbeatClock
	runner poller.Runner
}

// start runs the server as serve wires it (see the file's comment for the differences).
// stop (also run when the test ends) shuts it down and closes the database.
func (h *plHarness) start() *plServer {
	t := h.t
	t.Helper()
	clients := map[string]*haloapi.Client{}
	for _, c := range h.cfg.Connections {
		if c.Halo.Configured() {
			var err error
			if clients[c.ID], err = h.client(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := &plServer{h: h}
	s.testServer = startServer(t, h.cfg, onFile(h.path), logTo(slog.LevelInfo, 6000),
		withHaloClient(func(c *connection.Connection) (*haloapi.Client, error) { return clients[c.ID], nil }),
		wrappingStore(func(store *sqlite.Store) localserver.Store {
			s.beats = &heartbeatClock{Store: store, now: h.now}
			return s.beats
		}),
		withPollers(func(srv *localserver.Server, q *sqlite.Queue, store *sqlite.Store, log *slog.Logger) {
			var ps plStore = store
			for _, c := range srv.Pipeline().Connections {
				if cl := clients[c.ID]; cl != nil {
					opts := poller.OptionsOf(c)
					opts.Now = h.now
					p := poller.New(c.ID, cl, q, ps, ps, srv.Counts(), log, opts)
					s.runner = poller.Runner{Poller: p, Plan: poller.PlanOf(c.Poll), Stored: ps}
				}
			}
		}))
	return s
}

// run runs the connection's runner once, as serve's loop does on a tick (force false).
func (s *plServer) run(force bool) (bool, poller.Report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), plRunTimeout)
	defer cancel()
	return s.runner.Run(ctx, force)
}

// poll runs the runner and fails the test unless it polled without error.
func (s *plServer) poll(force bool) poller.Report {
	s.h.t.Helper()
	polled, rep, err := s.run(force)
	if err != nil || !polled {
		s.h.t.Fatalf("at %s: Run(force %v): polled %v, error %v; want a poll without error", s.h.now().Format(time.RFC3339Nano), force, polled, err)
	}
	return rep
}

// notDue runs the runner and fails the test if it polled.
func (s *plServer) notDue(what string) {
	s.h.t.Helper()
	polled, _, err := s.run(false)
	if err != nil || polled {
		s.h.t.Fatalf("%s: Run: polled %v, error %v; want no poll", what, polled, err)
	}
}

// drain waits until the queue is empty (and nothing is in flight), reading /status.
func (s *plServer) drain() status {
	t := s.h.t
	t.Helper()
	return s.waitStatus(t, plDrain, "the queue drained", drained)
}

func (s *plServer) get(kind change.Kind, id, parentID string) (change.Object, bool, error) {
	return s.store.Get(context.Background(), plConn, kind, id, parentID)
}

// cursor reads a kind's cursor as the poller stored it.
func (s *plServer) cursor(kind change.Kind) poller.Cursor {
	s.h.t.Helper()
	c, err := s.runner.Poller.Cursor(context.Background(), kind)
	if err != nil {
		s.h.t.Fatal(err)
	}
	return c
}

// schedule reads the runner's stored state.
func (s *plServer) schedule() poller.State {
	s.h.t.Helper()
	var st poller.State
	doc, ok, err := s.store.LoadCursor(context.Background(), plConn, plSchedule)
	if err != nil {
		s.h.t.Fatal(err)
	}
	if ok {
		if err := json.Unmarshal(doc, &st); err != nil {
			s.h.t.Fatalf("schedule state %s: %v", doc, err)
		}
	}
	return st
}

// converged compares the copy with the tenant (expectations of the convergence run, over
// every event the harness recorded), leaving out hard deletes the copy never heard of
// (created and deleted with both webhooks lost: nothing still knows of them), and checks
// that the copy holds nothing else.
func (s *plServer) converged(extra ...converge.Expectation) {
	t := s.h.t
	t.Helper()
	var exps []converge.Expectation
	for _, x := range s.expected() {
		if x.Fields == nil {
			if _, ok, err := s.get(x.Kind, x.ID, x.ParentID); err != nil {
				t.Fatal(err)
			} else if !ok {
				continue
			}
		}
		exps = append(exps, x)
	}
	exps = append(exps, extra...)
	converge.WantConverged(t, exps, s.h.sent, s.get)
	wantNothingElse(t, s.h.path, exps)
}

// expected is what the copy must hold: the convergence run's expectations over every
// event the harness recorded.
func (s *plServer) expected() []converge.Expectation {
	s.h.t.Helper()
	return converge.Expectations(s.h.t, s.h.tenant, s.h.sent)
}

// lacking is what the copy lacks now: per kind, the objects whose tenant change marker is
// newer than the copy's version (or that it does not hold): the gap the next poll must
// find; and the hard-deleted objects it still holds alive: the reconcile's.
func (s *plServer) lacking() (map[change.Kind]int, map[converge.Key]bool) {
	t := s.h.t
	t.Helper()
	gap, alive := map[change.Kind]int{}, map[converge.Key]bool{}
	for _, x := range s.expected() {
		o, ok, err := s.get(x.Kind, x.ID, x.ParentID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case x.Fields == nil:
			if ok && !o.Deleted {
				alive[x.Key] = true
			}
		case !ok || o.Version < x.Marker:
			gap[x.Kind]++
		}
	}
	return gap, alive
}

// ---- the tenant's request log ----

// plList is one list request the tenant served.
type plList struct {
	halosim.Request
	page, size int
}

// lists returns the list requests of a path (/api/Tickets, ...) whose query satisfies
// match (nil: all), in the order received.
func lists(tenant *halosim.Tenant, path string, match func(q url.Values) bool) []plList {
	var out []plList
	for _, r := range tenant.Requests() {
		if r.Method != http.MethodGet || !strings.EqualFold(r.Path, path) || (match != nil && !match(r.Query)) {
			continue
		}
		l := plList{Request: r}
		l.page, _ = strconv.Atoi(r.Query.Get("page_no"))
		l.size, _ = strconv.Atoi(r.Query.Get("page_size"))
		out = append(out, l)
	}
	return out
}

// backfillList matches a backfill's (or a scan's) listing: no id-only, deleted or
// last-update filter.
func backfillList(q url.Values) bool {
	return q.Get("ticketidonly") == "" && q.Get("idonly") == "" && q.Get("deleted") == "" && q.Get("lastupdatefromdate") == ""
}

func idOnlyList(q url.Values) bool {
	return q.Get("ticketidonly") == "true" || q.Get("idonly") == "true"
}

// listPath is the API path of a kind's listing, as the client writes it.
func listPath(kind change.Kind) string {
	ep, _ := haloapi.EndpointOf(kind)
	return "/api/" + ep.Path
}

// pages lists the page numbers and sizes asked for.
func pages(ls []plList) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d/%d→%d", l.page, l.size, l.Status)
	}
	return b.String()
}

// isPage reports whether r asks for a kind's backfill page n.
func isPage(r *http.Request, kind change.Kind, n int) bool {
	q := r.URL.Query()
	return r.Method == http.MethodGet && strings.EqualFold(r.URL.Path, listPath(kind)) && backfillList(q) && q.Get("page_no") == strconv.Itoa(n)
}

// ---- (a) lost webhooks ----

// TestPollFindsWhatTheWebhooksLost: the tenant (seeded, then backfilled) makes 240 changes
// of every kind while two webhooks, one full and one event-only, lose 30% of their
// deliveries; after one poll (due by the plan: the first after the backfill, which also
// runs the first reconcile) and the queue drained, the copy equals the tenant exactly, and
// the poll found exactly what the copy lacked, counted as WebhookGap in /status.
func TestPollFindsWhatTheWebhooksLost(t *testing.T) {
	t.Parallel()
	h := newPlHarness(t, plSetup{seed: 1})
	h.tenant.Seed(h.rng, 6)
	s := h.start()

	rep := s.poll(false) // the first sync: the backfill
	for _, kind := range plKinds {
		if n := h.tenant.Count(kind); n == 0 || rep.Enqueued[kind] != n || rep.Gap[kind] != 0 {
			t.Errorf("backfill: %s: enqueued %d, gap %d, of the tenant's %d", kind, rep.Enqueued[kind], rep.Gap[kind], n)
		}
	}
	s.drain()
	s.converged()
	if t.Failed() {
		t.FailNow()
	}

	full := h.sender(s, halosim.PayloadFull, 0.3, 11)
	eventOnly := h.sender(s, halosim.PayloadEventOnly, 0.3, 12)
	var delivered halosim.Counts
	for i := range 240 {
		h.clock.Advance(time.Duration(1+h.rng.IntN(8)) * time.Second)
		pt, snd := halosim.PayloadFull, full
		if h.rng.IntN(2) == 0 {
			pt, snd = halosim.PayloadEventOnly, eventOnly
		}
		snd.Send(h.step(pt))
		if i%20 == 19 {
			h.clock.Advance(2 * time.Second) // Halo delivers after it raised the events
			c := h.flush(full, eventOnly)
			delivered.Sent += c.Sent
			delivered.Dropped += c.Dropped
		}
	}
	s.drain()
	gap, alive := s.lacking()
	if delivered.Dropped == 0 || len(gap) == 0 {
		t.Fatalf("deliveries %+v; the copy lacks %v: the scenario tests too little", delivered, gap)
	}

	h.clock.Advance(15 * time.Minute) // hybrid: the next poll is due 15 minutes after the last
	rep = s.poll(false)
	st := s.drain()
	for _, kind := range plKinds {
		if rep.Gap[kind] != gap[kind] || rep.Enqueued[kind] != gap[kind] {
			t.Errorf("poll: %s: gap %d, enqueued %d; the copy lacked %d", kind, rep.Gap[kind], rep.Enqueued[kind], gap[kind])
		}
	}
	s.converged()

	// /status counts the poll's gap and the reconcile's deletes, per kind.
	var total int64
	for _, kind := range plKinds {
		want := int64(gap[kind])
		for k := range alive {
			if k.Kind == kind {
				want++
			}
		}
		if got := st.count(metrics.WebhookGap, plConn, string(kind)); got != want {
			t.Errorf("WebhookGap{%s} = %d in /status, want %d (gap %d, hard deletes alive in the copy: %v)", kind, got, want, gap[kind], alive)
		}
		total += want
	}
	if total == 0 || st.total(metrics.WebhookGap) != total {
		t.Errorf("WebhookGap in /status: %d, want %d > 0", st.total(metrics.WebhookGap), total)
	}
	if n := st.total(metrics.ChangesFailed); n != 0 || *st.DeadLetterQueue != (queueStats{}) {
		t.Errorf("ChangesFailed %d, dead-letter queue %+v; want none", n, *st.DeadLetterQueue)
	}
	t.Logf("240 changes, deliveries %+v; the poll found %v, the reconcile deleted %d", delivered, rep.Gap, len(alive))
}

// ---- (b) the fallback ----

// TestPollFallbackEngagesAndRecovers: hybrid mode with a 3-minute silence window and a
// 1-minute fallback interval (poll every 15 minutes otherwise).
//
//  1. Webhooks flow (30% lost): the worker's heartbeat is fresh, so a poll that finds
//     changes the webhooks missed does not engage the fallback, and polls stay 15 minutes
//     apart.
//  2. The server restarts (a new worker process: its heartbeat throttle, 30 s of system
//     time per process, starts afresh, which this test needs because it runs in seconds;
//     the schedule's state is in the store and survives). The webhooks stop (the sender
//     holds its events) while the tenant keeps changing: the poll after the silence window
//     engages the fallback (PollFallback{engaged} in /status), and the next poll is due a
//     minute later, not 15.
//  3. The webhooks return (the held events are delivered, the worker writes a heartbeat):
//     the next poll, a minute later, recovers (PollFallback{recovered}); the one after is
//     due 15 minutes later again. The copy equals the tenant.
func TestPollFallbackEngagesAndRecovers(t *testing.T) {
	t.Parallel()
	realStart := time.Now()
	h := newPlHarness(t, plSetup{seed: 2, poll: "    poll:\n      silence_minutes: 3\n      fallback_minutes: 1\n"})
	h.tenant.Seed(h.rng, 4)
	s := h.start()
	if s.runner.Plan.Interval != 15*time.Minute || s.runner.Plan.Silence != 3*time.Minute || s.runner.Plan.Fallback != time.Minute {
		t.Fatalf("plan %+v", s.runner.Plan)
	}
	s.poll(false) // the backfill
	s.drain()
	t0 := h.now()
	mk := func(snd *halosim.Sender) {
		h.clock.Advance(20 * time.Second)
		snd.Send(h.step(halosim.PayloadFull))
	}

	// 1. Webhooks flowing.
	flowing := h.sender(s, halosim.PayloadFull, 0.3, 21)
	h.clock.Advance(time.Minute)
	s.notDue("a minute after the backfill") // (the first reconcile runs here)
	for range 36 {
		mk(flowing) // 12 minutes of changes ...
	}
	h.clock.Advance(time.Minute)
	c := h.flush(flowing) // ... delivered at once, so the process's one heartbeat is fresh
	if c.Dropped == 0 || c.Sent == 0 {
		t.Fatalf("deliveries %+v: want some lost, some delivered", c)
	}
	s.drain()
	system, stored := s.beats.writes()
	if len(stored) != 1 {
		t.Fatalf("the worker wrote %d heartbeats, want 1", len(stored))
	}
	// The worker writes its heartbeat at the system time, not at the poller's clock.
	if system[0].Before(realStart.Add(-time.Second)) || system[0].After(time.Now().Add(time.Second)) {
		t.Errorf("the worker's heartbeat carried %s; want the system time (the test began at %s)", system[0], realStart)
	}
	t.Logf("the worker's heartbeat: written at %s (system clock), stored at %s (the poller's clock)", system[0].Format(time.RFC3339), stored[0].Format(time.RFC3339))
	h.clock.Set(t0.Add(15 * time.Minute).Add(-h.skew))
	rep := s.poll(false)
	if total(rep.Gap) == 0 {
		t.Fatalf("the poll found nothing the webhooks lost (%+v): the scenario tests too little", rep)
	}
	if st := s.status(t); st.total(metrics.PollFallback) != 0 || s.schedule().Fallback {
		t.Fatalf("webhooks flowing, heartbeat %s, poll at %s: PollFallback %d, state %+v; want no fallback",
			stored[0], h.now(), st.total(metrics.PollFallback), s.schedule())
	}
	s.drain()
	h.clock.Advance(time.Minute)
	s.notDue("webhooks healthy, a minute after the last poll")

	// 2. Restart; the webhooks stop.
	s.stop()
	s = h.start()
	stopped := h.sender(s, halosim.PayloadFull, 0, 22) // holds its events until flushed
	for range 40 {
		mk(stopped) // until 15 minutes after the last poll
	}
	h.clock.Set(t0.Add(30 * time.Minute).Add(-h.skew))
	if rep := s.poll(false); total(rep.Gap) == 0 {
		t.Fatalf("the poll after the webhooks stopped found nothing: %+v", rep)
	}
	st := s.status(t)
	if st.count(metrics.PollFallback, plConn, "engaged") != 1 || !s.schedule().Fallback {
		t.Fatalf("no webhook change for %v while Halo changed: PollFallback %+v, state %+v; want the fallback engaged",
			h.now().Sub(stored[0]), st.Counters, s.schedule())
	}
	engaged := h.now()
	s.drain()
	mk(stopped)
	h.clock.Set(engaged.Add(59 * time.Second).Add(-h.skew))
	s.notDue("fallback, 59 s after the last poll")
	h.clock.Set(engaged.Add(time.Minute).Add(-h.skew))
	s.poll(false)
	s.drain()
	if st := s.status(t); st.count(metrics.PollFallback, plConn, "engaged") != 1 || st.count(metrics.PollFallback, plConn, "recovered") != 0 {
		t.Fatalf("fallback, webhooks still silent: PollFallback %+v", st.Counters)
	}

	// 3. The webhooks return.
	mk(stopped)
	h.clock.Advance(2 * time.Second)
	if c := h.flush(stopped); c.Sent == 0 {
		t.Fatalf("deliveries %+v", c)
	}
	s.drain()
	_, stored2 := s.beats.writes()
	if len(stored2) != 1 || !stored2[0].After(s.schedule().Switched) {
		t.Fatalf("after the webhooks returned the new process wrote heartbeats %v; want one after the switch at %s", stored2, s.schedule().Switched)
	}
	h.clock.Set(engaged.Add(2 * time.Minute).Add(-h.skew))
	s.poll(false)
	st = s.drain()
	if st.count(metrics.PollFallback, plConn, "recovered") != 1 || s.schedule().Fallback {
		t.Fatalf("a webhook change applied at %s after the fallback engaged at %s: PollFallback %+v, state %+v; want recovered",
			stored2[0], engaged, st.Counters, s.schedule())
	}
	recovered := h.now()
	h.clock.Set(recovered.Add(time.Minute).Add(-h.skew))
	s.notDue("recovered, a minute after the last poll")
	h.clock.Set(recovered.Add(15 * time.Minute).Add(-h.skew))
	s.poll(false)
	s.drain()
	s.converged()
}

// ---- (c) deletes ----

// TestPollFindsDeletesOfEveryKind: a client, a contact and an asset deleted in Halo (hard
// deletes: gone from its lists) and a ticket deleted (soft: listed with deleted=true), none
// of their webhooks delivered; the next poll finds the ticket and its reconcile (the first
// after the backfill) the others: the copy holds tombstones for all four. A note deleted in
// Halo stays in the copy: notes are not reconciled (docs/ARCHITECTURE.md). The next
// reconcile is due a day later: a delete after the first is found then, not by the polls
// in between.
func TestPollFindsDeletesOfEveryKind(t *testing.T) {
	t.Parallel()
	h := newPlHarness(t, plSetup{seed: 3})
	h.tenant.Seed(h.rng, 5)
	s := h.start()
	s.poll(false)
	s.drain()

	// A client with nothing under it (only such a client can be deleted), delivered.
	h.clock.Advance(time.Minute)
	snd := h.sender(s, halosim.PayloadFull, 0, 31)
	snd.Send(h.do(halosim.CreateClient))
	h.clock.Advance(time.Second)
	h.flush(snd)
	s.drain()

	// The deletes; no webhook delivers them.
	deleted := map[change.Kind]string{}
	for _, ct := range []halosim.ChangeType{halosim.DeleteClient, halosim.DeleteUser, halosim.DeleteAsset, halosim.DeleteTicket} {
		h.clock.Advance(10 * time.Second)
		e := h.do(ct)
		id := strconv.FormatInt(e.ObjectID, 10)
		if o, ok, err := s.get(e.Kind, id, ""); err != nil || !ok || o.Deleted {
			t.Fatalf("%s %s: the copy holds %+v, %v, %v before the delete; want it alive", e.Kind, id, o, ok, err)
		}
		deleted[e.Kind] = id
	}
	notes := h.tenant.Objects(change.Action)
	note := notes[len(notes)/2]
	noteID, _ := change.CanonicalID(note["id"])
	noteTicket, _ := change.CanonicalID(note["ticket_id"])
	h.tenant.Delete(change.Action, mustInt(t, noteID))

	h.clock.Advance(15 * time.Minute)
	rep := s.poll(false)
	st := s.drain()
	for kind, id := range deleted {
		o, ok, err := s.get(kind, id, "")
		if err != nil || !ok || !o.Deleted {
			t.Errorf("%s %s, deleted in Halo: the copy holds %+v (%v, %v); want a tombstone", kind, id, o, ok, err)
		}
	}
	if rep.Gap[change.Ticket] != 1 || !rep.Queued[change.Ticket][deleted[change.Ticket]] {
		t.Errorf("the poll: gap %v, queued %v; want the deleted ticket %s", rep.Gap, rep.Queued, deleted[change.Ticket])
	}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
		if got := st.count(metrics.WebhookGap, plConn, string(kind)); got != 1 {
			t.Errorf("WebhookGap{%s} = %d, want 1", kind, got)
		}
	}
	if n := st.total(metrics.ReconcileRefused); n != 0 {
		t.Errorf("ReconcileRefused = %d", n)
	}
	if got := s.schedule().LastReconcile; !got.Equal(h.now()) {
		t.Errorf("last reconcile %s, want this run's %s", got, h.now())
	}
	// The note Halo deleted is still in the copy, alive: notes are not reconciled.
	o, ok, err := s.get(change.Action, noteID, noteTicket)
	if err != nil || !ok || o.Deleted {
		t.Errorf("note %s of ticket %s: %+v %v %v; want it still alive in the copy (notes are not reconciled)", noteID, noteTicket, o, ok, err)
	}
	k := converge.Key{Kind: change.Action, ID: noteID, ParentID: noteTicket}
	marker := change.VersionOf(mustHaloTime(t, note["last_updated"]))
	s.converged(converge.Expectation{Key: k, Fields: note, CompareFields: true, Marker: marker})

	// A later delete: not found by the polls before the next reconcile, a day after the first.
	h.clock.Advance(time.Minute)
	later := h.do(halosim.DeleteAsset)
	laterID := strconv.FormatInt(later.ObjectID, 10)
	h.clock.Advance(15 * time.Minute)
	s.poll(false)
	s.drain()
	if o, _, _ := s.get(change.Asset, laterID, ""); o.Deleted {
		t.Errorf("asset %s was tombstoned by a poll before the next reconcile was due", laterID)
	}
	h.clock.Set(s.schedule().LastReconcile.Add(24 * time.Hour).Add(-h.skew))
	if polled, _, err := s.run(false); err != nil {
		t.Fatalf("the next day's run: polled %v, %v", polled, err)
	}
	s.drain()
	if o, ok, _ := s.get(change.Asset, laterID, ""); !ok || !o.Deleted {
		t.Errorf("asset %s, deleted in Halo: after the next day's reconcile the copy holds %+v", laterID, o)
	}
	s.converged(converge.Expectation{Key: k, Fields: note, CompareFields: true, Marker: marker})
}

// ---- (d) paging ----

// TestPollBackfillPagesThroughTheCap: a tenant with 301 tickets (and its clients, contacts,
// assets and notes): the backfill reads every object, asking for pages of 100 and stopping
// when it has record_count objects (no empty page asked for); the copy holds them all. With
// a tenant that caps pages below what the client asks (40), the client carries on with
// the page size the tenant used, as record_count says there is more. The reconcile that
// follows pages the id lists the same way.
func TestPollBackfillPagesThroughTheCap(t *testing.T) {
	t.Parallel()
	for _, pageCap := range []int{100, 40} {
		t.Run(fmt.Sprintf("cap %d", pageCap), func(t *testing.T) {
			t.Parallel()
			h := newPlHarness(t, plSetup{seed: 4, tenant: halosim.Options{PageCap: pageCap}})
			h.tenant.Seed(h.rng, 10)
			h.ticketsTo(301)
			s := h.start()
			rep := s.poll(false)
			s.drain()
			s.converged()
			for _, kind := range plKinds {
				if n := h.tenant.Count(kind); rep.Read[kind] != n || rep.Enqueued[kind] != n {
					t.Errorf("backfill: %s: read %d, enqueued %d, of %d", kind, rep.Read[kind], rep.Enqueued[kind], n)
				}
			}
			// The listing requests: page 1 asks for 100; after a short page (the cap) the
			// client goes on with the cap's size; the last page is the one that completes
			// record_count.
			wantPages := func(what string, ls []plList, n int) {
				t.Helper()
				size := min(100, pageCap)
				want := max(1, (n+size-1)/size)
				ok := len(ls) == want
				for i, l := range ls {
					wantSize := size
					if i == 0 {
						wantSize = 100
					}
					ok = ok && l.page == i+1 && l.size == wantSize && l.Status == http.StatusOK
				}
				if !ok {
					t.Errorf("%s (%d objects, cap %d): pages asked (page/size→status) %s; want pages 1..%d, 100 then %d each", what, n, pageCap, pages(ls), want, size)
				}
			}
			for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
				wantPages(string(kind)+" backfill", lists(h.tenant, listPath(kind), backfillList), h.tenant.Count(kind))
			}
			if ls := lists(h.tenant, listPath(change.Action), nil); len(ls) != h.tenant.Count(change.Ticket) {
				t.Errorf("note listings: %d, want one per ticket (%d)", len(ls), h.tenant.Count(change.Ticket))
			}

			// The reconcile (due a minute later, without a poll) pages the id lists.
			h.tenant.ResetRequests()
			h.clock.Advance(time.Minute)
			s.notDue("a minute after the backfill")
			if s.schedule().LastReconcile.IsZero() {
				t.Fatal("no reconcile ran")
			}
			for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
				wantPages(string(kind)+" id list", lists(h.tenant, listPath(kind), idOnlyList), h.tenant.Count(kind))
			}
			st := s.drain()
			if n := st.total(metrics.WebhookGap); n != 0 {
				t.Errorf("the reconcile deleted %d objects of a tenant that deleted none", n)
			}
		})
	}
}

// ---- (e) a 429 storm ----

// TestPollBackfillRidesOutA429Storm: the tenant admits 10 requests per rolling 5 minutes and
// answers 429 with Retry-After beyond that, while the backfill makes well over a hundred
// requests, each taking a second of the tenant's time (so the window slides and the
// Retry-After varies). The client (serve's, but sleeping on the tenant's clock) waits as
// told each time, so no retry is refused again; the backfill completes in one run, and
// the copy equals the tenant.
func TestPollBackfillRidesOutA429Storm(t *testing.T) {
	t.Parallel()
	h := newPlHarness(t, plSetup{seed: 5, fakeSleep: true,
		tenant: halosim.Options{RateLimit: 10, SendRetryAfter: true}})
	h.tenant.Seed(h.rng, 16)
	h.setFaults(func(*http.Request) *halosim.Fault {
		h.clock.Advance(time.Second)
		return nil
	})
	s := h.start()
	start := h.clock.Now()
	rep := s.poll(false)
	s.drain()
	s.converged()
	for _, kind := range plKinds {
		if n := h.tenant.Count(kind); rep.Enqueued[kind] != n {
			t.Errorf("backfill: %s: enqueued %d of %d", kind, rep.Enqueued[kind], n)
		}
	}
	var throttled, served int
	log := h.tenant.Requests()
	for i, r := range log {
		switch r.Status {
		case http.StatusTooManyRequests:
			throttled++
			if i > 0 && log[i-1].Status == http.StatusTooManyRequests {
				t.Errorf("%s %s?%s was refused twice in a row: the client did not wait as told", r.Method, r.Path, r.Query.Encode())
			}
		case http.StatusOK:
			served++
		default:
			t.Errorf("%s %s: %d", r.Method, r.Path, r.Status)
		}
	}
	sleeps := h.sleeper.sleeps()
	if throttled < 5 || served <= 10 {
		t.Fatalf("%d requests served, %d throttled: the storm did not happen", served, throttled)
	}
	// One wait per 429, of the Retry-After: never more than the window.
	if len(sleeps) != throttled {
		t.Errorf("%d answers 429, %d waits %v; want one wait per 429", throttled, len(sleeps), sleeps)
	}
	for _, d := range sleeps {
		if d <= 0 || d > 5*time.Minute {
			t.Errorf("a wait of %v: want the Retry-After, between 0 and the 5-minute window", d)
		}
	}
	t.Logf("%d requests served, %d answered 429 (waits %v); the backfill took %v of the tenant's time",
		served, throttled, sleeps, h.clock.Now().Sub(start).Round(time.Second))
}

// ---- (f) an interrupted backfill ----

// TestPollBackfillResumesAfterAFailedPage: the backfill's second page of tickets fails (503,
// every attempt, until the client gives up; its backoff sleeps on the tenant's clock). The
// run reports the tickets' error, the other kinds are backfilled, and the tickets' cursor
// says page 2. Meanwhile tickets on page 1 (read) and page 3 change and a new one is
// logged, their webhooks lost. The next run resumes at page 2 (the tenant's request log
// shows no page 1), the one after reads what changed since the backfill began; the copy
// equals the tenant. The second subtest is a crash: the process dies while asking for page
// 2 (its context ends), and a new server on the same file resumes at page 2.
func TestPollBackfillResumesAfterAFailedPage(t *testing.T) {
	t.Parallel()
	t.Run("503", func(t *testing.T) {
		t.Parallel()
		h := newPlHarness(t, plSetup{seed: 6, fakeSleep: true})
		h.tenant.Seed(h.rng, 6)
		h.ticketsTo(250)
		var faulted atomic.Int64
		h.setFaults(func(r *http.Request) *halosim.Fault {
			if isPage(r, change.Ticket, 2) {
				faulted.Add(1)
				f := halosim.ServerError(http.StatusServiceUnavailable)
				return &f
			}
			return nil
		})
		s := h.start()
		polled, rep, err := s.run(false)
		if !polled || err == nil || !errors.Is(err, haloapi.ErrUnavailable) || !strings.Contains(err.Error(), "ticket:") {
			t.Fatalf("the first run: polled %v, error %v; want the tickets' page 2 unavailable", polled, err)
		}
		if n := faulted.Load(); n != 1+int64(haloapi.DefaultMaxRetries) {
			t.Errorf("page 2 was asked for %d times, want %d (one and the client's retries)", n, 1+haloapi.DefaultMaxRetries)
		}
		h.setFaults(nil)
		resumeAndConverge(t, h, s, rep)
	})
	t.Run("crash", func(t *testing.T) {
		t.Parallel()
		h := newPlHarness(t, plSetup{seed: 7})
		h.tenant.Seed(h.rng, 6)
		h.ticketsTo(250)
		s := h.start()
		ctx, crash := context.WithCancel(context.Background())
		defer crash()
		h.setFaults(func(r *http.Request) *halosim.Fault {
			if isPage(r, change.Ticket, 2) {
				crash() // the process dies while it waits for page 2
				f := halosim.Slow(time.Minute)
				return &f
			}
			return nil
		})
		polled, rep, err := s.runner.Run(ctx, false)
		if !polled || !errors.Is(err, context.Canceled) {
			t.Fatalf("the crashed run: polled %v, error %v", polled, err)
		}
		h.setFaults(nil)
		s.stop()
		s = h.start()
		resumeAndConverge(t, h, s, rep)
	})
}

// resumeAndConverge checks the state a backfill failed on the tickets' page 2 left, has the
// tenant change, runs the resumed backfill and one more poll, and compares.
func resumeAndConverge(t *testing.T, h *plHarness, s *plServer, first poller.Report) {
	t.Helper()
	cur := s.cursor(change.Ticket)
	if cur.Backfilled || cur.NextPage != 2 || cur.BackfillStarted.IsZero() {
		t.Fatalf("tickets' cursor after the failed page %+v; want page 2 next, not backfilled", cur)
	}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset} {
		if c := s.cursor(kind); !c.Backfilled {
			t.Errorf("%s cursor %+v: want it backfilled in spite of the tickets' failure", kind, c)
		}
	}
	if first.Read[change.Ticket] != 100 {
		t.Errorf("the failed run read %d tickets, want page 1's 100", first.Read[change.Ticket])
	}
	s.drain()

	// While the backfill is stuck, tickets on page 1 and page 3 change, a ticket is logged;
	// no webhook delivers any of it.
	tickets := h.tenant.Objects(change.Ticket)
	for _, i := range []int{5, 220} {
		h.clock.Advance(30 * time.Second)
		id := tickets[i]["id"].(int64)
		h.tenant.Upsert(change.Ticket, map[string]any{"id": id, "summary": fmt.Sprintf("changed while the backfill was stuck (%d)", i)})
	}
	h.clock.Advance(30 * time.Second)
	h.do(halosim.NewTicket)
	h.clock.Advance(time.Minute)

	h.tenant.ResetRequests()
	rep := s.poll(false) // not backfilled: due whatever the plan says
	ls := lists(h.tenant, listPath(change.Ticket), backfillList)
	if len(ls) == 0 || ls[0].page != 2 || slices.ContainsFunc(ls, func(l plList) bool { return l.page == 1 }) {
		t.Errorf("the resumed backfill asked for tickets' pages %s; want it to start at page 2 and not read page 1 again", pages(ls))
	}
	if c := s.cursor(change.Ticket); !c.Backfilled || !c.Watermark.Equal(cur.BackfillStarted) {
		t.Errorf("tickets' cursor after the resumed backfill %+v; want backfilled, watermark the first attempt's start %s", c, cur.BackfillStarted)
	}
	if n := h.tenant.Count(change.Ticket) - 100; rep.Read[change.Ticket] != n {
		t.Errorf("the resumed backfill read %d tickets, want the %d after page 1", rep.Read[change.Ticket], n)
	}
	s.drain()
	h.clock.Advance(15 * time.Minute)
	s.poll(false) // reads what changed since the backfill began: page 1's change among it
	s.drain()
	s.converged()
}

// ---- (g) clock skew ----

// TestPollSkewLosesNothing: the poller's clock runs two minutes ahead of Halo's, or two
// minutes behind (the overlap is the default 2 minutes), every kind read incrementally
// (poll.kinds), no webhook delivered. Changes are made while the backfill runs (to kinds
// it has already read), in the same millisecond as a poll begins, while a poll runs (before
// its ticket listing and between its ticket listing and its deleted-ticket listing), and
// right after it ends; after the last poll the copy equals the tenant.
func TestPollSkewLosesNothing(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		t.Run(fmt.Sprintf("ours %+v", skew), func(t *testing.T) {
			t.Parallel()
			h := newPlHarness(t, plSetup{seed: 8, skew: skew,
				poll: "    poll:\n      kinds: {client: incremental, contact: incremental, asset: incremental}\n"})
			h.tenant.Seed(h.rng, 5)
			s := h.start()
			changes := []halosim.ChangeType{halosim.UpdateTicket, halosim.AddNote, halosim.ChangeStatus, halosim.NewTicket,
				halosim.Reassign, halosim.UpdateClient, halosim.CreateUser, halosim.UpdateUser, halosim.CreateAsset,
				halosim.UpdateAsset, halosim.DeleteTicket}
			some := func(n int) {
				for range n {
					h.do(changes[h.rng.IntN(len(changes))])
				}
			}
			// While the backfill runs, when it asks for tickets: the kinds it has read change.
			var once sync.Once
			h.setFaults(func(r *http.Request) *halosim.Fault {
				if isPage(r, change.Ticket, 1) {
					once.Do(func() {
						for _, ct := range []halosim.ChangeType{halosim.UpdateClient, halosim.UpdateUser, halosim.UpdateAsset, halosim.CreateUser} {
							h.do(ct)
						}
					})
				}
				return nil
			})
			s.poll(false)
			s.drain()
			for round := range 4 {
				due := s.schedule().LastPoll.Add(15 * time.Minute)
				h.clock.Advance(14 * time.Minute)
				for range 6 { // the minute before the poll
					h.clock.Advance(time.Duration(h.rng.Int64N(int64(9 * time.Second))))
					some(1)
				}
				// The poll is due now (a millisecond and a half later each round, so that
				// the watermarks fall between milliseconds too).
				h.clock.Set(due.Add(time.Duration(round) * 1500 * time.Microsecond).Add(-skew))
				some(2) // the same instant the poll begins
				var during sync.Once
				var before, between atomic.Int32
				h.setFaults(func(r *http.Request) *halosim.Fault {
					q := r.URL.Query()
					if !strings.EqualFold(r.URL.Path, listPath(change.Ticket)) || q.Get("lastupdatefromdate") == "" {
						return nil
					}
					if q.Get("deleted") == "true" {
						during.Do(func() { some(2); between.Add(2) }) // after the ticket listing, before the deleted one
					} else {
						some(1) // before the ticket listing is made
						before.Add(1)
					}
					return nil
				})
				s.poll(false)
				h.setFaults(nil)
				if before.Load() == 0 || between.Load() == 0 {
					t.Fatalf("round %d: %d changes before the poll's ticket listing, %d between it and the deleted one; want some of each", round, before.Load(), between.Load())
				}
				some(2) // the same instant it ended
				s.drain()
			}
			h.clock.Advance(15 * time.Minute)
			s.poll(false)
			s.drain()
			s.converged()
			t.Logf("%d changes, none delivered", len(h.sent))
		})
	}
}

// ---- cases the scenarios above found ----

// TestPollChangingLists: the cases where Halo's lists change while the poller reads them,
// and the notes of a deleted ticket.
func TestPollChangingLists(t *testing.T) {
	t.Parallel()

	// Backfill pages are offsets into Halo's live list: a ticket on a page already read,
	// deleted before the next page is read, moves every later ticket one place up, and the
	// ticket that was first on the next page is read by no page. Tickets are read
	// incrementally after the backfill, so the copy never gets it unless it changes.
	t.Run("backfill skips a ticket when an earlier one is deleted", func(t *testing.T) {
		t.Parallel()
		h := newPlHarness(t, plSetup{seed: 9})
		h.tenant.Seed(h.rng, 4)
		h.ticketsTo(150)
		h.clock.Advance(time.Hour) // no ticket in the next poll's overlap
		tickets := h.tenant.Objects(change.Ticket)
		var once sync.Once
		h.setFaults(func(r *http.Request) *halosim.Fault {
			if isPage(r, change.Ticket, 2) {
				once.Do(func() {
					h.sent = append(h.sent, converge.SentEvent{Event: h.deleteTicket(tickets[0]["id"].(int64)), Payload: halosim.PayloadFull})
				})
			}
			return nil
		})
		s := h.start()
		s.poll(false)
		s.drain()
		h.setFaults(nil)
		h.clock.Advance(15 * time.Minute)
		s.poll(false)
		s.drain()
		t.Logf("ticket %v was first on page 2 when the backfill began", tickets[100]["id"])
		s.converged()
	})

	// A note added while the webhooks are down, to a ticket deleted since (its delete
	// delivered or not): the poll reads the deleted ticket (deleted=true) but, since
	// b21497a, lists no deleted ticket's notes, and neither the "ticket deleted" delivery
	// (full: the ticket only; event-only: not fetched) nor anything else brings the note.
	// Halo keeps a deleted ticket and its notes.
	t.Run("notes of a deleted ticket", func(t *testing.T) {
		t.Parallel()
		h := newPlHarness(t, plSetup{seed: 14})
		h.tenant.Seed(h.rng, 3)
		s := h.start()
		s.poll(false)
		s.drain()
		h.clock.Advance(time.Minute)
		note := h.do(halosim.AddNote) // its webhook is lost
		h.clock.Advance(time.Minute)
		del := h.deleteTicket(note.ObjectID)
		h.sent = append(h.sent, converge.SentEvent{Event: del, Payload: halosim.PayloadFull})
		snd := h.sender(s, halosim.PayloadFull, 0, 141)
		snd.Send(del)
		h.clock.Advance(time.Second)
		h.flush(snd)
		s.drain()
		h.clock.Advance(15 * time.Minute)
		s.poll(false)
		s.drain()
		s.converged()
	})

	// The reconcile's id list is paged the same way: a ticket deleted while it is read moves
	// a live ticket off the pages, and the reconcile tombstones that live ticket.
	t.Run("reconcile deletes a live ticket when another is deleted while it lists", func(t *testing.T) {
		t.Parallel()
		h := newPlHarness(t, plSetup{seed: 10})
		h.tenant.Seed(h.rng, 4)
		h.ticketsTo(150)
		tickets := h.tenant.Objects(change.Ticket)
		s := h.start()
		s.poll(false)
		s.drain()
		var once sync.Once
		h.setFaults(func(r *http.Request) *halosim.Fault {
			q := r.URL.Query()
			if strings.EqualFold(r.URL.Path, listPath(change.Ticket)) && q.Get("ticketidonly") == "true" && q.Get("page_no") == "2" {
				once.Do(func() {
					h.sent = append(h.sent, converge.SentEvent{Event: h.deleteTicket(tickets[0]["id"].(int64)), Payload: halosim.PayloadFull})
				})
			}
			return nil
		})
		h.clock.Advance(time.Minute)
		s.notDue("a minute after the backfill (the reconcile runs)")
		s.drain()
		h.setFaults(nil)
		id, _ := change.CanonicalID(tickets[100]["id"])
		if o, _, _ := s.get(change.Ticket, id, ""); o.Deleted {
			t.Errorf("ticket %s, live in Halo, was tombstoned by the reconcile (version %d)", id, o.Version)
		}
		h.clock.Advance(15 * time.Minute)
		s.poll(false)
		s.drain()
		s.converged()
	})

	// The reconcile reads Halo's id list, then the copy's: an object created in Halo after
	// the first and applied from its webhook before the second is in the copy and not in
	// the list, and is tombstoned; its tombstone is newer than the object, so the polls
	// after do not bring it back either.
	t.Run("reconcile deletes an object created while it runs", func(t *testing.T) {
		t.Parallel()
		h := newPlHarness(t, plSetup{seed: 11})
		h.tenant.Seed(h.rng, 4)
		s := h.start()
		s.poll(false)
		s.drain()
		snd := h.sender(s, halosim.PayloadFull, 0, 111)
		var created string
		s.runner.Stored = storedIDsHook{inner: s.runner.Stored, before: func(kind change.Kind) {
			if kind != change.Ticket || created != "" {
				return
			}
			e := h.do(halosim.NewTicket)
			created = strconv.FormatInt(e.ObjectID, 10)
			snd.Send(e)
			h.flush(snd)
			s.drain()
		}}
		h.clock.Advance(time.Minute)
		s.notDue("a minute after the backfill (the reconcile runs)")
		s.drain()
		if o, ok, _ := s.get(change.Ticket, created, ""); !ok || o.Deleted {
			t.Errorf("ticket %s, created in Halo while the reconcile ran: the copy holds %+v", created, o)
		}
		h.clock.Advance(15 * time.Minute)
		s.poll(false)
		s.drain()
		s.converged()
	})
}

func (h *plHarness) deleteTicket(id int64) halosim.Event {
	if !h.tenant.Delete(change.Ticket, id) {
		h.t.Errorf("no ticket %d to delete", id)
	}
	obj, _ := h.tenant.Object(change.Ticket, id)
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", h.rng.Uint32(), h.rng.IntN(1<<16), h.rng.IntN(1<<12), h.rng.IntN(1<<12), h.rng.Int64N(1<<48))
	}
	return halosim.Event{ID: uuid(), EscMsgID: uuid(), Name: "ticket deleted", EventNo: halosim.EventNumber("ticket deleted"),
		Kind: change.Ticket, Op: change.OpDelete, ObjectID: id, AgentID: 2, Message: fmt.Sprintf("Ticket ID: %07d has been deleted.", id),
		Timestamp: h.clock.Now().Add(100 * time.Nanosecond), Objects: map[change.Kind]map[string]any{change.Ticket: obj}}
}

// storedIDsHook runs before(kind) just before the copy's ids of a kind are listed.
type storedIDsHook struct {
	inner  poller.StoredIDs
	before func(kind change.Kind)
}

func (s storedIDsHook) StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func([]change.StoredID) error) error {
	s.before(kind)
	return s.inner.StoredIDs(ctx, conn, kind, fn)
}

// ---- small helpers ----

func total[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustHaloTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, ok, err := change.ParseHaloTime(s)
	if err != nil || !ok {
		t.Fatalf("%v is not a Halo time: %v", v, err)
	}
	return tm
}
