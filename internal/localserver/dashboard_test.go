package localserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

// recent reads GET /deliveries/recent (query appended as it is) with auth.
func (s *testServer) recent(t *testing.T, query string) ([]change.Delivery, response) {
	t.Helper()
	r := do(t, http.MethodGet, s.url+"/deliveries/recent"+query, bearer, nil)
	var ds []change.Delivery
	if r.status == http.StatusOK {
		if err := json.Unmarshal(r.body, &ds); err != nil {
			t.Fatalf("recent deliveries: %v in %s", err, r.body)
		}
	}
	return ds, r
}

func TestRecentDeliveriesListsWhatTheWorkerRecorded(t *testing.T) {
	s := startServer(t, testConfig())
	if ds, r := s.recent(t, ""); r.status != http.StatusOK || len(ds) != 0 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Fatalf("before any delivery: %d %s, want 200 []", r.status, r.body)
	}
	full := sampleBody(t, "ingest-ticket-full.json")
	const first, second = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10", "0d5e3c1a-9b8f-4c2d-8e7a-6b5c4d3e2f1a"
	s.deliverOK(t, full)
	s.waitDeliveries(t, "default", first)
	s.deliverOK(t, redeliver(t, full, second, "ticket reassigned", map[string]any{"agent_id": 11, "last_update": "2026-09-25T06:45:00.000"}))
	s.waitDeliveries(t, "default", second)

	ds, r := s.recent(t, "")
	if r.status != http.StatusOK || len(ds) != 2 {
		t.Fatalf("recent: %d %s, want the two records", r.status, r.body)
	}
	if ds[0].DeliveryID != second || ds[1].DeliveryID != first {
		t.Fatalf("recent lists %s, %s; want the newest first (%s, %s)", ds[0].DeliveryID, ds[1].DeliveryID, second, first)
	}
	d := ds[0]
	if d.Connection != "default" || d.Event != "ticket reassigned" || d.Kind != change.Ticket || d.ID != "4242" ||
		d.Outcome != change.Applied || d.ProcessedAt.IsZero() {
		t.Fatalf("record %+v", d)
	}
	if ds, r := s.recent(t, "?connection=other"); r.status != http.StatusOK || len(ds) != 0 {
		t.Fatalf("another connection's: %d %s, want none", r.status, r.body)
	}
	if ds, _ := s.recent(t, "?connection=default"); len(ds) != 2 {
		t.Fatalf("connection default's: %d records, want 2", len(ds))
	}
	st := do(t, http.MethodGet, s.url+"/status", bearer, nil)
	var out struct {
		Connections []string `json:"connections"`
	}
	if err := json.Unmarshal(st.body, &out); err != nil || fmt.Sprint(out.Connections) != "[default]" {
		t.Fatalf("/status connections %v (%v) in %s", out.Connections, err, st.body)
	}
}

// noRedirect is a client that shows a redirect instead of following it.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func send(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func request(t *testing.T, rawURL, host string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

func TestDashboardIsGuardedAndTakesTheTokenOnce(t *testing.T) {
	s := startServer(t, testConfig())
	page := s.url + "/dashboard"

	// Without credentials, every route of the dashboard is refused.
	for _, path := range []string{"/dashboard", "/dashboard/app.js", "/dashboard/style.css", "/deliveries/recent"} {
		if r := send(t, request(t, s.url+path, "")); r.status != http.StatusUnauthorized || r.errorCode(t) != "unauthorized" {
			t.Errorf("GET %s without a token = %d %s, want 401", path, r.status, r.body)
		}
		if r := send(t, request(t, s.url+path, "attacker.example", "Authorization", bearer)); r.status != http.StatusMisdirectedRequest {
			t.Errorf("GET %s under an unknown host = %d, want 421", path, r.status)
		}
	}
	// A wrong token in the query: 401, no cookie. A right one under an unknown host: 421.
	r := send(t, request(t, page+"?token=wrong", ""))
	if r.status != http.StatusUnauthorized || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("a wrong token = %d, cookie %q; want 401 and none", r.status, r.header.Get("Set-Cookie"))
	}
	r = send(t, request(t, page+"?token="+url.QueryEscape(readToken), "attacker.example"))
	if r.status != http.StatusMisdirectedRequest || r.header.Get("Set-Cookie") != "" {
		t.Fatalf("under an unknown host = %d, cookie %q; want 421 and none", r.status, r.header.Get("Set-Cookie"))
	}

	// The right token: a cookie only this server's pages send, and a redirect to the page
	// without the token.
	r = send(t, request(t, page+"?token="+url.QueryEscape(readToken), ""))
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/dashboard" {
		t.Fatalf("the right token = %d to %q, want 303 to /dashboard", r.status, r.header.Get("Location"))
	}
	cookies := (&http.Response{Header: r.header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("cookies %v, want one", cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/", c)
	}
	withCookie := func(path, host string) response {
		req := request(t, s.url+path, host)
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		return send(t, req)
	}
	r = withCookie("/dashboard", "")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("content-type"), "text/html") || !bytes.Contains(r.body, []byte("/dashboard/app.js")) {
		t.Fatalf("the page with the cookie = %d %s %.200s", r.status, r.header.Get("content-type"), r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for path, ct := range map[string]string{"/dashboard/app.js": "text/javascript", "/dashboard/style.css": "text/css", "/status": "application/json", "/deliveries/recent": "application/json"} {
		if r := withCookie(path, ""); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("content-type"), ct) {
			t.Errorf("GET %s with the cookie = %d %s, want 200 %s", path, r.status, r.header.Get("content-type"), ct)
		}
		if r := withCookie(path, "attacker.example"); r.status != http.StatusMisdirectedRequest {
			t.Errorf("GET %s with the cookie under an unknown host = %d, want 421", path, r.status)
		}
	}
	if r := withCookie("/dashboard/other.js", ""); r.status != http.StatusNotFound {
		t.Errorf("an unknown dashboard file = %d, want 404", r.status)
	}
	// A cookie holding a wrong token is refused as a wrong bearer token is.
	req := request(t, s.url+"/status", "")
	req.AddCookie(&http.Cookie{Name: c.Name, Value: "d3Jvbmc"}) // "wrong", encoded
	if r := send(t, req); r.status != http.StatusUnauthorized {
		t.Errorf("a wrong cookie = %d, want 401", r.status)
	}
	req = request(t, s.url+"/status", "")
	req.AddCookie(&http.Cookie{Name: c.Name, Value: readToken}) // the token, not encoded as the server sets it
	if r := send(t, req); r.status != http.StatusUnauthorized {
		t.Errorf("a cookie not encoded = %d, want 401", r.status)
	}
}
