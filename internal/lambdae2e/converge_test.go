package lambdae2e

// The convergence run through the emulated Lambda path: the same scenario as
// internal/localserver's TestConvergesWithTheTenant (duplicated there and here on
// purpose: these are test helpers, not product code), with API Gateway played by an
// in-test HTTP handler that turns each webhook delivery into an API Gateway HTTP API
// (payload 2.0) event and invokes the ingest function under the runtime interface
// emulator, SQS played by the SQS stand-in, and the event source mapping played between
// the tenant's rounds of changes and until the queue is empty; the worker function, under
// its own emulator, fetches event-only deliveries from the fake tenant's API and writes to
// DynamoDB Local.
//
// What "converges exactly" covers. Halosync is running before the tenant has any data,
// and the starting data set is made by the generator's own creation changes (clients,
// their contacts, assets, tickets and notes, some tickets closed), each raising its webhook
// event like any later change: no object exists that halosync was never told about, so the
// comparison covers EVERY object the tenant has, plus every object it hard-deleted.
// (halotest's Seed fills a tenant without raising events; such objects stay unknown to
// halosync until the poller's reconcile exists, so it is not used.) For each object:
//   - one the tenant still has, not deleted: the copy holds it, not pending, not a
//     tombstone, with exactly the tenant's fields (the union of both sides' keys, values
//     compared in their JSON form decoded with UseNumber, so 12 and json.Number("12") are
//     equal), its client id, and a version at least the tenant's change marker;
//   - a ticket the tenant deleted (Halo keeps it, flagged deleted): the copy holds a
//     tombstone; when the "ticket deleted" event was delivered as a full object, which
//     carries the deleted ticket, its fields must equal the tenant's too (an event-only
//     delete is not fetched, and a tombstone keeps the last fields it had);
//   - a client, contact or asset the tenant deleted (hard deletes: Halo answers 404): the
//     tenant no longer has it and the copy holds a tombstone;
//   - the table holds nothing else.
// The generator never deletes or edits a note, so notes are covered as created.
//
// Payload types. Halo sends one payload type per webhook; the run has two webhooks on the
// connection, one full (Basic authentication) and one event-only (Halo's signed body,
// HMAC-SHA256 in Token), each batching, duplicating about one delivery in five and
// reordering within windows, and dropping none (lost deliveries are the poller's job).
// Each event goes to one of them at random. An event-only ticket event that stands for a
// note added, a status change or a reassignment carries neither the ticket nor the note:
// the worker fetches the ticket and lists its notes. Small payloads ("small object with key fields only")
// are left out: they carry a cut of the fields (a small ticket has no last_update, so it
// is versioned by the delivery timestamp) and are never fetched, so whenever an object's
// last change arrives small the copy keeps stale values of the fields it leaves out; they
// cannot converge exactly, by design.
//
// The clock. The tenant runs on a halotest.Clock: a second to two minutes between
// changes, or, for a third of them, under two milliseconds (bursts), and one to five
// seconds before each flush of the webhooks (Halo delivers after it raised the event), so
// that no fetch reads the tenant at a time before the event it answers: a fake event's
// timestamp lies up to a millisecond after its change, and a fetch made earlier than that
// on the tenant's clock is something real Halo cannot do.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halo/halotest"
	"github.com/halosync/halosync/internal/metrics"
)

// The run's shape.
const (
	convergeSeed      = 20261101
	convergeSteps     = 240 // random generator steps after the starting data set
	convergeRound     = 20  // changes made between two flushes of the webhooks
	convergeBatch     = 5   // events per delivery
	convergeReorder   = 8   // events shuffled within windows of this many
	convergeDuplicate = 0.2 // share of deliveries sent twice
	convergeDrain     = 40 * time.Second
	convergeWebhookPw = "converge-basic-secret"
	convergeHMAC      = "converge-hmac-secret"
	convergeTenant    = "converge"
)

// convergeStart is the starting data set, made through the generator's changes (each
// raises its event) in this order.
var convergeStart = []struct {
	ct halotest.ChangeType
	n  int
}{
	{halotest.CreateClient, 6}, {halotest.CreateUser, 16}, {halotest.CreateAsset, 12},
	{halotest.NewTicket, 20}, {halotest.AddNote, 24}, {halotest.ChangeStatus, 8},
}

// convergeConfig is the connection: both webhooks' authentication and the tenant's API
// with a generous budget, so every event-only delivery is fetched at once.
func convergeConfig(tenantURL string) string {
	return `connections:
  - id: default
    halo:
      base_url: ` + tenantURL + `
      tenant: ` + convergeTenant + `
      client_id: halotest-client
      client_secret: halotest-secret
      budget: {requests: 100000, window_seconds: 300}
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["` + convergeWebhookPw + `"]
        - scheme: hmac
          header: Token
          secrets: ["` + convergeHMAC + `"]
queue:
  visibility_seconds: 30
  max_receive: 5
`
}

// sentEvent is one event the tenant raised and how it was delivered.
type sentEvent struct {
	halotest.Event
	payload halotest.PayloadType
}

// what names the change an event stands for, finer than its name: a note added and an
// asset reassigned raise the same names as other updates.
func (e sentEvent) what() string {
	switch {
	case e.Name == "ticket updated" && e.Objects[change.Action] != nil:
		return "note added"
	case e.Name == "asset updated" && strings.HasSuffix(e.Message, "reassigned."):
		return "asset reassigned"
	}
	return e.Name
}

// everyChange maps each change the run must make at least once to the generator's change.
var everyChange = map[string]halotest.ChangeType{
	"new ticket logged": halotest.NewTicket, "ticket updated": halotest.UpdateTicket,
	"note added": halotest.AddNote, "ticket status changed": halotest.ChangeStatus,
	"ticket reassigned": halotest.Reassign, "ticket deleted": halotest.DeleteTicket,
	"client created": halotest.CreateClient, "client updated": halotest.UpdateClient,
	"client deleted": halotest.DeleteClient, "user created": halotest.CreateUser,
	"user updated": halotest.UpdateUser, "user deleted": halotest.DeleteUser,
	"asset created": halotest.CreateAsset, "asset updated": halotest.UpdateAsset,
	"asset reassigned": halotest.ReassignAsset, "asset deleted": halotest.DeleteAsset,
}

// convergeRun drives the tenant and the two webhooks.
type convergeRun struct {
	t         *testing.T
	tenant    *halotest.Tenant
	clock     *halotest.Clock
	gen       *rand.Rand // the generator's changes and the clock
	mix       *rand.Rand // which webhook sends an event
	full      *halotest.Sender
	eventOnly *halotest.Sender
	sent      []sentEvent
	pending   []sentEvent // raised, not yet flushed
	flushed   halotest.Counts
}

func newConvergeTenant(t *testing.T) (*halotest.Tenant, *halotest.Clock) {
	clock := halotest.NewClock(time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC))
	return halotest.Start(t, halotest.Options{TenantName: convergeTenant, Clock: clock.Now}), clock
}

// newConvergeRun makes the two webhooks' senders, delivering to url.
func newConvergeRun(t *testing.T, tenant *halotest.Tenant, clock *halotest.Clock, url string) *convergeRun {
	sender := func(pt halotest.PayloadType, auth halotest.SenderAuth, seed uint64) *halotest.Sender {
		return halotest.NewSender(halotest.SenderOptions{
			URL: url, Auth: auth, PayloadType: pt, Batch: convergeBatch, Reorder: convergeReorder,
			DuplicateRate: convergeDuplicate, Rand: rand.New(rand.NewPCG(convergeSeed, seed)), Tenant: tenant,
			HTTPClient: &http.Client{Timeout: 30 * time.Second},
		})
	}
	return &convergeRun{
		t: t, tenant: tenant, clock: clock,
		gen:       rand.New(rand.NewPCG(convergeSeed, 1)),
		mix:       rand.New(rand.NewPCG(convergeSeed, 2)),
		full:      sender(halotest.PayloadFull, halotest.BasicAuth("halo", convergeWebhookPw), 3),
		eventOnly: sender(halotest.PayloadEventOnly, halotest.HMACAuth(convergeHMAC), 4),
	}
}

// tick moves the tenant's clock on before a change: from a second to two minutes, or, for
// a third of the changes, less than two milliseconds (a burst, as an automation or one save
// changing several things makes), so that change markers and webhook timestamps of
// different changes of an object interleave closely.
func (r *convergeRun) tick() {
	if r.gen.IntN(3) == 0 {
		r.clock.Advance(time.Duration(r.gen.Int64N(int64(2 * time.Millisecond))))
		return
	}
	r.clock.Advance(time.Second + time.Duration(r.gen.Int64N(int64(2*time.Minute))))
}

// raised queues an event for its webhook.
func (r *convergeRun) raised(e halotest.Event) {
	se := sentEvent{Event: e, payload: halotest.PayloadFull}
	if r.mix.IntN(2) == 0 {
		se.payload = halotest.PayloadEventOnly
	}
	r.sent = append(r.sent, se)
	r.pending = append(r.pending, se)
}

// do makes one change of a given type, failing the test when the tenant has nothing to
// make it on.
func (r *convergeRun) do(ct halotest.ChangeType) {
	r.t.Helper()
	r.tick()
	e, ok := r.tenant.Do(r.gen, ct)
	if !ok {
		r.t.Fatalf("the generator could not make a %q change", ct)
	}
	r.raised(e)
}

func (r *convergeRun) step() {
	r.tick()
	r.raised(r.tenant.Step(r.gen))
}

// flush delivers the events raised since the last flush through both webhooks at once,
// and fails the test unless every delivery was accepted.
func (r *convergeRun) flush() {
	r.t.Helper()
	for _, e := range r.pending {
		if e.payload == halotest.PayloadFull {
			r.full.Send(e.Event)
		} else {
			r.eventOnly.Send(e.Event)
		}
	}
	r.pending = nil
	// Halo delivers an event after raising it, and an event's timestamp is up to a
	// millisecond after its change: the clock moves on by the delivery's latency, so no
	// fetch reads the tenant at a time before the event it answers.
	r.clock.Advance(time.Second + time.Duration(r.gen.Int64N(int64(4*time.Second))))
	ctx, cancel := context.WithTimeout(r.t.Context(), convergeDrain)
	defer cancel()
	var wg sync.WaitGroup
	counts := make([]halotest.Counts, 2)
	errs := make([]error, 2)
	for i, s := range []*halotest.Sender{r.full, r.eventOnly} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = s.Flush(ctx)
		}()
	}
	wg.Wait()
	for i, c := range counts {
		if errs[i] != nil || c.Failed != 0 || c.Dropped != 0 {
			r.t.Fatalf("webhook %d: flush %+v, %v; want every delivery accepted", i, c, errs[i])
		}
		r.flushed.Sent += c.Sent
		r.flushed.Duplicated += c.Duplicated
	}
}

// run makes the starting data set, the random steps and then, for any change the steps
// happened not to make, one of it; flushing every convergeRound changes and calling
// between after each flush.
func (r *convergeRun) run(between func()) {
	r.t.Helper()
	n := 0
	maybeFlush := func() {
		if n++; n%convergeRound == 0 {
			r.flush()
			between()
		}
	}
	for _, s := range convergeStart {
		for range s.n {
			r.do(s.ct)
			maybeFlush()
		}
	}
	for range convergeSteps {
		r.step()
		maybeFlush()
	}
	made := map[string]int{}
	for _, e := range r.sent {
		made[e.what()]++
	}
	for _, what := range slices.Sorted(maps.Keys(everyChange)) {
		if made[what] > 0 {
			continue
		}
		ct := everyChange[what]
		if ct == halotest.DeleteClient {
			r.do(halotest.CreateClient) // a client with nothing under it, to delete
		}
		r.do(ct)
	}
	r.flush()
	between()
	made = map[string]int{}
	for _, e := range r.sent {
		made[e.what()]++
	}
	r.t.Logf("the tenant made %d changes: %v; deliveries %d (%d duplicates)", len(r.sent), made, r.flushed.Sent, r.flushed.Duplicated)
}

// ---- the comparison ----

// copyGet reads one object from the copy.
type copyGet func(kind change.Kind, id, parentID string) (change.Object, bool, error)

// key names an object of the copy.
type key struct {
	kind         change.Kind
	id, parentID string
}

func (k key) String() string {
	if k.parentID != "" {
		return fmt.Sprintf("%s %s (ticket %s)", k.kind, k.id, k.parentID)
	}
	return fmt.Sprintf("%s %s", k.kind, k.id)
}

// expectation is what the copy must hold for one object.
type expectation struct {
	key
	fields        map[string]any // the tenant's; nil for a hard-deleted object
	deleted       bool
	compareFields bool
	marker        int64 // the tenant's change marker as a version; 0 when unknown
}

// expectations lists what the copy must hold: every object of the tenant and every
// object it hard-deleted, with the events that told of them.
func expectations(t *testing.T, tenant *halotest.Tenant, sent []sentEvent) []expectation {
	t.Helper()
	deletedBy := map[key]halotest.PayloadType{}
	for _, e := range sent {
		if e.Op == change.OpDelete {
			deletedBy[key{kind: e.Kind, id: strconv.FormatInt(e.ObjectID, 10)}] = e.payload
		}
	}
	var out []expectation
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		spec, _ := change.Lookup(kind)
		for _, obj := range tenant.Objects(kind) {
			id, err := change.CanonicalID(obj["id"])
			if err != nil {
				t.Fatal(err)
			}
			k := key{kind: kind, id: id}
			if spec.Parent != "" {
				if k.parentID, err = change.CanonicalID(obj[spec.ParentField]); err != nil {
					t.Fatal(err)
				}
			}
			x := expectation{key: k, fields: obj, compareFields: true}
			if s, ok := obj[spec.VersionField].(string); ok {
				if tm, ok, err := change.ParseHaloTime(s); err == nil && ok {
					x.marker = change.VersionOf(tm)
				}
			}
			if kind == change.Ticket && obj["deleted"] == true {
				pt, ok := deletedBy[k]
				if !ok {
					t.Fatalf("ticket %s is deleted in the tenant, but no event said so", id)
				}
				x.deleted, x.compareFields = true, pt == halotest.PayloadFull
			}
			out = append(out, x)
		}
	}
	for k := range deletedBy {
		if k.kind == change.Ticket {
			continue
		}
		id, _ := strconv.ParseInt(k.id, 10, 64)
		if _, ok := tenant.Object(k.kind, id); ok {
			t.Fatalf("%s was deleted by an event but the tenant still has it", k)
		}
		out = append(out, expectation{key: k, deleted: true})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.kind != b.kind {
			return a.kind < b.kind
		}
		ai, _ := strconv.Atoi(a.id)
		bi, _ := strconv.Atoi(b.id)
		return ai < bi
	})
	return out
}

// canonical is v as JSON decoded with UseNumber: 12, int64(12) and json.Number("12")
// become the same value.
func canonical(v any) (any, string) {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unencodable %T: %v", v, err), ""
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return fmt.Sprintf("undecodable %s: %v", b, err), string(b)
	}
	return out, string(b)
}

// difference is one way the copy differs from the tenant.
type difference struct {
	key
	field, want, got string
}

// compareCopy checks every expectation against the copy and returns the differences and
// the objects they concern.
func compareCopy(exps []expectation, get copyGet) ([]difference, error) {
	var diffs []difference
	add := func(k key, field, want, got string) {
		diffs = append(diffs, difference{key: k, field: field, want: want, got: got})
	}
	for _, x := range exps {
		o, ok, err := get(x.kind, x.id, x.parentID)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", x.key, err)
		}
		if !ok {
			add(x.key, "(object)", "stored", "absent")
			continue
		}
		if o.Deleted != x.deleted {
			add(x.key, "(tombstone)", strconv.FormatBool(x.deleted), strconv.FormatBool(o.Deleted))
		}
		if !x.deleted && o.IsPending() {
			add(x.key, "(pending)", "false", fmt.Sprintf("true: pending version %d > version %d", o.PendingVersion, o.Version))
		}
		if x.marker != 0 && o.Version < x.marker {
			add(x.key, "(version)", fmt.Sprintf(">= %d (the tenant's marker)", x.marker), strconv.FormatInt(o.Version, 10))
		}
		if !x.compareFields {
			continue
		}
		spec, _ := change.Lookup(x.kind)
		if spec.ClientField != "" || spec.ClientIsSelf {
			want, _ := change.CanonicalID(x.fields[spec.ClientField])
			if spec.ClientIsSelf {
				want = x.id
			} else if want == "0" {
				want = ""
			}
			if o.ClientID != want {
				add(x.key, "(client id)", want, o.ClientID)
			}
		}
		names := map[string]bool{}
		for k := range x.fields {
			names[k] = true
		}
		for k := range o.Fields {
			names[k] = true
		}
		for _, name := range slices.Sorted(maps.Keys(names)) {
			w, wOK := x.fields[name]
			g, gOK := o.Fields[name]
			wv, wj := canonical(w)
			gv, gj := canonical(g)
			switch {
			case !gOK:
				add(x.key, name, wj, "(missing)")
			case !wOK:
				add(x.key, name, "(missing)", gj)
			case !reflect.DeepEqual(wv, gv):
				add(x.key, name, wj, gj)
			}
		}
	}
	return diffs, nil
}

// history describes the events about an object, for a failure message.
func history(sent []sentEvent, k key) string {
	var b strings.Builder
	for i, e := range sent {
		about := e.Kind == k.kind && strconv.FormatInt(e.ObjectID, 10) == k.id
		if obj, ok := e.Objects[k.kind]; ok {
			if id, _ := change.CanonicalID(obj["id"]); id == k.id {
				about = true
			}
		}
		if !about {
			continue
		}
		marker := ""
		if spec, ok := change.Lookup(k.kind); ok {
			if obj, ok := e.Objects[k.kind]; ok {
				marker = fmt.Sprintf(" %s %v", spec.VersionField, obj[spec.VersionField])
			}
		}
		fmt.Fprintf(&b, "\n      #%d %s %q (%s) timestamp %s (version %d)%s", i, e.ID, e.what(), e.payload,
			e.Timestamp.Format(time.RFC3339Nano), change.VersionOf(e.Timestamp), marker)
	}
	return b.String()
}

// wantConverged fails the test with at most 20 differences, and the history of the
// first objects concerned, unless the copy equals the tenant.
func wantConverged(t *testing.T, exps []expectation, sent []sentEvent, get copyGet) {
	t.Helper()
	diffs, err := compareCopy(exps, get)
	if err != nil {
		t.Fatal(err)
	}
	live, tombstones := 0, 0
	for _, x := range exps {
		if x.deleted {
			tombstones++
		} else {
			live++
		}
	}
	if len(diffs) == 0 {
		t.Logf("the copy equals the tenant: %d objects, %d tombstones", live, tombstones)
		return
	}
	var b strings.Builder
	objects := map[key]bool{}
	for _, d := range diffs {
		objects[d.key] = true
	}
	fmt.Fprintf(&b, "the copy differs from the tenant in %d fields of %d objects (of %d objects and %d tombstones):", len(diffs), len(objects), live, tombstones)
	for i, d := range diffs {
		if i == 20 {
			fmt.Fprintf(&b, "\n  … and %d more", len(diffs)-20)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s: want %s, got %s", d.key, d.field, d.want, d.got)
	}
	shown := map[key]bool{}
	for _, d := range diffs {
		if shown[d.key] || len(shown) == 3 {
			continue
		}
		shown[d.key] = true
		o, _, _ := get(d.kind, d.id, d.parentID)
		fmt.Fprintf(&b, "\n  %s: copy version %d pending %d deleted %v from delivery %s (%s); its events:%s",
			d.key, o.Version, o.PendingVersion, o.Deleted, o.DeliveryID, o.Event, history(sent, d.key))
	}
	t.Error(b.String())
}

// ---- the emulated Lambda path ----

// TestConvergesThroughTheEmulator runs the convergence scenario through API Gateway
// (played), the ingest function under the emulator, the SQS stand-in, the event source
// mapping (played) and the worker function under the emulator, fetching from the fake
// tenant and writing to DynamoDB Local.
func TestConvergesThroughTheEmulator(t *testing.T) {
	t.Parallel()
	s := newStack(t, "converge")
	tenant, clock := newConvergeTenant(t)
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, []byte(convergeConfig(tenant.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	ingestFn := startConvergeFunction(t, s, "ingest", cfgFile, warmupIngest)
	workerFn := startConvergeFunction(t, s, "worker", cfgFile, events.SQSEvent{Records: []events.SQSMessage{}})

	gw := httptest.NewServer(&apiGateway{t: t, fn: ingestFn})
	t.Cleanup(gw.Close)
	cr := newConvergeRun(t, tenant, clock, gw.URL+awslambda.WebhookPathPrefix+"default")
	p := newPlayer(t, s.queue, workerFn, s.player.arn)
	p.wait = 200 * time.Millisecond

	start := time.Now()
	// Between rounds the event source mapping plays two batches, so the worker keeps a
	// backlog and fetches the tenant at various lags behind its changes.
	cr.run(func() {
		for range 2 {
			if p.poll(t.Context()) == 0 {
				break
			}
		}
	})
	p.runUntil(convergeDrain, "the queue drained", func() bool { return s.depth(t, s.qURL) == 0 })
	t.Logf("generated, delivered and drained in %v (%d worker invokes)", time.Since(start).Round(time.Millisecond), p.invokes)

	exps := expectations(t, tenant, cr.sent)
	get := func(kind change.Kind, id, parentID string) (change.Object, bool, error) {
		return s.store.Get(t.Context(), conn, kind, id, parentID)
	}
	wantConverged(t, exps, cr.sent, get)
	wantTableHoldsOnly(t, s, exps)

	// The counters tell the same story: every message was applied once (none failed,
	// none retried), some as duplicates and some as stale, event-only ones were fetched,
	// and nothing reached the dead-letter queue.
	for id, n := range p.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, truncate(p.bodies[id], 300))
	}
	for id, n := range p.deliveries {
		if n != 1 {
			t.Errorf("message %s was delivered to the worker %d times", id, n)
		}
	}
	if d := s.depth(t, s.dlqURL); d != 0 {
		t.Errorf("%d messages on the dead-letter queue", d)
	}
	ingested := awaitTotal(t, ingestFn, metrics.DeliveriesAccepted, int64(cr.flushed.Sent))
	enqueued := ingested.only(metrics.ChangesEnqueued)[metrics.Metric{Name: metrics.ChangesEnqueued, Connection: conn}]
	warmup := counts{{Name: metrics.DeliveriesRejected, Connection: "_unknown", Label: "method_not_allowed"}: 1}
	if rejected := ingested.only(metrics.DeliveriesRejected); !maps.Equal(rejected, warmup) {
		t.Errorf("ingest rejected:%s\nwant only the warm-up GET:%s", rejected, warmup)
	}
	if enqueued != int64(len(p.deleted)) {
		t.Errorf("ChangesEnqueued = %d, but the event source mapping delivered %d messages", enqueued, len(p.deleted))
	}
	applied := awaitAtLeast(t, workerFn, metrics.ChangesApplied, enqueued)
	for _, m := range []metrics.Metric{
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Applied)},
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Duplicate)},
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Stale)},
		{Name: metrics.ChangesFetched, Connection: conn, Label: "found"},
	} {
		if applied[m] == 0 {
			t.Errorf("%s{%s} = 0, want some:%s", m.Name, m.Label, applied)
		}
	}
	if failed := applied.only(metrics.ChangesFailed); len(failed) != 0 {
		t.Errorf("ChangesFailed:%s", failed)
	}
	if errs := logRecords(t, workerFn, "ERROR"); len(errs) > 0 {
		t.Errorf("the worker logged %d errors, the first: %s", len(errs), mustJSON(errs[0]))
	}
	t.Logf("enqueued %d changes; worker counts:%s", enqueued, applied.only(metrics.ChangesApplied))
}

// startConvergeFunction runs the named function's bootstrap under its own emulator on the
// stack's queue and table, configured by the document at cfgFile (HALOSYNC_CONFIG_FILE),
// as newStack runs its functions with the example configuration.
func startConvergeFunction(t *testing.T, s *stack, fn, cfgFile string, warmup any) *function {
	t.Helper()
	bins := build(t)
	home := t.TempDir()
	env := append(awstest.ProcessEnv(t),
		"QUEUE_URL="+s.qURL,
		"TABLE_NAME="+s.table,
		"HALOSYNC_CONFIG_FILE="+cfgFile,
		"LOG_LEVEL=info",
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(functionTimeout/time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_NAME=halosync-"+fn,
		"HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"PATH=/usr/bin:/bin",
		"TZ=UTC",
	)
	f, out := startFunction(t, bins.rie, fn+"-converge", bins.bootstrap[fn], env, warmup)
	switch fn {
	case "ingest":
		if r := decodeAs[events.APIGatewayV2HTTPResponse](t, f, out); r.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("ingest answered the warm-up GET with %d %s, want 405 (did the configuration load?)", r.StatusCode, r.Body)
		}
	case "worker":
		if r := decodeAs[events.SQSEventResponse](t, f, out); len(r.BatchItemFailures) != 0 {
			t.Fatalf("worker answered an empty batch with failures %v", r.BatchItemFailures)
		}
	}
	return f
}

// apiGateway plays API Gateway's HTTP API for the webhook route: each request becomes a
// payload 2.0 event, one synchronous invoke of the ingest function (one at a time, as one
// emulator serves them), and the function's answer becomes the HTTP response.
type apiGateway struct {
	t   *testing.T
	fn  *function
	mu  sync.Mutex
	seq int
}

func (g *apiGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	header := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		header[strings.ToLower(k)] = strings.Join(v, ",")
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	route := awslambda.WebhookPathPrefix + "{connection}"
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: r.Method + " " + route, RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
		Headers:        header,
		PathParameters: map[string]string{"connection": strings.TrimPrefix(r.URL.Path, awslambda.WebhookPathPrefix)},
		Body:           string(body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: fmt.Sprintf("req-converge-%d", g.seq), Stage: "$default", RouteKey: r.Method + " " + route,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: ip, UserAgent: r.UserAgent(),
			},
		},
	}
	out, err := g.fn.invoke(r.Context(), ev)
	if err != nil {
		g.t.Errorf("API Gateway: %v", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		g.t.Errorf("API Gateway: the ingest function answered %s: %v", out, err)
		http.Error(w, "bad function response", http.StatusBadGateway)
		return
	}
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if respBody, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			g.t.Errorf("API Gateway: the ingest function's body is not base64: %v", err)
		}
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

// awaitTotal polls a function's EMF output until the counts of metric name, summed over
// every connection and label, reach want (bounded: the output reaches the file through
// the emulator, possibly just after the invoke returned), and returns every count.
func awaitTotal(t *testing.T, f *function, name string, want int64) counts {
	t.Helper()
	return await(t, f, name, want, false)
}

// awaitAtLeast is awaitTotal for a sum that may exceed want: an event-only ticket change
// also brings the ticket's notes, each counted on its own.
func awaitAtLeast(t *testing.T, f *function, name string, want int64) counts {
	t.Helper()
	return await(t, f, name, want, true)
}

func await(t *testing.T, f *function, name string, want int64, atLeast bool) counts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := emfCounts(f.stdout)
		if err != nil {
			t.Fatalf("%s output: %v", f.name, err)
		}
		var total int64
		for _, n := range got.only(name) {
			total += n
		}
		if total == want || atLeast && total > want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the %s metrics in its EMF output sum to %d, want %d:%s", f.name, name, total, want, got.only(name))
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
}

// wantTableHoldsOnly scans the stack's table and checks that its object items (those
// keyed as change.PartitionKey and change.SortKey lay objects out; other items, such as
// records about deliveries, are not objects) are exactly the expected ones.
func wantTableHoldsOnly(t *testing.T, s *stack, exps []expectation) {
	t.Helper()
	want := map[key]bool{}
	for _, x := range exps {
		want[x.key] = true
	}
	ddb := awstest.DynamoDB(t)
	in := &dynamodb.ScanInput{
		TableName:            aws.String(s.table),
		ProjectionExpression: aws.String("#pk, #sk, #c, #k, #i, #p"),
		ExpressionAttributeNames: map[string]string{
			"#pk": "pk", "#sk": "sk", "#c": "conn", "#k": "kind", "#i": "id", "#p": "parent_id",
		},
	}
	objects, others := 0, 0
	for {
		out, err := ddb.Scan(t.Context(), in)
		if err != nil {
			t.Fatalf("scan %s: %v", s.table, err)
		}
		for _, item := range out.Items {
			str := func(name string) string {
				if v, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
					return v.Value
				}
				return ""
			}
			k := key{kind: change.Kind(str("kind")), id: str("id"), parentID: str("parent_id")}
			if str("pk") != change.PartitionKey(str("conn"), k.kind, k.id, k.parentID) || str("sk") != change.SortKey(k.kind, k.id) {
				others++
				continue
			}
			objects++
			if str("conn") != conn || !want[k] {
				t.Errorf("the table holds %s of connection %q, which the tenant never had", k, str("conn"))
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if objects != len(want) {
		t.Errorf("the table holds %d objects, want %d", objects, len(want))
	}
	t.Logf("the table holds the %d objects expected (and %d other items)", objects, others)
}
