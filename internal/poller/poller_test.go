package poller_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
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
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

// copyFake is the copy as the worker would leave it after applying everything sent: the
// newest version per object.
type copyFake struct {
	hold     bool // like a worker that has not run yet: what is sent is applied by apply
	held     []change.Change
	mu       sync.Mutex
	versions map[string]int64
	deleted  map[string]bool
	ids      map[string]change.StoredID
	kinds    map[string]change.Kind
	sent     []change.Change
}

func newCopy() *copyFake {
	return &copyFake{versions: map[string]int64{}, deleted: map[string]bool{}, ids: map[string]change.StoredID{}, kinds: map[string]change.Kind{}}
}

// StoredIDs lists the copy's ids of a kind, tombstones marked.
func (c *copyFake) StoredIDs(_ context.Context, _ string, kind change.Kind, fn func([]change.StoredID) error) error {
	c.mu.Lock()
	var ids []change.StoredID
	for k, id := range c.ids {
		if c.kinds[k] == kind {
			id.Deleted = c.deleted[k]
			ids = append(ids, id)
		}
	}
	c.mu.Unlock()
	return fn(ids)
}

func key(kind change.Kind, id, parent string) string { return string(kind) + "/" + parent + "/" + id }

func (c *copyFake) Send(_ context.Context, msgs []message.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		env, err := message.Decode(m.Body)
		if err != nil {
			return err
		}
		ch := env.Change
		c.sent = append(c.sent, ch)
		if c.hold {
			c.held = append(c.held, ch)
			continue
		}
		c.store(ch)
	}
	return nil
}

// apply applies what was held.
func (c *copyFake) apply() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.held {
		c.store(ch)
	}
	c.held, c.hold = nil, false
}

func (c *copyFake) store(ch change.Change) {
	if k := key(ch.Kind, ch.ID, ch.ParentID); ch.Version > c.versions[k] {
		c.versions[k] = ch.Version
		c.deleted[k] = ch.Op == change.OpDelete || ch.Fields["deleted"] == true
		c.ids[k] = change.StoredID{ID: ch.ID, ParentID: ch.ParentID}
		c.kinds[k] = ch.Kind
	}
}

func (c *copyFake) Get(_ context.Context, _ string, kind change.Kind, id, parent string) (change.Object, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.versions[key(kind, id, parent)]
	return change.Object{Kind: kind, ID: id, Version: v}, ok, nil
}

func (c *copyFake) take() []change.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sent
	c.sent = nil
	return out
}

type cursorsFake struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (f *cursorsFake) LoadCursor(_ context.Context, _ string, name string) ([]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[name]
	return c, ok, nil
}

func (f *cursorsFake) SaveCursor(_ context.Context, _ string, name string, doc []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[name] = doc
	return nil
}

type setup struct {
	tenant  *halosim.Tenant
	client  *haloapi.Client
	clock   *halosim.Clock
	copy    *copyFake
	cursors *cursorsFake
	counts  *metrics.Memory
	poller  *poller.Poller
	rng     *rand.Rand
}

// newSetup seeds a fake tenant and points a poller at it. skew is how far our clock runs
// ahead of Halo's (negative: behind).
func newSetup(t testing.TB, skew time.Duration) *setup {
	t.Helper()
	return newSetupWith(t, skew, nil)
}

func newSetupWith(t testing.TB, skew time.Duration, faults func(*http.Request) *halosim.Fault) *setup {
	t.Helper()
	return tenantSetup(t, halosim.Options{Faults: faults}, poller.Options{}, 4, skew)
}

// tenantSetup seeds a strict simulated tenant of clients clients, shaped by topts, and
// points a poller with popts at it; its clock (unless popts has one) runs skew ahead of
// the tenant's.
func tenantSetup(t testing.TB, topts halosim.Options, popts poller.Options, clients int, skew time.Duration) *setup {
	t.Helper()
	clock := halosim.NewClock(time.Date(2026, 9, 25, 8, 0, 0, 0, time.UTC))
	topts.Clock, topts.StrictParams = clock.Now, true
	tenant := halotest.Start(t, topts)
	rng := rand.New(rand.NewPCG(7, 11))
	tenant.Seed(rng, clients)
	client, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID,
		ClientSecret: tenant.Options().ClientSecret, MaxRetries: -1, Budget: haloapi.NewBudget(1_000_000, time.Minute, nil)})
	if err != nil {
		t.Fatal(err)
	}
	s := &setup{tenant: tenant, client: client, clock: clock, copy: newCopy(), cursors: &cursorsFake{m: map[string][]byte{}},
		counts: metrics.NewMemory(), rng: rng}
	if popts.Now == nil {
		popts.Now = func() time.Time { return clock.Now().Add(skew) }
	}
	s.poller = poller.New("default", client, s.copy, s.copy, s.cursors, s.counts, slog.New(slog.DiscardHandler), popts)
	return s
}

func (s *setup) poll(t *testing.T) poller.Report {
	t.Helper()
	r, err := s.poller.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// converged checks the copy holds every tenant object at the tenant's version.
func (s *setup) converged(t *testing.T) {
	t.Helper()
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		spec, _ := change.Lookup(kind)
		for _, o := range s.tenant.Objects(kind) {
			id, _ := change.CanonicalID(o["id"])
			parent := ""
			if spec.Parent != "" {
				parent, _ = change.CanonicalID(o[spec.ParentField])
			}
			marker, _, _ := change.ParseHaloTime(o[spec.VersionField].(string))
			got, _, _ := s.copy.Get(context.Background(), "default", kind, id, parent)
			if got.Version != change.VersionOf(marker) {
				t.Errorf("%s %s: copy at %d, tenant at %d", kind, id, got.Version, change.VersionOf(marker))
			}
		}
	}
}

func TestFirstPollBackfillsEveryKind(t *testing.T) {
	s := newSetup(t, 0)
	r := s.poll(t)
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		if want := s.tenant.Count(kind); r.Enqueued[kind] != want || want == 0 {
			t.Errorf("%s: enqueued %d of %d", kind, r.Enqueued[kind], want)
		}
		if r.Gap[kind] != 0 {
			t.Errorf("%s: a first sync counted %d as webhook gap", kind, r.Gap[kind])
		}
	}
	s.converged(t)
	for _, c := range s.copy.take() {
		if c.Source != change.SourcePoll || c.DeliveryID != "" || !c.HasSnapshot() || !c.Backfill {
			t.Fatalf("poll change %+v", c)
		}
	}
}

func TestAQuietPollCostsOneRequestPerKind(t *testing.T) {
	s := newSetup(t, 0)
	s.poll(t)
	s.clock.Advance(15 * time.Minute)
	s.tenant.ResetRequests()
	r := s.poll(t)
	for kind, n := range r.Enqueued {
		if n != 0 {
			t.Errorf("%s: %d enqueued when nothing changed", kind, n)
		}
	}
	perPath := map[string]int{}
	for _, req := range s.tenant.Requests() {
		perPath[strings.ToLower(req.Path)]++
	}
	// Tickets: the changed ones and the deleted ones; the other kinds one listing each.
	want := map[string]int{"/api/client": 1, "/api/users": 1, "/api/asset": 1, "/api/tickets": 2}
	for path, n := range want {
		if perPath[path] != n {
			t.Errorf("%s: %d requests, want %d (all: %v)", path, perPath[path], n, perPath)
		}
	}
	if len(perPath) != len(want) {
		t.Errorf("requests to %v, want only %v", perPath, want)
	}
}

func TestChangesTheWebhooksMissedAreFoundAndCounted(t *testing.T) {
	for name, skew := range map[string]time.Duration{"same clock": 0, "Halo 2 minutes behind": 2 * time.Minute, "Halo 2 minutes ahead": -2 * time.Minute} {
		t.Run(name, func(t *testing.T) {
			s := newSetup(t, skew)
			s.poll(t)
			s.copy.take()
			// The tenant changes; none of its webhooks arrive.
			for range 40 {
				s.clock.Advance(time.Duration(1+s.rng.IntN(20)) * time.Second)
				s.tenant.Step(s.rng)
			}
			s.clock.Advance(30 * time.Second)
			r := s.poll(t)
			total := 0
			for kind, n := range r.Gap {
				total += n
				if n != r.Enqueued[kind] {
					t.Errorf("%s: gap %d, enqueued %d", kind, n, r.Enqueued[kind])
				}
				if got := s.counts.Value(metrics.Metric{Name: metrics.WebhookGap, Connection: "default", Label: string(kind)}); got != int64(n) {
					t.Errorf("%s: gap counted %d, reported %d", kind, got, n)
				}
			}
			if total == 0 {
				t.Fatal("the poll found none of 40 changes")
			}
			for _, c := range s.copy.take() {
				if c.Backfill {
					t.Fatalf("a poll's change marked as a backfill's, so it has no sync latency: %+v", c)
				}
			}
			s.converged(t)
			// Changes made while a poll runs are read by the next one.
			s.tenant.Step(s.rng)
			s.poll(t)
			s.converged(t)
		})
	}
}

func TestAnInterruptedBackfillResumesWhereItStopped(t *testing.T) {
	var failOnce atomic.Bool
	failOnce.Store(true)
	s := newSetupWith(t, 0, func(r *http.Request) *halosim.Fault {
		q := r.URL.Query()
		if strings.EqualFold(r.URL.Path, "/api/Tickets") && q.Get("page_no") == "2" && q.Get("deleted") == "" && failOnce.CompareAndSwap(true, false) {
			return &halosim.Fault{Status: http.StatusServiceUnavailable}
		}
		return nil
	})
	for i := range 230 {
		s.tenant.Upsert(change.Ticket, map[string]any{"id": int64(50000 + i), "summary": "bulk", "client_id": int64(1)})
	}
	if _, err := s.poller.Poll(context.Background()); err == nil {
		t.Fatal("the poll whose second page of tickets failed reported no error")
	}
	cur, _ := s.poller.Cursor(context.Background(), change.Ticket)
	if cur.Backfilled || cur.NextPage != 2 {
		t.Fatalf("ticket cursor after the failure: %+v, want the backfill to resume at page 2", cur)
	}
	if c, _ := s.poller.Cursor(context.Background(), change.Client); !c.Backfilled {
		t.Fatalf("clients were not backfilled although their listing succeeded: %+v", c)
	}
	s.tenant.ResetRequests()
	s.poll(t)
	for _, req := range s.tenant.Requests() {
		if strings.EqualFold(req.Path, "/api/Tickets") {
			if p := req.Query.Get("page_no"); p != "2" {
				t.Fatalf("the resumed backfill began at page %s, want 2", p)
			}
			break
		}
	}
	s.converged(t)
}

// TestDeletesOfEveryKindAreFound: tickets Halo flags deleted come with the incremental
// read; clients, contacts and assets Halo deletes outright are found by the reconcile of
// id lists.
func TestDeletesOfEveryKindAreFound(t *testing.T) {
	s := newSetup(t, 0)
	r := poller.Runner{Poller: s.poller, Plan: poller.PlanOf(connection.PollOf(config.Poll{})), Stored: s.copy}
	ctx := context.Background()
	if _, _, err := r.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	s.copy.take()
	gone := map[change.Kind]string{}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
		objs := s.tenant.Objects(kind)
		id, _ := change.CanonicalID(objs[len(objs)-1]["id"])
		n, _ := strconv.ParseInt(id, 10, 64)
		if !s.tenant.Delete(kind, n) {
			t.Fatalf("could not delete %s %s", kind, id)
		}
		gone[kind] = id
	}
	s.clock.Advance(25 * time.Hour) // a poll and the daily reconcile are due
	s.copy.hold = true              // the worker applies the poll's changes only after the run
	if _, _, err := r.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	s.copy.apply()
	for kind, id := range gone {
		k := key(kind, id, "")
		if !s.copy.deleted[k] {
			t.Errorf("%s %s deleted in Halo is not a tombstone in the copy", kind, id)
		}
	}
	// The deleted ticket came with the poll's deleted=true read; the reconcile right
	// after it in the same run does not delete it a second time.
	deletes := 0
	for _, c := range s.copy.take() {
		if c.Kind == change.Ticket && c.ID == gone[change.Ticket] && (c.Op == change.OpDelete || c.Fields["deleted"] == true) {
			deletes++
		}
	}
	if deletes != 1 {
		t.Errorf("the deleted ticket was enqueued %d times, want once", deletes)
	}
	if n := s.counts.Value(metrics.Metric{Name: metrics.WebhookGap, Connection: "default", Label: "client"}); n != 1 {
		t.Errorf("client deletes counted as gap: %d", n)
	}
}

// TestReconcileRefusesImplausibleDeletes: a Halo that suddenly lists almost nothing (a
// permission lost, a filter ignored) does not empty the copy.
func TestReconcileRefusesImplausibleDeletes(t *testing.T) {
	s := newSetup(t, 0)
	if _, err := s.poller.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, o := range s.tenant.Objects(change.Asset) {
		n, _ := change.CanonicalID(o["id"])
		id, _ := strconv.ParseInt(n, 10, 64)
		s.tenant.Delete(change.Asset, id)
	}
	deleted, err := s.poller.Reconcile(context.Background(), s.copy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if deleted[change.Asset] != 0 || s.counts.Value(metrics.Metric{Name: metrics.ReconcileRefused, Connection: "default", Label: "asset"}) != 1 {
		t.Fatalf("deleted %v; counters %+v", deleted, s.counts.Snapshot())
	}
}

// TestPolledObjectsKeepExcludedFieldsOut: the connection's stored_fields apply before a
// polled object is queued, as for webhook deliveries.
func TestPolledObjectsKeepExcludedFieldsOut(t *testing.T) {
	clock := halosim.NewClock(time.Date(2026, 9, 25, 8, 0, 0, 0, time.UTC))
	tenant := halotest.Start(t, halosim.Options{Clock: clock.Now, StrictParams: true})
	tenant.Seed(rand.New(rand.NewPCG(3, 4)), 2)
	client, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID,
		ClientSecret: tenant.Options().ClientSecret, Budget: haloapi.NewBudget(1_000_000, time.Minute, nil)})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := connection.Compile(config.Connection{ID: "default", StoredFields: map[string]config.FieldList{"ticket": {Exclude: []string{"summary"}}}})
	if err != nil {
		t.Fatal(err)
	}
	opts := poller.OptionsOf(conn)
	opts.Now = clock.Now
	c := newCopy()
	p := poller.New("default", client, c, c, &cursorsFake{m: map[string][]byte{}}, metrics.NewMemory(), slog.New(slog.DiscardHandler), opts)
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	tickets := 0
	for _, ch := range c.take() {
		if ch.Kind == change.Ticket {
			tickets++
			if _, ok := ch.Fields["summary"]; ok {
				t.Fatalf("ticket %s queued with an excluded field", ch.ID)
			}
		}
	}
	if tickets == 0 {
		t.Fatal("no ticket polled")
	}
}

// A note whose stored version is ahead of Halo's marker is read again to be repaired, and
// Halo reads a note only with its ticket: the read names the ticket it is stored under.
func TestANoteIsReadAgainWithItsTicket(t *testing.T) {
	s := newSetup(t, 0)
	s.poll(t)
	s.copy.take()
	note := s.tenant.Objects(change.Action)[0]
	id, _ := change.CanonicalID(note["id"])
	ticket, _ := change.CanonicalID(note["ticket_id"])
	s.copy.mu.Lock()
	s.copy.versions[key(change.Action, id, ticket)] = change.VersionOf(time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC))
	s.copy.mu.Unlock()
	// The ticket changes, so the next poll lists it and its notes.
	s.clock.Advance(time.Minute)
	tid, _ := strconv.ParseInt(ticket, 10, 64)
	s.tenant.Upsert(change.Ticket, map[string]any{"id": tid, "summary": "changed"})
	s.clock.Advance(time.Minute)
	s.tenant.ResetRequests()
	s.poll(t)
	read := 0
	for _, r := range s.tenant.Requests() {
		if r.Method == http.MethodGet && r.Path == "/api/Actions/"+id {
			read++
			if r.Query.Get("ticket_id") != ticket || r.Status != http.StatusOK {
				t.Errorf("note read as %s?%s: %d", r.Path, r.Query.Encode(), r.Status)
			}
		}
	}
	if read != 1 {
		t.Fatalf("the note was read %d times, want once (its repair)", read)
	}
}
