package pollscenario

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

// The connections' names and secrets.
const (
	Conn       = "default" // the connection every scenario polls
	SpareConn  = "spare"   // a second connection, on an empty tenant
	tenantName = "polled"
	webhookPw  = "poll-basic-secret"
	webhookKey = "poll-hmac-secret"
	seedBase   = 20261127
	drain      = 30 * time.Second // a flush of the webhooks
	// scheduleName is the schedule's state beside the cursors (docs/ARCHITECTURE.md,
	// "The poller": _schedule).
	scheduleName = "_schedule"
)

// Kinds are the kinds the copy holds, in the poller's order, notes last.
var Kinds = []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action}

// Setup shapes a scenario.
type Setup struct {
	Seed   uint64          // the scenario's random stream
	Tenant halosim.Options // the tenant's shape; Clock, Faults and TenantName are the scenario's
	Poll   string          // the connection's poll: section (YAML indented under it), if any
	Skew   time.Duration   // the poller's clock minus Halo's
	Spare  bool            // a second connection, SpareConn, on an empty tenant
}

// Scenario is one scenario's tenant, its clock, the harness, and every event the tenant
// raised, delivered or not.
type Scenario struct {
	T      *testing.T
	H      Harness
	Tenant *halosim.Tenant
	Clock  Clock
	Skew   time.Duration
	config string
	conns  int // connections configured: each run reports on every one
	faults atomic.Pointer[func(*http.Request) *halosim.Fault]
	// mu orders the changes the test makes and those the tenant's fault hooks make (on
	// the tenant's server, while a poll reads it).
	mu   sync.Mutex
	rng  *rand.Rand
	sent []converge.SentEvent
}

// New makes the scenario's tenant on the harness's clock; Start runs the pipeline.
func New(t *testing.T, h Harness, s Setup) *Scenario {
	t.Helper()
	sc := &Scenario{T: t, H: h, Skew: s.Skew, rng: rand.New(rand.NewPCG(seedBase, s.Seed))}
	sc.Clock = h.TenantClock(s.Skew)
	opts := s.Tenant
	opts.TenantName = tenantName
	opts.Clock = sc.Clock.Now
	opts.StrictParams = true // the poller sends only what Halo documents for each call
	opts.Faults = func(r *http.Request) *halosim.Fault {
		if f := sc.faults.Load(); f != nil {
			return (*f)(r)
		}
		return nil
	}
	sc.Tenant = halotest.Start(t, opts)
	sc.config, sc.conns = "connections:\n"+connection(Conn, sc.Tenant.URL(), s.Poll), 1
	if s.Spare {
		sc.conns++
		spare := halotest.Start(t, halosim.Options{TenantName: tenantName, Clock: sc.Clock.Now})
		sc.config += connection(SpareConn, spare.URL(), "")
	}
	sc.config += "queue:\n  visibility_seconds: 30\n  max_receive: 5\n"
	return sc
}

// connection is one connection of the configuration: the tenant's API with a generous
// budget (Halo's own limit is the tenant's RateLimit), Basic and signed-body webhook
// authentication, and poll, its poll: section. Verification is off unless poll has a
// verify: section: the scenarios count the poll's own requests. Versions may run a day ahead of their
// receipt: a scenario steps the tenant's clock on by minutes per change, and where the
// harness cannot move the pipeline's clock with it (the Lambda functions read the system
// clock), the tenant's markers run hours ahead of it. The version rule has its own tests.
func connection(id, tenantURL, poll string) string {
	verify := "    verify: {enabled: false}\n"
	if strings.Contains(poll, "verify:") {
		verify = "" // a scenario of verification
	}
	return `  - id: ` + id + `
    halo:
      base_url: ` + tenantURL + `
      tenant: ` + tenantName + `
      client_id: halotest-client
      client_secret: halotest-secret
      budget: {requests: 100000, window_seconds: 300}
    versions: {max_skew_seconds: 86400}
` + verify + `    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["` + webhookPw + `"]
        - scheme: hmac
          header: Token
          secrets: ["` + webhookKey + `"]
` + poll
}

// Start runs the pipeline.
func (sc *Scenario) Start() {
	sc.T.Helper()
	sc.H.Start(sc.T, sc.config)
}

// ---- the tenant ----

// Seed fills the tenant with clients, each with contacts, assets, tickets and notes,
// raising no events.
func (sc *Scenario) Seed(clients int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.Tenant.Seed(sc.rng, clients)
}

// Do makes one change of a type and records its event, failing the test when the tenant
// has nothing to make it on.
func (sc *Scenario) Do(ct halosim.ChangeType) halosim.Event {
	sc.T.Helper()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e, ok := sc.Tenant.Do(sc.rng, ct)
	if !ok {
		sc.T.Fatalf("the tenant has nothing to %s", ct)
	}
	sc.sent = append(sc.sent, converge.SentEvent{Event: e, Payload: halosim.PayloadFull})
	return e
}

// Step makes one random change and records its event, delivered by payload.
func (sc *Scenario) Step(payload halosim.PayloadType) halosim.Event {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e := sc.Tenant.Step(sc.rng)
	sc.sent = append(sc.sent, converge.SentEvent{Event: e, Payload: payload})
	return e
}

// someChanges are the changes Some makes: every kind, deletes of tickets only (a hard
// delete needs an object with nothing under it).
var someChanges = []halosim.ChangeType{halosim.UpdateTicket, halosim.AddNote, halosim.ChangeStatus, halosim.NewTicket,
	halosim.Reassign, halosim.UpdateClient, halosim.CreateUser, halosim.UpdateUser, halosim.CreateAsset,
	halosim.UpdateAsset, halosim.DeleteTicket}

// Some makes n changes drawn from someChanges, skipping one the tenant cannot make, and
// records their events; no webhook delivers them.
func (sc *Scenario) Some(n int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for range n {
		if e, ok := sc.Tenant.Do(sc.rng, someChanges[sc.rng.IntN(len(someChanges))]); ok {
			sc.sent = append(sc.sent, converge.SentEvent{Event: e, Payload: halosim.PayloadFull})
		}
	}
}

// TicketsTo logs new tickets, a second apart (their events delivered nowhere: the
// backfill finds them), until the tenant holds n.
func (sc *Scenario) TicketsTo(n int) {
	sc.T.Helper()
	for sc.Tenant.Count(change.Ticket) < n {
		sc.Clock.Advance(time.Second)
		sc.Do(halosim.NewTicket)
	}
}

// DeleteTicket deletes a given ticket (Halo keeps it, flagged) and records the event it
// raises.
func (sc *Scenario) DeleteTicket(id int64) halosim.Event {
	sc.T.Helper()
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if !sc.Tenant.Delete(change.Ticket, id) {
		sc.T.Errorf("no ticket %d to delete", id)
	}
	obj, _ := sc.Tenant.Object(change.Ticket, id)
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", sc.rng.Uint32(), sc.rng.IntN(1<<16), sc.rng.IntN(1<<12), sc.rng.IntN(1<<12), sc.rng.Int64N(1<<48))
	}
	e := halosim.Event{ID: uuid(), EscMsgID: uuid(), Name: "ticket deleted", EventNo: halosim.EventNumber("ticket deleted"),
		Kind: change.Ticket, Op: change.OpDelete, ObjectID: id, AgentID: 2, Message: fmt.Sprintf("Ticket ID: %07d has been deleted.", id),
		Timestamp: sc.Clock.Now().Add(100 * time.Nanosecond), Objects: map[change.Kind]map[string]any{change.Ticket: obj}}
	sc.sent = append(sc.sent, converge.SentEvent{Event: e, Payload: halosim.PayloadFull})
	return e
}

// IntN is a random number in [0, n) from the scenario's stream.
func (sc *Scenario) IntN(n int) int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.rng.IntN(n)
}

// Jitter is a random duration below max.
func (sc *Scenario) Jitter(max time.Duration) time.Duration {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return time.Duration(sc.rng.Int64N(int64(max)))
}

// SetFaults has the tenant ask f about every request (nil: no faults).
func (sc *Scenario) SetFaults(f func(*http.Request) *halosim.Fault) {
	if f == nil {
		sc.faults.Store(nil)
		return
	}
	sc.faults.Store(&f)
}

// Sent returns every event the tenant raised, delivered or not.
func (sc *Scenario) Sent() []converge.SentEvent {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return slices.Clone(sc.sent)
}

// ---- the webhooks ----

// Sender makes a webhook of the connection delivering pt payloads (Basic authentication
// for full ones, the signed body for event-only ones), reordering a little, duplicating a
// tenth and losing a share drop of its deliveries.
func (sc *Scenario) Sender(pt halosim.PayloadType, drop float64, seed uint64) *halosim.Sender {
	sc.T.Helper()
	auth := halosim.BasicAuth("halo", webhookPw)
	if pt == halosim.PayloadEventOnly {
		auth = halosim.HMACAuth(webhookKey)
	}
	return halosim.NewSender(halosim.SenderOptions{
		URL: sc.H.WebhookURL(sc.T, Conn), Auth: auth, PayloadType: pt, Reorder: 4,
		DuplicateRate: 0.1, DropRate: drop, Rand: rand.New(rand.NewPCG(seedBase, seed)), Tenant: sc.Tenant,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	})
}

// Flush delivers what the senders hold and fails the test unless every delivery made was
// accepted; it returns the sum of their counts.
func (sc *Scenario) Flush(senders ...*halosim.Sender) halosim.Counts {
	sc.T.Helper()
	ctx, cancel := context.WithTimeout(sc.T.Context(), drain)
	defer cancel()
	var sum halosim.Counts
	for _, s := range senders {
		c, err := s.Flush(ctx)
		if err != nil || c.Failed != 0 {
			sc.T.Fatalf("webhook flush: %+v, %v; want every delivery made accepted", c, err)
		}
		sum.Sent += c.Sent
		sum.Dropped += c.Dropped
		sum.Duplicated += c.Duplicated
	}
	return sum
}

// ---- the poller ----

// Result returns what a run did for the connection conn, failing the test unless the run
// reported on every connection.
func (sc *Scenario) Result(res []poller.ConnectionResult, conn string) poller.ConnectionResult {
	sc.T.Helper()
	if len(res) != sc.conns {
		sc.T.Fatalf("the run %+v reports on %d connections, want %d", res, len(res), sc.conns)
	}
	for _, cr := range res {
		if cr.Connection == conn {
			return cr
		}
	}
	sc.T.Fatalf("the run %+v has no result for connection %s", res, conn)
	return poller.ConnectionResult{}
}

// Poll runs the poller once and returns what it did for the connection.
func (sc *Scenario) Poll(force bool) poller.ConnectionResult {
	sc.T.Helper()
	return sc.Result(sc.H.Poll(sc.T, force), Conn)
}

// PollOK runs the poller once and fails the test unless it polled the connection without
// error.
func (sc *Scenario) PollOK(force bool) poller.ConnectionResult {
	sc.T.Helper()
	cr := sc.Poll(force)
	if !cr.Polled || cr.Error != "" {
		sc.T.Fatalf("%s: a run (force %v): %+v; want the connection polled without error", sc.when(), force, cr)
	}
	return cr
}

// PollDue runs the poll the plan makes interval after the last one: on a harness that
// controls the poller's clock, the clock moves on by interval and the plan decides; on the
// system clock it is forced.
func (sc *Scenario) PollDue(interval time.Duration) poller.ConnectionResult {
	sc.T.Helper()
	if !sc.H.ControlsClock() {
		return sc.PollOK(true)
	}
	sc.Clock.Advance(interval)
	return sc.PollOK(false)
}

// NotDue runs the poller as the schedule does and fails the test if it polled the
// connection or failed (the reconcile may run).
func (sc *Scenario) NotDue(what string) {
	sc.T.Helper()
	if cr := sc.Poll(false); cr.Polled || cr.Error != "" {
		sc.T.Fatalf("%s (%s): a run: %+v; want no poll and no error", what, sc.when(), cr)
	}
}

// Now is the poller's clock, on a harness that controls it.
func (sc *Scenario) Now() time.Time {
	sc.T.Helper()
	if !sc.H.ControlsClock() {
		sc.T.Fatal("the poller runs on the system clock: the scenario cannot tell its time")
	}
	return sc.Clock.Now().Add(sc.Skew)
}

// At moves the clocks on until the poller's reads when.
func (sc *Scenario) At(when time.Time) {
	sc.T.Helper()
	d := when.Sub(sc.Now())
	if d < 0 {
		sc.T.Fatalf("the poller's clock reads %s, after %s: it only moves on", sc.Now(), when)
	}
	sc.Clock.Advance(d)
}

func (sc *Scenario) when() string {
	if sc.H.ControlsClock() {
		return "at " + sc.Now().Format(time.RFC3339Nano)
	}
	return "on the system clock"
}

// Cursor reads a kind's cursor as the poller stored it.
func (sc *Scenario) Cursor(kind change.Kind) poller.Cursor {
	sc.T.Helper()
	doc, ok, err := sc.H.Store().LoadCursor(sc.T.Context(), Conn, string(kind))
	if err != nil || !ok {
		sc.T.Fatalf("the %s cursor: found %v, %v", kind, ok, err)
	}
	var c poller.Cursor
	if err := json.Unmarshal(doc, &c); err != nil {
		sc.T.Fatalf("the %s cursor %s: %v", kind, doc, err)
	}
	return c
}

// Schedule reads the connection's schedule state (zero before the first run).
func (sc *Scenario) Schedule() poller.State {
	sc.T.Helper()
	var st poller.State
	doc, ok, err := sc.H.Store().LoadCursor(sc.T.Context(), Conn, scheduleName)
	if err != nil {
		sc.T.Fatal(err)
	}
	if ok {
		if err := json.Unmarshal(doc, &st); err != nil {
			sc.T.Fatalf("schedule state %s: %v", doc, err)
		}
	}
	return st
}

// ---- the copy ----

// Drain has the worker apply what is queued.
func (sc *Scenario) Drain() {
	sc.T.Helper()
	sc.H.Drain(sc.T)
}

// Get reads one object of the connection from the copy.
func (sc *Scenario) Get(kind change.Kind, id, parentID string) (change.Object, bool, error) {
	return sc.H.Store().Get(context.Background(), Conn, kind, id, parentID)
}

// Expected is what the copy must hold: the convergence run's expectations over every
// event the tenant raised.
func (sc *Scenario) Expected() []converge.Expectation {
	sc.T.Helper()
	return converge.Expectations(sc.T, sc.Tenant, sc.Sent())
}

// Converged compares the copy with the tenant (and extra), leaving out hard deletes the
// copy never heard of (created and deleted with both webhooks lost: nothing still knows
// of them), checks that the copy holds nothing else and that nothing failed.
func (sc *Scenario) Converged(extra ...converge.Expectation) {
	t := sc.T
	t.Helper()
	var exps []converge.Expectation
	for _, x := range sc.Expected() {
		if x.Fields == nil {
			if _, ok, err := sc.Get(x.Kind, x.ID, x.ParentID); err != nil {
				t.Fatal(err)
			} else if !ok {
				continue
			}
		}
		exps = append(exps, x)
	}
	exps = append(exps, extra...)
	converge.WantConverged(t, exps, sc.Sent(), sc.Get)
	sc.H.WantHoldsOnly(t, exps)
	sc.H.WantNothingFailed(t)
}

// Lacking is what the copy lacks now: per kind, the objects whose tenant change marker is
// newer than the copy's version (or that it does not hold): the gap the next poll must
// find; and the hard-deleted objects it still holds alive: the reconcile's.
func (sc *Scenario) Lacking() (map[change.Kind]int, map[converge.Key]bool) {
	t := sc.T
	t.Helper()
	gap, alive := map[change.Kind]int{}, map[converge.Key]bool{}
	for _, x := range sc.Expected() {
		o, ok, err := sc.Get(x.Kind, x.ID, x.ParentID)
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

// CountKinds is how many objects of each kind the tenant holds.
func (sc *Scenario) CountKinds() map[change.Kind]int {
	out := map[change.Kind]int{}
	for _, kind := range Kinds {
		out[kind] = sc.Tenant.Count(kind)
	}
	return out
}

// WantBackfill checks that a run was the first sync of a tenant that held counts: the
// connection polled without error or webhook gap, every object of every kind read and
// enqueued.
func (sc *Scenario) WantBackfill(cr poller.ConnectionResult, counts map[change.Kind]int) {
	t := sc.T
	t.Helper()
	if !cr.Polled || cr.Error != "" || len(cr.Gap) != 0 {
		t.Fatalf("the backfill: %+v; want the connection polled, without error or webhook gap", cr)
	}
	for _, kind := range Kinds {
		if n := counts[kind]; n == 0 || cr.Read[kind] != n || cr.Enqueued[kind] != n {
			t.Errorf("the backfill: %s: read %d, enqueued %d, of the tenant's %d", kind, cr.Read[kind], cr.Enqueued[kind], n)
		}
	}
}

// ---- what the pipeline said ----

// Counts are counters by metric.
type Counts map[metrics.Metric]int64

// Total sums the counts.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Of is the count of name for the connection and label.
func (c Counts) Of(name, label string) int64 {
	return c[metrics.Metric{Name: name, Connection: Conn, Label: label}]
}

// Logged returns the records the pipeline logged at level, with message msg ("": any).
func (sc *Scenario) Logged(level, msg string) []Record {
	sc.T.Helper()
	var out []Record
	for _, r := range sc.H.Logs(sc.T) {
		if r.Str("level") == level && (msg == "" || r.Str("msg") == msg) {
			out = append(out, r)
		}
	}
	return out
}

// WantNoErrorsLogged fails the test if the pipeline logged an error other than one with a
// message in expected.
func (sc *Scenario) WantNoErrorsLogged(expected ...string) {
	sc.T.Helper()
	var unexpected []string
	for _, r := range sc.Logged("ERROR", "") {
		if !slices.Contains(expected, r.Str("msg")) {
			b, _ := json.Marshal(r)
			unexpected = append(unexpected, string(b))
		}
	}
	if len(unexpected) > 0 {
		sc.T.Errorf("the pipeline logged %d errors, the first: %s", len(unexpected), unexpected[0])
	}
}

// mustInt parses a canonical id.
func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// haloTime parses a Halo date field.
func haloTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, ok, err := change.ParseHaloTime(s)
	if err != nil || !ok {
		t.Fatalf("%v is not a Halo time: %v", v, err)
	}
	return tm
}

// sum adds a map's values.
func sum[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// joinKeys names a set of keys, sorted, for a message.
func joinKeys(m map[converge.Key]bool) string {
	var s []string
	for k := range m {
		s = append(s, k.String())
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}
