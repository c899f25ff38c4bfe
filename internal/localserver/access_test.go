package localserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqlite"
)

// get reads url as host (the Host header; "" leaves the URL's) with the Authorization
// header auth ("" sends none).
func get(t *testing.T, url, host, auth string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestReadsNeedATokenAndAKnownHost: the copy (a ticket, a note, a delivery's records) and
// /status answer only a request that names this server in its Host header and carries a
// read token; the refusals say nothing of the copy, are counted and logged without the
// token; the webhook answers under any host.
func TestReadsNeedATokenAndAKnownHost(t *testing.T) {
	const next = "the-next-read-token-for-rotation"
	cfg := testConfig()
	cfg.Server.ReadTokens = []string{readToken, next}
	cfg.Server.Hosts = []string{"halosync.example.com"}
	s := startServer(t, cfg)
	port := s.url[strings.LastIndex(s.url, ":")+1:]

	// Delivered under Halo's public name: the webhook route checks no host.
	req, err := http.NewRequest(http.MethodPost, s.url+"/webhooks/halo/default", bytes.NewReader(sampleBody(t, "ingest-ticket-full.json")))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "halo-facing.example.net"
	req.Header.Set("Authorization", authtest.Basic(user, password))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delivery under another host: %d, want 200", resp.StatusCode)
	}
	s.waitObject(t, "/connections/default/tickets/4242", nil)
	const deliveryID = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10"
	eventually(t, pollTimeout, "the delivery's record", func() (bool, string) {
		r := get(t, s.url+"/connections/default/deliveries/"+deliveryID, "", bearer)
		return r.status == http.StatusOK, fmt.Sprintf("%d %s", r.status, r.body)
	})

	const wrong = "not-a-token-of-this-server"
	paths := []string{"/connections/default/tickets/4242", "/connections/default/deliveries/" + deliveryID, "/status",
		"/connections/default/tickets/4242/actions/1", "/connections/default/clients/12"}
	for _, path := range paths {
		for _, c := range []struct {
			name, host, auth string
			status           int
			code, challenge  string
		}{
			{"no token", "", "", http.StatusUnauthorized, string(apierror.Unauthorized), `Bearer realm="halosync"`},
			{"wrong token", "", "Bearer " + wrong, http.StatusUnauthorized, string(apierror.Unauthorized), `Bearer realm="halosync", error="invalid_token"`},
			{"the webhook's credentials", "", authtest.Basic(user, password), http.StatusUnauthorized, string(apierror.Unauthorized), `Bearer realm="halosync"`},
			{"a token prefix", "", bearer[:len(bearer)-1], http.StatusUnauthorized, string(apierror.Unauthorized), `Bearer realm="halosync", error="invalid_token"`},
			{"a rebound name", "attacker.example:" + port, bearer, http.StatusMisdirectedRequest, string(apierror.UnknownHost), ""},
			{"a rebound name without a token", "attacker.example", "", http.StatusMisdirectedRequest, string(apierror.UnknownHost), ""},
		} {
			r := get(t, s.url+path, c.host, c.auth)
			if r.status != c.status || r.errorCode(t) != c.code || r.header.Get("WWW-Authenticate") != c.challenge {
				t.Errorf("%s, %s: %d %s (WWW-Authenticate %q), want %d %s (%q)", path, c.name, r.status, r.body, r.header.Get("WWW-Authenticate"), c.status, c.code, c.challenge)
			}
			if strings.Contains(string(r.body), "Printer") || strings.Contains(string(r.body), "counters") {
				t.Errorf("%s, %s: the refusal shows the copy: %s", path, c.name, r.body)
			}
		}
	}
	st := s.status(t)
	for reason, want := range map[string]int64{"token_missing": 5, "token_wrong": 10, "token_malformed": 5, "host_unknown": 10} {
		if got := st.count(metrics.ReadsRefused, "_server", reason); got != want {
			t.Errorf("ReadsRefused{_server, %s} = %d, want %d", reason, got, want)
		}
	}
	logs := s.logs.String()
	if !strings.Contains(logs, `"read refused"`) {
		t.Error("no refusal was logged")
	}
	for _, secret := range []string{readToken, next, wrong} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the token %q", secret)
		}
	}

	// Either token, under the loopback names, the configured one and the one listened on.
	for _, c := range []struct{ host, auth string }{
		{"", bearer}, {"", "Bearer " + next}, {"", "bearer  " + readToken},
		{"localhost:" + port, bearer}, {"[::1]:" + port, bearer}, {"127.0.0.1", bearer},
		{"halosync.example.com", bearer}, {"HALOSYNC.Example.COM.:443", bearer},
	} {
		for _, path := range paths[:3] {
			if r := get(t, s.url+path, c.host, c.auth); r.status != http.StatusOK {
				t.Errorf("%s under %q with %q: %d %s, want 200", path, c.host, c.auth[:8], r.status, r.body)
			}
		}
	}
}

// TestReadsWithoutConfiguredTokensAreRefused: a server given no read token reads nothing
// out (`halosync serve` always gives one).
func TestReadsWithoutConfiguredTokensAreRefused(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, _ := localserver.Queues(db, config.Queue{})
	srv, err := localserver.New(testConfig(), localserver.Options{Store: db.Store(), Queue: q, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"", bearer, "Bearer "} {
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/status", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("/status with %q and no configured token: %d %s, want 401", auth, rec.Code, rec.Body)
		}
	}
}

// TestReadyz: /readyz answers without credentials, ready while the database takes writes
// and 503 once it does not, while /healthz still says the process is alive.
func TestReadyz(t *testing.T) {
	s := startServer(t, testConfig())
	r := get(t, s.url+"/readyz", "anything.example", "")
	var body map[string]string
	if r.status != http.StatusOK || json.Unmarshal(r.body, &body) != nil || body["status"] != "ready" {
		t.Fatalf("GET /readyz on a working server: %d %s, want 200 ready", r.status, r.body)
	}
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, pollTimeout, "/readyz failing once the database is closed", func() (bool, string) {
		r = get(t, s.url+"/readyz", "", "")
		return r.status == http.StatusServiceUnavailable, fmt.Sprintf("%d %s", r.status, r.body)
	})
	if r.errorCode(t) != string(apierror.Unavailable) {
		t.Errorf("GET /readyz on a closed database: %s, want %s", r.body, apierror.Unavailable)
	}
	if r := get(t, s.url+"/healthz", "", ""); r.status != http.StatusOK {
		t.Errorf("GET /healthz: %d, want 200 (the process is alive)", r.status)
	}
}

// TestIdleConnectionsHoldBackADeliveryOnlyBriefly: with a cap of 8 connections and 8
// sockets connected that send nothing, a delivery waits for a place (so it is answered no
// sooner than the header timeout after they connected: the cap holds) and gets one when
// the header timeout cuts them (so it is answered within a bound).
func TestIdleConnectionsHoldBackADeliveryOnlyBriefly(t *testing.T) {
	const (
		maxConns      = 8
		headerTimeout = 300 * time.Millisecond
		slack         = 3 * time.Second
	)
	cfg := testConfig()
	cfg.Server.MaxConnections = maxConns
	s := startServer(t, cfg, withHeaderTimeout(headerTimeout))
	addr := strings.TrimPrefix(s.url, "http://")

	start := time.Now()
	for range maxConns {
		c, err := net.DialTimeout("tcp", addr, pollTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: headerTimeout + slack}
	req, err := http.NewRequest(http.MethodPost, s.url+"/webhooks/halo/default", bytes.NewReader(sampleBody(t, "ingest-ticket-full.json")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", authtest.Basic(user, password))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the delivery got no answer within %v of %d idle sockets: %v", headerTimeout+slack, maxConns, err)
	}
	resp.Body.Close()
	t.Logf("answered %v after the idle sockets connected", took)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("delivery: %d, want 200", resp.StatusCode)
	}
	if took < headerTimeout {
		t.Errorf("the delivery was answered %v after %d idle sockets connected, before the header timeout (%v) cut any: more than %d connections were served at once",
			took, maxConns, headerTimeout, maxConns)
	}
}

// TestBodyBytesInFlightAreBounded: while one delivery's 4096 bytes are being read, another
// whose bytes would pass server.max_body_bytes_in_flight is refused at once with 503 and
// Retry-After; once the first is read, it is accepted.
func TestBodyBytesInFlightAreBounded(t *testing.T) {
	const limit = 4096
	cfg := testConfig()
	cfg.Connections[0].Webhook.MaxBodyBytes = limit
	cfg.Server.MaxBodyBytesInFlight = 6000
	s := startServer(t, cfg)
	pad := func(b []byte, n int) []byte { return append(b, bytes.Repeat([]byte(" "), n-len(b))...) }
	first := pad(sampleBody(t, "ingest-ticket-small.json"), limit)
	second := pad(sampleBody(t, "ingest-ticket-full.json"), 2000)

	// The first delivery declares its 4096 bytes and sends 100 of them.
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), pollTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * pollTimeout)); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("POST /webhooks/halo/default HTTP/1.1\r\nHost: halosync\r\nAuthorization: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", authtest.Basic(user, password), len(first))
	if _, err := conn.Write(append([]byte(head), first[:100]...)); err != nil {
		t.Fatal(err)
	}

	// The server admits the first delivery's declared bytes once it has read its header.
	eventually(t, pollTimeout, "the first delivery's bytes admitted", func() (bool, string) {
		n := s.srv.BodyBytesInFlight()
		return n == limit, fmt.Sprintf("%d bytes in flight", n)
	})
	var r response
	eventually(t, pollTimeout, "the second delivery refused while the first is read", func() (bool, string) {
		r = s.deliver(t, "default", authtest.Basic(user, password), second)
		return r.status == http.StatusServiceUnavailable, fmt.Sprintf("%d %s", r.status, r.body)
	})
	if r.errorCode(t) != string(apierror.Unavailable) || r.header.Get("Retry-After") == "" {
		t.Errorf("refusal: %s, Retry-After %q; want %s with Retry-After", r.body, r.header.Get("Retry-After"), apierror.Unavailable)
	}
	if got := s.status(t).count(metrics.DeliveriesRejected, "default", "overloaded"); got < 1 {
		t.Errorf("DeliveriesRejected{default, overloaded} = %d, want at least 1", got)
	}
	// It is listed among the recent records, rejected for being overloaded.
	if ds, r := s.recent(t, ""); len(ds) == 0 || ds[0].Outcome != localserver.Rejected || ds[0].Reason != "overloaded" {
		t.Errorf("recent records %s, want the refusal first, rejected for overloaded", r.body)
	}

	if _, err := conn.Write(first[100:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the first delivery: %d, want 200", resp.StatusCode)
	}
	if r := s.deliver(t, "default", authtest.Basic(user, password), second); r.status != http.StatusOK {
		t.Errorf("the second delivery once the first was read: %d %s, want 200", r.status, r.body)
	}
}
