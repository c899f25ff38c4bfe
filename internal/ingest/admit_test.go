package ingest_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
)

// TestAdmitBeforeTheBody: without the body, Admit refuses what the headers and path
// already condemn (credentials too, when no scheme of the connection reads the body), each
// counted and logged once, and admits the rest for Handle to check in full.
func TestAdmitBeforeTheBody(t *testing.T) {
	jsonCT := map[string]string{"content-type": "application/json"}
	basicOK := with(jsonCT, "authorization", authtest.Basic(user, oldPass))
	basicWrong := with(jsonCT, "authorization", authtest.Basic(user, "not-the-password"))
	cfg := edgeConfig()
	cfg.Connections = append(cfg.Connections, config.Connection{ID: "either", Webhook: config.Webhook{MaxBodyBytes: limit, Auth: []config.AuthScheme{
		{Scheme: "basic", Username: user, Passwords: []string{oldPass}},
		{Scheme: "hmac", Header: "Token", Secrets: []string{hmacOld}},
	}}})
	cases := []struct {
		name   string
		conn   string
		secret string
		method string
		header map[string]string
		length int64
		ip     string
		status int    // 0: admitted
		reason string // the counted reason
	}{
		{name: "basic: right password", conn: "basic", header: basicOK},
		{name: "basic: wrong password", conn: "basic", header: basicWrong, status: 401, reason: "credentials_wrong"},
		{name: "basic: no credentials", conn: "basic", header: jsonCT, status: 401, reason: "credentials_missing"},
		{name: "header token: wrong", conn: "token", header: with(jsonCT, "authorization", "Bearer not-the-token"), status: 401, reason: "credentials_wrong"},
		{name: "header token: right", conn: "token", header: with(jsonCT, "authorization", "Bearer "+tokenNew)},
		{name: "path secret: wrong", conn: "path", secret: "not-the-path-secret-000", header: jsonCT, status: 401, reason: "credentials_wrong"},
		{name: "path secret: right", conn: "path", secret: pathOld, header: jsonCT},
		{name: "hmac: judged with the body", conn: "signed", header: jsonCT},
		{name: "signed timestamp: judged with the body", conn: "stdwh", header: jsonCT},
		{name: "basic or hmac: judged with the body", conn: "either", header: basicWrong},
		{name: "declared length over the limit, no credentials", conn: "basic", header: jsonCT, length: limit + 1, status: 413, reason: "body_too_large"},
		{name: "declared length over the limit, hmac", conn: "signed", header: jsonCT, length: 1 << 30, status: 413, reason: "body_too_large"},
		{name: "declared length at the limit", conn: "basic", header: basicOK, length: limit},
		{name: "length not declared", conn: "basic", header: basicOK, length: -1},
		{name: "GET", conn: "basic", method: "GET", header: basicOK, status: 405, reason: "method_not_allowed"},
		{name: "unknown connection", conn: "nobody", header: basicOK, status: 404, reason: "unknown_connection"},
		{name: "outside the allowlist", conn: "office", header: basicOK, ip: "198.51.100.7", status: 403, reason: "ip_not_allowed"},
		{name: "not JSON", conn: "signed", header: with(jsonCT, "content-type", "text/plain"), status: 415, reason: "content_type_not_json"},
		{name: "brotli", conn: "signed", header: with(jsonCT, "content-encoding", "br"), status: 415, reason: "content_encoding_unsupported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &recorder{}
			counts := metrics.NewMemory()
			var logs bytes.Buffer
			conns, err := connection.CompileAll(cfg)
			if err != nil {
				t.Fatal(err)
			}
			h := ingest.New(conns, q, counts, slog.New(slog.NewJSONHandler(&logs, nil)))
			req := ingest.Request{Connection: tc.conn, PathSecret: tc.secret, Method: "POST", Header: tc.header, ContentLength: tc.length, SourceIP: "203.0.113.9"}
			if tc.method != "" {
				req.Method = tc.method
			}
			if tc.ip != "" {
				req.SourceIP = tc.ip
			}
			resp, ok := h.Admit(context.Background(), req)
			if tc.status == 0 {
				if !ok || len(counts.Snapshot()) != 0 || logs.Len() != 0 {
					t.Fatalf("refused %d %s (counters %+v); want admitted, uncounted", resp.Status, resp.Body, counts.Snapshot())
				}
				return
			}
			if ok || resp.Status != tc.status {
				t.Fatalf("Admit = %d %s, %v; want %d", resp.Status, resp.Body, ok, tc.status)
			}
			got := counts.Snapshot()
			if len(got) != 1 || got[0].Name != metrics.DeliveriesRejected || got[0].Label != tc.reason || got[0].Value != 1 {
				t.Fatalf("counters %+v, want one rejection for %s", got, tc.reason)
			}
			if line := logs.String(); strings.Count(line, "\n") != 1 || !strings.Contains(line, `"reason":"`+tc.reason+`"`) || strings.Contains(line, oldPass) {
				t.Fatalf("want one log line with the reason and no secret, got %q", line)
			}
			if len(q.msgs) != 0 {
				t.Fatalf("%d messages enqueued", len(q.msgs))
			}
		})
	}
}
