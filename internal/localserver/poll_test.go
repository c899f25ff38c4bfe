package localserver_test

// The poller through `halosync serve`: the scenarios of package pollscenario (which
// internal/lambdae2e runs through the emulated Lambda path) and those only this harness
// can run, on the real local server (the SQLite store and queue in a temporary directory,
// the worker pump, the HTTP server) with connections whose halo: settings point at fake
// Halo tenants (halosim) on a clock the test controls, webhook deliveries made over real
// HTTP by halosim senders, and the pipeline localserver.New builds (pipeline.Build: one
// haloapi.Client per connection, shared by the worker's fetches and the poller, the
// poller's run loop over every connection's runner, the store as the poller's copy,
// cursors and stored-id listing, the server's counters).
//
// What differs from serve, and why:
//
//   - localserver.Options.Now is the tenant's clock shifted by the scenario's skew, so
//     that the plans' intervals, the silence window and the watermarks can be walked
//     through in fake minutes.
//   - The test runs the pipeline's run loop (Server.Pipeline().Poller.Run) itself instead
//     of Server.Poll: serve's loop only calls Run(ctx, false, nil) on every tick of a
//     real-time ticker, and each connection's plan decides by the poller's clock whether a
//     poll is due; calling Run at chosen fake times exercises exactly those decisions,
//     without racing the tenant's changes and the webhook flushes against a ticker. The
//     loop itself is run by cmd/halosync's TestServePollsTheTenantAndSyncRestarts.
//   - The worker records the webhook heartbeat with its own clock, worker.now, which is
//     time.Now and cannot be set from outside package worker (pipeline.Build makes the
//     worker with worker.New, which takes no clock). In serve both sides run on the system
//     clock, which is consistent; with the poller on a fake clock it is not: a heartbeat
//     written at the system time would be hours or months away from the poller's "now".
//     The store the pipeline is given is therefore wrapped (scenarioStore): a heartbeat
//     the worker writes is stored at the poller's clock instead, and the system time it
//     carried is kept for assertions. The worker still decides when to write one (a
//     webhook change applied, at most every 30 s of system time per process); that
//     throttle runs on the system clock too, so within the few real seconds of a test one
//     worker process writes one heartbeat, and the fallback scenario restarts the server
//     where it needs a second (see TestPollFallbackEngagesAndRecovers).
//   - Where the client's backoff would sleep for real (429 with Retry-After, retried 5xx),
//     the client is made as haloapi.FromConfig makes it but with a clock whose sleeps move
//     the tenant's clock on (tenantSleeper); serve's FromConfig has no clock to inject.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
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
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/halotest/pollscenario"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/logtest"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
)

const (
	plDrain      = 30 * time.Second
	plRunTimeout = 30 * time.Second
	// plHeartbeat is the worker's heartbeat cursor (docs/ARCHITECTURE.md, "The poller":
	// _webhook).
	plHeartbeat = "_webhook"
)

// plStart is where every tenant's clock starts.
var plStart = time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)

// ---- the harness ----

// pollHarness is pollscenario's Harness through `halosync serve`: the tenant's clock, the
// configuration and the SQLite file outlive one run of the server (restart).
type pollHarness struct {
	t *testing.T
	// fakeSleep makes the Halo client sleep on the tenant's clock (tenantSleeper).
	fakeSleep bool
	clock     *halosim.Clock
	skew      time.Duration
	sleeper   *tenantSleeper // nil: the client is haloapi.FromConfig's, as serve makes it
	cfg       *config.Config
	path      string
	s         *testServer
	store     *scenarioStore    // the running server's
	logs      []*logtest.Buffer // every run's log
	// beforeStoredIDs, when set, runs just before the reconcile lists the copy's ids of a
	// kind.
	beforeStoredIDs func(kind change.Kind)
}

func newPollHarness(t *testing.T, fakeSleep bool) *pollHarness {
	return &pollHarness{t: t, fakeSleep: fakeSleep}
}

func (h *pollHarness) TenantClock(skew time.Duration) pollscenario.Clock {
	h.clock, h.skew = halosim.NewClock(plStart), skew
	if h.fakeSleep {
		h.sleeper = &tenantSleeper{clock: h.clock, skew: skew}
	}
	return h.clock
}

func (h *pollHarness) ControlsClock() bool { return true }

// now is the poller's clock: the tenant's, shifted by the skew.
func (h *pollHarness) now() time.Time { return h.clock.Now().Add(h.skew) }

func (h *pollHarness) Start(t *testing.T, doc string) {
	t.Helper()
	cfg, err := config.Parse(t.Context(), []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.cfg, h.path = cfg, filepath.Join(t.TempDir(), "halosync.db")
	h.start()
}

// start runs the server on the harness's SQLite file, as serve wires it (see the file's
// comment for the differences); stop (also run when the test ends) shuts it down.
func (h *pollHarness) start() {
	h.t.Helper()
	h.s = startServer(h.t, h.cfg, onFile(h.path), logTo(slog.LevelInfo, 6000), withNow(h.now), withHaloClient(h.client),
		wrappingStore(func(store *sqlite.Store) localserver.Store {
			h.store = &scenarioStore{Store: store, h: h}
			return h.store
		}))
	h.logs = append(h.logs, h.s.logs)
}

// restart stops the server and starts a new one on the same file: a new process.
func (h *pollHarness) restart() {
	h.t.Helper()
	h.s.stop()
	h.start()
}

// client makes a connection's Halo client: haloapi.FromConfig's, or the same options with
// the tenant-sleeping clock.
func (h *pollHarness) client(c *connection.Connection) (*haloapi.Client, error) {
	hc := c.Config.Halo
	if h.sleeper == nil {
		return haloapi.FromConfig(hc, nil)
	}
	return haloapi.NewClient(haloapi.ClientOptions{
		BaseURL: hc.BaseURL, AuthURL: hc.AuthURL, Tenant: hc.Tenant,
		ClientID: hc.ClientID, ClientSecret: hc.ClientSecret, Scope: hc.Scope,
		Budget:  haloapi.NewBudget(hc.Budget.Count(), hc.Budget.Window(), h.sleeper),
		Timeout: hc.Timeout(), Clock: h.sleeper,
	})
}

func (h *pollHarness) WebhookURL(_ *testing.T, conn string) string {
	return h.s.url + ingest.PathPrefix + conn
}

func (h *pollHarness) Poll(t *testing.T, force bool) []poller.ConnectionResult {
	t.Helper()
	res, err := h.run(context.Background(), force)
	if err != nil {
		t.Fatalf("at %s: a run (force %v): %v; results %+v", h.now().Format(time.RFC3339Nano), force, err, res)
	}
	return res
}

// run runs the pipeline's run loop once under ctx, bounded, as serve's loop does on a tick.
func (h *pollHarness) run(ctx context.Context, force bool) ([]poller.ConnectionResult, error) {
	ctx, cancel := context.WithTimeout(ctx, plRunTimeout)
	defer cancel()
	return h.s.srv.Pipeline().Poller.Run(ctx, force, nil)
}

func (h *pollHarness) Drain(t *testing.T) {
	t.Helper()
	h.s.waitStatus(t, plDrain, "the queue drained", drained)
}

func (h *pollHarness) Store() pollscenario.Store { return h.s.store }

func (h *pollHarness) WantHoldsOnly(t *testing.T, exps []converge.Expectation) {
	t.Helper()
	wantNothingElse(t, h.path, exps)
}

func (h *pollHarness) WantNothingFailed(t *testing.T) {
	t.Helper()
	st := h.s.status(t)
	if n := st.total(metrics.ChangesFailed); n != 0 || *st.DeadLetterQueue != (queueStats{}) {
		t.Errorf("ChangesFailed %d, dead-letter queue %+v; want none", n, *st.DeadLetterQueue)
	}
}

// Counts reads /status: the running server counted everything before it answered.
func (h *pollHarness) Counts(t *testing.T, name string, _ int64) pollscenario.Counts {
	t.Helper()
	out := pollscenario.Counts{}
	for _, e := range h.s.status(t).Counters {
		if e.Name == name {
			out[e.Metric] = e.Value
		}
	}
	return out
}

func (h *pollHarness) Logs(t *testing.T) []pollscenario.Record {
	t.Helper()
	var out []pollscenario.Record
	for _, l := range h.logs {
		sc := bufio.NewScanner(strings.NewReader(l.String()))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r pollscenario.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("the server's log line %q: %v", sc.Text(), err)
			}
			out = append(out, r)
		}
	}
	return out
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

// scenarioStore is the store as the pipeline sees it, but for two things. The webhook
// heartbeat: the worker writes it at worker.now (the system clock, which a test cannot
// set); it is stored at the poller's clock, which is what serve's wiring amounts to (both
// on one clock), and the system time each heartbeat carried is kept. And the harness's
// beforeStoredIDs hook, run before the reconcile lists the copy's ids.
type scenarioStore struct {
	*sqlite.Store
	h *pollHarness

	mu     sync.Mutex
	system []time.Time // what the worker wrote
	stored []time.Time // what was stored
}

func (s *scenarioStore) SaveCursor(ctx context.Context, conn, name string, doc []byte) error {
	if name != plHeartbeat {
		return s.Store.SaveCursor(ctx, conn, name, doc)
	}
	var hb struct {
		At time.Time `json:"at"`
	}
	if err := json.Unmarshal(doc, &hb); err != nil {
		return fmt.Errorf("the worker's heartbeat %s: %w", doc, err)
	}
	at := s.h.now().UTC()
	s.mu.Lock()
	s.system = append(s.system, hb.At)
	s.stored = append(s.stored, at)
	s.mu.Unlock()
	return poller.Heartbeat(ctx, s.Store, conn, at)
}

func (s *scenarioStore) StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func([]change.StoredID) error) error {
	if s.h.beforeStoredIDs != nil {
		s.h.beforeStoredIDs(kind)
	}
	return s.Store.StoredIDs(ctx, conn, kind, fn)
}

// writes returns the heartbeats the worker wrote: the system times, and the times stored.
func (s *scenarioStore) writes() (system, stored []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.system), slices.Clone(s.stored)
}

// ---- the shared scenarios ----

// (a) lost webhooks.
func TestPollFindsWhatTheWebhooksLost(t *testing.T) {
	t.Parallel()
	pollscenario.FindsWhatTheWebhooksLost(t, newPollHarness(t, false))
}

// (c) deletes; then, on the controlled clock only (a day of the poller's time), the next
// reconcile, due a day after the first: a delete after the first is found then, not by
// the polls in between.
func TestPollFindsDeletesOfEveryKind(t *testing.T) {
	t.Parallel()
	sc, note := pollscenario.FindsDeletesOfEveryKind(t, newPollHarness(t, false))
	sc.Clock.Advance(time.Minute)
	later := sc.Do(halosim.DeleteAsset)
	laterID := strconv.FormatInt(later.ObjectID, 10)
	sc.PollDue(15 * time.Minute)
	sc.Drain()
	if o, _, _ := sc.Get(change.Asset, laterID, ""); o.Deleted {
		t.Errorf("asset %s was tombstoned by a poll before the next reconcile was due", laterID)
	}
	sc.At(sc.Schedule().LastReconcile.Add(24 * time.Hour))
	if cr := sc.Poll(false); cr.Error != "" {
		t.Fatalf("the next day's run: %+v", cr)
	}
	sc.Drain()
	if o, ok, _ := sc.Get(change.Asset, laterID, ""); !ok || !o.Deleted {
		t.Errorf("asset %s, deleted in Halo: after the next day's reconcile the copy holds %+v", laterID, o)
	}
	sc.Converged(note)
}

// (d) paging, at Halo's cap and below it.
func TestPollBackfillPagesThroughTheCap(t *testing.T) {
	t.Parallel()
	for _, pageCap := range []int{100, 40} {
		t.Run(fmt.Sprintf("cap %d", pageCap), func(t *testing.T) {
			t.Parallel()
			pollscenario.PagesThroughTheCap(t, newPollHarness(t, false), pageCap)
		})
	}
}

// (e) a 429 storm: 10 requests per rolling 5 minutes for a backfill of nearly a hundred,
// each request taking a second of the tenant's time (so the window slides and the
// Retry-After varies); the client (serve's, sleeping on the tenant's clock) waits once per
// 429, for the Retry-After, never more than the window.
func TestPollBackfillRidesOutA429Storm(t *testing.T) {
	t.Parallel()
	h := newPollHarness(t, true)
	res := pollscenario.RidesOutA429Storm(t, h, pollscenario.Storm{Clients: 16, RateLimit: 10, PerRequest: time.Second, Throttled: 5})
	sleeps := h.sleeper.sleeps()
	if len(sleeps) != res.Throttled {
		t.Errorf("%d answers 429, %d waits %v; want one wait per 429", res.Throttled, len(sleeps), sleeps)
	}
	for _, d := range sleeps {
		if d <= 0 || d > 5*time.Minute {
			t.Errorf("a wait of %v: want the Retry-After, between 0 and the 5-minute window", d)
		}
	}
}

// (f) an interrupted backfill: page 2 answered 503 every time until the client gives up
// (its backoff sleeping on the tenant's clock), or 400 once (not retried); and a crash,
// which only this harness can play: the process dies while asking for page 2 (its
// context ends), and a new server on the same file resumes at page 2.
func TestPollBackfillResumesAfterAFailedPage(t *testing.T) {
	t.Parallel()
	t.Run("503", func(t *testing.T) {
		t.Parallel()
		pollscenario.ResumesAfterAFailedPage(t, newPollHarness(t, true), pollscenario.PageFailure{
			Status: http.StatusServiceUnavailable, Attempts: 1 + haloapi.DefaultMaxRetries, Class: haloapi.ErrUnavailable})
	})
	t.Run("400", func(t *testing.T) {
		t.Parallel()
		pollscenario.ResumesAfterAFailedPage(t, newPollHarness(t, false), pollscenario.PageFailure{
			Status: http.StatusBadRequest, Attempts: 1, Class: haloapi.ErrPermanent})
	})
	t.Run("crash", func(t *testing.T) {
		t.Parallel()
		h := newPollHarness(t, false)
		sc := pollscenario.New(t, h, pollscenario.Setup{Seed: 7})
		sc.Seed(6)
		sc.TicketsTo(250)
		sc.Start()
		ctx, crash := context.WithCancel(context.Background())
		defer crash()
		sc.SetFaults(func(r *http.Request) *halosim.Fault {
			if pollscenario.IsPage(r, change.Ticket, 2) {
				crash() // the process dies while it waits for page 2
				f := halosim.Slow(time.Minute)
				return &f
			}
			return nil
		})
		res, err := h.run(ctx, false)
		first := sc.Result(res, pollscenario.Conn)
		if err != nil || !first.Polled || !strings.Contains(first.Error, context.Canceled.Error()) {
			t.Fatalf("the crashed run: %+v, %v; want the connection polled and called off", first, err)
		}
		sc.SetFaults(nil)
		h.restart()
		sc.ResumeAndConverge(first)
	})
}

// (g) clock skew.
func TestPollSkewLosesNothing(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		t.Run(fmt.Sprintf("ours %+v", skew), func(t *testing.T) {
			t.Parallel()
			pollscenario.SkewLosesNothing(t, newPollHarness(t, false), skew)
		})
	}
}

func TestPollNotesOfADeletedTicket(t *testing.T) {
	t.Parallel()
	pollscenario.NotesOfADeletedTicket(t, newPollHarness(t, false))
}

func TestPollReconcileKeepsALiveTicketWhileTheListShifts(t *testing.T) {
	t.Parallel()
	pollscenario.ReconcileKeepsALiveTicketWhileTheListShifts(t, newPollHarness(t, false))
}

// ---- scenarios only this harness can run ----

// TestPollFallbackEngagesAndRecovers (b), on the controlled clock only: the fallback is
// the schedule's own decisions over whole minutes of the poller's clock, and the worker
// process's heartbeat. Hybrid mode with a 3-minute silence window and a 1-minute fallback
// interval (poll every 15 minutes otherwise).
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
	h := newPollHarness(t, false)
	sc := pollscenario.New(t, h, pollscenario.Setup{Seed: 2, Poll: "    poll:\n      silence_minutes: 3\n      fallback_minutes: 1\n"})
	sc.Seed(4)
	sc.Start()
	conn, _ := h.s.srv.Pipeline().Connections.Get(pollscenario.Conn)
	if plan := poller.PlanOf(conn.Poll); plan.Interval != 15*time.Minute || plan.Silence != 3*time.Minute || plan.Fallback != time.Minute {
		t.Fatalf("plan %+v", plan)
	}
	sc.PollOK(false) // the backfill
	sc.Drain()
	t0 := sc.Now()
	mk := func(snd *halosim.Sender) {
		sc.Clock.Advance(20 * time.Second)
		snd.Send(sc.Step(halosim.PayloadFull))
	}
	fallback := func(label string) int64 { return h.s.status(t).count(metrics.PollFallback, pollscenario.Conn, label) }

	// 1. Webhooks flowing.
	flowing := sc.Sender(halosim.PayloadFull, 0.3, 21)
	sc.Clock.Advance(time.Minute)
	sc.NotDue("a minute after the backfill") // (the first reconcile runs here)
	for range 36 {
		mk(flowing) // 12 minutes of changes ...
	}
	sc.Clock.Advance(time.Minute)
	c := sc.Flush(flowing) // ... delivered at once, so the process's one heartbeat is fresh
	if c.Dropped == 0 || c.Sent == 0 {
		t.Fatalf("deliveries %+v: want some lost, some delivered", c)
	}
	sc.Drain()
	system, stored := h.store.writes()
	if len(stored) != 1 {
		t.Fatalf("the worker wrote %d heartbeats, want 1", len(stored))
	}
	// The worker writes its heartbeat at the system time, not at the poller's clock.
	if system[0].Before(realStart.Add(-time.Second)) || system[0].After(time.Now().Add(time.Second)) {
		t.Errorf("the worker's heartbeat carried %s; want the system time (the test began at %s)", system[0], realStart)
	}
	t.Logf("the worker's heartbeat: written at %s (system clock), stored at %s (the poller's clock)", system[0].Format(time.RFC3339), stored[0].Format(time.RFC3339))
	sc.At(t0.Add(15 * time.Minute))
	if rep := sc.PollOK(false); len(rep.Gap) == 0 {
		t.Fatalf("the poll found nothing the webhooks lost (%+v): the scenario tests too little", rep)
	}
	if n := fallback("engaged"); n != 0 || sc.Schedule().Fallback {
		t.Fatalf("webhooks flowing, heartbeat %s, poll at %s: PollFallback{engaged} %d, state %+v; want no fallback",
			stored[0], sc.Now(), n, sc.Schedule())
	}
	sc.Drain()
	sc.Clock.Advance(time.Minute)
	sc.NotDue("webhooks healthy, a minute after the last poll")

	// 2. Restart; the webhooks stop.
	h.restart()
	stopped := sc.Sender(halosim.PayloadFull, 0, 22) // holds its events until flushed
	for range 40 {
		mk(stopped) // until 15 minutes after the last poll
	}
	sc.At(t0.Add(30 * time.Minute))
	if rep := sc.PollOK(false); len(rep.Gap) == 0 {
		t.Fatalf("the poll after the webhooks stopped found nothing: %+v", rep)
	}
	if fallback("engaged") != 1 || !sc.Schedule().Fallback {
		t.Fatalf("no webhook change for %v while Halo changed: PollFallback %+v, state %+v; want the fallback engaged",
			sc.Now().Sub(stored[0]), h.s.status(t).Counters, sc.Schedule())
	}
	engaged := sc.Now()
	sc.Drain()
	mk(stopped)
	sc.At(engaged.Add(59 * time.Second))
	sc.NotDue("fallback, 59 s after the last poll")
	sc.At(engaged.Add(time.Minute))
	sc.PollOK(false)
	sc.Drain()
	if fallback("engaged") != 1 || fallback("recovered") != 0 {
		t.Fatalf("fallback, webhooks still silent: PollFallback %+v", h.s.status(t).Counters)
	}

	// 3. The webhooks return.
	mk(stopped)
	sc.Clock.Advance(2 * time.Second)
	if c := sc.Flush(stopped); c.Sent == 0 {
		t.Fatalf("deliveries %+v", c)
	}
	sc.Drain()
	_, stored2 := h.store.writes()
	if len(stored2) != 1 || !stored2[0].After(sc.Schedule().Switched) {
		t.Fatalf("after the webhooks returned the new process wrote heartbeats %v; want one after the switch at %s", stored2, sc.Schedule().Switched)
	}
	sc.At(engaged.Add(2 * time.Minute))
	sc.PollOK(false)
	sc.Drain()
	if fallback("recovered") != 1 || sc.Schedule().Fallback {
		t.Fatalf("a webhook change applied at %s after the fallback engaged at %s: PollFallback %+v, state %+v; want recovered",
			stored2[0], engaged, h.s.status(t).Counters, sc.Schedule())
	}
	recovered := sc.Now()
	sc.At(recovered.Add(time.Minute))
	sc.NotDue("recovered, a minute after the last poll")
	sc.At(recovered.Add(15 * time.Minute))
	sc.PollOK(false)
	sc.Drain()
	sc.Converged()
}

// TestPollChangingLists: lists that change while the poller reads them, in cases only
// this harness can play.
func TestPollChangingLists(t *testing.T) {
	t.Parallel()

	// Backfill pages are offsets into Halo's live list: a ticket on a page already read,
	// deleted before the next page is read, moves every later ticket one place up, and the
	// ticket that was first on the next page is read by no page. Tickets are read
	// incrementally after the backfill, and an hour passes first, so the next poll does
	// not read it either: the reconcile finds it missing from the copy. Only on the
	// controlled clock: on the system clock Halo's would run an hour ahead, and the next
	// poll's overlap would cover the skipped ticket.
	t.Run("the reconcile brings in a ticket the backfill skipped", func(t *testing.T) {
		t.Parallel()
		sc := pollscenario.New(t, newPollHarness(t, false), pollscenario.Setup{Seed: 9})
		sc.Seed(4)
		sc.TicketsTo(150)
		sc.Clock.Advance(time.Hour) // no ticket in the next poll's overlap
		tickets := sc.Tenant.Objects(change.Ticket)
		var deleted atomic.Bool
		sc.SetFaults(func(r *http.Request) *halosim.Fault {
			if pollscenario.IsPage(r, change.Ticket, 2) && deleted.CompareAndSwap(false, true) {
				sc.DeleteTicket(tickets[0]["id"].(int64))
			}
			return nil
		})
		sc.Start()
		sc.PollOK(false)
		sc.Drain()
		sc.SetFaults(nil)
		if !deleted.Load() {
			t.Fatal("the backfill asked for no second page of tickets: the scenario tests nothing")
		}
		sc.PollDue(15 * time.Minute)
		sc.Drain()
		t.Logf("ticket %v was first on page 2 when the backfill began", tickets[100]["id"])
		sc.Converged()
	})

	// The reconcile reads the copy's ids first, then Halo's id list: an object created in
	// Halo and applied from its webhook just before the copy is read is in both, and the
	// reconcile leaves it alone. Only here: the hook runs inside the poller's process, in
	// the store it reads the copy through.
	t.Run("the reconcile keeps an object created while it runs", func(t *testing.T) {
		t.Parallel()
		h := newPollHarness(t, false)
		sc := pollscenario.New(t, h, pollscenario.Setup{Seed: 11})
		sc.Seed(4)
		sc.Start()
		sc.PollOK(false)
		sc.Drain()
		snd := sc.Sender(halosim.PayloadFull, 0, 111)
		var created string
		h.beforeStoredIDs = func(kind change.Kind) {
			if kind != change.Ticket || created != "" {
				return
			}
			e := sc.Do(halosim.NewTicket)
			created = strconv.FormatInt(e.ObjectID, 10)
			snd.Send(e)
			sc.Flush(snd)
			sc.Drain()
		}
		sc.Clock.Advance(time.Minute)
		sc.NotDue("a minute after the backfill (the reconcile runs)")
		h.beforeStoredIDs = nil
		sc.Drain()
		if created == "" {
			t.Fatal("the reconcile listed no ticket ids of the copy: the scenario tests nothing")
		}
		if o, ok, _ := sc.Get(change.Ticket, created, ""); !ok || o.Deleted {
			t.Errorf("ticket %s, created in Halo while the reconcile ran: the copy holds %+v", created, o)
		}
		sc.PollDue(15 * time.Minute)
		sc.Drain()
		sc.Converged()
	})
}
