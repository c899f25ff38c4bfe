package lambdae2e

// More of the poller's scenarios through the emulated Lambda path (poller_test.go runs the
// lost webhooks and the deletes): the poller function's bootstrap under the runtime
// interface emulator, its first invoke (the warm-up, with the sample scheduled event) the
// backfill, later invokes forced by the event's detail ({"force": true}); the event source
// mapping (played) has the worker function apply what it enqueued to DynamoDB Local; the
// copy is then compared with the fake tenant (converge.WantConverged).
// internal/localserver/poll_test.go runs the same scenarios through halosync serve.
//
//   - (d) TestPollScenarioPagesThroughTheCap: 251 tickets, pages capped at 100: the
//     backfill asks for pages 1, 2 and 3 of 100 (record_count says when to stop) and the
//     copy holds every ticket.
//   - (e) TestPollScenarioRidesOutA429Storm: the tenant admits 8 requests per rolling 2
//     seconds and answers 429 with a Retry-After (1 or 2 s, waited for real) beyond that;
//     the backfill completes in its invoke and the copy converges.
//   - (f) TestPollScenarioResumesAfterAFailedPage: the tickets' page 2 is answered 400
//     once (permanent: the client does not retry it). The first invoke reports the
//     connection's error in its result (it fails as a whole only when every connection
//     failed, so the configuration has a second, healthy connection), the tickets' cursor
//     in DynamoDB says page 2; a forced invoke resumes at page 2 (no page 1 asked again)
//     and the copy converges.
//   - (g) TestPollScenarioSkewLosesNothing: the poller function runs on the system clock,
//     which the test cannot move, so the tenant's clock is shifted instead (two minutes
//     ahead, two minutes behind: the default overlap). Every kind is read incrementally;
//     changes are made just before a forced poll, while it runs (before its ticket
//     listing, and between it and the deleted-ticket listing) and between it and a second
//     forced poll, none delivered by a webhook; the copy converges.
//
// (b), the fallback to the short poll interval when the webhooks fall silent and back
// again, is not run here: it is about the schedule's own decisions (Plan.Due and
// Plan.After) over time, in whole minutes (the fallback interval is at least a minute, the
// silence window several), and the poller function reads the system clock (its bootstrap
// has no clock to inject), as the worker does for the webhook heartbeat. Forcing the
// invoke bypasses exactly the decision (b) tests, so on this path it would need several
// minutes of real time per run. It runs through serve on a controlled clock
// (localserver's TestPollFallbackEngagesAndRecovers) and in the poller's unit tests
// (internal/poller/schedule_test.go: TestFallbackEngagesAndRecovers,
// TestRunnerFallsBackWhenWebhooksStopAndReturns).

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/poller"
)

// scDrain bounds each wait for the queue to empty.
const scDrain = 20 * time.Second

// scKinds are the kinds the copy holds, notes last.
var scKinds = []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action}

// scConnection is one connection of the configuration: a tenant's API with a generous
// budget, the webhook's authentication, and poll, its poll: section (YAML indented under
// the connection), if any.
func scConnection(id, tenantURL, poll string) string {
	return `  - id: ` + id + `
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
` + poll
}

// pollScenario is one deployment: the stack, the worker and its played mapping, the
// poller function, and the tenant of the connection conn.
type pollScenario struct {
	t      *testing.T
	s      *stack
	tenant *halosim.Tenant
	worker *function
	poller *function
	player *esmPlayer
	event  events.EventBridgeEvent // the sample scheduled event
	first  awslambda.PollResult    // the first invoke's: the backfill
}

// startPollScenario deploys a stack configured by the connections given (YAML list
// items, scConnection), starts the worker and the poller, whose warm-up invoke (the sample
// scheduled event) is the first run.
func startPollScenario(t *testing.T, label string, tenant *halosim.Tenant, connections ...string) *pollScenario {
	t.Helper()
	s := newStack(t, label)
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, []byte("connections:\n"+strings.Join(connections, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	sc := &pollScenario{t: t, s: s, tenant: tenant}
	sc.worker = startConfigured(t, s, "worker", cfgFile, events.SQSEvent{Records: []events.SQSMessage{}})
	sc.player = newPlayer(t, s.queue, sc.worker, s.player.arn)
	sc.player.wait = 200 * time.Millisecond
	scheduled := sampleEvent(t, "poller-schedule.json")
	if err := json.Unmarshal(scheduled, &sc.event); err != nil {
		t.Fatal(err)
	}
	var out []byte
	sc.poller, out = startPollerFunction(t, s, cfgFile, scheduled)
	sc.first = decodeAs[awslambda.PollResult](t, sc.poller, out)
	return sc
}

// result returns what a run did for the connection id.
func (sc *pollScenario) result(res awslambda.PollResult, id string) poller.ConnectionResult {
	sc.t.Helper()
	for _, cr := range res.Connections {
		if cr.Connection == id {
			return cr
		}
	}
	sc.t.Fatalf("the run %+v has no result for connection %s", res, id)
	return poller.ConnectionResult{}
}

// force invokes the poller with a manual event forcing a poll of every connection, and
// returns what it did for conn.
func (sc *pollScenario) force() poller.ConnectionResult {
	sc.t.Helper()
	ev := sc.event
	ev.ID, ev.Time = "forced-"+strconv.FormatInt(time.Now().UnixNano(), 36), time.Now().UTC().Truncate(time.Second)
	ev.Detail = json.RawMessage(`{"force": true}`)
	return sc.result(invokeAs[awslambda.PollResult](sc.t, sc.poller, ev), conn)
}

// drain plays the mapping until the queue is empty.
func (sc *pollScenario) drain(what string) {
	sc.t.Helper()
	sc.player.runUntil(scDrain, what, func() bool { return sc.s.depth(sc.t, sc.s.qURL) == 0 })
}

// converged compares the copy with the tenant (sent: the events that told of deletes),
// and checks that the worker applied everything cleanly.
func (sc *pollScenario) converged(sent []converge.SentEvent) {
	t := sc.t
	t.Helper()
	get := func(kind change.Kind, id, parentID string) (change.Object, bool, error) {
		return sc.s.store.Get(t.Context(), conn, kind, id, parentID)
	}
	exps := converge.Expectations(t, sc.tenant, sent)
	converge.WantConverged(t, exps, sent, get)
	wantTableHoldsOnly(t, sc.s, exps)
	for id, n := range sc.player.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, truncate(sc.player.bodies[id], 300))
	}
	if d := sc.s.depth(t, sc.s.dlqURL); d != 0 {
		t.Errorf("%d messages on the dead-letter queue", d)
	}
	if errs := logRecords(t, sc.worker, "ERROR"); len(errs) > 0 {
		t.Errorf("the worker logged %d errors, the first: %s", len(errs), mustJSON(errs[0]))
	}
}

// cursor reads a kind's cursor of conn from DynamoDB, as the poller stored it.
func (sc *pollScenario) cursor(kind change.Kind) poller.Cursor {
	sc.t.Helper()
	doc, ok, err := sc.s.store.LoadCursor(sc.t.Context(), conn, string(kind))
	if err != nil || !ok {
		sc.t.Fatalf("the %s cursor: found %v, %v", kind, ok, err)
	}
	var c poller.Cursor
	if err := json.Unmarshal(doc, &c); err != nil {
		sc.t.Fatalf("the %s cursor %s: %v", kind, doc, err)
	}
	return c
}

// wantBackfill checks that a run read and enqueued every object of the tenant.
func wantBackfill(t *testing.T, cr poller.ConnectionResult, tenant *halosim.Tenant) {
	t.Helper()
	if !cr.Polled || cr.Error != "" || len(cr.Gap) != 0 {
		t.Fatalf("the backfill: %+v; want the connection polled, without error or webhook gap", cr)
	}
	for _, kind := range scKinds {
		if n := tenant.Count(kind); n == 0 || cr.Read[kind] != n || cr.Enqueued[kind] != n {
			t.Errorf("the backfill: %s: read %d, enqueued %d, of the tenant's %d", kind, cr.Read[kind], cr.Enqueued[kind], n)
		}
	}
}

// ---- the tenant's request log ----

// scList is one list request the tenant served.
type scList struct {
	halosim.Request
	page, size int
}

// scLists returns the list requests of a kind whose query satisfies match (nil: all), in
// the order received.
func scLists(tenant *halosim.Tenant, kind change.Kind, match func(q map[string][]string) bool) []scList {
	path := scListPath(kind)
	var out []scList
	for _, r := range tenant.Requests() {
		if r.Method != http.MethodGet || !strings.EqualFold(r.Path, path) || (match != nil && !match(r.Query)) {
			continue
		}
		l := scList{Request: r}
		l.page, _ = strconv.Atoi(r.Query.Get("page_no"))
		l.size, _ = strconv.Atoi(r.Query.Get("page_size"))
		out = append(out, l)
	}
	return out
}

// scBackfillList matches a backfill's listing: no id-only, deleted or last-update filter.
func scBackfillList(q map[string][]string) bool {
	for _, k := range []string{"ticketidonly", "idonly", "deleted", "lastupdatefromdate"} {
		if len(q[k]) > 0 && q[k][0] != "" {
			return false
		}
	}
	return true
}

// scListPath is the API path of a kind's listing, as the client writes it.
func scListPath(kind change.Kind) string {
	ep, _ := haloapi.EndpointOf(kind)
	return "/api/" + ep.Path
}

// scIsPage reports whether r asks for a kind's backfill page n.
func scIsPage(r *http.Request, kind change.Kind, n int) bool {
	q := r.URL.Query()
	return r.Method == http.MethodGet && strings.EqualFold(r.URL.Path, scListPath(kind)) && scBackfillList(q) && q.Get("page_no") == strconv.Itoa(n)
}

// scPages lists the pages asked for, as page/size→status.
func scPages(ls []scList) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d/%d→%d", l.page, l.size, l.Status)
	}
	return b.String()
}

// scTicketsTo logs new tickets (their events delivered nowhere: the backfill finds them)
// until the tenant holds n.
func scTicketsTo(t *testing.T, tenant *halosim.Tenant, rng *rand.Rand, n int) {
	t.Helper()
	for tenant.Count(change.Ticket) < n {
		if _, ok := tenant.Do(rng, halosim.NewTicket); !ok {
			t.Fatal("the tenant cannot log a ticket")
		}
	}
}

// ---- (d) the 100-item cap ----

// TestPollScenarioPagesThroughTheCap: a tenant with 251 tickets whose pages hold at most
// 100 items; the backfill (the first invoke) asks for pages 1 to 3 of 100 and no more, reads
// every object, and once the mapping has run the copy holds them all.
func TestPollScenarioPagesThroughTheCap(t *testing.T) {
	t.Parallel()
	tenant := halotest.Start(t, halosim.Options{PageCap: 100})
	rng := rand.New(rand.NewPCG(pollerSeed, 11))
	tenant.Seed(rng, 2)
	scTicketsTo(t, tenant, rng, 251)
	sc := startPollScenario(t, "pollcap", tenant, scConnection(conn, tenant.URL(), ""))
	wantBackfill(t, sc.result(sc.first, conn), tenant)
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
		n := tenant.Count(kind)
		ls := scLists(tenant, kind, scBackfillList)
		want := max(1, (n+99)/100)
		ok := len(ls) == want
		for i, l := range ls {
			ok = ok && l.page == i+1 && l.size == 100 && l.Status == http.StatusOK
		}
		if !ok {
			t.Errorf("%s backfill (%d objects): pages asked (page/size→status) %s; want pages 1..%d of 100", kind, n, scPages(ls), want)
		}
	}
	if ls := scLists(tenant, change.Action, nil); len(ls) != tenant.Count(change.Ticket) {
		t.Errorf("note listings: %d, want one per ticket (%d)", len(ls), tenant.Count(change.Ticket))
	}
	sc.drain("the backfill applied")
	sc.converged(nil)
}

// ---- (e) a 429 storm ----

// TestPollScenarioRidesOutA429Storm: the tenant admits 8 requests per rolling 2 seconds and
// answers 429 with Retry-After beyond that, while the backfill makes a few dozen requests.
// The client waits as told (real seconds), so no retry is refused again; the backfill
// completes within its invoke and the copy equals the tenant.
func TestPollScenarioRidesOutA429Storm(t *testing.T) {
	t.Parallel()
	tenant := halotest.Start(t, halosim.Options{RateLimit: 8, RateWindow: 2 * time.Second, SendRetryAfter: true})
	rng := rand.New(rand.NewPCG(pollerSeed, 12))
	tenant.Seed(rng, 3)
	sc := startPollScenario(t, "poll429", tenant, scConnection(conn, tenant.URL(), ""))
	wantBackfill(t, sc.result(sc.first, conn), tenant)
	var throttled, served int
	log := tenant.Requests()
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
	if throttled == 0 || served <= 8 {
		t.Fatalf("%d requests served, %d throttled: the storm did not happen", served, throttled)
	}
	sc.drain("the backfill applied")
	sc.converged(nil)
	t.Logf("%d requests served, %d answered 429; the backfill took %d ms", served, throttled, sc.result(sc.first, conn).DurationMS)
}

// ---- (f) a failed page ----

// TestPollScenarioResumesAfterAFailedPage: the backfill's second page of tickets is
// answered 400 once, which the client does not retry. The first invoke reports the
// connection's tickets failed (the other connection, an empty tenant, is polled: the
// invoke fails only when every connection fails), the other kinds are backfilled, and the
// tickets' cursor in DynamoDB says page 2. A forced invoke resumes at page 2 (the tenant's
// request log shows no page 1 of tickets), and the copy equals the tenant.
func TestPollScenarioResumesAfterAFailedPage(t *testing.T) {
	t.Parallel()
	var failed atomic.Bool
	tenant := halotest.Start(t, halosim.Options{Faults: func(r *http.Request) *halosim.Fault {
		if scIsPage(r, change.Ticket, 2) && failed.CompareAndSwap(false, true) {
			return &halosim.Fault{Status: http.StatusBadRequest, Body: `{"error":"the page could not be read"}`}
		}
		return nil
	}})
	rng := rand.New(rand.NewPCG(pollerSeed, 13))
	tenant.Seed(rng, 2)
	scTicketsTo(t, tenant, rng, 250)
	spare := halotest.Start(t, halosim.Options{})
	sc := startPollScenario(t, "pollresume", tenant,
		scConnection(conn, tenant.URL(), ""), scConnection("spare", spare.URL(), ""))

	first := sc.result(sc.first, conn)
	if !first.Polled || !strings.Contains(first.Error, string(change.Ticket)+":") {
		t.Fatalf("the first run: %+v; want the connection polled and its tickets failed", first)
	}
	if o := sc.result(sc.first, "spare"); !o.Polled || o.Error != "" {
		t.Errorf("the first run, the other connection: %+v; want it polled without error", o)
	}
	if ls := scLists(tenant, change.Ticket, scBackfillList); scPages(ls) != "1/100→200 2/100→400" {
		t.Errorf("the first run asked for tickets' pages %s; want page 1, then page 2 once (400 is not retried)", scPages(ls))
	}
	if first.Read[change.Ticket] != 100 {
		t.Errorf("the failed run read %d tickets, want page 1's 100", first.Read[change.Ticket])
	}
	cur := sc.cursor(change.Ticket)
	if cur.Backfilled || cur.NextPage != 2 || cur.BackfillStarted.IsZero() {
		t.Fatalf("the tickets' cursor after the failed page %+v; want page 2 next, not backfilled", cur)
	}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset} {
		if c := sc.cursor(kind); !c.Backfilled {
			t.Errorf("the %s cursor %+v: want it backfilled in spite of the tickets' failure", kind, c)
		}
	}
	if errs := logRecords(t, sc.poller, "ERROR"); len(errs) == 0 {
		t.Error("the poller logged no error for the failed page")
	}
	sc.drain("the first run applied")

	tenant.ResetRequests()
	second := sc.force()
	if !second.Polled || second.Error != "" {
		t.Fatalf("the forced run: %+v; want the connection polled without error", second)
	}
	ls := scLists(tenant, change.Ticket, scBackfillList)
	if len(ls) == 0 || ls[0].page != 2 {
		t.Errorf("the resumed backfill asked for tickets' pages %s; want it to start at page 2", scPages(ls))
	}
	for _, l := range ls {
		if l.page == 1 {
			t.Errorf("the resumed backfill asked for tickets' page 1 again: %s", scPages(ls))
			break
		}
	}
	if n := tenant.Count(change.Ticket) - 100; second.Read[change.Ticket] != n {
		t.Errorf("the resumed backfill read %d tickets, want the %d after page 1", second.Read[change.Ticket], n)
	}
	if c := sc.cursor(change.Ticket); !c.Backfilled || !c.Watermark.Equal(cur.BackfillStarted) {
		t.Errorf("the tickets' cursor after the resumed backfill %+v; want backfilled, watermark the first attempt's start %s", c, cur.BackfillStarted)
	}
	sc.drain("the resumed backfill applied")
	sc.converged(nil)
}

// ---- (g) clock skew ----

// TestPollScenarioSkewLosesNothing: the tenant's clock two minutes ahead of the poller
// function's, or two minutes behind; every kind read incrementally; no webhook delivered.
// After the backfill, changes are made just before a forced poll, while it runs (before
// its ticket listing, and between that and its deleted-ticket listing) and before a second
// forced poll; after it the copy equals the tenant.
func TestPollScenarioSkewLosesNothing(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		t.Run(fmt.Sprintf("halo %+v", skew), func(t *testing.T) {
			t.Parallel()
			var hook atomic.Pointer[func(*http.Request) *halosim.Fault]
			tenant := halotest.Start(t, halosim.Options{
				Clock: func() time.Time { return time.Now().Add(skew) },
				Faults: func(r *http.Request) *halosim.Fault {
					if f := hook.Load(); f != nil {
						return (*f)(r)
					}
					return nil
				},
			})
			// The tenant changes from the test and from the hook (the tenant's server);
			// mu orders them.
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(pollerSeed, 14))
			var sent []converge.SentEvent
			changes := []halosim.ChangeType{halosim.UpdateTicket, halosim.AddNote, halosim.ChangeStatus, halosim.NewTicket,
				halosim.Reassign, halosim.UpdateClient, halosim.CreateUser, halosim.UpdateUser, halosim.CreateAsset,
				halosim.UpdateAsset, halosim.DeleteTicket}
			some := func(n int) {
				mu.Lock()
				defer mu.Unlock()
				for range n {
					if e, ok := tenant.Do(rng, changes[rng.IntN(len(changes))]); ok {
						sent = append(sent, converge.SentEvent{Event: e, Payload: halosim.PayloadFull})
					}
				}
			}
			mu.Lock()
			tenant.Seed(rng, 4)
			mu.Unlock()
			sc := startPollScenario(t, "pollskew", tenant, scConnection(conn, tenant.URL(),
				"    poll:\n      kinds: {client: incremental, contact: incremental, asset: incremental}\n"))
			wantBackfill(t, sc.result(sc.first, conn), tenant)
			sc.drain("the backfill applied")
			sc.converged(nil)
			if t.Failed() {
				t.FailNow()
			}

			some(6) // just before the poll
			var before, between atomic.Int32
			var during sync.Once
			f := func(r *http.Request) *halosim.Fault {
				q := r.URL.Query()
				if r.Method != http.MethodGet || !strings.EqualFold(r.URL.Path, scListPath(change.Ticket)) || q.Get("lastupdatefromdate") == "" {
					return nil
				}
				if q.Get("deleted") == "true" {
					during.Do(func() { some(2); between.Add(2) }) // after the ticket listing, before the deleted one
				} else {
					some(1) // before the ticket listing is served
					before.Add(1)
				}
				return nil
			}
			hook.Store(&f)
			a := sc.force()
			hook.Store(nil)
			if !a.Polled || a.Error != "" {
				t.Fatalf("the first forced run: %+v", a)
			}
			if before.Load() == 0 || between.Load() == 0 {
				t.Fatalf("%d changes before the poll's ticket listing, %d between it and the deleted one; want some of each", before.Load(), between.Load())
			}
			some(6) // between the two polls
			b := sc.force()
			if !b.Polled || b.Error != "" {
				t.Fatalf("the second forced run: %+v", b)
			}
			sc.drain("the polls' changes applied")
			mu.Lock()
			defer mu.Unlock()
			sc.converged(sent)
			t.Logf("%d changes, none delivered; the polls found %v, then %v", len(sent), a.Gap, b.Gap)
		})
	}
}
