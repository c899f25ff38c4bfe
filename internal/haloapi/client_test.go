package haloapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

const testSecret = "s3cr3t-Value-that-must-never-leak"

// tenant is a small fake Halo: /api/authinfo, /auth/token and a pluggable API handler
// behind Bearer checks.
type tenant struct {
	t   *testing.T
	srv *httptest.Server

	authinfo atomic.Int32
	tokens   atomic.Int32
	api      atomic.Int32

	mu          sync.Mutex
	seq         int
	valid       map[string]bool
	expiresIn   any
	tokenStatus int    // non-zero: the token endpoint answers this
	tokenBody   string // with this body
	tokenGate   chan struct{}
	tokenArrive chan struct{} // if set, told of each token request
	tokenFail   int           // the first tokenFail token requests answer 503
	tokenQuery  url.Values
	tokenForm   url.Values
	noAuthinfo  bool
	apiHandler  http.HandlerFunc
	requests    []*http.Request
}

func newTenant(t *testing.T, api http.HandlerFunc) *tenant {
	tn := &tenant{t: t, valid: map[string]bool{}, expiresIn: 3600, apiHandler: api}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/authinfo", func(w http.ResponseWriter, r *http.Request) {
		tn.authinfo.Add(1)
		tn.mu.Lock()
		no := tn.noAuthinfo
		tn.mu.Unlock()
		if no {
			http.NotFound(w, r)
			return
		}
		writeJSON(w, map[string]any{"auth_url": tn.srv.URL + "/auth", "tenant_id": "acme"})
	})
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, r *http.Request) {
		tn.tokens.Add(1)
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		tn.mu.Lock()
		tn.tokenQuery, tn.tokenForm = r.URL.Query(), r.PostForm
		gate, arrive, status, body := tn.tokenGate, tn.tokenArrive, tn.tokenStatus, tn.tokenBody
		if tn.tokenFail > 0 {
			tn.tokenFail--
			status, body = http.StatusServiceUnavailable, `{"message": "busy"}`
		}
		tn.mu.Unlock()
		if arrive != nil {
			arrive <- struct{}{}
		}
		if gate != nil {
			<-gate
		}
		if status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return
		}
		if r.PostForm.Get("client_secret") != testSecret || r.PostForm.Get("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusUnauthorized)
			writeJSON(w, map[string]any{"error": "invalid_client"})
			return
		}
		tn.mu.Lock()
		tn.seq++
		tok := fmt.Sprintf("tok-%d", tn.seq)
		tn.valid[tok] = true
		exp := tn.expiresIn
		tn.mu.Unlock()
		writeJSON(w, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": exp})
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		tn.api.Add(1)
		tn.mu.Lock()
		tn.requests = append(tn.requests, r)
		ok := tn.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		h := tn.apiHandler
		tn.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h(w, r)
	})
	tn.srv = httptest.NewServer(mux)
	t.Cleanup(tn.srv.Close)
	return tn
}

// revoke makes every issued token invalid.
func (tn *tenant) revoke() {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	tn.valid = map[string]bool{}
}

func (tn *tenant) lastRequest() *http.Request {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.requests[len(tn.requests)-1]
}

func (tn *tenant) queries() []url.Values {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	out := make([]url.Values, len(tn.requests))
	for i, r := range tn.requests {
		out[i] = r.URL.Query()
	}
	return out
}

func (tn *tenant) client(t *testing.T, clk Clock, mod func(*ClientOptions)) *Client {
	t.Helper()
	opts := ClientOptions{
		BaseURL:      tn.srv.URL,
		ClientID:     "app-id",
		ClientSecret: testSecret,
		HTTP:         tn.srv.Client(),
		Clock:        clk,
		BackoffBase:  time.Second,
		BackoffMax:   time.Minute,
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func ticketHandler(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/Tickets/")
	if id == "404" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id": %s, "summary": "Printer", "amount": 12.50, "big": 12345678901234567890}`, id)
}

func mustGet(t *testing.T, c *Client, id string) map[string]any {
	t.Helper()
	obj, err := c.Get(context.Background(), change.Ticket, id)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func TestTokenDiscoveryAndCaching(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	c := tn.client(t, newFakeClock(true), nil)
	obj := mustGet(t, c, "42")
	if obj["id"] != json.Number("42") || obj["amount"] != json.Number("12.50") || obj["big"] != json.Number("12345678901234567890") {
		t.Fatalf("numbers lost their text: %#v", obj)
	}
	r := tn.lastRequest()
	if r.URL.Path != "/api/Tickets/42" || r.URL.Query().Get("includedetails") != "true" {
		t.Errorf("request %s", r.URL)
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("Authorization") != "Bearer tok-1" {
		t.Errorf("headers %v", r.Header)
	}
	tn.mu.Lock()
	q, f := tn.tokenQuery, tn.tokenForm
	tn.mu.Unlock()
	if q.Get("tenant") != "acme" {
		t.Errorf("token query %v: the tenant named by authinfo", q)
	}
	if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != "app-id" || f.Get("scope") != "all" || f.Get("client_secret") != testSecret {
		t.Errorf("token form %v", f)
	}
	mustGet(t, c, "43")
	mustGet(t, c, "44")
	if tn.authinfo.Load() != 1 || tn.tokens.Load() != 1 || tn.api.Load() != 3 {
		t.Fatalf("authinfo %d, token %d, api %d: want 1, 1, 3", tn.authinfo.Load(), tn.tokens.Load(), tn.api.Load())
	}
}

func TestConfiguredAuthURLAndTenant(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	c := tn.client(t, nil, func(o *ClientOptions) {
		o.AuthURL = tn.srv.URL + "/auth/"
		o.Tenant = "other"
		o.Scope = "read:tickets read:customers"
		o.BaseURL = tn.srv.URL + "/api/"
	})
	mustGet(t, c, "1")
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.authinfo.Load() != 0 || tn.tokenQuery.Get("tenant") != "other" || tn.tokenForm.Get("scope") != "read:tickets read:customers" {
		t.Fatalf("authinfo %d, query %v, form scope %q", tn.authinfo.Load(), tn.tokenQuery, tn.tokenForm.Get("scope"))
	}
}

func TestAuthinfoFallsBackToAuthPath(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	tn.noAuthinfo = true
	c := tn.client(t, newFakeClock(true), nil)
	mustGet(t, c, "1")
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.tokens.Load() != 1 || tn.tokenQuery.Has("tenant") {
		t.Fatalf("token requests %d, query %v", tn.tokens.Load(), tn.tokenQuery)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	tn.expiresIn = "120" // Halo may send it as a string
	clk := newFakeClock(true)
	c := tn.client(t, clk, nil)
	mustGet(t, c, "1")
	clk.Advance(100 * time.Second)
	mustGet(t, c, "1")
	if tn.tokens.Load() != 1 {
		t.Fatalf("renewed too early: %d token requests", tn.tokens.Load())
	}
	clk.Advance(10 * time.Second) // 110 s: within the last tenth of the lifetime
	mustGet(t, c, "1")
	if tn.tokens.Load() != 2 || tn.lastRequest().Header.Get("Authorization") != "Bearer tok-2" {
		t.Fatalf("not renewed before expiry: %d token requests", tn.tokens.Load())
	}
}

func TestRefreshOnceOn401(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	c := tn.client(t, newFakeClock(true), nil)
	mustGet(t, c, "1")
	tn.revoke() // Halo forgets the token before it expires
	mustGet(t, c, "2")
	if tn.tokens.Load() != 2 || tn.api.Load() != 3 {
		t.Fatalf("token %d, api %d: want one renewal and one repeat", tn.tokens.Load(), tn.api.Load())
	}

	// Every token refused: one renewal, then a clear error.
	tn.mu.Lock()
	tn.apiHandler = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusUnauthorized) }
	tn.mu.Unlock()
	api, tokens := tn.api.Load(), tn.tokens.Load()
	_, err := c.Get(context.Background(), change.Ticket, "3")
	if !errors.Is(err, ErrAuth) || Retryable(err) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if tn.api.Load()-api != 2 || tn.tokens.Load()-tokens != 1 {
		t.Fatalf("%d API and %d token requests, want 2 and 1", tn.api.Load()-api, tn.tokens.Load()-tokens)
	}
	if !strings.Contains(err.Error(), "get ticket 3") || !strings.Contains(err.Error(), "freshly issued token") {
		t.Errorf("message %q", err)
	}
}

func TestConcurrentCallersShareOneTokenRequest(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	gate := make(chan struct{})
	tn.tokenGate = gate
	c := tn.client(t, newFakeClock(true), nil)
	const callers = 20
	var joined sync.WaitGroup
	joined.Add(callers - 1)
	c.onTokenWait = joined.Done
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), change.Ticket, strconv.Itoa(i+1)); err != nil {
				t.Error(err)
			}
		}()
	}
	joined.Wait() // every other caller waits on the one token request
	close(gate)
	wg.Wait()
	if tn.tokens.Load() != 1 || tn.authinfo.Load() != 1 || tn.api.Load() != callers {
		t.Fatalf("token %d, authinfo %d, api %d", tn.tokens.Load(), tn.authinfo.Load(), tn.api.Load())
	}
}

func TestTokenWaiterLeavesWithItsContext(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	gate, arrive := make(chan struct{}), make(chan struct{}, 1)
	tn.tokenGate, tn.tokenArrive = gate, arrive
	defer close(gate)
	c := tn.client(t, newFakeClock(true), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, change.Ticket, "1")
		done <- err
	}()
	<-arrive // the token request is held at the gate
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestTokenErrorsNameTheFix(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
		want   string
	}{
		{400, "invalid_scope", `refused scope "read:actions"`},
		{401, "invalid_client", `client id "app-id"`},
		{400, "unauthorized_client", "Client ID and Secret (Services)"},
		{400, "invalid_request", "halo.tenant"},
	} {
		t.Run(c.code, func(t *testing.T) {
			tn := newTenant(t, ticketHandler)
			tn.tokenStatus = c.status
			// Halo echoing the secret back must not put it in the error.
			tn.tokenBody = fmt.Sprintf(`{"error": %q, "error_description": "bad request for secret %s"}`, c.code, testSecret)
			clk := newFakeClock(true)
			cl := tn.client(t, clk, func(o *ClientOptions) { o.Scope = "read:actions" })
			_, err := cl.Get(context.Background(), change.Ticket, "1")
			var he *Error
			if !errors.Is(err, ErrAuth) || !errors.As(err, &he) || he.Code != c.code || Retryable(err) {
				t.Fatalf("err = %#v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.Contains(msg, "get ticket 1") {
				t.Errorf("message %q lacks %q", msg, c.want)
			}
			if strings.Contains(msg, testSecret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), testSecret) {
				t.Fatalf("the secret leaked: %s", msg)
			}
			if tn.tokens.Load() != 1 || tn.api.Load() != 0 {
				t.Fatalf("token %d, api %d", tn.tokens.Load(), tn.api.Load())
			}
			// A refused token is remembered for a while: no request per call.
			if _, err := cl.Get(context.Background(), change.Ticket, "2"); !errors.Is(err, ErrAuth) || tn.tokens.Load() != 1 {
				t.Fatalf("second call: %v, %d token requests", err, tn.tokens.Load())
			}
			clk.Advance(authFailureTTL)
			_, _ = cl.Get(context.Background(), change.Ticket, "3")
			if tn.tokens.Load() != 2 {
				t.Fatalf("the refusal was remembered too long: %d token requests", tn.tokens.Load())
			}
		})
	}
}

func TestTokenEndpointRetried(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	tn.tokenFail = 2
	c := tn.client(t, newFakeClock(true), nil)
	mustGet(t, c, "1")
	if tn.tokens.Load() != 3 {
		t.Fatalf("%d token requests, want 3 (two 503s, then a token)", tn.tokens.Load())
	}
}

func TestGetNotFound(t *testing.T) {
	tn := newTenant(t, ticketHandler)
	c := tn.client(t, newFakeClock(true), nil)
	_, err := c.Get(context.Background(), change.Ticket, "404")
	if !errors.Is(err, ErrNotFound) || Retryable(err) || !strings.Contains(err.Error(), "get ticket 404") {
		t.Fatalf("err = %v", err)
	}
	if tn.api.Load() != 1 {
		t.Fatalf("a 404 was retried: %d requests", tn.api.Load())
	}
}

func TestGetActionAndOtherKinds(t *testing.T) {
	tn := newTenant(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"id": 7, "path": r.URL.Path})
	})
	c := tn.client(t, newFakeClock(true), nil)
	if _, err := c.GetAction(context.Background(), "42", "7"); err != nil {
		t.Fatal(err)
	}
	if r := tn.lastRequest(); r.URL.Path != "/api/Actions/7" || r.URL.Query().Get("ticket_id") != "42" {
		t.Fatalf("request %s", r.URL)
	}
	for kind, path := range map[change.Kind]string{change.Client: "/api/Client/7", change.Contact: "/api/Users/7", change.Asset: "/api/Asset/7"} {
		if _, err := c.Get(context.Background(), kind, "7"); err != nil {
			t.Fatal(err)
		}
		if r := tn.lastRequest(); r.URL.Path != path || r.URL.RawQuery != "" {
			t.Errorf("%s: request %s", kind, r.URL)
		}
	}
	if _, err := c.Get(context.Background(), "site", "1"); !errors.Is(err, ErrPermanent) {
		t.Errorf("unknown kind: %v", err)
	}
	// Halo reads a note only with its ticket: without one, nothing is sent.
	before := tn.api.Load()
	if _, err := c.Get(context.Background(), change.Action, "7"); !errors.Is(err, ErrPermanent) {
		t.Errorf("a note without its ticket: %v", err)
	}
	if _, _, err := c.Fetch(context.Background(), change.Action, "7", ""); !errors.Is(err, ErrPermanent) {
		t.Errorf("fetching a note without its ticket: %v", err)
	}
	if tn.api.Load() != before {
		t.Error("a note was read without its ticket")
	}
	if _, found, err := c.Fetch(context.Background(), change.Action, "7", "42"); err != nil || !found {
		t.Fatalf("fetch a note: %v, %v", found, err)
	}
	if r := tn.lastRequest(); r.URL.Path != "/api/Actions/7" || r.URL.RawQuery != "ticket_id=42" {
		t.Errorf("fetch a note: request %s", r.URL)
	}
	if _, err := c.Get(context.Background(), change.Ticket, " "); !errors.Is(err, ErrPermanent) {
		t.Errorf("empty id: %v", err)
	}
}

func TestGetRefusesNonObjects(t *testing.T) {
	for _, body := range []string{`[{"id": 1}]`, `null`, `{"id": 1} {"id": 2}`, `<html>`} {
		tn := newTenant(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
		c := tn.client(t, newFakeClock(true), nil)
		if _, err := c.Get(context.Background(), change.Ticket, "1"); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: err = %v", body, err)
		}
	}
}

// status answers with the given statuses in turn, then with the ticket.
func status(codes []int, header http.Header) (http.HandlerFunc, *atomic.Int32) {
	var n atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(codes) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.WriteHeader(codes[i])
			fmt.Fprintf(w, `{"message": "attempt %d failed"}`, i+1)
			return
		}
		ticketHandler(w, r)
	}, &n
}

func TestRetryAfterHonoured(t *testing.T) {
	clk := newFakeClock(true)
	h, n := status([]int{429, 429}, http.Header{"Retry-After": {"7"}})
	tn := newTenant(t, h)
	budget := NewBudget(100, time.Minute, clk)
	c := tn.client(t, clk, func(o *ClientOptions) { o.Budget = budget })
	mustGet(t, c, "1")
	if n.Load() != 3 {
		t.Fatalf("%d requests", n.Load())
	}
	if got := clk.Sleeps(); len(got) != 2 || got[0] != 7*time.Second || got[1] != 7*time.Second {
		t.Fatalf("slept %v, want [7s 7s]", got)
	}
	// authinfo, token and three API requests each took a unit of the budget.
	if budget.Remaining() != 95 {
		t.Fatalf("Remaining() = %d, want 95", budget.Remaining())
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	clk := newFakeClock(true)
	at := clk.Now().Add(30 * time.Second).Format(http.TimeFormat)
	h, _ := status([]int{503}, http.Header{"Retry-After": {at}})
	tn := newTenant(t, h)
	c := tn.client(t, clk, nil)
	mustGet(t, c, "1")
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 30*time.Second {
		t.Fatalf("slept %v, want [30s]", got)
	}
}

func TestRetryAfterCapped(t *testing.T) {
	clk := newFakeClock(true)
	h, _ := status([]int{429}, http.Header{"Retry-After": {"86400"}})
	tn := newTenant(t, h)
	c := tn.client(t, clk, func(o *ClientOptions) { o.RetryAfterMax = 2 * time.Minute })
	mustGet(t, c, "1")
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 2*time.Minute {
		t.Fatalf("slept %v, want [2m]", got)
	}
}

func Test429WithoutRetryAfterBacksOff(t *testing.T) {
	clk := newFakeClock(true)
	h, _ := status([]int{429, 429, 429, 429, 429, 429, 429}, nil)
	tn := newTenant(t, h)
	c := tn.client(t, clk, func(o *ClientOptions) {
		o.MaxRetries = 7
		o.BackoffBase = time.Second
		o.BackoffMax = 10 * time.Second
	})
	mustGet(t, c, "1")
	got := clk.Sleeps()
	if len(got) != 7 {
		t.Fatalf("slept %v", got)
	}
	for i, d := range got {
		ceiling := min(time.Second<<i, 10*time.Second)
		if d < ceiling/2 || d > ceiling {
			t.Errorf("retry %d waited %v, want %v..%v", i+1, d, ceiling/2, ceiling)
		}
	}
}

// A 429 pauses the shared budget, so another caller holds off too.
func Test429PausesTheSharedBudget(t *testing.T) {
	clk := newFakeClock(false)
	budget := NewBudget(100, time.Minute, clk)
	h, _ := status([]int{429}, http.Header{"Retry-After": {"20"}})
	tn := newTenant(t, h)
	c := tn.client(t, clk, func(o *ClientOptions) { o.Budget = budget })
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), change.Ticket, "1")
		done <- err
	}()
	clk.waitSleepers(t, 1) // the first caller backs off for 20 s
	if budget.TryTake() || budget.Remaining() != 0 {
		t.Fatal("the budget is not paused after a 429")
	}
	clk.Advance(20 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func Test5xxRetriedThenSuccess(t *testing.T) {
	clk := newFakeClock(true)
	h, n := status([]int{503, 502, 500, 504, 408}, nil)
	tn := newTenant(t, h)
	c := tn.client(t, clk, nil)
	mustGet(t, c, "1")
	if n.Load() != 6 || len(clk.Sleeps()) != 5 {
		t.Fatalf("%d requests, slept %v", n.Load(), clk.Sleeps())
	}
}

func TestRetriesExhausted(t *testing.T) {
	for _, c := range []struct {
		code int
		want error
	}{{500, ErrUnavailable}, {429, ErrRateLimited}} {
		clk := newFakeClock(true)
		h, n := status([]int{c.code, c.code, c.code, c.code, c.code, c.code}, nil)
		tn := newTenant(t, h)
		cl := tn.client(t, clk, func(o *ClientOptions) { o.MaxRetries = 3 })
		_, err := cl.Get(context.Background(), change.Ticket, "9")
		var he *Error
		if !errors.Is(err, c.want) || !Retryable(err) || !errors.As(err, &he) {
			t.Fatalf("%d: err = %v", c.code, err)
		}
		if n.Load() != 4 || he.Attempts != 4 || he.Status != c.code {
			t.Fatalf("%d: %d requests, error %+v", c.code, n.Load(), he)
		}
		if msg := err.Error(); !strings.Contains(msg, "get ticket 9") || !strings.Contains(msg, "after 4 attempts") || !strings.Contains(msg, "attempt 4 failed") {
			t.Errorf("message %q", msg)
		}
	}
}

func TestNoRetries(t *testing.T) {
	h, n := status([]int{503, 503}, nil)
	tn := newTenant(t, h)
	c := tn.client(t, newFakeClock(true), func(o *ClientOptions) { o.MaxRetries = -1 })
	if _, err := c.Get(context.Background(), change.Ticket, "1"); !errors.Is(err, ErrUnavailable) || n.Load() != 1 {
		t.Fatalf("err %v after %d requests", err, n.Load())
	}
}

func TestPermanent4xx(t *testing.T) {
	for _, code := range []int{400, 403, 405, 409, 422, 501} {
		h, n := status([]int{code, code}, nil)
		tn := newTenant(t, h)
		c := tn.client(t, newFakeClock(true), nil)
		_, err := c.Get(context.Background(), change.Ticket, "5")
		if !errors.Is(err, ErrPermanent) || Retryable(err) || n.Load() != 1 {
			t.Fatalf("%d: err %v after %d requests", code, err, n.Load())
		}
		if !strings.Contains(err.Error(), "attempt 1 failed") || !strings.Contains(err.Error(), strconv.Itoa(code)) {
			t.Errorf("%d: message %q", code, err)
		}
	}
}

func TestRequestTimeoutRetried(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	tn := newTenant(t, func(_ http.ResponseWriter, r *http.Request) {
		select { // never answers in time
		case <-r.Context().Done():
		case <-stop:
		}
	})
	start := time.Now()
	c := tn.client(t, newFakeClock(true), func(o *ClientOptions) {
		o.Timeout = 50 * time.Millisecond
		o.MaxRetries = 1
	})
	_, err := c.Get(context.Background(), change.Ticket, "1")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("err = %v", err)
	}
	if tn.api.Load() != 2 {
		t.Fatalf("%d requests, want 2", tn.api.Load())
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the timeout did not bound the request")
	}
}

func TestContextCancelledDuringRequest(t *testing.T) {
	arrived := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	tn := newTenant(t, func(_ http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	})
	c := tn.client(t, newFakeClock(true), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, change.Ticket, "1")
		done <- err
	}()
	<-arrived
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || Retryable(err) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancellation was not honoured")
	}
	if tn.api.Load() != 1 {
		t.Fatalf("a cancelled request was retried: %d", tn.api.Load())
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	clk := newFakeClock(false)
	h, n := status([]int{503, 503}, nil)
	tn := newTenant(t, h)
	c := tn.client(t, clk, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, change.Ticket, "1")
		done <- err
	}()
	clk.waitSleepers(t, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d requests", n.Load())
	}
}

func TestContextCancelledWaitingOnBudget(t *testing.T) {
	clk := newFakeClock(false)
	tn := newTenant(t, ticketHandler)
	// authinfo, token and one Get spend the budget of 3.
	c := tn.client(t, clk, func(o *ClientOptions) { o.Budget = NewBudget(3, time.Minute, clk) })
	mustGet(t, c, "1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Get(ctx, change.Ticket, "2")
		done <- err
	}()
	clk.waitSleepers(t, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || tn.api.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, tn.api.Load())
	}
}

// Two clients of one connection share its budget: the third request waits for the window.
func TestBudgetSharedBetweenCallers(t *testing.T) {
	clk := newFakeClock(false)
	tn := newTenant(t, ticketHandler)
	budget := NewBudget(4, time.Minute, clk)
	a := tn.client(t, clk, func(o *ClientOptions) { o.Budget = budget; o.AuthURL = tn.srv.URL + "/auth" })
	b := tn.client(t, clk, func(o *ClientOptions) { o.Budget = budget; o.AuthURL = tn.srv.URL + "/auth" })
	mustGet(t, a, "1") // token + get
	mustGet(t, b, "2") // token + get: the budget of 4 is spent
	var wg sync.WaitGroup
	for _, c := range []*Client{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), change.Ticket, "3"); err != nil {
				t.Error(err)
			}
		}()
	}
	clk.waitSleepers(t, 2)
	if tn.api.Load() != 2 {
		t.Fatalf("%d API requests went beyond the budget", tn.api.Load()-2)
	}
	clk.Advance(time.Minute)
	wg.Wait()
	if tn.api.Load() != 4 {
		t.Fatalf("%d API requests", tn.api.Load())
	}
}

// pager serves n tickets with Halo's paging: offset (page_no-1)*page_size, at most limit
// items per page whatever page_size asks, record_count unless noCount.
type pager struct {
	n, limit       int
	noCount        bool
	bare           bool
	ignorePageNo   bool
	envelope       string
	requestedSizes []string
	mu             sync.Mutex
}

func (p *pager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.requestedSizes = append(p.requestedSizes, q.Get("page_size"))
	p.mu.Unlock()
	size, _ := strconv.Atoi(q.Get("page_size"))
	no, _ := strconv.Atoi(q.Get("page_no"))
	if q.Get("pageinate") != "true" || size <= 0 || no <= 0 {
		http.Error(w, "bad paging", http.StatusBadRequest)
		return
	}
	if p.ignorePageNo {
		no = 1
	}
	items := []map[string]any{}
	for i := (no - 1) * size; i < min(no*size, (no-1)*size+p.limit, p.n); i++ {
		items = append(items, map[string]any{"id": i + 1, "summary": "t" + strconv.Itoa(i+1)})
	}
	if p.bare {
		writeJSON(w, items)
		return
	}
	env := map[string]any{p.envelope: items}
	if !p.noCount {
		env["record_count"] = p.n
	}
	writeJSON(w, env)
}

func collect(t *testing.T, c *Client, kind change.Kind, q ListQuery) ([]string, int, error) {
	t.Helper()
	var ids []string
	pages := 0
	err := c.List(context.Background(), kind, q, func(page []map[string]any) error {
		pages++
		for _, it := range page {
			id, err := change.CanonicalID(it["id"])
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids, pages, err
}

func checkIDs(t *testing.T, ids []string, n int) {
	t.Helper()
	if len(ids) != n {
		t.Fatalf("%d objects, want %d", len(ids), n)
	}
	for i, id := range ids {
		if id != strconv.Itoa(i+1) {
			t.Fatalf("object %d has id %s", i, id)
		}
	}
}

func TestListPagesToRecordCount(t *testing.T) {
	p := &pager{n: 250, limit: 100, envelope: "tickets"}
	tn := newTenant(t, p.ServeHTTP)
	c := tn.client(t, newFakeClock(true), nil)
	ids, pages, err := collect(t, c, change.Ticket, ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, ids, 250)
	qs := tn.queries()
	if pages != 3 || len(qs) != 3 {
		t.Fatalf("%d pages, %d requests", pages, len(qs))
	}
	for i, q := range qs {
		if q.Get("pageinate") != "true" || q.Get("page_size") != "100" || q.Get("page_no") != strconv.Itoa(i+1) {
			t.Errorf("request %d: %v", i, q)
		}
	}
}

func TestListExactMultipleStopsAtRecordCount(t *testing.T) {
	p := &pager{n: 200, limit: 100, envelope: "tickets"}
	tn := newTenant(t, p.ServeHTTP)
	c := tn.client(t, newFakeClock(true), nil)
	ids, _, err := collect(t, c, change.Ticket, ListQuery{})
	if err != nil || tn.api.Load() != 2 {
		t.Fatalf("err %v, %d requests (no third, empty page needed)", err, tn.api.Load())
	}
	checkIDs(t, ids, 200)
}

// HaloAPI #90: page_size=1000 answered with 100 items and record_count 717.
func TestListSilentCap(t *testing.T) {
	for _, c := range []struct {
		name        string
		ask, limit  int
		wantSizes   []string
		wantObjects int
	}{
		{"asked 1000, capped at 100", 1000, 100, []string{"1000", "100", "100", "100", "100", "100", "100", "100"}, 717},
		{"asked 100, capped at 50", 100, 50, []string{"100", "50", "50", "50", "50", "50", "50", "50", "50", "50", "50", "50", "50", "50", "50"}, 717},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &pager{n: 717, limit: c.limit, envelope: "tickets"}
			tn := newTenant(t, p.ServeHTTP)
			cl := tn.client(t, newFakeClock(true), nil)
			ids, _, err := collect(t, cl, change.Ticket, ListQuery{PageSize: c.ask})
			if err != nil {
				t.Fatal(err)
			}
			checkIDs(t, ids, c.wantObjects)
			if fmt.Sprint(p.requestedSizes) != fmt.Sprint(c.wantSizes) {
				t.Fatalf("page sizes asked %v, want %v", p.requestedSizes, c.wantSizes)
			}
		})
	}
}

func TestListShortPageStopsWithoutCount(t *testing.T) {
	p := &pager{n: 130, limit: 100, envelope: "clients", noCount: true}
	tn := newTenant(t, p.ServeHTTP)
	c := tn.client(t, newFakeClock(true), nil)
	ids, pages, err := collect(t, c, change.Client, ListQuery{})
	if err != nil || pages != 2 || tn.api.Load() != 2 {
		t.Fatalf("err %v, %d pages, %d requests", err, pages, tn.api.Load())
	}
	checkIDs(t, ids, 130)

	p2 := &pager{n: 200, limit: 100, envelope: "clients", noCount: true}
	tn2 := newTenant(t, p2.ServeHTTP)
	c2 := tn2.client(t, newFakeClock(true), nil)
	ids, pages, err = collect(t, c2, change.Client, ListQuery{})
	if err != nil || pages != 2 || tn2.api.Load() != 3 {
		t.Fatalf("err %v, %d pages, %d requests (the third is empty)", err, pages, tn2.api.Load())
	}
	checkIDs(t, ids, 200)
}

func TestListBareArray(t *testing.T) {
	p := &pager{n: 100, limit: 100, bare: true}
	tn := newTenant(t, p.ServeHTTP)
	c := tn.client(t, newFakeClock(true), nil)
	ids, pages, err := collect(t, c, change.Asset, ListQuery{})
	if err != nil || pages != 1 || tn.api.Load() != 1 {
		t.Fatalf("err %v, %d pages, %d requests", err, pages, tn.api.Load())
	}
	checkIDs(t, ids, 100)
}

func TestListEmpty(t *testing.T) {
	for _, body := range []string{`{"record_count": 0}`, `{"record_count": 0, "users": []}`, `{"users": null}`, `[]`, `{"users": []}`} {
		tn := newTenant(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
		c := tn.client(t, newFakeClock(true), nil)
		_, pages, err := collect(t, c, change.Contact, ListQuery{})
		if err != nil || pages != 0 || tn.api.Load() != 1 {
			t.Errorf("%s: err %v, %d pages, %d requests", body, err, pages, tn.api.Load())
		}
	}
}

func TestListBadAnswers(t *testing.T) {
	for _, body := range []string{`{"record_count": 3}`, `{"record_count": 3, "tickets": [1, 2]}`, `<html>`, `{"record_count": 1, "tickets": {}}`} {
		tn := newTenant(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) })
		c := tn.client(t, newFakeClock(true), nil)
		_, _, err := collect(t, c, change.Ticket, ListQuery{})
		if !errors.Is(err, ErrBadResponse) || !strings.Contains(err.Error(), "list tickets page 1") {
			t.Errorf("%s: err %v", body, err)
		}
	}
}

func TestListPageLimitAndIgnoredPageNo(t *testing.T) {
	p := &pager{n: 1000, limit: 100, envelope: "tickets"}
	tn := newTenant(t, p.ServeHTTP)
	c := tn.client(t, newFakeClock(true), nil)
	_, pages, err := collect(t, c, change.Ticket, ListQuery{MaxPages: 3})
	if !errors.Is(err, ErrPageLimit) || pages != 3 || !strings.Contains(err.Error(), "list tickets page 4") {
		t.Fatalf("err %v after %d pages", err, pages)
	}

	p2 := &pager{n: 1000, limit: 100, envelope: "tickets", ignorePageNo: true}
	tn2 := newTenant(t, p2.ServeHTTP)
	c2 := tn2.client(t, newFakeClock(true), nil)
	_, pages, err = collect(t, c2, change.Ticket, ListQuery{})
	if !errors.Is(err, ErrBadResponse) || pages != 1 || !strings.Contains(err.Error(), "page_no") {
		t.Fatalf("err %v after %d pages", err, pages)
	}
}

func TestListCallbackErrorStops(t *testing.T) {
	p := &pager{n: 300, limit: 100, envelope: "tickets"}
	tn := newTenant(t, p.ServeHTTP)
	c := tn.client(t, newFakeClock(true), nil)
	stop := errors.New("store full")
	err := c.List(context.Background(), change.Ticket, ListQuery{}, func([]map[string]any) error { return stop })
	if !errors.Is(err, stop) || tn.api.Load() != 1 || !strings.Contains(err.Error(), "list tickets page 1") {
		t.Fatalf("err %v after %d requests", err, tn.api.Load())
	}
}

func TestListQueryParameters(t *testing.T) {
	tn := newTenant(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"record_count": 0}`)) })
	c := tn.client(t, newFakeClock(true), nil)
	paris := time.FixedZone("CEST", 2*3600)
	from := time.Date(2026, 8, 1, 8, 30, 0, 123456789, paris)
	list := func(kind change.Kind, q ListQuery) url.Values {
		t.Helper()
		if err := c.List(context.Background(), kind, q, func([]map[string]any) error { return nil }); err != nil {
			t.Fatal(err)
		}
		return tn.lastRequest().URL.Query()
	}
	// Tickets have no includeinactive: it is not sent (every ticket is listed anyway).
	q := list(change.Ticket, ListQuery{UpdatedFrom: from, UpdatedTo: from.Add(time.Hour), Deleted: true, ClientID: "12", IncludeInactive: true,
		Extra: url.Values{"order": {"id"}, "page_no": {"9"}}})
	want := url.Values{
		"lastupdatefromdate": {"2026-08-01T06:30:00.123"}, "lastupdatetodate": {"2026-08-01T07:30:00.123"},
		"deleted": {"true"}, "client_id": {"12"}, "order": {"id"},
		"pageinate": {"true"}, "page_size": {"100"}, "page_no": {"1"},
	}
	if fmt.Sprint(q) != fmt.Sprint(want) {
		t.Errorf("tickets query\n got %v\nwant %v", q, want)
	}
	if tn.lastRequest().URL.Path != "/api/Tickets" {
		t.Errorf("path %s", tn.lastRequest().URL.Path)
	}
	// Id-only lists are not compatible with paging: no paging parameter, not even an
	// extra one.
	q = list(change.Ticket, ListQuery{IDOnly: true, Extra: url.Values{"page_size": {"50"}}})
	if want := (url.Values{"ticketidonly": {"true"}}); fmt.Sprint(q) != fmt.Sprint(want) {
		t.Errorf("ticket id list query %v, want %v", q, want)
	}
	q = list(change.Client, ListQuery{IDOnly: true, IncludeInactive: true})
	if want := (url.Values{"idonly": {"true"}, "includeinactive": {"true"}}); fmt.Sprint(q) != fmt.Sprint(want) {
		t.Errorf("client id list query %v, want %v", q, want)
	}
	// The Actions list takes no paging and no includeinactive.
	q = list(change.Action, ListQuery{TicketID: "42", IncludeInactive: true})
	if want := (url.Values{"ticket_id": {"42"}}); fmt.Sprint(q) != fmt.Sprint(want) || tn.lastRequest().URL.Path != "/api/Actions" {
		t.Errorf("actions query %v, want %v", q, want)
	}
	before := tn.api.Load()
	for _, bad := range []struct {
		kind change.Kind
		q    ListQuery
	}{
		{change.Client, ListQuery{Deleted: true}},
		{change.Ticket, ListQuery{TicketID: "1"}},
		{change.Client, ListQuery{ClientID: "1"}},
		{change.Action, ListQuery{TicketID: "1", IDOnly: true}},
		{change.Action, ListQuery{TicketID: "1", UpdatedFrom: from}},
		{change.Action, ListQuery{TicketID: "1", StartPage: 2}},
		{change.Ticket, ListQuery{IDOnly: true, StartPage: 2}},
		{"site", ListQuery{}},
	} {
		err := c.List(context.Background(), bad.kind, bad.q, func([]map[string]any) error { return nil })
		if !errors.Is(err, ErrPermanent) {
			t.Errorf("%s %+v: err %v", bad.kind, bad.q, err)
		}
	}
	if tn.api.Load() != before {
		t.Fatal("a refused query was sent")
	}
	if FormatTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) != "2026-01-02T03:04:05.000" {
		t.Fatal("FormatTime")
	}
}

// A list Halo does not page is one answer: one holding fewer objects than its
// record_count cannot be completed, and is an error rather than a partial list (the
// reconcile would take the rest as deleted).
func TestUnpagedListCutShortIsAnError(t *testing.T) {
	tn := newTenant(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"record_count": 3, "clients": [{"id": 1}, {"id": 2}]}`))
	})
	c := tn.client(t, newFakeClock(true), nil)
	called := false
	err := c.List(context.Background(), change.Client, ListQuery{IDOnly: true}, func([]map[string]any) error { called = true; return nil })
	if !errors.Is(err, ErrBadResponse) || called {
		t.Fatalf("err %v, fn called %v", err, called)
	}
	if tn.api.Load() != 1 {
		t.Fatalf("%d requests for an unpaged list", tn.api.Load())
	}
}

func TestListRetriesAPage(t *testing.T) {
	p := &pager{n: 150, limit: 100, envelope: "tickets"}
	var n atomic.Int32
	tn := newTenant(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page_no") == "2" && n.Add(1) == 1 {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		p.ServeHTTP(w, r)
	})
	clk := newFakeClock(true)
	c := tn.client(t, clk, nil)
	ids, _, err := collect(t, c, change.Ticket, ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	checkIDs(t, ids, 150)
	if got := clk.Sleeps(); len(got) != 1 || got[0] != 3*time.Second {
		t.Fatalf("slept %v", got)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false}, {"5", 5 * time.Second, true}, {" 0 ", 0, true}, {"-1", 0, false}, {"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"999999999999", 24 * time.Hour, true},
	} {
		got, ok := retryAfter(http.Header{"Retry-After": {c.in}}, now)
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %v %v, want %v %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestNewClientChecksOptions(t *testing.T) {
	for _, o := range []ClientOptions{
		{BaseURL: "", ClientID: "a", ClientSecret: "b"},
		{BaseURL: "ftp://x", ClientID: "a", ClientSecret: "b"},
		{BaseURL: "https://x", ClientID: "", ClientSecret: "b"},
		{BaseURL: "https://x", ClientID: "a", ClientSecret: ""},
		{BaseURL: "https://x", AuthURL: "nope", ClientID: "a", ClientSecret: "b"},
		{BaseURL: "https://x", ClientID: "a", ClientSecret: "env:HALO_SECRET"},
	} {
		if _, err := NewClient(o); err == nil {
			t.Errorf("%v accepted", o)
		}
	}
	o := ClientOptions{BaseURL: "https://acme.halopsa.com/api", ClientID: "a", ClientSecret: testSecret}
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	if c.base != "https://acme.halopsa.com" || c.scope != "all" || c.timeout != 30*time.Second || c.maxRetries != 5 ||
		c.backoffBase != time.Second || c.backoffMax != time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	if n, w := c.Budget().Limit(); n != 250 || w != 5*time.Minute {
		t.Fatalf("budget %d per %v", n, w)
	}
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%+v", o), fmt.Sprintf("%#v", o), fmt.Sprint(c), fmt.Sprintf("%v", c)} {
		if strings.Contains(s, testSecret) {
			t.Fatalf("printing leaks the secret: %s", s)
		}
	}
}

func TestFromConfig(t *testing.T) {
	h := config.Halo{BaseURL: "https://acme.halopsa.com", ClientID: "id", ClientSecret: testSecret, Tenant: "acme",
		Budget: config.Budget{Requests: 40, WindowSeconds: 60}, TimeoutSeconds: 7}
	c, err := FromConfig(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, w := c.Budget().Limit(); n != 40 || w != time.Minute || c.timeout != 7*time.Second || c.tenant != "acme" {
		t.Fatalf("budget %d per %v, timeout %v", n, w, c.timeout)
	}
	c, err = FromConfig(config.Halo{BaseURL: "https://acme.halopsa.com", ClientID: "id", ClientSecret: testSecret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, w := c.Budget().Limit(); n != 250 || w != 5*time.Minute || c.timeout != 30*time.Second {
		t.Fatalf("defaults: budget %d per %v, timeout %v", n, w, c.timeout)
	}
	if _, err := FromConfig(config.Halo{}, nil); err == nil || !strings.Contains(err.Error(), "webhook-only") {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkList(b *testing.B) {
	const n = 1000
	pages := map[string][]byte{}
	for no := 1; no <= n/100; no++ {
		items := make([]map[string]any, 0, 100)
		for i := (no - 1) * 100; i < no*100; i++ {
			items = append(items, map[string]any{
				"id": i + 1, "summary": fmt.Sprintf("Ticket %d: the printer on floor 3 is out of toner", i+1),
				"status_id": 2, "priority_id": 3, "tickettype_id": 1, "client_id": 12, "client_name": "Acme Ltd",
				"site_id": 4, "agent_id": 7, "team": "Service Desk", "dateoccurred": "2026-08-01T06:30:00",
				"last_update": "2026-08-01T07:45:12.123", "deleted": false, "hasbeenclosed": false,
				"customfields": []map[string]any{{"id": 101, "name": "CFRef", "value": "ABC-123"}},
			})
		}
		body, _ := json.Marshal(map[string]any{"record_count": n, "tickets": items})
		pages[strconv.Itoa(no)] = body
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/token", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
	})
	mux.HandleFunc("GET /api/Tickets", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(pages[r.URL.Query().Get("page_no")])
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := NewClient(ClientOptions{BaseURL: srv.URL, AuthURL: srv.URL + "/auth", ClientID: "a", ClientSecret: "b",
		HTTP: srv.Client(), Budget: NewBudget(1<<30, time.Hour, nil)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(pages["1"]) * n / 100))
	for b.Loop() {
		got := 0
		if err := c.List(context.Background(), change.Ticket, ListQuery{}, func(p []map[string]any) error {
			got += len(p)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("%d tickets", got)
		}
	}
}
