package pollscenario

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

// interval is the hybrid mode's default poll interval: the next poll is due this long
// after the last.
const interval = 15 * time.Minute

// ---- (a) lost webhooks ----

// FindsWhatTheWebhooksLost: the tenant (seeded, raising no events, then backfilled: the
// copy equals it) makes 240 changes of every kind while two webhooks, one full and one
// event-only, lose 30% of their deliveries, then two hard deletes whose deliveries are
// lost for certain. The next poll (the plan's, 15 minutes on; the first reconcile since
// the backfill runs with it) finds exactly what the copy lacked: every object whose
// tenant change marker is newer than the copy's version, the tickets Halo deleted among
// them; the reconcile tombstones exactly the hard deletes the copy held alive, and
// WebhookGap counts both, per kind. Once the queue is drained the copy equals the tenant.
func FindsWhatTheWebhooksLost(t *testing.T, h Harness) {
	sc := New(t, h, Setup{Seed: 1})
	sc.Seed(6)
	sc.Start()
	sc.WantBackfill(sc.Poll(false), sc.CountKinds())
	sc.Drain()
	sc.Converged()
	if t.Failed() {
		t.FailNow()
	}

	const steps = 240
	full := sc.Sender(halosim.PayloadFull, 0.3, 11)
	eventOnly := sc.Sender(halosim.PayloadEventOnly, 0.3, 12)
	var delivered halosim.Counts
	for i := range steps {
		sc.Clock.Advance(time.Duration(1+sc.IntN(8)) * time.Second)
		pt, snd := halosim.PayloadFull, full
		if sc.IntN(2) == 0 {
			pt, snd = halosim.PayloadEventOnly, eventOnly
		}
		snd.Send(sc.Step(pt))
		if i%20 == 19 {
			sc.Clock.Advance(2 * time.Second) // Halo delivers after it raised the events
			c := sc.Flush(full, eventOnly)
			delivered.Sent += c.Sent
			delivered.Dropped += c.Dropped
		}
	}
	// Whatever the random steps did, two hard deletes only the reconcile can find.
	lost := sc.Sender(halosim.PayloadFull, 1, 13)
	for _, ct := range []halosim.ChangeType{halosim.DeleteUser, halosim.DeleteAsset} {
		sc.Clock.Advance(time.Second)
		lost.Send(sc.Do(ct))
	}
	sc.Clock.Advance(2 * time.Second)
	if c := sc.Flush(lost); c.Dropped != 2 || c.Sent != 0 {
		t.Fatalf("the lost deliveries: %+v; want both dropped", c)
	}
	sc.Drain()
	gap, alive := sc.Lacking()
	if delivered.Dropped == 0 || len(gap) == 0 || len(alive) < 2 {
		t.Fatalf("deliveries %+v; the copy lacks %v and holds %d deleted objects alive: the scenario tests too little", delivered, gap, len(alive))
	}

	rep := sc.PollDue(interval)
	for _, kind := range Kinds {
		if rep.Gap[kind] != gap[kind] || rep.Enqueued[kind] != gap[kind] {
			t.Errorf("the poll: %s: gap %d, enqueued %d; the copy lacked %d", kind, rep.Gap[kind], rep.Enqueued[kind], gap[kind])
		}
	}
	sc.Drain()
	sc.Converged()

	// The reconcile tombstoned exactly the hard deletes the copy held alive: the deleted
	// tickets the poll found are left to it (Halo's id list leaves them out).
	reconciled := map[converge.Key]bool{}
	for _, r := range sc.Logged("INFO", "reconcile: deleted in Halo") {
		reconciled[converge.Key{Kind: change.Kind(r.Str("kind")), ID: r.Str("id")}] = true
	}
	if !maps.Equal(reconciled, alive) {
		t.Errorf("the reconcile deleted [%s]; want the hard deletes the copy held alive: [%s]", joinKeys(reconciled), joinKeys(alive))
	}
	if rs := sc.Logged("INFO", "reconcile: missing from the copy"); len(rs) != 0 {
		t.Errorf("the reconcile found %d objects missing from the copy, want none (the poll enqueued them): the first %s %s", len(rs), rs[0].Str("kind"), rs[0].Str("id"))
	}

	// WebhookGap counts the poll's gap and the reconcile's deletes, per kind.
	want := map[string]int64{}
	var total int64
	for _, kind := range Kinds {
		want[string(kind)] = int64(gap[kind])
		for k := range alive {
			if k.Kind == kind {
				want[string(kind)]++
			}
		}
		total += want[string(kind)]
	}
	counts := h.Counts(t, metrics.WebhookGap, total)
	for label, n := range want {
		if got := counts.Of(metrics.WebhookGap, label); got != n {
			t.Errorf("WebhookGap{%s} = %d, want %d (gap %d, hard deletes alive in the copy: %s)", label, got, n, gap[change.Kind(label)], joinKeys(alive))
		}
	}
	if total == 0 || counts.Total() != total {
		t.Errorf("WebhookGap: %d in all, want %d > 0", counts.Total(), total)
	}
	if failed := h.Counts(t, metrics.PollsFailed, 0); failed.Total() != 0 {
		t.Errorf("PollsFailed: %v", failed)
	}
	sc.WantNoErrorsLogged()
	t.Logf("%d changes, deliveries %+v; the poll found %v, the reconcile deleted %d", steps, delivered, rep.Gap, len(reconciled))
}

// ---- (c) deletes ----

// FindsDeletesOfEveryKind: a client, a contact and an asset deleted in Halo (hard deletes:
// gone from its lists) and a ticket deleted (soft: listed with deleted=true), none of
// their webhooks delivered. The next poll finds the ticket (and only it) and its reconcile
// (the first after the backfill) the others: the copy holds tombstones for all four, and
// WebhookGap counts one of each kind. A note deleted in Halo stays in the copy, alive:
// notes are not reconciled (docs/ARCHITECTURE.md, "The poller"). It returns the scenario
// and the deleted note's expectation, for a harness that goes on to the next day.
func FindsDeletesOfEveryKind(t *testing.T, h Harness) (*Scenario, converge.Expectation) {
	sc := New(t, h, Setup{Seed: 3})
	sc.Seed(5)
	sc.Start()
	sc.PollOK(false)
	sc.Drain()

	// A client with nothing under it (only such a client can be deleted), delivered.
	sc.Clock.Advance(time.Minute)
	snd := sc.Sender(halosim.PayloadFull, 0, 31)
	snd.Send(sc.Do(halosim.CreateClient))
	sc.Clock.Advance(time.Second)
	sc.Flush(snd)
	sc.Drain()

	// The deletes; no webhook delivers them.
	deleted := map[change.Kind]string{}
	for _, ct := range []halosim.ChangeType{halosim.DeleteClient, halosim.DeleteUser, halosim.DeleteAsset, halosim.DeleteTicket} {
		sc.Clock.Advance(10 * time.Second)
		e := sc.Do(ct)
		id := strconv.FormatInt(e.ObjectID, 10)
		if o, ok, err := sc.Get(e.Kind, id, ""); err != nil || !ok || o.Deleted {
			t.Fatalf("%s %s: the copy holds %+v, %v, %v before the delete; want it alive", e.Kind, id, o, ok, err)
		}
		deleted[e.Kind] = id
	}
	notes := sc.Tenant.Objects(change.Action)
	note := notes[len(notes)/2]
	noteID, _ := change.CanonicalID(note["id"])
	noteTicket, _ := change.CanonicalID(note["ticket_id"])
	sc.Tenant.Delete(change.Action, mustInt(t, noteID))

	before := sc.Schedule()
	rep := sc.PollDue(interval)
	sc.Drain()
	for kind, id := range deleted {
		o, ok, err := sc.Get(kind, id, "")
		if err != nil || !ok || !o.Deleted {
			t.Errorf("%s %s, deleted in Halo: the copy holds %+v (%v, %v); want a tombstone", kind, id, o, ok, err)
		}
	}
	// The poll enqueued the deleted ticket and nothing else; the counts below show that
	// the reconcile did not enqueue it again.
	if rep.Gap[change.Ticket] != 1 || rep.Enqueued[change.Ticket] != 1 || sum(rep.Enqueued) != 1 {
		t.Errorf("the poll: gap %v, enqueued %v; want the deleted ticket %s only", rep.Gap, rep.Enqueued, deleted[change.Ticket])
	}
	counts := h.Counts(t, metrics.WebhookGap, 4)
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
		if got := counts.Of(metrics.WebhookGap, string(kind)); got != 1 {
			t.Errorf("WebhookGap{%s} = %d, want 1", kind, got)
		}
	}
	if n := h.Counts(t, metrics.ReconcileRefused, 0).Total(); n != 0 {
		t.Errorf("ReconcileRefused = %d", n)
	}
	// The reconcile ran in the poll's run: both were recorded at its time.
	if st := sc.Schedule(); !st.LastReconcile.Equal(st.LastPoll) || !st.LastPoll.After(before.LastPoll) {
		t.Errorf("schedule state %+v after the run (before it: %+v); want the last reconcile this run's, at its poll", st, before)
	} else if h.ControlsClock() && !st.LastReconcile.Equal(sc.Now()) {
		t.Errorf("last reconcile %s, want this run's %s", st.LastReconcile, sc.Now())
	}
	// The note Halo deleted is still in the copy, alive: notes are not reconciled.
	o, ok, err := sc.Get(change.Action, noteID, noteTicket)
	if err != nil || !ok || o.Deleted {
		t.Errorf("note %s of ticket %s: %+v %v %v; want it still alive in the copy (notes are not reconciled)", noteID, noteTicket, o, ok, err)
	}
	k := converge.Key{Kind: change.Action, ID: noteID, ParentID: noteTicket}
	kept := converge.Expectation{Key: k, Fields: note, CompareFields: true, Marker: change.VersionOf(haloTime(t, note["last_updated"]))}
	sc.Converged(kept)
	sc.WantNoErrorsLogged()
	return sc, kept
}

// ---- (d) paging ----

// PagesThroughTheCap: a tenant with 301 tickets (and its clients, contacts, assets and
// notes) whose pages hold at most pageCap items: the backfill reads every object, asking
// for pages of 100 and stopping when it has record_count objects (no empty page asked
// for), tickets in two listings (open, then closed), and lists notes across tickets by
// date window; the copy holds them all. With a cap below what
// the client asks, the client carries on with the page size the tenant used, as
// record_count says there is more. The notes and the reconcile's id lists (due at once,
// without a poll) are lists Halo does not page: each is one request without paging
// parameters, whatever the cap, and the reconcile deletes nothing.
func PagesThroughTheCap(t *testing.T, h Harness, pageCap int) {
	sc := New(t, h, Setup{Seed: 4, Tenant: halosim.Options{PageCap: pageCap}})
	sc.Seed(10)
	sc.TicketsTo(301)
	sc.Start()
	sc.WantBackfill(sc.Poll(false), sc.CountKinds())
	sc.Drain()
	sc.Converged()
	// The listing requests: page 1 asks for 100; after a short page (the cap) the client
	// goes on with the cap's size; the last page is the one that completes record_count.
	wantPages := func(what string, ls []List, n int) {
		t.Helper()
		size := min(100, pageCap)
		want := max(1, (n+size-1)/size)
		ok := len(ls) == want
		for i, l := range ls {
			wantSize := size
			if i == 0 {
				wantSize = 100
			}
			ok = ok && l.Page == i+1 && l.Size == wantSize && l.Status == http.StatusOK
		}
		if !ok {
			t.Errorf("%s (%d objects, cap %d): pages asked (page/size→status) %s; want pages 1..%d, 100 then %d each", what, n, pageCap, Pages(ls), want, size)
		}
	}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset} {
		wantPages(string(kind)+" backfill", Lists(sc.Tenant, kind, BackfillList), sc.Tenant.Count(kind))
	}
	open, closed := TicketStates(sc.Tenant)
	wantPages("open tickets' backfill", Lists(sc.Tenant, change.Ticket, OpenTickets), open)
	wantPages("closed tickets' backfill", Lists(sc.Tenant, change.Ticket, ClosedTickets), closed)
	// Notes are listed across tickets by date window: far fewer listings than tickets.
	notes := Lists(sc.Tenant, change.Action, nil)
	if len(notes) == 0 || len(notes) > sc.Tenant.Count(change.Ticket)/10 || slices.ContainsFunc(notes, func(l List) bool { return l.Query.Has("ticket_id") }) {
		t.Errorf("note listings: %d, want a few across tickets for %d tickets", len(notes), sc.Tenant.Count(change.Ticket))
	}
	if ls := Lists(sc.Tenant, change.Action, Paged); len(ls) != 0 {
		t.Errorf("%d note listings asked for pages (%s); the Actions list takes no paging", len(ls), Pages(ls))
	}

	// The reconcile (due a minute later, without a poll) reads each id list in one answer.
	sc.Tenant.ResetRequests()
	sc.Clock.Advance(time.Minute)
	sc.NotDue("a minute after the backfill")
	if sc.Schedule().LastReconcile.IsZero() {
		t.Fatal("no reconcile ran")
	}
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket} {
		if ls := Lists(sc.Tenant, kind, IDOnlyList); len(ls) != 1 || Paged(ls[0].Query) || ls[0].Status != http.StatusOK {
			t.Errorf("%s id list: %d requests (page/size→status %s); want one, unpaged", kind, len(ls), Pages(ls))
		}
	}
	sc.Drain()
	if n := h.Counts(t, metrics.WebhookGap, 0).Total(); n != 0 {
		t.Errorf("the reconcile deleted or fetched %d objects of a tenant that changed nothing", n)
	}
	sc.Converged()
	sc.WantNoErrorsLogged()
}

// ---- (e) a 429 storm ----

// Storm is a 429 storm's shape, which the harness's clock decides: the client waits as
// told by Retry-After, on the tenant's clock where the harness gives it one, for real
// otherwise.
type Storm struct {
	Clients    int           // seeded clients: the backfill's size
	RateLimit  int           // requests the tenant admits per rolling Window
	Window     time.Duration // 0: Halo's 5 minutes
	PerRequest time.Duration // how far each request moves the tenant's clock on (0: not at all)
	Throttled  int           // the fewest 429 answers that make a storm
}

// StormResult is what the tenant answered.
type StormResult struct {
	Served, Throttled int
}

// RidesOutA429Storm: the tenant admits storm.RateLimit requests per rolling window and
// answers 429 with Retry-After beyond that, while the backfill makes many more requests.
// The client waits as told each time, so no retry is refused again; the backfill
// completes in one run, and the copy equals the tenant.
func RidesOutA429Storm(t *testing.T, h Harness, storm Storm) StormResult {
	// Notes listed per ticket: a backfill of many requests.
	sc := New(t, h, Setup{Seed: 5, Tenant: halosim.Options{RateLimit: storm.RateLimit, RateWindow: storm.Window, SendRetryAfter: true},
		Poll: "    poll:\n      bulk_notes: \"off\"\n"})
	sc.Seed(storm.Clients)
	if storm.PerRequest > 0 {
		sc.SetFaults(func(*http.Request) *halosim.Fault {
			sc.Clock.Advance(storm.PerRequest)
			return nil
		})
	}
	sc.Start()
	start := sc.Clock.Now()
	rep := sc.Poll(false)
	sc.WantBackfill(rep, sc.CountKinds())
	sc.Drain()
	sc.Converged()
	var res StormResult
	log := sc.Tenant.Requests()
	for i, r := range log {
		switch r.Status {
		case http.StatusTooManyRequests:
			res.Throttled++
			if i > 0 && log[i-1].Status == http.StatusTooManyRequests {
				t.Errorf("%s %s?%s was refused twice in a row: the client did not wait as told", r.Method, r.Path, r.Query.Encode())
			}
		case http.StatusOK:
			res.Served++
		default:
			t.Errorf("%s %s: %d", r.Method, r.Path, r.Status)
		}
	}
	if res.Throttled < max(1, storm.Throttled) || res.Served <= storm.RateLimit {
		t.Fatalf("%d requests served, %d throttled: the storm did not happen", res.Served, res.Throttled)
	}
	sc.WantNoErrorsLogged()
	t.Logf("%d requests served, %d answered 429; the backfill took %d ms, %v of the tenant's time",
		res.Served, res.Throttled, rep.DurationMS, sc.Clock.Now().Sub(start).Round(time.Second))
	return res
}

// ---- (f) an interrupted backfill ----

// PageFailure is how the tickets' backfill page 2 fails in the first run.
type PageFailure struct {
	Status   int   // the answer to every request for it
	Attempts int   // how often the client asks before it gives up
	Class    error // the haloapi error class the connection's error names
}

// ResumesAfterAFailedPage: the backfill's second page of tickets fails (as f says) during
// the first run. The run reports the connection's tickets failed and counts the failure
// (PollsFailed); the other connection, an empty tenant, is polled (a run fails as a whole
// only when every connection fails) and the other kinds are backfilled. ResumeAndConverge
// then checks the state left and resumes.
func ResumesAfterAFailedPage(t *testing.T, h Harness, f PageFailure) {
	sc := New(t, h, Setup{Seed: 6, Spare: true})
	sc.Seed(6)
	sc.TicketsTo(250)
	var asked atomic.Int64
	sc.SetFaults(func(r *http.Request) *halosim.Fault {
		if IsPage(r, change.Ticket, 2) {
			asked.Add(1)
			return &halosim.Fault{Status: f.Status, Body: `{"error":"the page could not be read"}`}
		}
		return nil
	})
	sc.Start()
	res := h.Poll(t, false)
	sc.SetFaults(nil)
	first := sc.Result(res, Conn)
	if !first.Polled || !strings.Contains(first.Error, string(change.Ticket)+":") || !strings.Contains(first.Error, f.Class.Error()) {
		t.Fatalf("the first run: %+v; want the connection polled and its tickets failed (%v)", first, f.Class)
	}
	if o := sc.Result(res, SpareConn); !o.Polled || o.Error != "" {
		t.Errorf("the first run, the other connection: %+v; want it polled without error", o)
	}
	if n := asked.Load(); n != int64(f.Attempts) {
		t.Errorf("page 2 was asked for %d times, want %d", n, f.Attempts)
	}
	want := "1/100→200" + strings.Repeat(fmt.Sprintf(" 2/100→%d", f.Status), f.Attempts)
	if ls := Lists(sc.Tenant, change.Ticket, BackfillList); Pages(ls) != want {
		t.Errorf("the first run asked for tickets' pages %s; want %s", Pages(ls), want)
	}
	if c := h.Counts(t, metrics.PollsFailed, 1); c.Of(metrics.PollsFailed, "error") != 1 || c.Total() != 1 {
		t.Errorf("PollsFailed: %v; want one error of connection %s", c, Conn)
	}
	if len(sc.Logged("ERROR", "poll failed")) == 0 {
		t.Error("the pipeline logged no error for the failed page")
	}
	sc.ResumeAndConverge(first)
	sc.WantNoErrorsLogged("poll failed")
}

// ResumeAndConverge checks the state a backfill that failed on the tickets' page 2 left
// (first: what that run did), has the tenant change while the backfill is stuck (tickets
// on page 1, read, and on page 3 change, a ticket is logged; no webhook delivers any of
// it), runs the resumed backfill, which starts at page 2 (the tenant's request log shows
// no page 1) and ends with the watermark at the first attempt's start, then the plan's
// next poll, which reads what changed since then; the copy then equals the tenant.
func (sc *Scenario) ResumeAndConverge(first poller.ConnectionResult) {
	t := sc.T
	t.Helper()
	cur := sc.Cursor(change.Ticket)
	if cur.Backfilled || cur.NextPage != 2 || cur.BackfillStarted.IsZero() {
		t.Fatalf("the tickets' cursor after the failed page %+v; want page 2 next, not backfilled", cur)
	}
	// Tickets are read first: a run called off at their page 2 (a crash) read no other
	// kind; a run whose page failed went on to them.
	calledOff := strings.Contains(first.Error, context.Canceled.Error())
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset} {
		if calledOff {
			break
		}
		if c := sc.Cursor(kind); !c.Backfilled {
			t.Errorf("the %s cursor %+v: want it backfilled in spite of the tickets' failure", kind, c)
		}
	}
	if first.Read[change.Ticket] != 100 {
		t.Errorf("the failed run read %d tickets, want page 1's 100", first.Read[change.Ticket])
	}
	sc.Drain()

	tickets := sc.Tenant.Objects(change.Ticket)
	for _, i := range []int{5, 220} {
		sc.Clock.Advance(30 * time.Second)
		id := tickets[i]["id"].(int64)
		sc.Tenant.Upsert(change.Ticket, map[string]any{"id": id, "summary": fmt.Sprintf("changed while the backfill was stuck (%d)", i)})
	}
	sc.Clock.Advance(30 * time.Second)
	sc.Do(halosim.NewTicket)
	sc.Clock.Advance(time.Minute)

	sc.Tenant.ResetRequests()
	rep := sc.PollOK(false) // not backfilled: due whatever the plan says
	ls := Lists(sc.Tenant, change.Ticket, OpenTickets)
	if len(ls) == 0 || ls[0].Page != 2 || slices.ContainsFunc(ls, func(l List) bool { return l.Page == 1 }) {
		t.Errorf("the resumed backfill asked for open tickets' pages %s; want it to start at page 2 and not read page 1 again", Pages(ls))
	}
	if c := sc.Cursor(change.Ticket); !c.Backfilled || !c.Watermark.Equal(cur.BackfillStarted) {
		t.Errorf("the tickets' cursor after the resumed backfill %+v; want backfilled, watermark the first attempt's start %s", c, cur.BackfillStarted)
	}
	if n := sc.Tenant.Count(change.Ticket) - 100; rep.Read[change.Ticket] != n {
		t.Errorf("the resumed backfill read %d tickets, want the %d after page 1", rep.Read[change.Ticket], n)
	}
	sc.Drain()
	sc.PollDue(interval) // reads what changed since the backfill began: page 1's change among it
	sc.Drain()
	sc.Converged()
}

// ---- (g) clock skew ----

// SkewLosesNothing: the poller's clock runs skew ahead of Halo's (negative: behind; the
// overlap is the default 2 minutes), every kind read incrementally (poll.kinds), no
// webhook delivered. Changes are made while the backfill runs (to kinds it has already
// read), just before each of four polls (on a controlled clock in the minute before it is
// due, and in the instant it begins), while it runs (before its ticket listing, and
// between that and its deleted-ticket listing) and right after it ends; after one more
// poll the copy equals the tenant.
func SkewLosesNothing(t *testing.T, h Harness, skew time.Duration) {
	sc := New(t, h, Setup{Seed: 8, Skew: skew,
		Poll: "    poll:\n      kinds: {client: incremental, contact: incremental, asset: incremental}\n"})
	sc.Seed(5)
	sc.Start()
	// While the backfill runs, when it asks for assets (the last kind it reads): the kinds
	// it has read change.
	var once sync.Once
	sc.SetFaults(func(r *http.Request) *halosim.Fault {
		if IsPage(r, change.Asset, 1) {
			once.Do(func() {
				for _, ct := range []halosim.ChangeType{halosim.UpdateClient, halosim.UpdateUser, halosim.UpdateAsset, halosim.CreateUser} {
					sc.Do(ct)
				}
			})
		}
		return nil
	})
	counts := sc.CountKinds()
	sc.WantBackfill(sc.Poll(false), counts)
	sc.SetFaults(nil)
	if sc.CountKinds()[change.Contact] != counts[change.Contact]+1 {
		t.Fatal("no change was made while the backfill ran")
	}
	sc.Drain()
	incremental := func(q url.Values) bool { return q.Get("lastupdatefromdate") != "" }
	for round := range 4 {
		if h.ControlsClock() {
			due := sc.Schedule().LastPoll.Add(interval)
			sc.Clock.Advance(interval - time.Minute)
			for range 6 { // the minute before the poll
				sc.Clock.Advance(sc.Jitter(9 * time.Second))
				sc.Some(1)
			}
			// The poll is due now (a millisecond and a half later each round, so that the
			// watermarks fall between milliseconds too).
			sc.At(due.Add(time.Duration(round) * 1500 * time.Microsecond))
		} else {
			sc.Some(6)
		}
		sc.Some(2) // the same instant the poll begins
		var during sync.Once
		var before, between atomic.Int32
		sc.SetFaults(func(r *http.Request) *halosim.Fault {
			if !IsList(r, change.Ticket, incremental) {
				return nil
			}
			if r.URL.Query().Get("deleted") == "true" {
				during.Do(func() { sc.Some(2); between.Add(2) }) // after the ticket listing, before the deleted one
			} else {
				sc.Some(1) // before the ticket listing is served
				before.Add(1)
			}
			return nil
		})
		rep := sc.PollOK(!h.ControlsClock())
		sc.SetFaults(nil)
		if before.Load() == 0 || between.Load() == 0 {
			t.Fatalf("round %d: %d changes before the poll's ticket listing, %d between it and the deleted one; want some of each", round, before.Load(), between.Load())
		}
		sc.Some(2) // the same instant it ended
		sc.Drain()
		t.Logf("round %d: the poll found %v", round, rep.Gap)
	}
	sc.PollDue(interval)
	sc.Drain()
	sc.Converged()
	sc.WantNoErrorsLogged()
	t.Logf("%d changes, none delivered", len(sc.Sent()))
}

// ---- lists that change while they are read ----

// NotesOfADeletedTicket: a note added while the webhooks are down, to a ticket deleted
// since (its delete delivered, full): neither the "ticket deleted" delivery (the ticket
// only) nor anything else brings the note; the poll reads the deleted ticket
// (deleted=true) and lists its notes too (docs/ARCHITECTURE.md, "The poller": a deleted
// ticket's notes are still listed with it). Halo keeps a deleted ticket and its notes.
func NotesOfADeletedTicket(t *testing.T, h Harness) {
	sc := New(t, h, Setup{Seed: 14})
	sc.Seed(3)
	sc.Start()
	sc.PollOK(false)
	sc.Drain()
	sc.Clock.Advance(time.Minute)
	note := sc.Do(halosim.AddNote) // its webhook is lost
	sc.Clock.Advance(time.Minute)
	del := sc.DeleteTicket(note.ObjectID)
	snd := sc.Sender(halosim.PayloadFull, 0, 141)
	snd.Send(del)
	sc.Clock.Advance(time.Second)
	sc.Flush(snd)
	sc.Drain()
	sc.PollDue(interval)
	sc.Drain()
	sc.Converged()
	sc.WantNoErrorsLogged()
}

// ReconcileKeepsALiveTicketWhileTheListShifts: a ticket is deleted in Halo while the
// reconcile reads the ticket id list, one unpaged answer (Halo's id-only lists are not
// compatible with paging, so no page can shift a live ticket out of view). The reconcile
// confirms every difference by reading the object (docs/ARCHITECTURE.md, "The poller"):
// the live tickets are not tombstoned, and the deleted one becomes a tombstone.
func ReconcileKeepsALiveTicketWhileTheListShifts(t *testing.T, h Harness) {
	sc := New(t, h, Setup{Seed: 10})
	sc.Seed(4)
	sc.TicketsTo(150)
	tickets := sc.Tenant.Objects(change.Ticket)
	sc.Start()
	sc.PollOK(false)
	sc.Drain()
	var shifted atomic.Bool
	sc.SetFaults(func(r *http.Request) *halosim.Fault {
		if IsList(r, change.Ticket, IDOnlyList) && shifted.CompareAndSwap(false, true) {
			sc.DeleteTicket(tickets[0]["id"].(int64))
		}
		return nil
	})
	sc.Clock.Advance(time.Minute)
	sc.NotDue("a minute after the backfill (the reconcile runs)")
	sc.SetFaults(nil)
	if !shifted.Load() {
		t.Fatal("the reconcile listed no ticket ids: the scenario tests nothing")
	}
	sc.Drain()
	for i, tk := range tickets {
		id, _ := change.CanonicalID(tk["id"])
		if o, _, _ := sc.Get(change.Ticket, id, ""); o.Deleted != (i == 0) {
			t.Errorf("ticket %s: tombstone %v after the reconcile, deleted in Halo %v (version %d)", id, o.Deleted, i == 0, o.Version)
		}
	}
	sc.PollDue(interval)
	sc.Drain()
	sc.Converged()
	sc.WantNoErrorsLogged()
}
