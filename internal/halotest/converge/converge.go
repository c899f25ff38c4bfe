// Package converge is the convergence scenario the end-to-end tests share: a fake Halo
// tenant (halotest) makes a few hundred changes of every kind while two webhooks deliver
// them, duplicated and out of order, some as full objects and some as event information
// only; once the copy has applied them, every object in it must equal the tenant's, field
// for field. It is test support, imported only by tests: internal/localserver runs the
// scenario through `halosync serve`, internal/lambdae2e through the emulated Lambda path,
// each driving its own server and reading its own copy (Get).
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
//   - the copy holds nothing else (each test checks that on its own store).
//
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
// The clock. The tenant runs on a halosim.Clock: a second to two minutes between
// changes, or, for a third of them, under two milliseconds (bursts), and one to five
// seconds before each flush of the webhooks (Halo delivers after it raised the event), so
// that no fetch reads the tenant at a time before the event it answers: a fake event's
// timestamp lies up to a millisecond after its change, and a fetch made earlier than that
// on the tenant's clock is something real Halo cannot do.
package converge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
)

// The run's shape.
const (
	convergeSeed      = 20261101
	convergeSteps     = 240 // random generator steps after the starting data set
	convergeRound     = 20  // changes made between two flushes of the webhooks
	convergeBatch     = 5   // events per delivery
	convergeReorder   = 8   // events shuffled within windows of this many
	convergeDuplicate = 0.2 // share of deliveries sent twice
	Drain             = 40 * time.Second
	convergeWebhookPw = "converge-basic-secret"
	convergeHMAC      = "converge-hmac-secret"
	convergeTenant    = "converge"
)

// convergeStart is the starting data set, made through the generator's changes (each
// raises its event) in this order.
var convergeStart = []struct {
	ct halosim.ChangeType
	n  int
}{
	{halosim.CreateClient, 6}, {halosim.CreateUser, 16}, {halosim.CreateAsset, 12},
	{halosim.NewTicket, 20}, {halosim.AddNote, 24}, {halosim.ChangeStatus, 8},
}

// Config is the connection: both webhooks' authentication and the tenant's API
// with a generous budget, so every event-only delivery is fetched at once.
func Config(tenantURL string) string {
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

// SentEvent is one event the tenant raised and how it was delivered.
type SentEvent struct {
	halosim.Event
	Payload halosim.PayloadType
}

// What names the change an event stands for, finer than its name: a note added and an
// asset reassigned raise the same names as other updates.
func (e SentEvent) What() string {
	switch {
	case e.Name == "ticket updated" && e.Objects[change.Action] != nil:
		return "note added"
	case e.Name == "asset updated" && strings.HasSuffix(e.Message, "reassigned."):
		return "asset reassigned"
	}
	return e.Name
}

// everyChange maps each change the run must make at least once to the generator's change.
var everyChange = map[string]halosim.ChangeType{
	"new ticket logged": halosim.NewTicket, "ticket updated": halosim.UpdateTicket,
	"note added": halosim.AddNote, "ticket status changed": halosim.ChangeStatus,
	"ticket reassigned": halosim.Reassign, "ticket deleted": halosim.DeleteTicket,
	"client created": halosim.CreateClient, "client updated": halosim.UpdateClient,
	"client deleted": halosim.DeleteClient, "user created": halosim.CreateUser,
	"user updated": halosim.UpdateUser, "user deleted": halosim.DeleteUser,
	"asset created": halosim.CreateAsset, "asset updated": halosim.UpdateAsset,
	"asset reassigned": halosim.ReassignAsset, "asset deleted": halosim.DeleteAsset,
}

// Run drives the tenant and the two webhooks.
type Run struct {
	t         *testing.T
	tenant    *halosim.Tenant
	clock     *halosim.Clock
	gen       *rand.Rand // the generator's changes and the clock
	mix       *rand.Rand // which webhook sends an event
	full      *halosim.Sender
	eventOnly *halosim.Sender
	Sent      []SentEvent
	pending   []SentEvent // raised, not yet flushed
	Flushed   halosim.Counts
}

// NewTenant starts the fake tenant on its own clock.
func NewTenant(t *testing.T) (*halosim.Tenant, *halosim.Clock) {
	clock := halosim.NewClock(time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC))
	return halotest.Start(t, halosim.Options{TenantName: convergeTenant, Clock: clock.Now, StrictParams: true}), clock
}

// NewRun makes the two webhooks' senders, delivering to url.
func NewRun(t *testing.T, tenant *halosim.Tenant, clock *halosim.Clock, url string) *Run {
	sender := func(pt halosim.PayloadType, auth halosim.SenderAuth, seed uint64) *halosim.Sender {
		return halosim.NewSender(halosim.SenderOptions{
			URL: url, Auth: auth, PayloadType: pt, Batch: convergeBatch, Reorder: convergeReorder,
			DuplicateRate: convergeDuplicate, Rand: rand.New(rand.NewPCG(convergeSeed, seed)), Tenant: tenant,
			HTTPClient: &http.Client{Timeout: 30 * time.Second},
		})
	}
	return &Run{
		t: t, tenant: tenant, clock: clock,
		gen:       rand.New(rand.NewPCG(convergeSeed, 1)),
		mix:       rand.New(rand.NewPCG(convergeSeed, 2)),
		full:      sender(halosim.PayloadFull, halosim.BasicAuth("halo", convergeWebhookPw), 3),
		eventOnly: sender(halosim.PayloadEventOnly, halosim.HMACAuth(convergeHMAC), 4),
	}
}

// Tick moves the tenant's clock on before a change: from a second to two minutes, or, for
// a third of the changes, less than two milliseconds (a burst, as an automation or one save
// changing several things makes), so that change markers and webhook timestamps of
// different changes of an object interleave closely.
func Tick(clock *halosim.Clock, rng *rand.Rand) {
	if rng.IntN(3) == 0 {
		clock.Advance(time.Duration(rng.Int64N(int64(2 * time.Millisecond))))
		return
	}
	clock.Advance(time.Second + time.Duration(rng.Int64N(int64(2*time.Minute))))
}

func (r *Run) tick() { Tick(r.clock, r.gen) }

// Routed is e as one of the two webhooks delivers it, full or event-only, drawn from mix.
func Routed(e halosim.Event, mix *rand.Rand) SentEvent {
	se := SentEvent{Event: e, Payload: halosim.PayloadFull}
	if mix.IntN(2) == 0 {
		se.Payload = halosim.PayloadEventOnly
	}
	return se
}

// raised queues an event for its webhook.
func (r *Run) raised(e halosim.Event) {
	se := Routed(e, r.mix)
	r.Sent = append(r.Sent, se)
	r.pending = append(r.pending, se)
}

// do makes one change of a given type, failing the test when the tenant has nothing to
// make it on.
func (r *Run) do(ct halosim.ChangeType) {
	r.t.Helper()
	r.tick()
	e, ok := r.tenant.Do(r.gen, ct)
	if !ok {
		r.t.Fatalf("the generator could not make a %q change", ct)
	}
	r.raised(e)
}

func (r *Run) step() {
	r.tick()
	r.raised(r.tenant.Step(r.gen))
}

// flush delivers the events raised since the last flush through both webhooks at once,
// and fails the test unless every delivery was accepted.
func (r *Run) flush() {
	r.t.Helper()
	for _, e := range r.pending {
		if e.Payload == halosim.PayloadFull {
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
	ctx, cancel := context.WithTimeout(r.t.Context(), Drain)
	defer cancel()
	var wg sync.WaitGroup
	counts := make([]halosim.Counts, 2)
	errs := make([]error, 2)
	for i, s := range []*halosim.Sender{r.full, r.eventOnly} {
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
		r.Flushed.Sent += c.Sent
		r.Flushed.Duplicated += c.Duplicated
	}
}

// Run makes the starting data set, the random steps and then, for any change the steps
// happened not to make, one of it; flushing every convergeRound changes and calling
// between after each flush.
func (r *Run) Run(between func()) {
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
	for _, e := range r.Sent {
		made[e.What()]++
	}
	for _, what := range slices.Sorted(maps.Keys(everyChange)) {
		if made[what] > 0 {
			continue
		}
		ct := everyChange[what]
		if ct == halosim.DeleteClient {
			r.do(halosim.CreateClient) // a client with nothing under it, to delete
		}
		r.do(ct)
	}
	r.flush()
	between()
	made = map[string]int{}
	for _, e := range r.Sent {
		made[e.What()]++
	}
	r.t.Logf("the tenant made %d changes: %v; deliveries %d (%d duplicates)", len(r.Sent), made, r.Flushed.Sent, r.Flushed.Duplicated)
}

// ---- the comparison ----

// Get reads one object from the copy.
type Get func(kind change.Kind, id, parentID string) (change.Object, bool, error)

// Key names an object of the copy.
type Key struct {
	Kind         change.Kind
	ID, ParentID string
}

func (k Key) String() string {
	if k.ParentID != "" {
		return fmt.Sprintf("%s %s (ticket %s)", k.Kind, k.ID, k.ParentID)
	}
	return fmt.Sprintf("%s %s", k.Kind, k.ID)
}

// Expectation is what the copy must hold for one object.
type Expectation struct {
	Key
	Fields        map[string]any // the tenant's; nil for a hard-deleted object
	Deleted       bool
	CompareFields bool
	Marker        int64 // the tenant's change marker as a version; 0 when unknown
}

// Expectations lists what the copy must hold: every object of the tenant and every
// object it hard-deleted, with the events that told of them.
func Expectations(t *testing.T, tenant *halosim.Tenant, sent []SentEvent) []Expectation {
	t.Helper()
	deletedBy := map[Key]halosim.PayloadType{}
	for _, e := range sent {
		if e.Op == change.OpDelete {
			deletedBy[Key{Kind: e.Kind, ID: strconv.FormatInt(e.ObjectID, 10)}] = e.Payload
		}
	}
	var out []Expectation
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		spec, _ := change.Lookup(kind)
		for _, obj := range tenant.Objects(kind) {
			id, err := change.CanonicalID(obj["id"])
			if err != nil {
				t.Fatal(err)
			}
			k := Key{Kind: kind, ID: id}
			if spec.Parent != "" {
				if k.ParentID, err = change.CanonicalID(obj[spec.ParentField]); err != nil {
					t.Fatal(err)
				}
			}
			x := Expectation{Key: k, Fields: obj, CompareFields: true}
			if s, ok := obj[spec.VersionField].(string); ok {
				if tm, ok, err := change.ParseHaloTime(s); err == nil && ok {
					x.Marker = change.VersionOf(tm)
				}
			}
			if kind == change.Ticket && obj["deleted"] == true {
				pt, ok := deletedBy[k]
				if !ok {
					t.Fatalf("ticket %s is deleted in the tenant, but no event said so", id)
				}
				x.Deleted, x.CompareFields = true, pt == halosim.PayloadFull
			}
			out = append(out, x)
		}
	}
	for k := range deletedBy {
		if k.Kind == change.Ticket {
			continue
		}
		id, _ := strconv.ParseInt(k.ID, 10, 64)
		if _, ok := tenant.Object(k.Kind, id); ok {
			t.Fatalf("%s was deleted by an event but the tenant still has it", k)
		}
		out = append(out, Expectation{Key: k, Deleted: true})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		ai, _ := strconv.Atoi(a.ID)
		bi, _ := strconv.Atoi(b.ID)
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

// Difference is one way the copy differs from the tenant.
type Difference struct {
	Key
	Field, Want, Got string
}

// Compare checks every expectation against the copy and returns the differences and
// the objects they concern.
func Compare(exps []Expectation, get Get) ([]Difference, error) {
	var diffs []Difference
	add := func(k Key, field, want, got string) {
		diffs = append(diffs, Difference{Key: k, Field: field, Want: want, Got: got})
	}
	for _, x := range exps {
		o, ok, err := get(x.Kind, x.ID, x.ParentID)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", x.Key, err)
		}
		if !ok {
			add(x.Key, "(object)", "stored", "absent")
			continue
		}
		if o.Deleted != x.Deleted {
			add(x.Key, "(tombstone)", strconv.FormatBool(x.Deleted), strconv.FormatBool(o.Deleted))
		}
		if !x.Deleted && o.IsPending() {
			add(x.Key, "(pending)", "false", fmt.Sprintf("true: pending version %d > version %d", o.PendingVersion, o.Version))
		}
		if x.Marker != 0 && o.Version < x.Marker {
			add(x.Key, "(version)", fmt.Sprintf(">= %d (the tenant's marker)", x.Marker), strconv.FormatInt(o.Version, 10))
		}
		if !x.CompareFields {
			continue
		}
		spec, _ := change.Lookup(x.Kind)
		if spec.ClientField != "" || spec.ClientIsSelf {
			want, _ := change.CanonicalID(x.Fields[spec.ClientField])
			if spec.ClientIsSelf {
				want = x.ID
			} else if want == "0" {
				want = ""
			}
			if o.ClientID != want {
				add(x.Key, "(client id)", want, o.ClientID)
			}
		}
		names := map[string]bool{}
		for k := range x.Fields {
			names[k] = true
		}
		for k := range o.Fields {
			names[k] = true
		}
		for _, name := range slices.Sorted(maps.Keys(names)) {
			w, wOK := x.Fields[name]
			g, gOK := o.Fields[name]
			wv, wj := canonical(w)
			gv, gj := canonical(g)
			switch {
			case !gOK:
				add(x.Key, name, wj, "(missing)")
			case !wOK:
				add(x.Key, name, "(missing)", gj)
			case !reflect.DeepEqual(wv, gv):
				add(x.Key, name, wj, gj)
			}
		}
	}
	return diffs, nil
}

// history describes the events about an object, for a failure message.
func history(sent []SentEvent, k Key) string {
	var b strings.Builder
	for i, e := range sent {
		about := e.Kind == k.Kind && strconv.FormatInt(e.ObjectID, 10) == k.ID
		if obj, ok := e.Objects[k.Kind]; ok {
			if id, _ := change.CanonicalID(obj["id"]); id == k.ID {
				about = true
			}
		}
		if !about {
			continue
		}
		marker := ""
		if spec, ok := change.Lookup(k.Kind); ok {
			if obj, ok := e.Objects[k.Kind]; ok {
				marker = fmt.Sprintf(" %s %v", spec.VersionField, obj[spec.VersionField])
			}
		}
		fmt.Fprintf(&b, "\n      #%d %s %q (%s) timestamp %s (version %d)%s", i, e.ID, e.What(), e.Payload,
			e.Timestamp.Format(time.RFC3339Nano), change.VersionOf(e.Timestamp), marker)
	}
	return b.String()
}

// WantConverged fails the test with at most 20 differences, and the history of the
// first objects concerned, unless the copy equals the tenant.
func WantConverged(t *testing.T, exps []Expectation, sent []SentEvent, get Get) {
	t.Helper()
	diffs, err := Compare(exps, get)
	if err != nil {
		t.Fatal(err)
	}
	live, tombstones := 0, 0
	for _, x := range exps {
		if x.Deleted {
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
	objects := map[Key]bool{}
	for _, d := range diffs {
		objects[d.Key] = true
	}
	fmt.Fprintf(&b, "the copy differs from the tenant in %d fields of %d objects (of %d objects and %d tombstones):", len(diffs), len(objects), live, tombstones)
	for i, d := range diffs {
		if i == 20 {
			fmt.Fprintf(&b, "\n  … and %d more", len(diffs)-20)
			break
		}
		fmt.Fprintf(&b, "\n  %s: %s: want %s, got %s", d.Key, d.Field, d.Want, d.Got)
	}
	shown := map[Key]bool{}
	for _, d := range diffs {
		if shown[d.Key] || len(shown) == 3 {
			continue
		}
		shown[d.Key] = true
		o, _, _ := get(d.Kind, d.ID, d.ParentID)
		fmt.Fprintf(&b, "\n  %s: copy version %d pending %d deleted %v from delivery %s (%s); its events:%s",
			d.Key, o.Version, o.PendingVersion, o.Deleted, o.DeliveryID, o.Event, history(sent, d.Key))
	}
	t.Error(b.String())
}
