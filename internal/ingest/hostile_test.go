package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
)

// Secrets of the edge tests' connections: every scheme, each with an old and a new secret.
const (
	hmacOld, hmacNew   = "hmac-secret-old-0001", "hmac-secret-new-0002"
	tokenOld, tokenNew = "token-old-000000001", "token-new-000000002"
	pathOld, pathNew   = "path-secret-old-00001", "path-secret-new-00002"
	limit              = 8192
)

var (
	whsecOld = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-old"))
	whsecNew = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-new"))
)

func edgeConfig() *config.Config {
	conn := func(id string, auth ...config.AuthScheme) config.Connection {
		return config.Connection{ID: id, Webhook: config.Webhook{MaxBodyBytes: limit, Auth: auth}}
	}
	basicAuth := config.AuthScheme{Scheme: "basic", Username: user, Passwords: []string{oldPass, newPass}}
	office := conn("office", basicAuth)
	office.Webhook.AllowIPs = []string{"203.0.113.0/24", "2001:db8::/32"}
	filtered := conn("filtered", basicAuth)
	filtered.Webhook.Filters.Clients.Deny = []string{"12"}
	routed := conn("routed", basicAuth)
	routed.Webhook.RoutingHeaders = []string{"X-Team", "X-Urgency"}
	return &config.Config{Connections: []config.Connection{
		conn("basic", basicAuth),
		conn("signed", config.AuthScheme{Scheme: "hmac", Header: "Token", Secrets: []string{hmacOld, hmacNew}}),
		conn("signedhex", config.AuthScheme{Scheme: "hmac", Header: "X-Signature", Prefix: "sha256=", Encoding: "hex", Secrets: []string{hmacOld, hmacNew}}),
		conn("stdwh", config.AuthScheme{Scheme: "signed-timestamp", Secrets: []string{whsecOld, whsecNew}}),
		conn("token", config.AuthScheme{Scheme: "header", Header: "Authorization", Prefix: "Bearer ", Tokens: []string{tokenOld, tokenNew}}),
		conn("path", config.AuthScheme{Scheme: "path-secret", Secrets: []string{pathOld, pathNew}}),
		office, filtered, routed,
	}}
}

// stdSign returns Standard Webhooks headers for body, signed with a whsec_ secret, with a
// JSON content type.
func stdSign(secret, id string, ts time.Time, body []byte) map[string]string {
	return with(authtest.StandardWebhooks(secret, id, ts, body), "content-type", "application/json")
}

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
			continue
		}
		out[kv[i]] = kv[i+1]
	}
	return out
}

func nested(depth int) []byte {
	return []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":{"id":1,"x":` +
		strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + "}}")
}

func manyEvents(n int) []byte {
	ev := `{}`
	return []byte("[" + strings.Repeat(ev+",", n-1) + ev + "]")
}

// TestHostileDeliveries: every malformed, forged or unwanted delivery gets its status and
// stable error code, is counted and logged once with its reason, and enqueues nothing.
func TestHostileDeliveries(t *testing.T) {
	body := []byte(ticketBody)
	now := time.Now()
	jsonCT := map[string]string{"content-type": "application/json"}
	basicOK := with(jsonCT, "authorization", authtest.Basic(user, oldPass))
	reserialized, _ := json.Marshal(json.RawMessage(body)) // the same JSON, compacted
	bomb := authtest.Gzip(t, bytes.Repeat([]byte(" "), 10*limit))
	cases := []struct {
		name   string
		conn   string
		secret string // path segment
		method string
		header map[string]string
		body   []byte
		b64    bool
		ip     string
		status int
		code   string
		reason string
	}{
		// Basic
		{name: "basic: no credentials", conn: "basic", header: jsonCT, status: 401, code: "unauthorized", reason: "credentials_missing"},
		{name: "basic: wrong password", conn: "basic", header: with(jsonCT, "authorization", authtest.Basic(user, "not-the-password")), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "basic: wrong user", conn: "basic", header: with(jsonCT, "authorization", authtest.Basic("root", oldPass)), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "basic: credentials not base64", conn: "basic", header: with(jsonCT, "authorization", "Basic ***"), status: 401, code: "unauthorized", reason: "credentials_malformed"},
		{name: "basic: no colon", conn: "basic", header: with(jsonCT, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+oldPass))), status: 401, code: "unauthorized", reason: "credentials_malformed"},
		{name: "basic: bearer instead", conn: "basic", header: with(jsonCT, "authorization", "Bearer "+oldPass), status: 401, code: "unauthorized"},
		{name: "basic: password of another connection's scheme", conn: "basic", header: with(jsonCT, "authorization", authtest.Basic(user, tokenOld)), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		// HMAC of the body
		{name: "hmac: no signature", conn: "signed", header: jsonCT, status: 401, code: "unauthorized", reason: "credentials_missing"},
		{name: "hmac: tampered body", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacOld, body)), body: bytes.Replace(body, []byte("Printer"), []byte("Printes"), 1), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "hmac: body re-serialized after signing", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacOld, body)), body: reserialized, status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "hmac: hex where base64 is configured", conn: "signed", header: with(jsonCT, "token", authtest.HMACHex(hmacOld, body)), status: 401, code: "unauthorized"},
		{name: "hmac: base64 where hex is configured", conn: "signedhex", header: with(jsonCT, "x-signature", "sha256="+authtest.HMACBase64(hmacOld, body)), status: 401, code: "unauthorized"},
		{name: "hmac: prefix missing", conn: "signedhex", header: with(jsonCT, "x-signature", authtest.HMACHex(hmacOld, body)), status: 401, code: "unauthorized"},
		{name: "hmac: unknown secret", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64("a-secret-nobody-set", body)), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "hmac: truncated signature", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacOld, body)[:20]), status: 401, code: "unauthorized"},
		{name: "hmac: signature of the gzip body's content", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacOld, body), "content-encoding", "gzip"), body: authtest.Gzip(t, body), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		// Standard Webhooks
		{name: "signed timestamp: too old", conn: "stdwh", header: stdSign(whsecOld, "msg_1", now.Add(-10*time.Minute), body), status: 401, code: "unauthorized", reason: "timestamp_out_of_window"},
		{name: "signed timestamp: in the future", conn: "stdwh", header: stdSign(whsecOld, "msg_1", now.Add(10*time.Minute), body), status: 401, code: "unauthorized", reason: "timestamp_out_of_window"},
		{name: "signed timestamp: not a number", conn: "stdwh", header: with(stdSign(whsecOld, "msg_1", now, body), "webhook-timestamp", "yesterday"), status: 401, code: "unauthorized"},
		{name: "signed timestamp: no id", conn: "stdwh", header: with(stdSign(whsecOld, "msg_1", now, body), "webhook-id", ""), status: 401, code: "unauthorized"},
		{name: "signed timestamp: signature of another message id", conn: "stdwh", header: with(stdSign(whsecOld, "msg_1", now, body), "webhook-id", "msg_2"), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "signed timestamp: only a v2 signature", conn: "stdwh", header: with(stdSign(whsecOld, "msg_1", now, body), "webhook-signature", "v2,"+authtest.HMACBase64("x", body)), status: 401, code: "unauthorized"},
		{name: "signed timestamp: replayed body under a new timestamp", conn: "stdwh", header: with(stdSign(whsecOld, "msg_1", now.Add(-10*time.Minute), body), "webhook-timestamp", strconv.FormatInt(now.Unix(), 10)), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		// Header token
		{name: "header: wrong token", conn: "token", header: with(jsonCT, "authorization", "Bearer not-the-token-at-all"), status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "header: basic instead of bearer", conn: "token", header: with(jsonCT, "authorization", authtest.Basic(user, tokenOld)), status: 401, code: "unauthorized"},
		{name: "header: no token", conn: "token", header: jsonCT, status: 401, code: "unauthorized", reason: "credentials_missing"},
		// Path secret
		{name: "path secret: none", conn: "path", header: jsonCT, status: 401, code: "unauthorized", reason: "credentials_missing"},
		{name: "path secret: wrong", conn: "path", secret: "not-the-path-secret-000", header: jsonCT, status: 401, code: "unauthorized", reason: "credentials_wrong"},
		{name: "path secret: another connection's", conn: "basic", secret: pathOld, header: jsonCT, status: 401, code: "unauthorized"},
		// Where it comes from
		{name: "ip: outside the allowlist", conn: "office", header: basicOK, ip: "198.51.100.7", status: 403, code: "forbidden", reason: "ip_not_allowed"},
		{name: "ip: IPv6 outside the allowlist", conn: "office", header: basicOK, ip: "2001:db9::1", status: 403, code: "forbidden", reason: "ip_not_allowed"},
		{name: "ip: unreadable source address", conn: "office", header: basicOK, ip: "not-an-ip", status: 403, code: "forbidden", reason: "ip_not_allowed"},
		{name: "unknown connection", conn: "nobody", header: basicOK, status: 404, code: "unknown_connection", reason: "unknown_connection"},
		// Method, size, type, encoding
		{name: "GET", conn: "basic", method: "GET", header: basicOK, status: 405, code: "method_not_allowed"},
		{name: "PUT", conn: "basic", method: "PUT", header: basicOK, status: 405, code: "method_not_allowed"},
		{name: "oversize body", conn: "basic", header: basicOK, body: append(bytes.Repeat([]byte(" "), limit), body...), status: 413, code: "body_too_large"},
		{name: "oversize body without credentials", conn: "basic", header: jsonCT, body: bytes.Repeat([]byte("x"), limit+1), status: 413, code: "body_too_large"},
		{name: "gzip bomb", conn: "basic", header: with(basicOK, "content-encoding", "gzip"), body: bomb, status: 413, code: "body_too_large", reason: "decompressed_too_large"},
		{name: "broken gzip", conn: "basic", header: with(basicOK, "content-encoding", "gzip"), body: authtest.Gzip(t, body)[:30], status: 400, code: "unreadable_body", reason: "bad_gzip"},
		{name: "not gzip at all", conn: "basic", header: with(basicOK, "content-encoding", "gzip"), body: body, status: 400, code: "unreadable_body", reason: "bad_gzip"},
		{name: "brotli", conn: "basic", header: with(basicOK, "content-encoding", "br"), status: 415, code: "unsupported_media_type"},
		{name: "text/plain", conn: "basic", header: with(basicOK, "content-type", "text/plain"), status: 415, code: "unsupported_media_type"},
		{name: "form encoded", conn: "basic", header: with(basicOK, "content-type", "application/x-www-form-urlencoded"), status: 415, code: "unsupported_media_type"},
		{name: "no content type", conn: "basic", header: with(basicOK, "content-type", ""), status: 415, code: "unsupported_media_type"},
		{name: "JSON in latin-1", conn: "basic", header: with(basicOK, "content-type", "application/json; charset=iso-8859-1"), status: 415, code: "unsupported_media_type"},
		// Bodies
		{name: "empty body", conn: "basic", header: basicOK, body: []byte{}, status: 400, code: "unreadable_body", reason: "empty_body"},
		{name: "whitespace body", conn: "basic", header: basicOK, body: []byte(" \n\t "), status: 400, code: "unreadable_body", reason: "empty_body"},
		{name: "not JSON", conn: "basic", header: basicOK, body: []byte("event=ticket+updated"), status: 400, code: "unreadable_body", reason: "invalid_json"},
		{name: "truncated JSON", conn: "basic", header: basicOK, body: body[:len(body)/2], status: 400, code: "unreadable_body", reason: "invalid_json"},
		{name: "a JSON string", conn: "basic", header: basicOK, body: []byte(`"ticket updated"`), status: 400, code: "unreadable_body"},
		{name: "a JSON number", conn: "basic", header: basicOK, body: []byte(`4242`), status: 400, code: "unreadable_body"},
		{name: "null", conn: "basic", header: basicOK, body: []byte(`null`), status: 400, code: "unreadable_body"},
		{name: "event name a number", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":61,"object_id":1}`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "object id a boolean", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":true}`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "ticket a string", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":"4242"}`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "unreadable timestamp", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"timestamp":"soon"}`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "an array holding a number", conn: "basic", header: basicOK, body: []byte(`[` + ticketBody + `,7]`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "deep nesting", conn: "basic", header: basicOK, body: nested(40), status: 400, code: "unreadable_body", reason: "too_deep"},
		{name: "huge array", conn: "basic", header: basicOK, body: manyEvents(1001), status: 400, code: "unreadable_body", reason: "too_many_events"},
		{name: "duplicate keys", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"object_id":2}`), status: 400, code: "unreadable_body", reason: "duplicate_key"},
		{name: "duplicate keys, one escaped", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":{"id":1,"summary":"a","summ\u0061ry":"b"}}`), status: 400, code: "unreadable_body", reason: "duplicate_key"},
		{name: "invalid UTF-8", conn: "basic", header: basicOK, body: []byte("{\"id\":\"d\",\"event\":\"ticket updated\",\"object_id\":1,\"ticket\":{\"id\":1,\"summary\":\"\xff\xfe\"}}"), status: 400, code: "unreadable_body", reason: "invalid_utf8"},
		{name: "events wrapper in two cases", conn: "basic", header: basicOK, body: []byte(`{"events":[` + ticketBody + `],"Events":[{"id":"d","event":"ticket deleted","object_id":4242}]}`), status: 400, code: "unreadable_body", reason: "duplicate_key"},
		{name: "nested keys in two cases", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":{"id":1,"status_id":1,"Status_ID":9}}`), status: 400, code: "unreadable_body", reason: "duplicate_key"},
		{name: "id -0", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":-0}`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "id with an exponent", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":{"id":"1e3"}}`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "id with a sign", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":"+12"}`), status: 400, code: "unreadable_body", reason: "not_an_event"},
		{name: "number beyond a float64", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":{"id":1,"cost":1e400}}`), status: 400, code: "unreadable_body", reason: "number_out_of_range"},
		{name: "number below a float64", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":{"id":1,"cost":-1e-400}}`), status: 400, code: "unreadable_body", reason: "number_out_of_range"},
		{name: "lone surrogate", conn: "basic", header: basicOK, body: []byte(`{"id":"d","event":"ticket updated","object_id":1,"ticket":{"id":1,"summary":"\ud800"}}`), status: 400, code: "unreadable_body", reason: "invalid_utf8"},
		{name: "bad base64 from API Gateway", conn: "basic", header: basicOK, body: []byte("!!not base64!!"), b64: true, status: 400, code: "unreadable_body", reason: "bad_base64"},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d hostile deliveries", len(cases))
	}
	secrets := []string{oldPass, newPass, hmacOld, hmacNew, tokenOld, tokenNew, pathOld, pathNew, whsecOld, whsecNew, "Printer"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &recorder{}
			counts := metrics.NewMemory()
			var logs bytes.Buffer
			conns, err := connection.CompileAll(edgeConfig())
			if err != nil {
				t.Fatal(err)
			}
			h := ingest.New(conns, q, counts, slog.New(slog.NewJSONHandler(&logs, nil)))
			req := ingest.Request{Connection: tc.conn, PathSecret: tc.secret, Method: "POST", Header: tc.header, Body: tc.body, Base64: tc.b64, SourceIP: "203.0.113.9"}
			if tc.method != "" {
				req.Method = tc.method
			}
			if tc.body == nil {
				req.Body = body
			}
			if tc.ip != "" {
				req.SourceIP = tc.ip
			}
			resp := h.Handle(context.Background(), req)
			var got struct{ Error, Message string }
			if err := json.Unmarshal(resp.Body, &got); err != nil {
				t.Fatalf("body %q: %v", resp.Body, err)
			}
			if resp.Status != tc.status || got.Error != tc.code || got.Message == "" {
				t.Fatalf("answer %d %s, want %d %s", resp.Status, resp.Body, tc.status, tc.code)
			}
			if len(q.msgs) != 0 {
				t.Fatalf("%d messages enqueued", len(q.msgs))
			}
			// Every delivery's time is measured; besides it, one rejection is counted.
			rejected := slices.DeleteFunc(counts.Snapshot(), func(e metrics.Entry) bool { return e.Name == metrics.IngestDuration })
			if len(rejected) != 1 || rejected[0].Name != metrics.DeliveriesRejected || rejected[0].Value != 1 {
				t.Fatalf("counters %+v, want one rejection", rejected)
			}
			if tc.reason != "" && rejected[0].Label != tc.reason {
				t.Fatalf("counted as %q, want %q", rejected[0].Label, tc.reason)
			}
			line := logs.String()
			if strings.Count(line, "\n") != 1 || !strings.Contains(line, `"reason":"`+rejected[0].Label+`"`) {
				t.Fatalf("want one log line with the reason, got %q", line)
			}
			for _, s := range append(secrets, tc.secret) {
				if s != "" && strings.Contains(line, s) {
					t.Fatalf("the log line carries %q: %s", s, line)
				}
			}
			for _, v := range tc.header {
				if len(v) > 12 && strings.Contains(line, v) {
					t.Fatalf("the log line carries a header value: %s", line)
				}
			}
		})
	}
}

// TestGenuineDeliveries: each scheme accepts both of its secrets (a rotation loses no
// delivery), and the edge's other options let wanted deliveries through.
func TestGenuineDeliveries(t *testing.T) {
	body := []byte(ticketBody)
	jsonCT := map[string]string{"content-type": "application/json"}
	basicOK := with(jsonCT, "authorization", authtest.Basic(user, oldPass))
	now := time.Now()
	cases := []struct {
		name     string
		conn     string
		secret   string
		header   map[string]string
		body     []byte
		ip       string
		status   string
		enqueued int
		attrs    map[string]string
	}{
		{name: "basic, old password", conn: "basic", header: basicOK},
		{name: "basic, new password", conn: "basic", header: with(jsonCT, "authorization", authtest.Basic(user, newPass))},
		{name: "hmac, old secret", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacOld, body))},
		{name: "hmac, new secret", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacNew, body))},
		{name: "hmac hex with prefix", conn: "signedhex", header: with(jsonCT, "x-signature", "sha256="+authtest.HMACHex(hmacNew, body))},
		{name: "hmac over the gzip bytes received", conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacOld, authtest.Gzip(t, body)), "content-encoding", "gzip"), body: authtest.Gzip(t, body)},
		{name: "signed timestamp, old secret", conn: "stdwh", header: stdSign(whsecOld, "msg_1", now, body)},
		{name: "signed timestamp, new secret, 4 minutes old", conn: "stdwh", header: stdSign(whsecNew, "msg_2", now.Add(-4*time.Minute), body)},
		{name: "header token, old", conn: "token", header: with(jsonCT, "authorization", "Bearer "+tokenOld)},
		{name: "header token, new", conn: "token", header: with(jsonCT, "authorization", "Bearer "+tokenNew)},
		{name: "path secret, old", conn: "path", secret: pathOld, header: jsonCT},
		{name: "path secret, new", conn: "path", secret: pathNew, header: jsonCT},
		{name: "allowlisted address", conn: "office", header: basicOK, ip: "203.0.113.200"},
		{name: "allowlisted IPv6 address", conn: "office", header: basicOK, ip: "2001:db8::5"},
		{name: "gzip", conn: "basic", header: with(basicOK, "content-encoding", "gzip"), body: authtest.Gzip(t, body)},
		{name: "charset utf-8 and a +json type", conn: "basic", header: with(basicOK, "content-type", "application/vnd.halo+json; charset=UTF-8")},
		{name: "filtered client", conn: "filtered", header: basicOK, status: "filtered", enqueued: -1},
		{name: "routing headers", conn: "routed", header: with(basicOK, "x-team", "noc", "x-urgency", "high", "x-other", "ignored"), attrs: map[string]string{"x-team": "noc", "x-urgency": "high"}},
		{name: "an empty batch", conn: "basic", header: basicOK, body: []byte(`[]`), enqueued: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &recorder{}
			counts := metrics.NewMemory()
			conns, err := connection.CompileAll(edgeConfig())
			if err != nil {
				t.Fatal(err)
			}
			h := ingest.New(conns, q, counts, slog.New(slog.DiscardHandler))
			req := ingest.Request{Connection: tc.conn, PathSecret: tc.secret, Method: "POST", Header: tc.header, Body: tc.body, SourceIP: "203.0.113.9"}
			if tc.body == nil {
				req.Body = body
			}
			if tc.ip != "" {
				req.SourceIP = tc.ip
			}
			resp := h.Handle(context.Background(), req)
			want, enqueued := tc.status, tc.enqueued
			if want == "" {
				want = "accepted"
			}
			switch enqueued {
			case 0:
				enqueued = 1
			case -1:
				enqueued = 0
			}
			var got struct {
				Status  string
				Changes int
			}
			_ = json.Unmarshal(resp.Body, &got)
			if resp.Status != http.StatusOK || got.Status != want || len(q.msgs) != enqueued || got.Changes != enqueued {
				t.Fatalf("answer %d %s with %d messages; want 200 %s with %d", resp.Status, resp.Body, len(q.msgs), want, enqueued)
			}
			for k, v := range tc.attrs {
				if q.msgs[0].Attributes[k] != v {
					t.Fatalf("attribute %s = %q, want %q (all: %v)", k, q.msgs[0].Attributes[k], v, q.msgs[0].Attributes)
				}
			}
			if tc.attrs != nil && q.msgs[0].Attributes["x-other"] != "" {
				t.Fatal("an unconfigured header was carried")
			}
			if tc.status == "filtered" {
				if n := counts.Value(metrics.Metric{Name: metrics.ChangesFiltered, Connection: tc.conn, Label: "client_denied"}); n != 1 {
					t.Fatalf("filtered count %d; counters %+v", n, counts.Snapshot())
				}
			}
		})
	}
}
