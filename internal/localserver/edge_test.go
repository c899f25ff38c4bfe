package localserver_test

// The edge over real HTTP, as `halosync serve` runs it: every authentication scheme with
// two secrets at once, a secret rotated across restarts on the same SQLite file, the IP
// allowlist behind trusted proxies, gzip and routing headers. The configurations are YAML
// documents parsed by config.Parse, as `halosync serve --config` reads them.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqlite"
)

// The edge connections' secrets: an old and a new one per scheme, and one nobody set.
const (
	edgeUser                    = "halo-edge"
	basicOld, basicNew          = "basic-secret-old-1", "basic-secret-new-2"
	tokenOld, tokenNew          = "token-old-000000001", "token-new-000000002"
	hmacOld, hmacNew            = "hmac-secret-old-0001", "hmac-secret-new-0002"
	pathOld, pathNew, pathWrong = "path-secret-old-00001", "path-secret-new-00002", "path-secret-nobody-set"
	wrongSecret                 = "a-secret-nobody-set"
)

var (
	whsecOld   = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-old"))
	whsecNew   = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-new"))
	whsecWrong = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-nobody-set"))
)

// edgeScheme is one connection of the edge configuration, authenticated by one scheme,
// and how a sender signs a delivery for it.
type edgeScheme struct {
	conn            string
	old, new, wrong string
	// auth is the connection's webhook.auth entry (YAML) accepting secrets.
	auth func(secrets []string) string
	// sign returns the path secret (path-secret only) and the headers that authenticate
	// body with secret.
	sign func(secret string, body []byte) (pathSecret string, h http.Header)
}

var stdMsgSeq atomic.Int64

// edgeSchemes are the six ways a delivery authenticates (README, "Authenticating Halo's
// webhooks").
var edgeSchemes = []edgeScheme{
	{
		conn: "basic", old: basicOld, new: basicNew, wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: basic\n  username: " + edgeUser + "\n  passwords: " + yamlList(s)
		},
		sign: func(secret string, _ []byte) (string, http.Header) {
			return "", http.Header{"Authorization": {basic(edgeUser, secret)}}
		},
	},
	{
		conn: "bearer", old: tokenOld, new: tokenNew, wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: header\n  header: Authorization\n  prefix: \"Bearer \"\n  tokens: " + yamlList(s)
		},
		sign: func(secret string, _ []byte) (string, http.Header) {
			return "", http.Header{"Authorization": {"Bearer " + secret}}
		},
	},
	{
		// Halo's signed body: base64 HMAC-SHA256 in Token.
		conn: "hmac", old: hmacOld, new: hmacNew, wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: hmac\n  header: Token\n  secrets: " + yamlList(s)
		},
		sign: func(secret string, body []byte) (string, http.Header) {
			return "", http.Header{"Token": {authtest.HMACBase64(secret, body)}}
		},
	},
	{
		conn: "hmachex", old: hmacOld, new: hmacNew, wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: hmac\n  header: X-Signature\n  prefix: \"sha256=\"\n  encoding: hex\n  secrets: " + yamlList(s)
		},
		sign: func(secret string, body []byte) (string, http.Header) {
			return "", http.Header{"X-Signature": {"sha256=" + authtest.HMACHex(secret, body)}}
		},
	},
	{
		conn: "stdwh", old: whsecOld, new: whsecNew, wrong: whsecWrong,
		auth: func(s []string) string {
			return "- scheme: signed-timestamp\n  secrets: " + yamlList(s)
		},
		sign: func(secret string, body []byte) (string, http.Header) {
			h := http.Header{}
			for k, v := range authtest.StandardWebhooks(secret, fmt.Sprintf("msg_edge_%d", stdMsgSeq.Add(1)), time.Now(), body) {
				h.Set(k, v)
			}
			return "", h
		},
	},
	{
		conn: "path", old: pathOld, new: pathNew, wrong: pathWrong,
		auth: func(s []string) string {
			return "- scheme: path-secret\n  secrets: " + yamlList(s)
		},
		sign: func(secret string, _ []byte) (string, http.Header) { return secret, http.Header{} },
	},
}

func yamlList(s []string) string {
	b, err := json.Marshal(s) // a JSON array is a YAML flow sequence
	if err != nil {
		panic(err)
	}
	return string(b)
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// edgeConfig parses a configuration holding one connection per scheme, each accepting the
// secrets pick chooses, followed by the YAML in extra (more connections, then top-level
// sections, each starting at column 0 with its key).
func edgeConfig(t *testing.T, pick func(edgeScheme) []string, extraConns, extraTop string) *config.Config {
	t.Helper()
	var b strings.Builder
	b.WriteString("connections:\n")
	for _, sc := range edgeSchemes {
		fmt.Fprintf(&b, "  - id: %s\n    webhook:\n      auth:\n%s\n", sc.conn, indent(sc.auth(pick(sc)), 8))
	}
	b.WriteString(extraConns)
	b.WriteString(extraTop)
	cfg, err := config.Parse(context.Background(), []byte(b.String()), nil)
	if err != nil {
		t.Fatalf("the edge configuration does not parse: %v\n%s", err, b.String())
	}
	return cfg
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

func bothSecrets(sc edgeScheme) []string { return []string{sc.old, sc.new} }

// edgeTicket is a full-snapshot ticket delivery for ticket id, with its own delivery id
// and summary.
func edgeTicket(id int, summary string) []byte {
	return fmt.Appendf(nil, `{"id":"edge-delivery-%d","event":"ticket updated","object_id":%d,`+
		`"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":%d,"summary":%q,"client_id":12,`+
		`"status_id":2,"last_update":"2026-09-25T06:41:07.523"}}`, id, id, id, summary)
}

// post delivers body to conn (and its path secret, if any) with the given headers and a
// JSON content type unless the headers name one.
func (s *testServer) post(t *testing.T, conn, pathSecret string, h http.Header, body []byte) response {
	t.Helper()
	url := s.url + "/webhooks/halo/" + conn
	if pathSecret != "" {
		url += "/" + pathSecret
	}
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s/…: %v", s.url+"/webhooks/halo/"+conn, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST to %s: read body: %v", conn, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// wantAccepted fails the test unless r is a 200 accepting exactly changes changes.
func wantAccepted(t *testing.T, what string, r response, changes int) {
	t.Helper()
	var ack struct {
		Status  string `json:"status"`
		Changes int    `json:"changes"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &ack) != nil || ack.Status != "accepted" || ack.Changes != changes {
		t.Fatalf("%s: %d %s, want 200 accepted with %d change(s)", what, r.status, r.body, changes)
	}
}

// wantRefused fails the test unless r is a refusal with status and error code.
func wantRefused(t *testing.T, what string, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: %d %s, want %d %s", what, r.status, r.body, status, code)
	}
	if got := r.errorCode(t); got != code {
		t.Fatalf("%s: error %q in %s, want %q", what, got, r.body, code)
	}
}

// delivered is a delivery that was answered 200: where its ticket must be stored.
type delivered struct {
	conn, summary string
	id            int
}

func (d delivered) path() string { return fmt.Sprintf("/connections/%s/tickets/%d", d.conn, d.id) }

// wantStored polls until every accepted delivery's ticket is readable with its summary and
// delivery id.
func (s *testServer) wantStored(t *testing.T, accepted []delivered) {
	t.Helper()
	for _, d := range accepted {
		o := s.waitObject(t, d.path(), nil)
		if o.Connection != d.conn || o.ID != strconv.Itoa(d.id) || o.Fields["summary"] != d.summary ||
			o.DeliveryID != fmt.Sprintf("edge-delivery-%d", d.id) {
			t.Errorf("GET %s: connection %q id %q summary %v delivery %q; want %q %d %q edge-delivery-%d",
				d.path(), o.Connection, o.ID, o.Fields["summary"], o.DeliveryID, d.conn, d.id, d.summary, d.id)
		}
	}
}

// wantNotStored checks that no refused delivery's ticket was stored.
func (s *testServer) wantNotStored(t *testing.T, refused []delivered) {
	t.Helper()
	for _, d := range refused {
		if _, r := s.object(t, d.path()); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s; the delivery was refused, so the ticket must not be stored", d.path(), r.status, r.body)
		}
	}
}

func drained(st status) bool {
	return st.Queue.Visible+st.Queue.InFlight == 0
}

// TestEverySchemeAcceptsBothSecretsOverHTTP: each scheme's connection holds an old and a
// new secret; a delivery signed with either is accepted and stored, one signed with a
// secret nobody configured is refused and never queued.
func TestEverySchemeAcceptsBothSecretsOverHTTP(t *testing.T) {
	s := startServer(t, edgeConfig(t, bothSecrets, "", ""))

	// Wrong secrets first: refused, and the queue stays empty.
	var refused []delivered
	for i, sc := range edgeSchemes {
		d := delivered{conn: sc.conn, id: 6000 + 10*i, summary: sc.conn + " wrong secret"}
		body := edgeTicket(d.id, d.summary)
		secret, h := sc.sign(sc.wrong, body)
		r := s.post(t, sc.conn, secret, h, body)
		wantRefused(t, sc.conn+" signed with a secret nobody set", r, http.StatusUnauthorized, ingest.CodeUnauthorized)
		if strings.Contains(string(r.body), sc.wrong) {
			t.Errorf("%s: the refusal shows the secret sent: %s", sc.conn, r.body)
		}
		refused = append(refused, d)
	}
	st := s.status(t)
	if !drained(st) || st.Queue.Visible != 0 || st.total(metrics.ChangesEnqueued) != 0 || st.total(metrics.DeliveriesAccepted) != 0 {
		t.Fatalf("after the refused deliveries: queue %+v, counters %+v; want nothing queued or accepted", *st.Queue, st.Counters)
	}
	for _, sc := range edgeSchemes {
		if got := st.count(metrics.DeliveriesRejected, sc.conn, "credentials_wrong"); got != 1 {
			t.Errorf("DeliveriesRejected{%s, credentials_wrong} = %d, want 1 (counters %+v)", sc.conn, got, st.Counters)
		}
	}

	// The old and the new secret of every scheme.
	var accepted []delivered
	for i, sc := range edgeSchemes {
		for j, secret := range []string{sc.old, sc.new} {
			d := delivered{conn: sc.conn, id: 6000 + 10*i + 1 + j, summary: fmt.Sprintf("%s secret %d", sc.conn, j)}
			body := edgeTicket(d.id, d.summary)
			pathSecret, h := sc.sign(secret, body)
			wantAccepted(t, fmt.Sprintf("%s, secret %d of 2", sc.conn, j+1), s.post(t, sc.conn, pathSecret, h, body), 1)
			accepted = append(accepted, d)
		}
	}
	s.wantStored(t, accepted)
	st = s.waitStatus(t, pollTimeout, "every accepted change applied", func(st status) bool {
		return drained(st) && st.total(metrics.ChangesApplied) == int64(len(accepted))
	})
	if *st.DeadLetterQueue != (queueStats{}) {
		t.Errorf("dead-letter queue %+v, want empty", *st.DeadLetterQueue)
	}
	for _, sc := range edgeSchemes {
		for _, c := range []struct {
			name, label string
		}{{metrics.DeliveriesAccepted, ""}, {metrics.ChangesEnqueued, ""}, {metrics.ChangesApplied, "applied"}} {
			if got := st.count(c.name, sc.conn, c.label); got != 2 {
				t.Errorf("%s{%s, %s} = %d, want 2", c.name, sc.conn, c.label, got)
			}
		}
	}
	s.wantNotStored(t, refused)
}

// TestSecretRotationLosesNoDelivery rotates every scheme's secret as the README says:
// the old secret alone, then old and new (restart), then the new alone (restart), on the
// same SQLite file, with deliveries flowing throughout and the servers stopped without
// waiting for the queue to drain. Every delivery answered 200 must end up stored; each
// secret is refused exactly while it is not configured.
func TestSecretRotationLosesNoDelivery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "halosync.db")
	phases := []struct {
		name              string
		secrets           func(edgeScheme) []string
		oldOK, newOK      bool
		deliveriesPerCase int
	}{
		{"old secret only", func(sc edgeScheme) []string { return []string{sc.old} }, true, false, 3},
		{"old and new secrets", bothSecrets, true, true, 3},
		{"new secret only", func(sc edgeScheme) []string { return []string{sc.new} }, false, true, 3},
	}
	var accepted, refused []delivered
	id := 7000
	var last *testServer
	for p, ph := range phases {
		s := startServer(t, edgeConfig(t, ph.secrets, "", ""), onFile(path))
		for _, sc := range edgeSchemes {
			for _, c := range []struct {
				which  string
				secret string
				ok     bool
			}{{"old", sc.old, ph.oldOK}, {"new", sc.new, ph.newOK}} {
				for n := range ph.deliveriesPerCase {
					id++
					d := delivered{conn: sc.conn, id: id, summary: fmt.Sprintf("%s: %s secret, delivery %d", ph.name, c.which, n+1)}
					body := edgeTicket(d.id, d.summary)
					pathSecret, h := sc.sign(c.secret, body)
					what := fmt.Sprintf("phase %q, %s, %s secret", ph.name, sc.conn, c.which)
					r := s.post(t, sc.conn, pathSecret, h, body)
					if c.ok {
						wantAccepted(t, what, r, 1)
						accepted = append(accepted, d)
					} else {
						wantRefused(t, what, r, http.StatusUnauthorized, ingest.CodeUnauthorized)
						refused = append(refused, d)
					}
				}
			}
		}
		if p == len(phases)-1 {
			last = s
			break
		}
		st := s.status(t)
		t.Logf("phase %q: stopping with %d changes queued and %d in flight", ph.name, st.Queue.Visible, st.Queue.InFlight)
		s.stop()
	}
	if len(accepted) != 2*3*len(edgeSchemes)*2 || len(refused) != 2*3*len(edgeSchemes) {
		t.Fatalf("%d accepted and %d refused deliveries; the phases above should give %d and %d",
			len(accepted), len(refused), 2*3*len(edgeSchemes)*2, 2*3*len(edgeSchemes))
	}

	// The last server, on the same file, has every accepted delivery stored: none lost.
	last.wantStored(t, accepted)
	st := last.waitStatus(t, pollTimeout, "the queue drained", drained)
	if *st.DeadLetterQueue != (queueStats{}) {
		t.Errorf("dead-letter queue %+v, want empty", *st.DeadLetterQueue)
	}
	last.wantNotStored(t, refused)
	// The last server refused exactly the old secret of each connection, three times.
	for _, sc := range edgeSchemes {
		if got := st.count(metrics.DeliveriesRejected, sc.conn, "credentials_wrong"); got != 3 {
			t.Errorf("last phase: DeliveriesRejected{%s, credentials_wrong} = %d, want 3", sc.conn, got)
		}
	}
}

// officeConns is a connection accepting deliveries from 192.0.2.0/24 only.
const officeConns = `  - id: office
    webhook:
      auth:
        - scheme: basic
          username: ` + edgeUser + `
          passwords: ["` + basicOld + `"]
      allow_ips: ["192.0.2.0/24"]
`

// TestAllowIPsOverHTTP: the source a connection's allow_ips is checked against is the
// peer address, unless the peer is a trusted proxy: then the right-most forwarded address
// that is not a trusted proxy.
func TestAllowIPsOverHTTP(t *testing.T) {
	basicOK := func(xff ...string) http.Header {
		h := http.Header{"Authorization": {basic(edgeUser, basicOld)}}
		if len(xff) > 0 {
			h["X-Forwarded-For"] = xff
		}
		return h
	}
	cases := []struct {
		name    string
		trusted bool // the server trusts 127.0.0.1/32 as a proxy
		header  http.Header
		ok      bool
	}{
		{"no proxy trusted: the peer 127.0.0.1", false, basicOK(), false},
		{"no proxy trusted: the forwarded header is ignored", false, basicOK("192.0.2.10"), false},
		{"no proxy trusted: two hops ignored", false, basicOK("198.51.100.1, 192.0.2.10"), false},
		{"trusted proxy: right-most untrusted hop inside", true, basicOK("198.51.100.1, 192.0.2.10"), true},
		{"trusted proxy: right-most untrusted hop outside", true, basicOK("192.0.2.10, 198.51.100.1"), false},
		{"trusted proxy: a trusted hop is skipped", true, basicOK("192.0.2.10, 127.0.0.1"), true},
		{"trusted proxy: the header on two lines", true, basicOK("198.51.100.1", "192.0.2.10"), true},
		{"trusted proxy: no forwarded header, the proxy itself", true, basicOK(), false},
		{"trusted proxy: a garbled hop, the peer", true, basicOK("192.0.2.10, not-an-address"), false},
	}
	servers := map[bool]*testServer{
		false: startServer(t, edgeConfig(t, bothSecrets, officeConns, "")),
		true:  startServer(t, edgeConfig(t, bothSecrets, officeConns, "server:\n  trusted_proxies: [\"127.0.0.1/32\"]\n")),
	}
	var accepted, refused []delivered
	wantRejected := map[bool]int64{}
	for i, c := range cases {
		s := servers[c.trusted]
		d := delivered{conn: "office", id: 8000 + i, summary: c.name}
		r := s.post(t, "office", "", c.header, edgeTicket(d.id, d.summary))
		if c.ok {
			wantAccepted(t, c.name, r, 1)
			accepted = append(accepted, d)
			servers[c.trusted].wantStored(t, []delivered{d})
			continue
		}
		wantRefused(t, c.name, r, http.StatusForbidden, ingest.CodeForbidden)
		refused = append(refused, d)
		wantRejected[c.trusted]++
	}
	for trusted, s := range servers {
		st := s.waitStatus(t, pollTimeout, "the queue drained", drained)
		if got := st.count(metrics.DeliveriesRejected, "office", ingest.ReasonIPNotAllowed); got != wantRejected[trusted] {
			t.Errorf("server trusting a proxy %v: DeliveriesRejected{office, %s} = %d, want %d", trusted, ingest.ReasonIPNotAllowed, got, wantRejected[trusted])
		}
		var want int64
		if trusted {
			want = int64(len(accepted))
		}
		if got := st.count(metrics.ChangesEnqueued, "office", ""); got != want {
			t.Errorf("server trusting a proxy %v: ChangesEnqueued{office} = %d, want %d (only the accepted deliveries)", trusted, got, want)
		}
		s.wantNotStored(t, refused)
	}
}

// zippedConns is a connection with a small body limit, for the gzip cases.
const zippedConns = `  - id: zipped
    webhook:
      max_body_bytes: 8192
      auth:
        - scheme: basic
          username: ` + edgeUser + `
          passwords: ["` + basicOld + `"]
`

// TestGzipOverHTTP: gzip bodies are accepted (an HMAC is over the compressed bytes as
// received), and a body that decompresses beyond the limit is refused without being
// queued.
func TestGzipOverHTTP(t *testing.T) {
	const limit = 8192
	s := startServer(t, edgeConfig(t, bothSecrets, zippedConns, ""))
	gzipped := func(h http.Header) http.Header {
		h.Set("Content-Encoding", "gzip")
		return h
	}
	var accepted []delivered

	d := delivered{conn: "zipped", id: 9001, summary: "gzip with basic"}
	r := s.post(t, d.conn, "", gzipped(http.Header{"Authorization": {basic(edgeUser, basicOld)}}), gz(t, edgeTicket(d.id, d.summary)))
	wantAccepted(t, d.summary, r, 1)
	accepted = append(accepted, d)

	d = delivered{conn: "hmac", id: 9002, summary: "gzip signed by HMAC over the compressed bytes"}
	zipped := gz(t, edgeTicket(d.id, d.summary))
	r = s.post(t, d.conn, "", gzipped(http.Header{"Token": {authtest.HMACBase64(hmacNew, zipped)}}), zipped)
	wantAccepted(t, d.summary, r, 1)
	accepted = append(accepted, d)

	plain := edgeTicket(9003, "gzip signed over the decompressed bytes")
	r = s.post(t, "hmac", "", gzipped(http.Header{"Token": {authtest.HMACBase64(hmacNew, plain)}}), gz(t, plain))
	wantRefused(t, "an HMAC of the decompressed body", r, http.StatusUnauthorized, ingest.CodeUnauthorized)

	// A bomb: small enough as received, far over the limit once decompressed.
	bomb := gz(t, bytes.Repeat([]byte(" "), 10*limit))
	if len(bomb) >= limit {
		t.Fatalf("the bomb is %d bytes compressed; it must be under the %d-byte limit to test the decompressed cap", len(bomb), limit)
	}
	r = s.post(t, "zipped", "", gzipped(http.Header{"Authorization": {basic(edgeUser, basicOld)}}), bomb)
	wantRefused(t, "a gzip bomb", r, http.StatusRequestEntityTooLarge, ingest.CodeTooLarge)

	s.wantStored(t, accepted)
	st := s.waitStatus(t, pollTimeout, "the queue drained", drained)
	if got := st.count(metrics.DeliveriesRejected, "zipped", ingest.ReasonDecompressedTooLarge); got != 1 {
		t.Errorf("DeliveriesRejected{zipped, %s} = %d, want 1", ingest.ReasonDecompressedTooLarge, got)
	}
	if got := st.total(metrics.ChangesEnqueued); got != int64(len(accepted)) {
		t.Errorf("ChangesEnqueued = %d, want %d (the refused deliveries queued nothing)", got, len(accepted))
	}
	s.wantNotStored(t, []delivered{{conn: "hmac", id: 9003}})
}

// receivedLog wraps the embedded queue and records every message the pump receives
// from it, as the worker will see it: what went through SQLite.
type receivedLog struct {
	*sqlite.Queue
	mu   sync.Mutex
	msgs []message.Received
}

func (r *receivedLog) Receive(ctx context.Context, max int, wait time.Duration) ([]message.Received, error) {
	msgs, err := r.Queue.Receive(ctx, max, wait)
	r.mu.Lock()
	r.msgs = append(r.msgs, msgs...)
	r.mu.Unlock()
	return msgs, err
}

// attributesOf returns the attributes of the received messages about ticket id.
func (r *receivedLog) attributesOf(t *testing.T, id int) []map[string]string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, m := range r.msgs {
		var e message.Envelope
		if err := json.Unmarshal(m.Body, &e); err != nil {
			t.Fatalf("a received message is not an envelope: %v: %s", err, m.Body)
		}
		if e.Change.ID == strconv.Itoa(id) {
			out = append(out, m.Attributes)
		}
	}
	return out
}

const routedConns = `  - id: routed
    webhook:
      auth:
        - scheme: basic
          username: ` + edgeUser + `
          passwords: ["` + basicOld + `"]
      routing_headers: [X-Team]
`

// TestRoutingHeadersTravelThroughTheEmbeddedQueue: a configured routing header sent over
// HTTP travels on the queued change as a message attribute, through SQLite to the pump;
// other headers do not.
func TestRoutingHeadersTravelThroughTheEmbeddedQueue(t *testing.T) {
	var rec *receivedLog
	s := startServer(t, edgeConfig(t, bothSecrets, routedConns, ""),
		wrappingQueue(func(q *sqlite.Queue) localserver.Queue {
			rec = &receivedLog{Queue: q}
			return rec
		}))
	auth := basic(edgeUser, basicOld)
	withTeam := delivered{conn: "routed", id: 9101, summary: "with a team"}
	wantAccepted(t, withTeam.summary, s.post(t, "routed", "", http.Header{
		"Authorization": {auth}, "X-Team": {"noc"}, "X-Other": {"not configured"},
	}, edgeTicket(withTeam.id, withTeam.summary)), 1)
	without := delivered{conn: "routed", id: 9102, summary: "without a team"}
	wantAccepted(t, without.summary, s.post(t, "routed", "", http.Header{"Authorization": {auth}},
		edgeTicket(without.id, without.summary)), 1)
	s.wantStored(t, []delivered{withTeam, without})

	base := map[string]string{message.AttrConnection: "routed", message.AttrKind: "ticket", message.AttrSource: "webhook"}
	for _, c := range []struct {
		d    delivered
		want map[string]string
	}{
		{withTeam, map[string]string{"x-team": "noc"}},
		{without, nil},
	} {
		want := maps.Clone(base)
		maps.Copy(want, c.want)
		got := rec.attributesOf(t, c.d.id)
		if len(got) != 1 {
			t.Fatalf("%s: the pump received %d messages about ticket %d, want 1", c.d.summary, len(got), c.d.id)
		}
		if !maps.Equal(got[0], want) {
			t.Errorf("%s: message attributes %v, want %v", c.d.summary, got[0], want)
		}
	}
}
