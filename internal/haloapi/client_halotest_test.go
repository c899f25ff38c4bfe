package haloapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
)

// tenantClock drives the client from the fake tenant's clock: the client's sleeps (backoff,
// Retry-After, budget waits) move the tenant's time on, so rate windows roll and tokens
// expire without real waiting.
type tenantClock struct {
	c      *halosim.Clock
	mu     sync.Mutex
	sleeps []time.Duration
}

func (k *tenantClock) Now() time.Time { return k.c.Now() }

func (k *tenantClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	k.sleeps = append(k.sleeps, d)
	k.mu.Unlock()
	if d > 0 {
		k.c.Advance(d)
	}
	return nil
}

func (k *tenantClock) Sleeps() []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]time.Duration(nil), k.sleeps...)
}

func fakeTenant(t *testing.T, opts halosim.Options) (*halosim.Tenant, *tenantClock) {
	t.Helper()
	clk := &tenantClock{c: halosim.NewClock(time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC))}
	opts.Clock = clk.Now
	opts.StrictParams = true // the client sends only what Halo documents for each call
	tn := halosim.New(opts)
	t.Cleanup(tn.Close)
	return tn, clk
}

func fakeClient(t *testing.T, tn *halosim.Tenant, clk haloapi.Clock, mod func(*haloapi.ClientOptions)) *haloapi.Client {
	t.Helper()
	o := tn.Options()
	opts := haloapi.ClientOptions{
		BaseURL: tn.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret,
		Clock: clk, MaxRetries: 10,
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := haloapi.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func addTickets(tn *halosim.Tenant, n int) []string {
	ids := make([]string, n)
	for i := range n {
		obj := tn.Upsert(change.Ticket, map[string]any{"summary": fmt.Sprintf("ticket %d", i), "client_id": 12})
		ids[i] = fmt.Sprint(obj["id"])
	}
	return ids
}

func listIDs(t *testing.T, c *haloapi.Client, kind change.Kind, q haloapi.ListQuery) []string {
	t.Helper()
	var ids []string
	err := c.List(context.Background(), kind, q, func(page []map[string]any) error {
		for _, it := range page {
			id, err := change.CanonicalID(it["id"])
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func requestsTo(tn *halosim.Tenant, path string) []halosim.Request {
	var out []halosim.Request
	for _, r := range tn.Requests() {
		if strings.EqualFold(r.Path, path) {
			out = append(out, r)
		}
	}
	return out
}

func statuses(rs []halosim.Request) map[int]int {
	out := map[int]int{}
	for _, r := range rs {
		out[r.Status]++
	}
	return out
}

func TestFakeTenantPagingWithCap(t *testing.T) {
	tn, clk := fakeTenant(t, halosim.Options{TenantName: "acme"})
	want := addTickets(tn, 250)
	c := fakeClient(t, tn, clk, nil)

	got := listIDs(t, c, change.Ticket, haloapi.ListQuery{})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %d tickets, want the %d stored, in order", len(got), len(want))
	}
	pages := requestsTo(tn, "/api/Tickets")
	if len(pages) != 3 {
		t.Fatalf("%d page requests, want 3", len(pages))
	}
	for i, r := range pages {
		if r.Query.Get("pageinate") != "true" || r.Query.Get("page_size") != "100" || r.Query.Get("page_no") != strconv.Itoa(i+1) {
			t.Errorf("page %d: %v", i+1, r.Query)
		}
	}

	// Asking for 1000 a page: Halo answers 100 and record_count 250; the client carries on.
	tn.ResetRequests()
	got = listIDs(t, c, change.Ticket, haloapi.ListQuery{PageSize: 1000})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("with page_size=1000: listed %d tickets, want %d", len(got), len(want))
	}
	var sizes []string
	for _, r := range requestsTo(tn, "/api/Tickets") {
		sizes = append(sizes, r.Query.Get("page_size"))
	}
	if fmt.Sprint(sizes) != "[1000 100 100]" {
		t.Fatalf("page sizes asked %v", sizes)
	}

	// Id-only listings, the update filter, deleted tickets, one ticket.
	var idOnly []map[string]any
	if err := c.List(context.Background(), change.Ticket, haloapi.ListQuery{IDOnly: true}, func(p []map[string]any) error {
		idOnly = append(idOnly, p...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(idOnly) != 250 || len(idOnly[0]) != 1 {
		t.Fatalf("id-only: %d objects, first %v", len(idOnly), idOnly[0])
	}
	clk.c.Advance(time.Hour)
	since := clk.Now()
	for _, id := range want[:10] {
		n, _ := strconv.ParseInt(id, 10, 64)
		tn.Upsert(change.Ticket, map[string]any{"id": n, "summary": "changed"})
	}
	if got := listIDs(t, c, change.Ticket, haloapi.ListQuery{UpdatedFrom: since}); fmt.Sprint(got) != fmt.Sprint(want[:10]) {
		t.Fatalf("updated since %v: %v", since, got)
	}
	deleted, _ := strconv.ParseInt(want[5], 10, 64)
	tn.Delete(change.Ticket, deleted)
	if got := listIDs(t, c, change.Ticket, haloapi.ListQuery{Deleted: true}); fmt.Sprint(got) != "["+want[5]+"]" {
		t.Fatalf("deleted: %v", got)
	}
	obj, err := c.Get(context.Background(), change.Ticket, want[0])
	if err != nil || obj["summary"] != "changed" {
		t.Fatalf("get: %v %v", obj, err)
	}
	if _, err := c.Get(context.Background(), change.Ticket, "999999"); !errors.Is(err, haloapi.ErrNotFound) {
		t.Fatalf("get a missing ticket: %v", err)
	}
}

func TestFakeTenantTokens(t *testing.T) {
	tn, clk := fakeTenant(t, halosim.Options{TenantName: "acme", TokenTTL: 2 * time.Minute})
	ids := addTickets(tn, 3)
	c := fakeClient(t, tn, clk, nil)
	get := func() error {
		_, err := c.Get(context.Background(), change.Ticket, ids[0])
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	// Near expiry the client renews by itself: no 401.
	clk.c.Advance(110 * time.Second)
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if n := len(requestsTo(tn, "/auth/token")); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
	if s := statuses(tn.Requests()); s[http.StatusUnauthorized] != 0 {
		t.Fatalf("statuses %v", s)
	}

	// A revoked token: one 401, one renewal, success.
	tn.RevokeTokens()
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if n := len(requestsTo(tn, "/auth/token")); n != 3 {
		t.Fatalf("%d token requests, want 3", n)
	}
	// Every token refused: one renewal, then ErrAuth.
	tn.FailNext(5, halosim.Unauthorized())
	tn.ResetRequests()
	err := get()
	if !errors.Is(err, haloapi.ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if api, tok := len(requestsTo(tn, "/api/Tickets/"+ids[0])), len(requestsTo(tn, "/auth/token")); api != 2 || tok != 1 {
		t.Fatalf("%d API and %d token requests, want 2 and 1", api, tok)
	}
	tn.ClearFaults()
}

func TestFakeTenantTokenRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		opts halosim.Options
		mod  func(*haloapi.ClientOptions)
		code string
	}{
		{"scope", halosim.Options{GrantedScopes: []string{"read:tickets"}}, nil, "invalid_scope"},
		{"secret", halosim.Options{}, func(o *haloapi.ClientOptions) { o.ClientSecret = "not-the-secret" }, "invalid_client"},
		{"tenant", halosim.Options{TenantName: "acme"}, func(o *haloapi.ClientOptions) { o.Tenant = "other" }, "invalid_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tn, clk := fakeTenant(t, c.opts)
			cl := fakeClient(t, tn, clk, c.mod)
			_, err := cl.Get(context.Background(), change.Ticket, "4200")
			var he *haloapi.Error
			if !errors.Is(err, haloapi.ErrAuth) || !errors.As(err, &he) || he.Code != c.code {
				t.Fatalf("err = %v", err)
			}
			if strings.Contains(err.Error(), tn.Options().ClientSecret) {
				t.Fatal("the secret leaked")
			}
		})
	}
	// The scope the application does hold works.
	tn, clk := fakeTenant(t, halosim.Options{GrantedScopes: []string{"read:tickets"}})
	addTickets(tn, 1)
	cl := fakeClient(t, tn, clk, func(o *haloapi.ClientOptions) { o.Scope = "read:tickets" })
	if _, err := cl.Get(context.Background(), change.Ticket, "4200"); err != nil {
		t.Fatal(err)
	}
}

// 429 storms: a budget larger than the tenant's limit meets 429s and recovers by backing
// off, with or without Retry-After; a budget sized to the limit meets none.
func TestFakeTenant429Storm(t *testing.T) {
	for _, retryAfter := range []bool{false, true} {
		t.Run(fmt.Sprintf("retry-after=%v", retryAfter), func(t *testing.T) {
			tn, clk := fakeTenant(t, halosim.Options{RateLimit: 20, RateWindow: time.Minute, SendRetryAfter: retryAfter})
			ids := addTickets(tn, 450)
			c := fakeClient(t, tn, clk, func(o *haloapi.ClientOptions) {
				o.Budget = haloapi.NewBudget(1000, time.Minute, clk) // far over Halo's limit
				o.MaxRetries = 20
			})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < 60; i += 4 {
						if _, err := c.Get(context.Background(), change.Ticket, ids[i]); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			got := listIDs(t, c, change.Ticket, haloapi.ListQuery{})
			wg.Wait()
			if len(got) != 450 {
				t.Fatalf("listed %d tickets", len(got))
			}
			s := statuses(tn.Requests())
			t.Logf("statuses %v, %d backoff sleeps totalling %v of tenant time", s, len(clk.Sleeps()), sum(clk.Sleeps()))
			if s[http.StatusTooManyRequests] == 0 || s[http.StatusOK] != 60+5+2 {
				t.Fatalf("statuses %v: want 429s and 67 successes (60 gets, 5 pages, authinfo, token)", s)
			}
			if retryAfter {
				for _, d := range clk.Sleeps() {
					if d < time.Second || d%time.Second != 0 {
						t.Fatalf("slept %v: not a Retry-After in whole seconds", d)
					}
				}
			}
		})
	}

	t.Run("budget sized to the limit", func(t *testing.T) {
		tn, clk := fakeTenant(t, halosim.Options{RateLimit: 20, RateWindow: time.Minute})
		addTickets(tn, 450)
		c := fakeClient(t, tn, clk, func(o *haloapi.ClientOptions) { o.Budget = haloapi.NewBudget(20, time.Minute, clk) })
		if got := listIDs(t, c, change.Ticket, haloapi.ListQuery{}); len(got) != 450 {
			t.Fatalf("listed %d", len(got))
		}
		for range 40 {
			if _, err := c.Get(context.Background(), change.Ticket, "4200"); err != nil {
				t.Fatal(err)
			}
		}
		if s := statuses(tn.Requests()); s[http.StatusTooManyRequests] != 0 || s[http.StatusOK] != 47 {
			t.Fatalf("statuses %v: the budget let Halo refuse requests", s)
		}
	})
}

func TestFakeTenantFaults(t *testing.T) {
	tn, clk := fakeTenant(t, halosim.Options{})
	ids := addTickets(tn, 1)
	c := fakeClient(t, tn, clk, func(o *haloapi.ClientOptions) {
		o.MaxRetries = 3
		o.Timeout = 100 * time.Millisecond
	})
	tn.FailNext(3, halosim.Fault{Status: http.StatusServiceUnavailable, Path: "/api/tickets"})
	if _, err := c.Get(context.Background(), change.Ticket, ids[0]); err != nil {
		t.Fatalf("three 503s then success: %v", err)
	}
	tn.FailNext(1, halosim.Fault{Delay: time.Hour, Path: "/api/tickets"})
	if _, err := c.Get(context.Background(), change.Ticket, ids[0]); err != nil {
		t.Fatalf("a hung request then success: %v", err)
	}
	tn.FailNext(10, halosim.Fault{Status: http.StatusInternalServerError, Path: "/api/tickets"})
	_, err := c.Get(context.Background(), change.Ticket, ids[0])
	if !errors.Is(err, haloapi.ErrUnavailable) || !haloapi.Retryable(err) {
		t.Fatalf("err = %v", err)
	}
	tn.ClearFaults()
}

func sum(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t
}

// TestListResumesAtAPage: a listing started at page 3 reads from the 201st object on.
func TestListResumesAtAPage(t *testing.T) {
	tenant := halotest.Start(t, halosim.Options{})
	for i := range 250 {
		tenant.Upsert(change.Ticket, map[string]any{"id": int64(10000 + i), "summary": "t"})
	}
	c, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID, ClientSecret: tenant.Options().ClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	err = c.List(context.Background(), change.Ticket, haloapi.ListQuery{StartPage: 3}, func(page []map[string]any) error {
		for _, o := range page {
			id, _ := change.CanonicalID(o["id"])
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 50 {
		t.Fatalf("resumed at page 3: %d objects, want the last 50", len(ids))
	}
}
