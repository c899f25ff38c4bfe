package lambdae2e

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
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

// edgeYAML is the configuration document of the edge test (HALOSYNC_CONFIG_FILE): one
// connection per scheme, each holding two secrets, an allowlisted connection and one with
// a routing header.
var edgeYAML = `connections:
  - id: basic
    webhook:
      auth:
        - scheme: basic
          username: ` + edgeUser + `
          passwords: ["` + basicOld + `", "` + basicNew + `"]
  - id: bearer
    webhook:
      auth:
        - scheme: header
          header: Authorization
          prefix: "Bearer "
          tokens: ["` + tokenOld + `", "` + tokenNew + `"]
  - id: hmac
    webhook:
      auth:
        - scheme: hmac
          header: Token
          secrets: ["` + hmacOld + `", "` + hmacNew + `"]
  - id: hmachex
    webhook:
      auth:
        - scheme: hmac
          header: X-Signature
          prefix: "sha256="
          encoding: hex
          secrets: ["` + hmacOld + `", "` + hmacNew + `"]
  - id: stdwh
    webhook:
      auth:
        - scheme: signed-timestamp
          secrets: ["` + whsecOld + `", "` + whsecNew + `"]
  - id: path
    webhook:
      auth:
        - scheme: path-secret
          secrets: ["` + pathOld + `", "` + pathNew + `"]
  - id: office
    webhook:
      auth:
        - scheme: basic
          username: ` + edgeUser + `
          passwords: ["` + basicOld + `"]
      allow_ips: ["192.0.2.0/24"]
  - id: routed
    webhook:
      auth:
        - scheme: basic
          username: ` + edgeUser + `
          passwords: ["` + basicOld + `"]
      routing_headers: [X-Team]
`

// edgeScheme is how a sender authenticates a delivery to one of edgeYAML's connections.
type edgeScheme struct {
	conn            string
	old, new, wrong string
	// sign returns the path secret (path-secret only) and the (lower-case) headers that
	// authenticate body with secret.
	sign func(secret string, body []byte) (pathSecret string, h map[string]string)
}

func edgeSchemes() []edgeScheme {
	seq := 0
	return []edgeScheme{
		{"basic", basicOld, basicNew, wrongSecret, func(s string, _ []byte) (string, map[string]string) {
			return "", map[string]string{"authorization": authtest.Basic(edgeUser, s)}
		}},
		{"bearer", tokenOld, tokenNew, wrongSecret, func(s string, _ []byte) (string, map[string]string) {
			return "", map[string]string{"authorization": "Bearer " + s}
		}},
		{"hmac", hmacOld, hmacNew, wrongSecret, func(s string, body []byte) (string, map[string]string) {
			return "", map[string]string{"token": authtest.HMACBase64(s, body)}
		}},
		{"hmachex", hmacOld, hmacNew, wrongSecret, func(s string, body []byte) (string, map[string]string) {
			return "", map[string]string{"x-signature": "sha256=" + authtest.HMACHex(s, body)}
		}},
		{"stdwh", whsecOld, whsecNew, whsecWrong, func(s string, body []byte) (string, map[string]string) {
			seq++
			return "", authtest.StandardWebhooks(s, fmt.Sprintf("msg_edge_%d", seq), time.Now(), body)
		}},
		{"path", pathOld, pathNew, pathWrong, func(s string, _ []byte) (string, map[string]string) {
			return s, map[string]string{}
		}},
	}
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

// edgeTicket is a full-snapshot ticket delivery for ticket id, with its own delivery id
// and summary.
func edgeTicket(id int, summary string) []byte {
	return fmt.Appendf(nil, `{"id":"edge-delivery-%d","event":"ticket updated","object_id":%d,`+
		`"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":%d,"summary":%q,"client_id":12,`+
		`"status_id":2,"last_update":"2026-09-25T06:41:07.523"}}`, id, id, id, summary)
}

// edgeTicketVersion is the version edgeTicket's ticket is stored at (its last_update).
const edgeTicketVersion = "2026-09-25T06:41:07.523Z"

// delivery is one webhook delivery as API Gateway would hand it to ingest.
type delivery struct {
	conn, pathSecret string
	header           map[string]string // lower-case names, as API Gateway HTTP APIs send them
	body             []byte
	base64           bool   // API Gateway's isBase64Encoded: body is sent base64-encoded
	sourceIP         string // default 203.0.113.10
	noPathParams     bool   // leave pathParameters out: only rawPath names the connection
}

var edgeRequestSeq atomic.Int64

// event is the API Gateway HTTP API (payload 2.0) event of d, for the route
// POST /webhooks/halo/{connection} (or .../{connection}/{secret}).
func (d delivery) event() events.APIGatewayV2HTTPRequest {
	route := ingest.PathPrefix + "{connection}"
	path := ingest.PathPrefix + d.conn
	params := map[string]string{"connection": d.conn}
	if d.pathSecret != "" {
		route += "/{secret}"
		path += "/" + d.pathSecret
		params["secret"] = d.pathSecret
	}
	if d.noPathParams {
		params = nil
	}
	header := map[string]string{"content-type": "application/json", "user-agent": "Halo"}
	maps.Copy(header, d.header)
	body := string(d.body)
	if d.base64 {
		body = base64.StdEncoding.EncodeToString(d.body)
	}
	ip := d.sourceIP
	if ip == "" {
		ip = "203.0.113.10"
	}
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST " + route, RawPath: path, Headers: header, PathParameters: params,
		Body: body, IsBase64Encoded: d.base64,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: fmt.Sprintf("req-edge-%d", edgeRequestSeq.Add(1)), Stage: "$default", RouteKey: "POST " + route,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: http.MethodPost, Path: path, Protocol: "HTTP/1.1", SourceIP: ip, UserAgent: "Halo",
			},
		},
	}
}

// startEdgeIngest runs a second ingest function under the emulator on the stack's queue,
// configured by the document yaml (HALOSYNC_CONFIG_FILE), the way newStack runs the
// first with the example configuration.
func startEdgeIngest(t *testing.T, s *stack, yaml string) *function {
	t.Helper()
	bins := build(t)
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := append(awstest.ProcessEnv(t),
		"QUEUE_URL="+s.qURL,
		"TABLE_NAME="+s.table,
		"HALOSYNC_CONFIG_FILE="+cfgFile,
		"LOG_LEVEL=debug",
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(functionTimeout/time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_NAME=halosync-ingest",
		"HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"PATH=/usr/bin:/bin",
		"TZ=UTC",
	)
	fn, out := startFunction(t, bins.rie, "ingest-edge", bins.bootstrap["ingest"], env, warmupIngest)
	if r := decodeAs[events.APIGatewayV2HTTPResponse](t, fn, out); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("the edge ingest answered a GET with %d %s, want 405 (did the configuration load?)", r.StatusCode, r.Body)
	}
	return fn
}

// send invokes fn with d's event and checks the answer: status, and the error code of a
// refusal or the change count of an acceptance; and that the queue grew by exactly the
// changes accepted.
func (s *stack) send(t *testing.T, fn *function, label string, d delivery, status int, code string) {
	t.Helper()
	before := s.depth(t, s.qURL)
	resp := invokeAs[events.APIGatewayV2HTTPResponse](t, fn, d.event())
	want := 0
	var body struct {
		Status  string `json:"status"`
		Changes int    `json:"changes"`
		Error   string `json:"error"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("%s: ingest answered %d with a body that is not JSON: %q", label, resp.StatusCode, resp.Body)
	}
	switch {
	case resp.StatusCode != status:
		t.Fatalf("%s: ingest answered %d %s, want %d %s", label, resp.StatusCode, resp.Body, status, cmp.Or(code, "accepted"))
	case status == http.StatusOK:
		want = 1
		if body.Status != "accepted" || body.Changes != want {
			t.Fatalf("%s: ingest answered %s, want accepted with %d change", label, resp.Body, want)
		}
	case body.Error != code:
		t.Fatalf("%s: ingest answered %d %s, want error %q", label, resp.StatusCode, resp.Body, code)
	}
	if grew := s.depth(t, s.qURL) - before; grew != want {
		t.Fatalf("%s: the queue grew by %d messages, want %d", label, grew, want)
	}
}

// attributeLog is the player's consumer: the stack's queue, recording the message
// attributes of every message received.
type attributeLog struct {
	consumer
	mu    sync.Mutex
	attrs map[string]map[string]string // message id → attributes
	body  map[string][]byte
}

func (a *attributeLog) Receive(ctx context.Context, max int, wait time.Duration) ([]message.Received, error) {
	msgs, err := a.consumer.Receive(ctx, max, wait)
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range msgs {
		a.attrs[m.ID], a.body[m.ID] = m.Attributes, m.Body
	}
	return msgs, err
}

// ofTicket returns the attributes of the messages received about ticket id.
func (a *attributeLog) ofTicket(t *testing.T, id int) []map[string]string {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]string
	for mid, b := range a.body {
		var e message.Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("message %s is not an envelope: %v: %s", mid, err, b)
		}
		if e.Change.ID == strconv.Itoa(id) {
			out = append(out, a.attrs[mid])
		}
	}
	return out
}

// accepted is a delivery answered 200: where its ticket must be stored.
type accepted struct {
	conn, summary string
	id            int
}

// TestEverySchemeThroughTheEmulator plays API Gateway to an ingest function configured
// with every scheme, two secrets each: both secrets of every scheme are accepted, a secret
// nobody set is refused; the allowlist is checked against requestContext.http.sourceIp;
// then the event source mapping feeds the worker and every accepted ticket is in DynamoDB
// Local, and no refused one.
func TestEverySchemeThroughTheEmulator(t *testing.T) {
	t.Parallel()
	s := newStack(t, "edge")
	fn := startEdgeIngest(t, s, edgeYAML)

	var ok []accepted
	var refused []accepted
	rejected := counts{{Name: metrics.DeliveriesRejected, Connection: "_unknown", Label: "method_not_allowed"}: 1} // the warm-up
	for i, sc := range edgeSchemes() {
		for j, c := range []struct {
			which, secret string
			status        int
		}{{"a secret nobody set", sc.wrong, http.StatusUnauthorized}, {"the old secret", sc.old, http.StatusOK}, {"the new secret", sc.new, http.StatusOK}} {
			a := accepted{conn: sc.conn, id: 6000 + 10*i + j, summary: sc.conn + ", " + c.which}
			body := edgeTicket(a.id, a.summary)
			pathSecret, h := sc.sign(c.secret, body)
			code := ""
			if c.status != http.StatusOK {
				code = ingest.CodeUnauthorized
			}
			s.send(t, fn, a.summary, delivery{conn: sc.conn, pathSecret: pathSecret, header: h, body: body}, c.status, code)
			if c.status == http.StatusOK {
				ok = append(ok, a)
			} else {
				refused = append(refused, a)
				rejected[metrics.Metric{Name: metrics.DeliveriesRejected, Connection: sc.conn, Label: "credentials_wrong"}]++
			}
		}
	}

	// A gzip body, which API Gateway hands over base64-encoded; the HMAC is of the
	// compressed bytes Halo sent.
	a := accepted{conn: "hmac", id: 6100, summary: "gzip, base64-encoded by API Gateway"}
	zipped := gz(t, edgeTicket(a.id, a.summary))
	s.send(t, fn, a.summary, delivery{conn: "hmac", body: zipped, base64: true,
		header: map[string]string{"token": authtest.HMACBase64(hmacNew, zipped), "content-encoding": "gzip"}}, http.StatusOK, "")
	ok = append(ok, a)

	// The path secret read from rawPath when API Gateway gives no path parameters.
	a = accepted{conn: "path", id: 6101, summary: "path secret in rawPath only"}
	s.send(t, fn, a.summary, delivery{conn: "path", pathSecret: pathNew, noPathParams: true, body: edgeTicket(a.id, a.summary)}, http.StatusOK, "")
	ok = append(ok, a)

	// The allowlist, against requestContext.http.sourceIp.
	officeAuth := map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(edgeUser+":"+basicOld))}
	a = accepted{conn: "office", id: 6200, summary: "from inside 192.0.2.0/24"}
	s.send(t, fn, a.summary, delivery{conn: "office", header: officeAuth, sourceIP: "192.0.2.10", body: edgeTicket(a.id, a.summary)}, http.StatusOK, "")
	ok = append(ok, a)
	a = accepted{conn: "office", id: 6201, summary: "from outside 192.0.2.0/24"}
	s.send(t, fn, a.summary, delivery{conn: "office", header: officeAuth, sourceIP: "198.51.100.1", body: edgeTicket(a.id, a.summary)}, http.StatusForbidden, ingest.CodeForbidden)
	refused = append(refused, a)
	rejected[metrics.Metric{Name: metrics.DeliveriesRejected, Connection: "office", Label: ingest.ReasonIPNotAllowed}]++

	// A routing header.
	routed := accepted{conn: "routed", id: 6300, summary: "with a team"}
	s.send(t, fn, routed.summary, delivery{conn: "routed", body: edgeTicket(routed.id, routed.summary),
		header: map[string]string{"authorization": officeAuth["authorization"], "x-team": "noc", "x-other": "not configured"}}, http.StatusOK, "")
	ok = append(ok, routed)

	// The event source mapping, recording what the worker is handed.
	rec := &attributeLog{consumer: s.queue, attrs: map[string]map[string]string{}, body: map[string][]byte{}}
	p := newPlayer(t, rec, s.worker, s.player.arn)
	p.runUntil(60*time.Second, fmt.Sprintf("the %d accepted changes applied", len(ok)), func() bool { return len(p.deleted) == len(ok) })
	for id, n := range p.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, p.bodies[id])
	}
	if d := s.depth(t, s.qURL); d != 0 {
		t.Errorf("%d messages left on the queue after every accepted change was applied", d)
	}
	if d := s.depth(t, s.dlqURL); d != 0 {
		t.Errorf("%d messages on the dead-letter queue", d)
	}

	version := nanos(t, edgeTicketVersion)
	for _, a := range ok {
		o, found, err := s.store.Get(t.Context(), a.conn, change.Ticket, strconv.Itoa(a.id), "")
		if err != nil {
			t.Fatalf("ticket %s/%d: %v", a.conn, a.id, err)
		}
		if !found {
			t.Errorf("%s: ticket %s/%d was accepted but is not in table %s", a.summary, a.conn, a.id, s.table)
			continue
		}
		wantStored(t, o, version, "12", fmt.Sprintf("edge-delivery-%d", a.id), "ticket updated", map[string]any{"summary": a.summary, "id": a.id})
	}
	for _, a := range refused {
		if _, found, err := s.store.Get(t.Context(), a.conn, change.Ticket, strconv.Itoa(a.id), ""); err != nil || found {
			t.Errorf("%s: ticket %s/%d was refused, yet found %v (%v) in the table", a.summary, a.conn, a.id, found, err)
		}
	}

	got := rec.ofTicket(t, routed.id)
	want := map[string]string{message.AttrConnection: "routed", message.AttrKind: "ticket", message.AttrSource: "webhook", "x-team": "noc"}
	if len(got) != 1 || !maps.Equal(got[0], want) {
		t.Errorf("the routed ticket's messages carried attributes %v, want one with %v", got, want)
	}

	accepts := counts{}
	for _, a := range ok {
		accepts[metrics.Metric{Name: metrics.DeliveriesAccepted, Connection: a.conn}]++
	}
	awaitCounts(t, fn, metrics.DeliveriesAccepted, accepts)
	awaitCounts(t, fn, metrics.DeliveriesRejected, rejected)
	awaitCounts(t, s.worker, metrics.ChangesFailed, counts{})
}
