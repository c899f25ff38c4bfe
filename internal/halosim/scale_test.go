package halosim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
)

// small is MSPScale's shape at a hundredth of its size.
func small() halosim.Scale { return halosim.MSPScale().Divided(100) }

// TestSeedScaleCounts: SeedScale makes exactly the counts asked, the stated share open,
// every object pointing at objects that exist, dated before the tenant's clock, and
// serves them through the API like any other.
func TestSeedScaleCounts(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	s := small()
	if err := f.SeedScale(42, s); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[change.Kind]int{change.Client: s.Clients, change.Contact: s.Users, change.Asset: s.Assets,
		change.Ticket: s.Tickets, change.Action: s.Notes} {
		if got := f.Count(kind); got != want {
			t.Errorf("%s: %d, want %d", kind, got, want)
		}
	}
	if err := f.SeedScale(42, s); err == nil {
		t.Error("a second SeedScale on a full tenant: no error")
	}
	for _, bad := range []halosim.Scale{{Clients: 0, Tickets: 1}, {Clients: 1, Notes: 5}, {Clients: 1, Users: -1}, {Clients: 1, OpenShare: 2}} {
		if err := halosim.NewHandler(halosim.Options{}).SeedScale(1, bad); err == nil {
			t.Errorf("SeedScale(%+v): no error", bad)
		}
	}

	tok := f.token()
	var p page
	f.getJSON("/api/Tickets?open_only=true&count=100000", tok, &p)
	if want := int(s.OpenShare * float64(s.Tickets)); p.RecordCount != want {
		t.Errorf("open tickets: %d, want %d", p.RecordCount, want)
	}
	// Open tickets are mostly recent: the median open one was last updated within months,
	// the median of all long before.
	tickets := f.Objects(change.Ticket)
	oldest, _, _ := change.ParseHaloTime(tickets[0]["datecreated"].(string))
	if age := start.Sub(oldest); age < 4*365*24*time.Hour {
		t.Errorf("the first ticket was logged %v ago, want years", age)
	}
	recent := 0
	for _, tk := range tickets {
		created, _, _ := change.ParseHaloTime(tk["datecreated"].(string))
		if start.Sub(created) < 365*24*time.Hour {
			recent++
		}
	}
	if share := float64(recent) / float64(len(tickets)); share < 0.25 || share > 0.45 {
		t.Errorf("%.2f of tickets logged in the last year; the rate doubling every two years gives about a third", share)
	}

	clients := map[int64]bool{}
	for _, c := range f.Objects(change.Client) {
		clients[c["id"].(int64)] = true
	}
	notes := 0
	for _, tk := range tickets {
		if !clients[tk["client_id"].(int64)] {
			t.Fatalf("ticket %v: client %v does not exist", tk["id"], tk["client_id"])
		}
		if u, ok := f.Object(change.Contact, tk["user_id"].(int64)); !ok || u["client_id"] != tk["client_id"] || u["name"] != tk["user_name"] {
			t.Fatalf("ticket %v: user %v (%v) is not its client's", tk["id"], tk["user_id"], u)
		}
		lu, ok, err := change.ParseHaloTime(tk["last_update"].(string))
		if err != nil || !ok || lu.After(start) {
			t.Fatalf("ticket %v: last_update %v", tk["id"], tk["last_update"])
		}
		f.getJSON(fmt.Sprintf("/api/Actions?ticket_id=%v", tk["id"]), tok, &p)
		if len(p.Actions) == 0 {
			t.Fatalf("ticket %v has no notes", tk["id"])
		}
		for _, a := range p.Actions {
			at, _, _ := change.ParseHaloTime(a["last_updated"].(string))
			if int64(a["ticket_id"].(float64)) != tk["id"].(int64) || at.After(lu) {
				t.Fatalf("ticket %v (last update %v): note %v", tk["id"], lu, a)
			}
		}
		notes += len(p.Actions)
	}
	if notes != s.Notes {
		t.Errorf("the tickets' note listings hold %d notes, want %d", notes, s.Notes)
	}
	for _, u := range f.Objects(change.Contact) {
		if !clients[u["client_id"].(int64)] {
			t.Fatalf("user %v: client %v does not exist", u["id"], u["client_id"])
		}
	}
}

// TestSeedScaleIsDeterministic: the same seed and clock make the same tenant, read
// through the API; another seed another.
func TestSeedScaleIsDeterministic(t *testing.T) {
	read := func(seed uint64) string {
		f := newFixture(t, halosim.Options{})
		if err := f.SeedScale(seed, small().Divided(4)); err != nil {
			t.Fatal(err)
		}
		tok := f.token()
		var b strings.Builder
		for _, path := range []string{"/api/Client?includeinactive=true", "/api/Users?includeinactive=true",
			"/api/Asset?includeinactive=true", "/api/Tickets", "/api/Actions?ticket_id=4300"} {
			status, _, body := f.do(http.MethodGet, path, tok, nil)
			if status != 200 {
				t.Fatalf("GET %s: %d %s", path, status, body)
			}
			b.Write(body)
		}
		return b.String()
	}
	a, b, c := read(1), read(1), read(2)
	if a != b {
		t.Error("two tenants of the same seed differ")
	}
	if a == c {
		t.Error("tenants of two seeds are the same")
	}
}

// TestSeedScaleThenChanges: the generator changes a scaled tenant as any other, the
// changed objects keep what they were drawn with, and a snapshot carries it all.
func TestSeedScaleThenChanges(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	if err := f.SeedScale(7, small()); err != nil {
		t.Fatal(err)
	}
	before := f.Objects(change.Ticket)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		f.clock.Advance(time.Minute)
		e := f.Step(rng)
		if e.Kind == change.Ticket && e.Op == change.OpUpsert {
			got, _ := f.Object(change.Ticket, e.ObjectID)
			if got["last_update"] != e.Objects[change.Ticket]["last_update"] {
				t.Fatalf("ticket %d after %q: %v, event %v", e.ObjectID, e.Name, got["last_update"], e.Objects[change.Ticket]["last_update"])
			}
		}
	}
	changed := 0
	for _, old := range before {
		now, _ := f.Object(change.Ticket, old["id"].(int64))
		if now["last_update"] != old["last_update"] {
			changed++
			if now["summary"] != old["summary"] || now["client_id"] != old["client_id"] {
				t.Fatalf("ticket %v changed what no change touches: %v → %v", old["id"], old, now)
			}
		}
	}
	if changed == 0 {
		t.Fatal("200 changes changed no ticket")
	}
	g := halosim.NewHandler(halosim.Options{})
	if err := g.Restore(f.Snapshot()); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []change.Kind{change.Ticket, change.Action, change.Contact} {
		a, _ := json.Marshal(f.Objects(kind))
		b, _ := json.Marshal(g.Objects(kind))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the restored tenant differs", kind)
		}
	}
}

// TestRateLimitOfHalo: Halo's 300 requests per rolling five minutes, on the tenant's
// clock: the 301st is refused with a Retry-After counting to the moment the first leaves
// the window, and the tenant answers again once the clock gets there.
func TestRateLimitOfHalo(t *testing.T) {
	f := newFixture(t, halosim.Options{RateLimit: halosim.HaloRateLimit, SendRetryAfter: true})
	tok := f.token()
	for i := 1; i < halosim.HaloRateLimit; i++ {
		if i == 150 {
			f.clock.Advance(2 * time.Minute)
		}
		if status, _, body := f.do(http.MethodGet, "/api/Client", tok, nil); status != 200 {
			t.Fatalf("request %d of %d: %d %s", i+1, halosim.HaloRateLimit, status, body)
		}
	}
	status, h, _ := f.do(http.MethodGet, "/api/Client", tok, nil)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "180" {
		t.Fatalf("over the limit: %d, Retry-After %q; want 429, 180", status, h.Get("Retry-After"))
	}
	if served, limited := f.RequestTotals(); served != halosim.HaloRateLimit+1 || limited != 1 {
		t.Errorf("RequestTotals: %d served, %d limited", served, limited)
	}
	f.clock.Advance(179 * time.Second)
	if status, _, _ := f.do(http.MethodGet, "/api/Client", tok, nil); status != http.StatusTooManyRequests {
		t.Fatalf("a second before the window rolls: %d", status)
	}
	f.clock.Advance(time.Second) // the first 150 leave the window
	for i := range 150 {
		if status, _, _ := f.do(http.MethodGet, "/api/Client", tok, nil); status != 200 {
			t.Fatalf("after the window rolled, request %d: %d", i+1, status)
		}
	}
	if status, h, _ := f.do(http.MethodGet, "/api/Client", tok, nil); status != http.StatusTooManyRequests || h.Get("Retry-After") != "120" {
		t.Fatalf("full again: %d, Retry-After %q; want 429, 120", status, h.Get("Retry-After"))
	}
}

// TestClockSleepMovesTime: a Clock's Sleep moves it on at once, as a virtual clock for
// a client's waits, and refuses an ended context.
func TestClockSleepMovesTime(t *testing.T) {
	c := halosim.NewClock(start)
	if err := c.Sleep(t.Context(), 90*time.Second); err != nil || !c.Now().Equal(start.Add(90*time.Second)) {
		t.Fatalf("Sleep: %v, now %v", err, c.Now())
	}
	if c.Slept() != 90*time.Second {
		t.Fatalf("Slept = %v", c.Slept())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Sleep(ctx, time.Minute); err == nil || !c.Now().Equal(start.Add(90*time.Second)) {
		t.Fatalf("Sleep on an ended context: %v, now %v", err, c.Now())
	}
}

// BenchmarkSeedScale makes MSPScale's tenant and reports the heap it holds (MiB and bytes
// per object) as well as the time.
func BenchmarkSeedScale(b *testing.B) {
	s := halosim.MSPScale()
	objects := s.Clients + s.Users + s.Assets + s.Tickets + s.Notes
	var heap uint64
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		tn := halosim.NewHandler(halosim.Options{Clock: halosim.NewClock(start).Now})
		b.StartTimer()
		if err := tn.SeedScale(1, s); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(tn)
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(heap)/float64(objects), "heap-B/object")
}
