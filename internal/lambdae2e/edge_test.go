package lambdae2e

// The edge scenarios of package edgetest through the emulated Lambda path: the tests play
// API Gateway (each delivery an HTTP API payload 2.0 event invoking the ingest function
// under the emulator, configured by the scenario's document) and the SQS event source
// mapping into the stack's worker, which writes to DynamoDB Local. internal/localserver
// runs the same scenarios through `halosync serve`.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/edgetest"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// gatewayRequest is one request to the webhook route, as API Gateway's HTTP API hands it
// to ingest.
type gatewayRequest struct {
	method           string
	conn, pathSecret string
	header           map[string]string // lower-case names, as API Gateway HTTP APIs send them
	body             []byte
	sourceIP         string // default 203.0.113.10
	requestID        string
	noPathParams     bool // leave pathParameters out: only rawPath names the connection
	// functionURL makes it the event of the ingest function's URL, the backup endpoint:
	// route $default, no path parameters, the domain <url-id>.lambda-url.<region>.on.aws.
	functionURL bool
}

// Domain names of the two endpoints, as their events carry them.
const (
	gatewayAPIID      = "e2eapi"
	gatewayDomain     = gatewayAPIID + ".execute-api.us-east-1.amazonaws.com"
	functionURLID     = "e2efnurl"
	functionURLDomain = functionURLID + ".lambda-url.us-east-1.on.aws"
)

// event is the API Gateway HTTP API (payload 2.0) event of r, for the route
// METHOD /webhooks/halo/{connection} (or .../{connection}/{secret}). A body that is not
// text (not UTF-8, or content-encoded) is handed over base64-encoded, as API Gateway
// does.
func (r gatewayRequest) event() events.APIGatewayV2HTTPRequest {
	route := ingest.PathPrefix + "{connection}"
	path := ingest.PathPrefix + r.conn
	params := map[string]string{"connection": r.conn}
	if r.pathSecret != "" {
		route += "/{secret}"
		path += "/" + r.pathSecret
		params["secret"] = r.pathSecret
	}
	routeKey, apiID, domain := r.method+" "+route, gatewayAPIID, gatewayDomain
	if r.functionURL {
		routeKey, apiID, domain = "$default", functionURLID, functionURLDomain
	}
	if r.noPathParams || r.functionURL {
		params = nil
	}
	header := map[string]string{"content-type": "application/json", "user-agent": "Halo"}
	maps.Copy(header, r.header)
	body, encoded := string(r.body), !utf8.Valid(r.body) || header["content-encoding"] != ""
	if encoded {
		body = base64.StdEncoding.EncodeToString(r.body)
	}
	ip := r.sourceIP
	if ip == "" {
		ip = "203.0.113.10"
	}
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: path, Headers: header, PathParameters: params,
		Body: body, IsBase64Encoded: encoded,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: r.requestID, Stage: "$default", RouteKey: routeKey, APIID: apiID, DomainName: domain,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.method, Path: path, Protocol: "HTTP/1.1", SourceIP: ip, UserAgent: header["user-agent"],
			},
		},
	}
}

// gatewayHeader is h as API Gateway passes headers on: lower-case names, the values of
// a repeated header joined by commas.
func gatewayHeader(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = strings.Join(v, ",")
	}
	return out
}

// edgeHarness is edgetest.Harness on a stack: ingest and worker functions configured by
// the scenario (each Start replaces the running ones, as the local server's harness
// rebuilds its pipeline; the worker applies only the connections its configuration
// names), the stack's queue and table, and the event source mapping played into the
// worker when the scenario drains.
type edgeHarness struct {
	s      *stack
	ingest *function
	worker *function
	rec    *attributeLog
	player *esmPlayer
	seq    atomic.Int64 // request ids
}

func newEdgeHarness(t *testing.T, label string) *edgeHarness {
	s := newStack(t, label)
	rec := &attributeLog{consumer: s.queue, attrs: map[string]map[string]string{}, body: map[string][]byte{}}
	return &edgeHarness{s: s, rec: rec, player: newPlayer(t, rec, s.worker, s.player.arn)}
}

func (h *edgeHarness) Start(t *testing.T, doc string) {
	t.Helper()
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if h.ingest != nil {
		h.ingest.stop(t)
		h.worker.stop(t)
	}
	h.ingest = startConfigured(t, h.s, "ingest", cfgFile, warmupIngest)
	h.worker = startConfigured(t, h.s, "worker", cfgFile, events.SQSEvent{Records: []events.SQSMessage{}})
	h.player.worker = h.worker
}

func (h *edgeHarness) Post(t *testing.T, d edgetest.Delivery) edgetest.Response {
	t.Helper()
	return h.post(t, gatewayRequest{conn: d.Conn, pathSecret: d.PathSecret, header: gatewayHeader(d.Header), body: d.Body, sourceIP: d.SourceIP})
}

// post invokes the running ingest function with r's event and checks that the queue grew
// by exactly the changes the answer reports: nothing consumes the queue while a scenario
// posts (the event source mapping is played only by Drain).
func (h *edgeHarness) post(t *testing.T, r gatewayRequest) edgetest.Response {
	t.Helper()
	r.method = http.MethodPost
	r.requestID = fmt.Sprintf("req-edge-%d", h.seq.Add(1))
	before := h.s.depth(t, h.s.qURL)
	resp := invokeAs[events.APIGatewayV2HTTPResponse](t, h.ingest, r.event())
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			t.Fatalf("ingest's answer is marked base64 but is not: %v", err)
		}
	}
	var ack struct {
		Changes int `json:"changes"`
	}
	_ = json.Unmarshal(body, &ack) // a refusal has none
	if grew := h.s.depth(t, h.s.qURL) - before; grew != ack.Changes {
		t.Fatalf("POST to %s answered %d %s, but the queue grew by %d messages", r.conn, resp.StatusCode, body, grew)
	}
	return edgetest.Response{Status: resp.StatusCode, Body: body}
}

func (h *edgeHarness) Drain(t *testing.T) {
	t.Helper()
	h.player.runUntil(60*time.Second, "the queue drained", func() bool { return h.s.depth(t, h.s.qURL) == 0 })
	for id, n := range h.player.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, h.player.bodies[id])
	}
}

func (h *edgeHarness) Queues(t *testing.T) (changes, deadLetters int) {
	t.Helper()
	return h.s.depth(t, h.s.qURL), h.s.depth(t, h.s.dlqURL)
}

// warmupRejected is what every ingest function counts for its warm-up GET (startConfigured):
// the harness's invoke, not the scenario's, so Counts leaves it out.
var warmupRejected = metrics.Metric{Name: metrics.DeliveriesRejected, Connection: "_unknown", Label: "method_not_allowed"}

// Counts sums the metric's counts in the EMF output of the running ingest and worker
// functions.
func (h *edgeHarness) Counts(t *testing.T, name string) edgetest.Counts {
	t.Helper()
	out := edgetest.Counts{}
	for _, f := range []*function{h.ingest, h.worker} {
		c, err := emfCounts(f.stdout)
		if err != nil {
			t.Fatalf("%s output: %v", f.name, err)
		}
		for m, n := range c.only(name) {
			out[m] += n
		}
	}
	if name == warmupRejected.Name {
		// Until the warm-up's line is written this goes below zero, and the caller polls on.
		if out[warmupRejected]--; out[warmupRejected] == 0 {
			delete(out, warmupRejected)
		}
	}
	return out
}

func (h *edgeHarness) Ticket(t *testing.T, conn string, id int) (change.Object, bool) {
	t.Helper()
	o, found, err := h.s.store.Get(t.Context(), conn, change.Ticket, strconv.Itoa(id), "")
	if err != nil {
		t.Fatalf("ticket %s/%d: %v", conn, id, err)
	}
	return o, found
}

func (h *edgeHarness) Attributes(t *testing.T, conn string, id int) []map[string]string {
	t.Helper()
	return h.rec.ofTicket(t, conn, id)
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

// ofTicket returns the attributes of the messages received about ticket id of conn.
func (a *attributeLog) ofTicket(t *testing.T, conn string, id int) []map[string]string {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]string
	for mid, b := range a.body {
		var e message.Envelope
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("message %s is not an envelope: %v: %s", mid, err, b)
		}
		if e.Change.Connection == conn && e.Change.Kind == change.Ticket && e.Change.ID == strconv.Itoa(id) {
			out = append(out, a.attrs[mid])
		}
	}
	return out
}

// TestEdgeScenariosThroughTheEmulator runs every edge scenario, each on its own stack:
// Rotation replaces the ingest function at each phase, as a new configuration does,
// while the queue keeps what the earlier ones accepted; AllowIPs sets
// requestContext.http.sourceIp; gzip bodies are handed over base64-encoded; routing
// headers travel as SQS message attributes into the worker's event.
func TestEdgeScenariosThroughTheEmulator(t *testing.T) {
	t.Parallel()
	for _, sc := range edgetest.Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			sc.Run(t, newEdgeHarness(t, "edge-"+strings.ToLower(sc.Name)))
		})
	}
}

// TestEdgePathSecretFromRawPath: without pathParameters the path secret is read from
// rawPath. Lambda only: an event shape the local server never sees.
func TestEdgePathSecretFromRawPath(t *testing.T) {
	t.Parallel()
	h := newEdgeHarness(t, "edge-rawpath")
	h.Start(t, edgetest.Config(edgetest.BothSecrets, "", ""))
	d := edgetest.Delivered{Conn: "path", ID: 6101, Summary: "path secret in rawPath only"}
	edgetest.WantAccepted(t, d.Summary, h.post(t, gatewayRequest{conn: d.Conn, pathSecret: edgetest.PathNew, noPathParams: true,
		body: edgetest.Ticket(d.ID, d.Summary)}), 1)
	edgetest.WantDrained(t, h)
	edgetest.WantStored(t, h, []edgetest.Delivered{d})
}
