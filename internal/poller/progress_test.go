package poller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

// ticking is a Halo API whose every page of a kind's listing takes step on the clock
// (a ticket's note listings take none).
type ticking struct {
	poller.Lister
	clock *halosim.Clock
	step  time.Duration
}

func (t *ticking) List(ctx context.Context, kind change.Kind, q haloapi.ListQuery, fn func([]map[string]any) error) error {
	return t.Lister.List(ctx, kind, q, func(page []map[string]any) error {
		if q.TicketID == "" {
			t.clock.Advance(t.step)
		}
		return fn(page)
	})
}

// TestBackfillReportsProgress backfills a tenant whose pages hold two objects, each page
// taking 2 s: with reports every 5 s, every third page of a kind logs its progress, and
// each kind's end logs what it read, against Halo's record_count.
func TestBackfillReportsProgress(t *testing.T) {
	clock, tenant, client := pagedTenant(t)
	var logs bytes.Buffer
	tick := &ticking{client, clock, 2 * time.Second}
	c := newCopy()
	p := poller.New("default", tick, c, c, &cursorsFake{m: map[string][]byte{}},
		metrics.NewMemory(), slog.New(slog.NewJSONHandler(&logs, nil)), poller.Options{Now: clock.Now, ProgressEvery: 5 * time.Second})
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := records(t, &logs)
	open, closed := ticketsByState(tenant)
	// Tickets are read open ones first, then closed ones: each phase reports on its own.
	for _, read := range []struct {
		kind  change.Kind
		phase string
		n     int
	}{{change.Client, "", tenant.Count(change.Client)}, {change.Contact, "", tenant.Count(change.Contact)}, {change.Asset, "", tenant.Count(change.Asset)},
		{change.Ticket, "open tickets", open}, {change.Ticket, "closed tickets", closed}} {
		kind, n := read.kind, read.n
		pages := (n + 1) / 2
		var progress, done []map[string]any
		for _, l := range lines {
			if l["kind"] != string(kind) || (read.phase != "" && l["phase"] != read.phase) {
				continue
			}
			switch l["msg"] {
			case "backfill progress":
				progress = append(progress, l)
			case "backfill done":
				done = append(done, l)
			}
		}
		if len(progress) != pages/3 {
			t.Errorf("%s: %d pages logged progress %d times, want %d", kind, pages, len(progress), pages/3)
		}
		for i, l := range progress {
			read := 6 * (i + 1) // three full pages of two per report
			if read > n {
				continue // the last report came with a short page
			}
			want := map[string]any{"pages": float64(3 * (i + 1)), "read": float64(read), "done": float64(read),
				"total": float64(n), "per_second": 1.0, "left": (time.Duration(n-read) * time.Second).String(),
				"elapsed": (time.Duration(read) * time.Second).String()}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("%s progress %d: %s = %v, want %v (%v)", kind, i, k, l[k], v, l)
				}
			}
		}
		if len(done) != 1 {
			t.Fatalf("%s: %d end reports", kind, len(done))
		}
		if l := done[0]; l["pages"] != float64(pages) || l["read"] != float64(n) || l["done"] != float64(n) || l["total"] != float64(n) || l["left"] != "0s" {
			t.Errorf("%s: end report %v, want %d pages, %d of %d read", kind, l, pages, n, n)
		}
	}

	// A later scan of contacts, as long as their backfill, reports the same way; a quick
	// poll reports nothing.
	logs.Reset()
	clock.Advance(15 * time.Minute)
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	var scanDone int
	for _, l := range records(t, &logs) {
		if l["msg"] == "poll done" && l["kind"] == string(change.Contact) && l["read"] == float64(tenant.Count(change.Contact)) {
			scanDone++
		}
		if l["kind"] == string(change.Ticket) && strings.HasPrefix(l["msg"].(string), "poll ") {
			t.Errorf("a quick read of tickets reported progress: %v", l)
		}
	}
	if scanDone != 1 {
		t.Errorf("the contacts' long scan logged %d ends, want 1:\n%s", scanDone, logs.String())
	}
	logs.Reset()
	tick.step = 0
	clock.Advance(15 * time.Minute)
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); strings.Contains(s, "progress") || strings.Contains(s, "poll done") {
		t.Errorf("a quick poll reported progress:\n%s", s)
	}
}

// pagedTenant is a seeded simulated tenant whose pages hold two objects, on a clock the
// test moves, and a client of its API.
func pagedTenant(t *testing.T) (*halosim.Clock, *halosim.Tenant, *haloapi.Client) {
	t.Helper()
	clock := halosim.NewClock(time.Date(2026, 9, 25, 8, 0, 0, 0, time.UTC))
	tenant := halotest.Start(t, halosim.Options{Clock: clock.Now, PageCap: 2})
	tenant.Seed(rand.New(rand.NewPCG(7, 11)), 4)
	client, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID,
		ClientSecret: tenant.Options().ClientSecret, MaxRetries: -1, Budget: haloapi.NewBudget(1_000_000, time.Minute, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return clock, tenant, client
}

func records(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// progressLog keeps every report it is told.
type progressLog struct{ got []poller.Progress }

func (l *progressLog) Progress(p poller.Progress) { l.got = append(l.got, p) }

// A reporter is told each page's figures, the ones the log lines carry, and each kind's
// end: what the dashboard shows of a backfill.
func TestBackfillTellsItsReporter(t *testing.T) {
	clock, tenant, client := pagedTenant(t)
	reports := &progressLog{}
	c := newCopy()
	p := poller.New("default", &ticking{client, clock, 2 * time.Second}, c, c, &cursorsFake{m: map[string][]byte{}},
		metrics.NewMemory(), slog.New(slog.DiscardHandler), poller.Options{Now: clock.Now, Progress: reports})
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, closed := ticketsByState(tenant)
	var tickets []poller.Progress
	closedReports := 0
	for _, r := range reports.got {
		if r.Kind == change.Ticket && r.Phase == "open tickets" {
			tickets = append(tickets, r)
		}
		if r.Kind == change.Ticket && r.Phase == "closed tickets" && r.Total == closed {
			closedReports++
		}
	}
	if closedReports != (closed+1)/2+1 {
		t.Errorf("%d reports of the closed tickets' phase, want one per page and the end", closedReports)
	}
	pages := (n + 1) / 2
	if len(tickets) != pages+1 {
		t.Fatalf("%d ticket reports for %d pages, want one per page and the end: %+v", len(tickets), pages, tickets)
	}
	first := tickets[0]
	if first.Connection != "default" || first.What != "backfill" || first.Done != 2 || first.Total != n ||
		first.PerSecond != 1 || first.Left != time.Duration(n-2)*time.Second || first.Finished {
		t.Errorf("first page's report %+v, want 2 of %d done at 1/s, %ds left", first, n, n-2)
	}
	if last := tickets[len(tickets)-1]; !last.Finished || last.Done != n || last.Left != 0 {
		t.Errorf("the end's report %+v, want finished, %d done, nothing left", last, n)
	}
}

// ticketsByState counts the tenant's open and closed tickets.
func ticketsByState(tenant *halosim.Tenant) (open, closed int) {
	for _, o := range tenant.Objects(change.Ticket) {
		if id, _ := change.CanonicalID(o["status_id"]); id == "9" {
			closed++
		} else {
			open++
		}
	}
	return open, closed
}

// gauges keeps every reading of BackfillLeft, by kind.
type gauges struct{ left map[string][]int64 }

func (g *gauges) Count(m metrics.Metric, n int64) {
	if m.Name == metrics.BackfillLeft {
		g.left[m.Label] = append(g.left[m.Label], n)
	}
}

// A backfill counts what it has left (BackfillLeft) at its progress cadence, falling to
// 0 at its end: the metric of how far the first sync is.
func TestBackfillCountsWhatItHasLeft(t *testing.T) {
	clock, tenant, client := pagedTenant(t)
	g := &gauges{left: map[string][]int64{}}
	c := newCopy()
	p := poller.New("default", &ticking{client, clock, 2 * time.Second}, c, c, &cursorsFake{m: map[string][]byte{}},
		g, slog.New(slog.DiscardHandler), poller.Options{Now: clock.Now, ProgressEvery: 5 * time.Second})
	if _, err := p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	contacts := g.left[string(change.Contact)]
	if len(contacts) < 2 || contacts[0] <= 0 || contacts[0] >= int64(tenant.Count(change.Contact)) || contacts[len(contacts)-1] != 0 {
		t.Errorf("contacts' BackfillLeft readings %v; want falling from below %d to 0", contacts, tenant.Count(change.Contact))
	}
	for i := 1; i < len(contacts); i++ {
		if contacts[i] > contacts[i-1] {
			t.Errorf("contacts' BackfillLeft rose: %v", contacts)
		}
	}
}
