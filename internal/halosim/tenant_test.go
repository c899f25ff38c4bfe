package halosim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
)

// start is the fixed time the tests' clocks start at.
var start = time.Date(2026, 9, 25, 6, 0, 0, 0, time.UTC)

// fixture is a tenant on a fake clock with a helper to call it.
type fixture struct {
	*halosim.Tenant
	clock *halosim.Clock
	t     *testing.T
}

func newFixture(t *testing.T, o halosim.Options) *fixture {
	t.Helper()
	clock := halosim.NewClock(start)
	o.Clock = clock.Now
	return &fixture{Tenant: halotest.Start(t, o), clock: clock, t: t}
}

// tokenReq asks for a token with a form and returns the status and decoded body.
func (f *fixture) tokenReq(tenant string, form url.Values) (int, map[string]any) {
	f.t.Helper()
	u := f.URL() + "/auth/token"
	if tenant != "" {
		u += "?tenant=" + url.QueryEscape(tenant)
	}
	resp, err := http.PostForm(u, form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (f *fixture) creds(scope string) url.Values {
	o := f.Options()
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {o.ClientID}, "client_secret": {o.ClientSecret}, "scope": {scope}}
}

func (f *fixture) token() string {
	f.t.Helper()
	status, m := f.tokenReq(f.Options().TenantName, f.creds("all"))
	if status != 200 {
		f.t.Fatalf("token: %d %v", status, m)
	}
	return m["access_token"].(string)
}

// do sends a request with a Bearer token ("" for none).
func (f *fixture) do(method, path, tok string, body []byte) (int, http.Header, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// getJSON GETs path and decodes the answer, failing on a status other than 200.
func (f *fixture) getJSON(path, tok string, into any) {
	f.t.Helper()
	status, _, b := f.do(http.MethodGet, path, tok, nil)
	if status != 200 {
		f.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	reflect.ValueOf(into).Elem().SetZero() // json.Unmarshal would merge into old maps
	if err := json.Unmarshal(b, into); err != nil {
		f.t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

type page struct {
	RecordCount int              `json:"record_count"`
	PageSize    *int             `json:"page_size"`
	Tickets     []map[string]any `json:"tickets"`
	Clients     []map[string]any `json:"clients"`
	Users       []map[string]any `json:"users"`
	Assets      []map[string]any `json:"assets"`
	Actions     []map[string]any `json:"actions"`
}

func ids(rows []map[string]any) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = int64(r["id"].(float64))
	}
	return out
}

func TestAuthInfoAndToken(t *testing.T) {
	f := newFixture(t, halosim.Options{TenantName: "acme", ClientID: "cid", ClientSecret: "s3cret"})
	var info map[string]any
	f.getJSON("/api/authinfo", "", &info)
	if info["auth_url"] != f.URL()+"/auth" || info["tenant_id"] != "acme" {
		t.Fatalf("authinfo = %v", info)
	}

	status, m := f.tokenReq("acme", f.creds("all"))
	if status != 200 || m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["access_token"] == "" {
		t.Fatalf("token = %d %v", status, m)
	}
	if status, m := f.tokenReq("ACME", f.creds("read:tickets read:customers")); status != 200 {
		t.Fatalf("tenant compared without case: %d %v", status, m)
	}
	if status, m := f.tokenReq("", f.creds("all")); status != 400 || m["error"] != "invalid_request" {
		t.Fatalf("without tenant: %d %v", status, m)
	}
	bad := f.creds("all")
	bad.Set("client_secret", "wrong")
	if status, m := f.tokenReq("acme", bad); status != 401 || m["error"] != "invalid_client" {
		t.Fatalf("wrong secret: %d %v", status, m)
	}
	if status, m := f.tokenReq("acme", f.creds("read:tickets read:actions")); status != 400 || m["error"] != "invalid_scope" {
		t.Fatalf("read:actions: %d %v", status, m)
	}
	gt := f.creds("all")
	gt.Set("grant_type", "password")
	if status, m := f.tokenReq("acme", gt); status != 400 || m["error"] != "unsupported_grant_type" {
		t.Fatalf("grant_type: %d %v", status, m)
	}
	// Credentials in HTTP Basic, as Nango sends them.
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/auth/token?tenant=acme", strings.NewReader("grant_type=client_credentials&scope=all"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("cid", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("basic credentials: %d", resp.StatusCode)
	}
}

func TestAPINeedsAValidToken(t *testing.T) {
	f := newFixture(t, halosim.Options{TokenTTL: 10 * time.Minute})
	f.Upsert(change.Ticket, map[string]any{"summary": "x"})
	if status, h, _ := f.do(http.MethodGet, "/api/Tickets", "", nil); status != 401 || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d", status)
	}
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", "made-up", nil); status != 401 {
		t.Fatalf("unknown token: %d", status)
	}
	tok := f.token()
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != 200 {
		t.Fatalf("valid token: %d", status)
	}
	f.clock.Advance(10*time.Minute - time.Second)
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != 200 {
		t.Fatalf("token before expiry: %d", status)
	}
	f.clock.Advance(time.Second)
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != 401 {
		t.Fatalf("expired token: %d", status)
	}
	tok = f.token()
	f.RevokeTokens()
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != 401 {
		t.Fatalf("revoked token: %d", status)
	}
}

func TestScopes(t *testing.T) {
	f := newFixture(t, halosim.Options{GrantedScopes: []string{"read:tickets", "read:customers"}})
	if status, m := f.tokenReq("", f.creds("all")); status != 400 || m["error"] != "invalid_scope" {
		t.Fatalf("a scope not granted: %d %v", status, m)
	}
	_, m := f.tokenReq("", f.creds("read:tickets"))
	tok := m["access_token"].(string)
	for path, want := range map[string]int{
		"/api/Tickets": 200, "/api/Actions": 200, "/api/Client": 403, "/api/Users": 403, "/api/Asset": 403, "/api/Webhook": 403,
	} {
		if status, _, _ := f.do(http.MethodGet, path, tok, nil); status != want {
			t.Errorf("GET %s with read:tickets: %d, want %d", path, status, want)
		}
	}
}

func TestPagingCapAndRecordCount(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	for i := range 250 {
		f.Upsert(change.Ticket, map[string]any{"summary": fmt.Sprintf("ticket %d", i)})
	}
	tok := f.token()

	var p page
	f.getJSON("/api/Tickets?pageinate=true&page_size=1000&page_no=1", tok, &p)
	if p.RecordCount != 250 || len(p.Tickets) != 100 || p.PageSize == nil || *p.PageSize != 1000 {
		t.Fatalf("page_size=1000: record_count %d, %d items, page_size %v", p.RecordCount, len(p.Tickets), p.PageSize)
	}

	// The loop a client must write: page_no from 1 until record_count items are in.
	seen := map[int64]bool{}
	for no := 1; ; no++ {
		var p page
		f.getJSON(fmt.Sprintf("/api/Tickets?pageinate=true&page_size=100&page_no=%d", no), tok, &p)
		for _, id := range ids(p.Tickets) {
			if seen[id] {
				t.Fatalf("ticket %d on two pages", id)
			}
			seen[id] = true
		}
		if len(seen) >= p.RecordCount || len(p.Tickets) == 0 {
			if no != 3 {
				t.Fatalf("took %d pages", no)
			}
			break
		}
	}
	if len(seen) != 250 {
		t.Fatalf("paged through %d tickets", len(seen))
	}
	f.getJSON("/api/Tickets?pageinate=true&page_size=100&page_no=4", tok, &p)
	if p.RecordCount != 250 || len(p.Tickets) != 0 {
		t.Fatalf("past the end: %d, %d items", p.RecordCount, len(p.Tickets))
	}
	f.getJSON("/api/Tickets?pageinate=true&page_size=30&page_no=2", tok, &p)
	if got := ids(p.Tickets); len(got) != 30 || got[0] != 4230 {
		t.Fatalf("page 2 of 30 starts at %v", got[:1])
	}

	// Without pageinate: count caps, otherwise everything.
	f.getJSON("/api/Tickets?count=7", tok, &p)
	if p.RecordCount != 250 || len(p.Tickets) != 7 {
		t.Fatalf("count=7: %d, %d items", p.RecordCount, len(p.Tickets))
	}
	f.getJSON("/api/Tickets", tok, &p)
	if len(p.Tickets) != 250 {
		t.Fatalf("no paging: %d items", len(p.Tickets))
	}
	// page_size without pageinate is ignored, as is a misspelt pagination parameter.
	f.getJSON("/api/Tickets?paginate=true&page_size=10", tok, &p)
	if len(p.Tickets) != 250 {
		t.Fatalf("misspelt pageinate: %d items", len(p.Tickets))
	}
	// Routes and parameter names are not case-sensitive.
	f.getJSON("/api/tickets?PageInate=TRUE&Page_Size=5", tok, &p)
	if len(p.Tickets) != 5 {
		t.Fatalf("case-insensitive parameters: %d items", len(p.Tickets))
	}
	// A smaller cap.
	g := newFixture(t, halosim.Options{PageCap: 10})
	for range 25 {
		g.Upsert(change.Client, map[string]any{"name": "c"})
	}
	g.getJSON("/api/Client?pageinate=true&page_size=50&page_no=3", g.token(), &p)
	if p.RecordCount != 25 || len(p.Clients) != 5 {
		t.Fatalf("PageCap 10, page 3: %d, %d items", p.RecordCount, len(p.Clients))
	}
}

func TestDatesAndMarkers(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	f.clock.Set(time.Date(2026, 8, 1, 6, 30, 0, 123e6, time.UTC))
	tk := f.Upsert(change.Ticket, map[string]any{"summary": "x", "datecleared": time.Time{}, "dateoccurred": time.Date(2026, 8, 1, 6, 0, 0, 0, time.UTC)})
	if tk["last_update"] != "2026-08-01T06:30:00.123" || tk["datecleared"] != "1900-01-01T00:00:00" || tk["dateoccurred"] != "2026-08-01T06:00:00" {
		t.Fatalf("dates: %v %v %v", tk["last_update"], tk["datecleared"], tk["dateoccurred"])
	}
	if _, ok := tk["id"].(int64); !ok {
		t.Fatalf("id is %T", tk["id"])
	}
	// The clock does not move: the marker still rises with every change.
	prev := tk["last_update"].(string)
	for range 3 {
		tk = f.Upsert(change.Ticket, map[string]any{"id": tk["id"], "summary": "y"})
		if cur := tk["last_update"].(string); cur <= prev {
			t.Fatalf("marker %s after %s", cur, prev)
		} else {
			prev = cur
		}
	}
	if prev != "2026-08-01T06:30:00.126" {
		t.Fatalf("marker after three changes at one instant: %s", prev)
	}
	for kind, field := range map[change.Kind]string{change.Action: "last_updated", change.Client: "alastupdate", change.Contact: "ulastupdate", change.Asset: "dlastupdate"} {
		o := f.Upsert(kind, map[string]any{"ticket_id": tk["id"]})
		if o[field] != "2026-08-01T06:30:00.123" {
			t.Errorf("%s %s = %v", kind, field, o[field])
		}
	}
	// Served as JSON numbers and strings without Z.
	var raw map[string]any
	f.getJSON(fmt.Sprintf("/api/Tickets/%d", tk["id"]), f.token(), &raw)
	if _, ok := raw["id"].(float64); !ok || strings.HasSuffix(raw["last_update"].(string), "Z") {
		t.Fatalf("served ticket: %v", raw)
	}
}

func TestGetByID(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	tok := f.token()
	tk := f.Upsert(change.Ticket, map[string]any{"summary": "x"})
	c := f.Upsert(change.Client, map[string]any{"name": "Contoso"})
	a := f.Upsert(change.Action, map[string]any{"ticket_id": tk["id"], "note": "hi"})
	for _, path := range []string{
		fmt.Sprintf("/api/Tickets/%d?includedetails=true", tk["id"]), fmt.Sprintf("/api/Client/%d", c["id"]),
		fmt.Sprintf("/api/Actions/%d?ticket_id=%d", a["id"], tk["id"]),
	} {
		if status, _, b := f.do(http.MethodGet, path, tok, nil); status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, b)
		}
	}
	// A note is read with its ticket: without ticket_id it is refused, under another
	// ticket it is not found.
	if status, _, b := f.do(http.MethodGet, fmt.Sprintf("/api/Actions/%d", a["id"]), tok, nil); status != 400 {
		t.Fatalf("GET an action without ticket_id: %d %s", status, b)
	}
	if status, _, b := f.do(http.MethodGet, fmt.Sprintf("/api/Actions/%d?ticket_id=%d", a["id"], tk["id"].(int64)+1), tok, nil); status != 404 {
		t.Fatalf("GET an action under another ticket: %d %s", status, b)
	}
	for _, path := range []string{"/api/Tickets/99999", "/api/Users/1", "/api/Asset/abc", "/api/Nothing"} {
		if status, _, _ := f.do(http.MethodGet, path, tok, nil); status != 404 {
			t.Fatalf("GET %s: %d", path, status)
		}
	}
	if !f.Delete(change.Ticket, tk["id"].(int64)) || !f.Delete(change.Client, c["id"].(int64)) {
		t.Fatal("Delete found nothing")
	}
	var got map[string]any
	f.getJSON(fmt.Sprintf("/api/Tickets/%d", tk["id"]), tok, &got)
	if got["deleted"] != true || got["last_update"] == tk["last_update"] {
		t.Fatalf("deleted ticket: %v", got)
	}
	if status, _, _ := f.do(http.MethodGet, fmt.Sprintf("/api/Client/%d", c["id"]), tok, nil); status != 404 {
		t.Fatalf("deleted client: %d", status)
	}
	if status, _, _ := f.do(http.MethodPost, "/api/Tickets", tok, []byte("[]")); status != 405 {
		t.Fatalf("POST /api/Tickets: %d", status)
	}
}

func TestListFilters(t *testing.T) {
	f := newFixture(t, halosim.Options{TokenTTL: 24 * time.Hour})
	tok := f.token()
	// Three tickets an hour apart, one deleted.
	var tickets []map[string]any
	for i := range 3 {
		tickets = append(tickets, f.Upsert(change.Ticket, map[string]any{"summary": fmt.Sprint(i), "client_id": int64(12 + i%2)}))
		f.clock.Advance(time.Hour)
	}
	f.Delete(change.Ticket, tickets[0]["id"].(int64)) // at 09:00: its last_update moves

	var p page
	f.getJSON("/api/Tickets", tok, &p)
	if got := ids(p.Tickets); len(got) != 2 || p.RecordCount != 2 {
		t.Fatalf("live tickets: %v", got)
	}
	f.getJSON("/api/Tickets?deleted=true", tok, &p)
	if got := ids(p.Tickets); len(got) != 1 || got[0] != tickets[0]["id"] {
		t.Fatalf("deleted=true: %v", got)
	}
	for _, from := range []string{"2026-09-25T07:00:00", "2026-09-25T07:00:00Z", "2026-09-25T07:00:00.000Z"} {
		f.getJSON("/api/Tickets?lastupdatefromdate="+from, tok, &p)
		if got := ids(p.Tickets); len(got) != 2 {
			t.Fatalf("lastupdatefromdate=%s: %v", from, got)
		}
	}
	f.getJSON("/api/Tickets?lastupdatefromdate=2026-09-25T07:00:00&lastupdatetodate=2026-09-25T07:30:00", tok, &p)
	if got := ids(p.Tickets); len(got) != 1 || got[0] != tickets[1]["id"] {
		t.Fatalf("from and to: %v", got)
	}
	f.getJSON("/api/Tickets?deleted=true&lastupdatefromdate=2026-09-25T08:30:00", tok, &p)
	if got := ids(p.Tickets); len(got) != 1 {
		t.Fatalf("deleted since: %v", got)
	}
	// A misspelt filter is ignored: everything comes back.
	f.getJSON("/api/Tickets?lastupdatefrom=2026-09-25T08:30:00&unknown=1", tok, &p)
	if len(p.Tickets) != 2 {
		t.Fatalf("misspelt filter: %d", len(p.Tickets))
	}
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets?lastupdatefromdate=yesterday", tok, nil); status != 400 {
		t.Fatalf("bad date: %d", status)
	}
	f.getJSON("/api/Tickets?client_id=13", tok, &p)
	if got := ids(p.Tickets); len(got) != 1 || got[0] != tickets[1]["id"] {
		t.Fatalf("client_id: %v", got)
	}
	f.getJSON("/api/Tickets?ticketidonly=true", tok, &p)
	for _, row := range p.Tickets {
		if len(row) != 1 || row["id"] == nil {
			t.Fatalf("ticketidonly row: %v", row)
		}
	}

	// Clients, users and assets: includeinactive, client_id, idonly, last-update filters.
	c1 := f.Upsert(change.Client, map[string]any{"name": "Contoso"})
	f.clock.Advance(time.Hour)
	c2 := f.Upsert(change.Client, map[string]any{"name": "Fabrikam", "inactive": true})
	f.getJSON("/api/Client", tok, &p)
	if got := ids(p.Clients); len(got) != 1 || got[0] != c1["id"] {
		t.Fatalf("active clients: %v", got)
	}
	f.getJSON("/api/Client?includeinactive=true&idonly=true", tok, &p)
	if len(p.Clients) != 2 || len(p.Clients[1]) != 1 {
		t.Fatalf("includeinactive idonly: %v", p.Clients)
	}
	f.getJSON("/api/Client?includeinactive=true&lastupdatefromdate=2026-09-25T09:30:00", tok, &p)
	if got := ids(p.Clients); len(got) != 1 || got[0] != c2["id"] {
		t.Fatalf("clients since: %v", got)
	}
	for i, cid := range []any{c1["id"], c2["id"], c1["id"]} {
		f.Upsert(change.Contact, map[string]any{"name": fmt.Sprint("user ", i), "client_id": cid})
		f.Upsert(change.Asset, map[string]any{"inventory_number": fmt.Sprint("A", i), "client_id": cid})
	}
	f.getJSON(fmt.Sprintf("/api/Users?client_id=%d", c1["id"]), tok, &p)
	if len(p.Users) != 2 {
		t.Fatalf("users of client: %v", p.Users)
	}
	f.getJSON(fmt.Sprintf("/api/Asset?client_id=%d&idonly=true", c2["id"]), tok, &p)
	if len(p.Assets) != 1 || len(p.Assets[0]) != 1 {
		t.Fatalf("assets of client: %v", p.Assets)
	}
	a := f.Upsert(change.Action, map[string]any{"ticket_id": tickets[1]["id"]})
	f.Upsert(change.Action, map[string]any{"ticket_id": tickets[2]["id"]})
	f.getJSON(fmt.Sprintf("/api/Actions?ticket_id=%d", tickets[1]["id"]), tok, &p)
	if got := ids(p.Actions); len(got) != 1 || got[0] != a["id"] {
		t.Fatalf("actions of ticket: %v", got)
	}
	// The Actions list takes no paging: the parameters are ignored, as Halo ignores what
	// it does not know.
	f.Upsert(change.Action, map[string]any{"ticket_id": tickets[1]["id"]})
	f.getJSON(fmt.Sprintf("/api/Actions?ticket_id=%d&pageinate=true&page_size=1&page_no=2", tickets[1]["id"]), tok, &p)
	if got := ids(p.Actions); len(got) != 2 || got[0] != a["id"] {
		t.Fatalf("actions of ticket, paging asked: %v", got)
	}
	// Id-only lists are not compatible with paging.
	for _, path := range []string{"/api/Tickets?ticketidonly=true&pageinate=true", "/api/Client?idonly=true&pageinate=true&page_no=1"} {
		if status, _, b := f.do(http.MethodGet, path, tok, nil); status != 400 {
			t.Fatalf("GET %s: %d %s", path, status, b)
		}
	}

	// The other possibility: the update filters work on tickets only.
	g := newFixture(t, halosim.Options{UpdateFilterTicketsOnly: true})
	g.Upsert(change.Client, map[string]any{"name": "Contoso"})
	g.getJSON("/api/Client?lastupdatefromdate=2030-01-01T00:00:00", g.token(), &p)
	if len(p.Clients) != 1 {
		t.Fatalf("UpdateFilterTicketsOnly: %d clients", len(p.Clients))
	}
}

func TestRateLimit(t *testing.T) {
	for _, retryAfter := range []bool{false, true} {
		t.Run(fmt.Sprint("RetryAfter=", retryAfter), func(t *testing.T) {
			f := newFixture(t, halosim.Options{RateLimit: 3, RateWindow: time.Minute, SendRetryAfter: retryAfter})
			tok := f.token() // the first of 3
			f.clock.Advance(20 * time.Second)
			for range 2 {
				if status, _, _ := f.do(http.MethodGet, "/api/Client", tok, nil); status != 200 {
					t.Fatalf("under the limit: %d", status)
				}
			}
			status, h, body := f.do(http.MethodGet, "/api/Client", tok, nil)
			if status != 429 || !strings.Contains(string(body), "Rate Limit Reached") {
				t.Fatalf("over the limit: %d %s", status, body)
			}
			if got := h.Get("Retry-After"); retryAfter && got != "40" || !retryAfter && got != "" {
				t.Fatalf("Retry-After = %q", got)
			}
			f.clock.Advance(40 * time.Second) // the token request leaves the window
			if status, _, _ := f.do(http.MethodGet, "/api/Client", tok, nil); status != 200 {
				t.Fatalf("after the window: %d", status)
			}
			if status, _, _ := f.do(http.MethodGet, "/api/Client", tok, nil); status != 429 {
				t.Fatalf("full again: %d", status)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	tok := f.token()
	f.FailNext(2, halosim.ServerError(503))
	for i, want := range []int{503, 503, 200} {
		if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != want {
			t.Fatalf("request %d: %d, want %d", i, status, want)
		}
	}
	// A 401 with a valid token; the token endpoint is not affected, so a refresh works.
	f.FailNext(1, halosim.Unauthorized())
	if status, m := f.tokenReq("", f.creds("all")); status != 200 {
		t.Fatalf("token during an API fault: %d %v", status, m)
	}
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != 401 {
		t.Fatalf("injected 401: %d", status)
	}
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != 200 {
		t.Fatalf("after the 401: %d", status)
	}
	f.FailNext(1, halosim.Slow(50*time.Millisecond))
	began := time.Now()
	if status, _, _ := f.do(http.MethodGet, "/api/Tickets", tok, nil); status != 200 || time.Since(began) < 50*time.Millisecond {
		t.Fatalf("slow: %d after %v", status, time.Since(began))
	}
	// The hook.
	g := newFixture(t, halosim.Options{Faults: func(r *http.Request) *halosim.Fault {
		if strings.Contains(r.URL.RawQuery, "boom") {
			return &halosim.Fault{Status: 502}
		}
		return nil
	}})
	if status, _, _ := g.do(http.MethodGet, "/api/Tickets?boom=1", g.token(), nil); status != 502 {
		t.Fatalf("hook: %d", status)
	}
	reqs := g.Requests()
	if len(reqs) != 2 || reqs[1].Status != 502 || reqs[0].Path != "/auth/token" {
		t.Fatalf("requests: %+v", reqs)
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestWebhookManagement(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	tok := f.token()
	status, _, b := f.do(http.MethodGet, "/api/Webhook", tok, nil)
	if status != 200 || strings.TrimSpace(string(b)) != "[]" {
		t.Fatalf("empty list: %d %s", status, b)
	}
	status, _, b = f.do(http.MethodPost, "/api/Webhook", tok, []byte(`[{"name":"halosync:test","url":"https://example.test/hook","method":0,"authentication_type":1,"basic_username":"halo","basic_password":"pw","active":true}]`))
	var created []map[string]any
	if status != 200 || json.Unmarshal(b, &created) != nil || len(created) != 1 {
		t.Fatalf("create: %d %s", status, b)
	}
	id := created[0]["id"].(string)
	if !uuidRE.MatchString(id) {
		t.Fatalf("webhook id %q", id)
	}
	// Update with the id.
	status, _, b = f.do(http.MethodPost, "/api/Webhook", tok, []byte(`[{"id":"`+id+`","active":false}]`))
	if status != 200 {
		t.Fatalf("update: %d %s", status, b)
	}
	var list []map[string]any
	f.getJSON("/api/Webhook", tok, &list)
	if len(list) != 1 || list[0]["active"] != false || list[0]["name"] != "halosync:test" {
		t.Fatalf("list after update: %v", list)
	}
	if status, _, _ := f.do(http.MethodPost, "/api/Webhook", tok, []byte(`[{"id":"0b7e9d3c-1f2a-4c5b-8e6d-7a9b0c1d2e3f"}]`)); status != 400 {
		t.Fatalf("update of an unknown id: %d", status)
	}
	if status, _, _ := f.do(http.MethodPost, "/api/Webhook", tok, []byte(`{"name":"x"}`)); status != 400 {
		t.Fatalf("an object, not an array: %d", status)
	}

	// Notifications.
	status, _, b = f.do(http.MethodPost, "/api/Notification", tok, []byte(`[{"webhook_id":"`+id+`","type":-2,"delivery_method":6,"eventno":61,"name":"t"},{"webhook_id":"`+id+`","eventno":3}]`))
	var notes []map[string]any
	if status != 200 || json.Unmarshal(b, &notes) != nil || len(notes) != 2 {
		t.Fatalf("notifications: %d %s", status, b)
	}
	if notes[1]["delivery_method"] != float64(6) || notes[0]["id"] == notes[1]["id"] {
		t.Fatalf("notifications: %v", notes)
	}
	f.getJSON("/api/Notification?webhook_id="+id, tok, &list)
	if len(list) != 2 {
		t.Fatalf("notifications of the webhook: %v", list)
	}
	if status, _, _ := f.do(http.MethodPost, "/api/Notification", tok, []byte(`[{"webhook_id":"nope","eventno":1}]`)); status != 400 {
		t.Fatalf("notification for no webhook: %d", status)
	}
	if status, _, _ := f.do(http.MethodDelete, fmt.Sprintf("/api/Notification/%v", notes[0]["id"]), tok, nil); status != 200 {
		t.Fatalf("delete notification: %d", status)
	}
	var one map[string]any
	f.getJSON("/api/Webhook/"+strings.ToUpper(id)+"?includedetails=true", tok, &one)
	if events, _ := one["events"].([]any); len(events) != 1 {
		t.Fatalf("webhook with details: %v", one)
	}

	// Permission.
	f.SetWebhookAccess(false)
	for _, path := range []string{"/api/Webhook", "/api/Notification", "/api/WebhookEvent"} {
		if status, _, _ := f.do(http.MethodGet, path, tok, nil); status != 403 {
			t.Fatalf("GET %s without permission: %d", path, status)
		}
	}
	f.SetWebhookAccess(true)

	if status, _, _ := f.do(http.MethodDelete, "/api/Webhook/"+id, tok, nil); status != 200 {
		t.Fatalf("delete: %d", status)
	}
	if status, _, _ := f.do(http.MethodGet, "/api/Webhook/"+id, tok, nil); status != 404 {
		t.Fatalf("get after delete: %d", status)
	}
	if n := f.Notifications(""); len(n) != 0 {
		t.Fatalf("notifications outlive their webhook: %v", n)
	}
}

func TestSeed(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	f.Seed(rand.New(rand.NewPCG(1, 2)), 8)
	if n := f.Count(change.Client); n != 8 {
		t.Fatalf("%d clients", n)
	}
	for _, k := range []change.Kind{change.Ticket, change.Action, change.Contact, change.Asset} {
		if f.Count(k) == 0 {
			t.Fatalf("no %s", k)
		}
	}
	// Every ticket names an existing client, user and site; every action an existing ticket.
	for _, tk := range f.Objects(change.Ticket) {
		if _, ok := f.Object(change.Client, tk["client_id"].(int64)); !ok {
			t.Fatalf("ticket %v: no client", tk["id"])
		}
		if _, ok := f.Object(change.Contact, tk["user_id"].(int64)); !ok {
			t.Fatalf("ticket %v: no user", tk["id"])
		}
		lu, ok, err := change.ParseHaloTime(tk["last_update"].(string))
		if err != nil || !ok || lu.After(start) {
			t.Fatalf("ticket %v: last_update %v", tk["id"], tk["last_update"])
		}
	}
	for _, a := range f.Objects(change.Action) {
		if _, ok := f.Object(change.Ticket, a["ticket_id"].(int64)); !ok {
			t.Fatalf("action %v: no ticket", a["id"])
		}
	}
	// Seeding is deterministic.
	g := newFixture(t, halosim.Options{})
	g.Seed(rand.New(rand.NewPCG(1, 2)), 8)
	a, _ := json.Marshal(f.Objects(change.Ticket))
	b, _ := json.Marshal(g.Objects(change.Ticket))
	if !bytes.Equal(a, b) {
		t.Fatal("two seeds alike made different tickets")
	}
}

// StrictParams refuses a parameter Halo's API does not document for the call, where Halo
// (and the simulator by default) would ignore it.
func TestStrictParams(t *testing.T) {
	f := newFixture(t, halosim.Options{StrictParams: true})
	tok := f.token()
	tk := f.Upsert(change.Ticket, map[string]any{"summary": "x"})
	a := f.Upsert(change.Action, map[string]any{"ticket_id": tk["id"]})
	for path, want := range map[string]int{
		"/api/Tickets?pageinate=true&page_size=100&page_no=1&lastupdatefromdate=2026-01-01T00:00:00": 200,
		"/api/Tickets?ticketidonly=true":                                  200,
		"/api/Client?idonly=true&includeinactive=true":                    200,
		fmt.Sprintf("/api/Actions?ticket_id=%d", tk["id"]):                200,
		fmt.Sprintf("/api/Actions/%d?ticket_id=%d", a["id"], tk["id"]):    200,
		"/api/Tickets?includeinactive=true":                               400,
		fmt.Sprintf("/api/Actions?ticket_id=%d&pageinate=true", tk["id"]): 400,
		fmt.Sprintf("/api/Actions?ticket_id=%d&idonly=true", tk["id"]):    400,
		fmt.Sprintf("/api/Client/%d?ticket_id=1", tk["id"]):               400,
	} {
		if status, _, b := f.do(http.MethodGet, path, tok, nil); status != want {
			t.Errorf("GET %s: %d %s, want %d", path, status, b, want)
		}
	}
	// By default, as Halo, the simulator ignores what it does not know.
	g := newFixture(t, halosim.Options{})
	if status, _, b := g.do(http.MethodGet, "/api/Tickets?includeinactive=true", g.token(), nil); status != 200 {
		t.Errorf("without StrictParams: %d %s", status, b)
	}
}
