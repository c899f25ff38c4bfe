package poller_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/poller"
)

// tenantClock is the tenant's clock as the client's: a wait moves it on, so a budget's
// waits cost no real time.
type tenantClock struct{ c *halosim.Clock }

func (k tenantClock) Now() time.Time { return k.c.Now() }

func (k tenantClock) Sleep(ctx context.Context, d time.Duration) error {
	k.c.Advance(d)
	return ctx.Err()
}

// sharedPoller points a poller with opts at s's tenant through a client whose budget of
// limit requests per 5 minutes runs on the tenant's clock; the poller's share is share of
// it.
func sharedPoller(t *testing.T, s *setup, limit int, share float64, opts poller.Options) *poller.Poller {
	t.Helper()
	budget := haloapi.NewBudget(limit, 5*time.Minute, tenantClock{s.clock})
	client, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: s.tenant.URL(), ClientID: s.tenant.Options().ClientID,
		ClientSecret: s.tenant.Options().ClientSecret, MaxRetries: -1, Budget: budget, Clock: tenantClock{s.clock}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Now = s.clock.Now
	opts.Share = budget.Part(int(share * float64(limit)))
	return poller.New("default", client, s.copy, s.copy, s.cursors, s.counts, slog.New(slog.DiscardHandler), opts)
}

// A backfill of many more requests than the poller's share (notes per ticket) never
// spends more than the share in any rolling window, though the client's budget would
// allow three times as much: it waits for its share, or pauses for a later run, until it
// completes.
func TestPollsStayWithinTheirShare(t *testing.T) {
	s := tenantSetup(t, halosim.Options{PageCap: 20}, poller.Options{}, 80, 0)
	p := sharedPoller(t, s, 300, 1.0/3, poller.Options{BulkNotes: "off"})
	ctx := context.Background()
	runs := 0
	for ; runs < 100; runs++ {
		if _, err := p.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		if cur, _ := p.Cursor(ctx, change.Ticket); cur.Backfilled {
			break
		}
		s.clock.Advance(time.Minute)
	}
	reqs := s.tenant.Requests()
	if took := s.clock.Now().Sub(reqs[0].Time); len(reqs) < 300 || took < 15*time.Minute {
		t.Fatalf("%d requests in %v: the backfill tests too little", len(reqs), took)
	}
	for i := range reqs {
		in := 0
		for _, r := range reqs[i:] {
			if r.Time.Sub(reqs[i].Time) >= 5*time.Minute {
				break
			}
			in++
		}
		if in > 100 {
			t.Fatalf("%d requests in the 5 minutes from %s, the share is 100", in, reqs[i].Time)
		}
	}
	s.converged(t)
}

// Scanned kinds (contacts here) are read a slice per poll, never in full by one poll,
// and the slices add up to a full scan within the configured cadence: a contact changed
// on each page, its webhook lost, is in the copy by then.
func TestScannedKindsAreReadInSlicesWithinTheCadence(t *testing.T) {
	const every, interval = 2 * time.Hour, 15 * time.Minute
	s := tenantSetup(t, halosim.Options{}, poller.Options{ScanEvery: every}, 70, 0)
	ctx := context.Background()
	s.poll(t) // the backfill
	contacts := s.tenant.Objects(change.Contact)
	pages := (len(contacts) + 99) / 100
	if pages < 3 {
		t.Fatalf("%d contacts: the tenant tests too little", len(contacts))
	}
	changed := map[string]bool{}
	for _, i := range []int{0, len(contacts) / 2, len(contacts) - 1} {
		o := s.tenant.Upsert(change.Contact, map[string]any{"id": contacts[i]["id"], "name": "changed"})
		id, _ := change.CanonicalID(o["id"])
		changed[id] = true
	}
	start := s.clock.Now()
	perPoll := (pages*int(interval) + int(every) - 1) / int(every)
	for s.clock.Now().Sub(start) < every {
		s.clock.Advance(interval)
		s.tenant.ResetRequests()
		s.poll(t)
		n := 0
		for _, r := range s.tenant.Requests() {
			if strings.EqualFold(r.Path, "/api/Users") {
				n++
			}
		}
		if n > perPoll {
			t.Fatalf("a poll read %d pages of contacts, want at most %d of %d", n, perPoll, pages)
		}
	}
	for _, o := range s.tenant.Objects(change.Contact) {
		id, _ := change.CanonicalID(o["id"])
		if !changed[id] {
			continue
		}
		marker, _, _ := change.ParseHaloTime(o["ulastupdate"].(string))
		if got, _, _ := s.copy.Get(ctx, "default", change.Contact, id, ""); got.Version != change.VersionOf(marker) {
			t.Errorf("contact %s changed in Halo is not in the copy after %v of slices", id, every)
		}
	}
	if cur, _ := s.poller.Cursor(ctx, change.Contact); !cur.LastRun.After(start) {
		t.Errorf("no full round of contacts within %v: cursor %+v", every, cur)
	}
}

// A backfill that ends a page with the poller's share spent pauses without an error,
// its place kept, and the next runs go on until it completes.
func TestABackfillPausesWhenItsShareIsSpent(t *testing.T) {
	s := tenantSetup(t, halosim.Options{PageCap: 5}, poller.Options{}, 12, 0)
	ctx := context.Background()
	s.poll(t) // every kind backfilled
	if err := poller.Restart(ctx, s.cursors, "default", change.Ticket); err != nil {
		t.Fatal(err)
	}
	p := sharedPoller(t, s, 30, 0.2, poller.Options{BulkNotes: "on", ScanEvery: 24 * time.Hour})
	paused := 0
	for runs := 0; ; runs++ {
		if runs == 50 {
			t.Fatal("the backfill did not complete in 50 runs")
		}
		if _, err := p.Poll(ctx); err != nil {
			t.Fatal(err)
		}
		cur, _ := p.Cursor(ctx, change.Ticket)
		if cur.Backfilled {
			break
		}
		if cur.Phase == "" || cur.NextPage < 1 {
			t.Fatalf("a paused backfill's cursor %+v", cur)
		}
		paused++
		s.clock.Advance(5 * time.Minute)
	}
	if paused == 0 {
		t.Fatal("the backfill never paused for its share")
	}
	s.converged(t)
}

// In auto mode a kind is read by its last-update filter where a probe shows the tenant
// honours it, and in slices where the tenant ignores it (the probe's answer lists
// objects changed "tomorrow").
func TestAutoModeUsesTheLastUpdateFilterWhereHonoured(t *testing.T) {
	for _, ignored := range []bool{false, true} {
		s := tenantSetup(t, halosim.Options{UpdateFilterTicketsOnly: ignored},
			poller.Options{Modes: map[change.Kind]poller.Mode{change.Contact: poller.Auto}, ScanEvery: 24 * time.Hour}, 4, 0)
		ctx := context.Background()
		s.poll(t)
		contact := s.tenant.Objects(change.Contact)[0]
		s.clock.Advance(time.Minute)
		s.tenant.Upsert(change.Contact, map[string]any{"id": contact["id"], "name": "changed"})
		s.clock.Advance(15 * time.Minute)
		s.tenant.ResetRequests()
		s.poll(t)
		filtered := 0
		for _, r := range s.tenant.Requests() {
			if strings.EqualFold(r.Path, "/api/Users") && r.Query.Get("lastupdatefromdate") != "" {
				filtered++
			}
		}
		cur, _ := s.poller.Cursor(ctx, change.Contact)
		switch {
		case !ignored && (filtered != 1 || cur.Filtered != "yes"):
			t.Errorf("honoured: %d filtered listings of contacts, cursor %+v; want one, incremental", filtered, cur)
		case ignored && (filtered != 0 || cur.Filtered != "no"):
			t.Errorf("ignored: %d filtered listings of contacts, cursor %+v; want none, in slices", filtered, cur)
		}
		s.converged(t)
	}
}
