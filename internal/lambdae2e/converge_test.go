package lambdae2e

// The convergence run through the emulated Lambda path: the scenario of package converge,
// as internal/localserver's TestConvergesWithTheTenant runs it, with API Gateway played by
// an in-test HTTP handler that turns each webhook delivery into an API Gateway HTTP API
// (payload 2.0) event and invokes the ingest function under the runtime interface
// emulator, SQS played by the SQS stand-in, and the event source mapping played between
// the tenant's rounds of changes and until the queue is empty; the worker function, under
// its own emulator, fetches event-only deliveries from the fake tenant's API and writes to
// DynamoDB Local. Once the queue is drained every object in the table must equal the
// tenant's, and the table holds no other object.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
)

// ---- the emulated Lambda path ----

// TestConvergesThroughTheEmulator runs the convergence scenario through API Gateway
// (played), the ingest function under the emulator, the SQS stand-in, the event source
// mapping (played) and the worker function under the emulator, fetching from the fake
// tenant and writing to DynamoDB Local.
func TestConvergesThroughTheEmulator(t *testing.T) {
	t.Parallel()
	s := newStack(t, "converge")
	tenant, clock := converge.NewTenant(t)
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, []byte(converge.Config(tenant.URL())), 0o600); err != nil {
		t.Fatal(err)
	}
	ingestFn := startConfigured(t, s, "ingest", cfgFile, warmupIngest)
	workerFn := startConfigured(t, s, "worker", cfgFile, events.SQSEvent{Records: []events.SQSMessage{}})

	gw := httptest.NewServer(&apiGateway{t: t, fn: ingestFn})
	t.Cleanup(gw.Close)
	cr := converge.NewRun(t, tenant, clock, gw.URL+ingest.PathPrefix+"default")
	p := newPlayer(t, s.queue, workerFn, s.player.arn)
	p.wait = 200 * time.Millisecond

	start := time.Now()
	// Between rounds the event source mapping plays two batches, so the worker keeps a
	// backlog and fetches the tenant at various lags behind its changes.
	cr.Run(func() {
		for range 2 {
			if p.poll(t.Context()) == 0 {
				break
			}
		}
	})
	p.runUntil(converge.Drain, "the queue drained", func() bool { return s.depth(t, s.qURL) == 0 })
	t.Logf("generated, delivered and drained in %v (%d worker invokes)", time.Since(start).Round(time.Millisecond), p.invokes)

	exps := converge.Expectations(t, tenant, cr.Sent)
	get := func(kind change.Kind, id, parentID string) (change.Object, bool, error) {
		return s.store.Get(t.Context(), conn, kind, id, parentID)
	}
	converge.WantConverged(t, exps, cr.Sent, get)
	wantTableHoldsOnly(t, s, exps)

	// The counters tell the same story: every message was applied once (none failed,
	// none retried), some as duplicates and some as stale, event-only ones were fetched,
	// and nothing reached the dead-letter queue.
	for id, n := range p.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, truncate(p.bodies[id], 300))
	}
	for id, n := range p.deliveries {
		if n != 1 {
			t.Errorf("message %s was delivered to the worker %d times", id, n)
		}
	}
	if d := s.depth(t, s.dlqURL); d != 0 {
		t.Errorf("%d messages on the dead-letter queue", d)
	}
	ingested := awaitTotal(t, ingestFn, metrics.DeliveriesAccepted, int64(cr.Flushed.Sent))
	enqueued := ingested.only(metrics.ChangesEnqueued)[metrics.Metric{Name: metrics.ChangesEnqueued, Connection: conn}]
	warmup := counts{{Name: metrics.DeliveriesRejected, Connection: "_unknown", Label: "method_not_allowed"}: 1}
	if rejected := ingested.only(metrics.DeliveriesRejected); !maps.Equal(rejected, warmup) {
		t.Errorf("ingest rejected:%s\nwant only the warm-up GET:%s", rejected, warmup)
	}
	if enqueued != int64(len(p.deleted)) {
		t.Errorf("ChangesEnqueued = %d, but the event source mapping delivered %d messages", enqueued, len(p.deleted))
	}
	applied := awaitAtLeast(t, workerFn, metrics.ChangesApplied, enqueued)
	for _, m := range []metrics.Metric{
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Applied)},
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Duplicate)},
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Stale)},
		{Name: metrics.ChangesFetched, Connection: conn, Label: "found"},
	} {
		if applied[m] == 0 {
			t.Errorf("%s{%s} = 0, want some:%s", m.Name, m.Label, applied)
		}
	}
	if failed := applied.only(metrics.ChangesFailed); len(failed) != 0 {
		t.Errorf("ChangesFailed:%s", failed)
	}
	if errs := logRecords(t, workerFn, "ERROR"); len(errs) > 0 {
		t.Errorf("the worker logged %d errors, the first: %s", len(errs), mustJSON(errs[0]))
	}
	t.Logf("enqueued %d changes; worker counts:%s", enqueued, applied.only(metrics.ChangesApplied))
}

// apiGateway plays API Gateway's HTTP API for the webhook route (or, with functionURL, the
// ingest function's URL): each request becomes a payload 2.0 event, one synchronous
// invoke of the ingest function (one at a time, as one emulator serves them), and the
// function's answer becomes the HTTP response.
type apiGateway struct {
	t           *testing.T
	fn          *function
	functionURL bool
	mu          sync.Mutex
	seq         int
}

func (g *apiGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	conn, secret, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, ingest.PathPrefix), "/")
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	ev := gatewayRequest{
		method: r.Method, conn: conn, pathSecret: secret, header: gatewayHeader(r.Header), body: body,
		sourceIP: ip, requestID: fmt.Sprintf("req-converge-%d", g.seq), functionURL: g.functionURL,
	}.event()
	out, err := g.fn.invoke(r.Context(), ev)
	if err != nil {
		g.t.Errorf("API Gateway: %v", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		g.t.Errorf("API Gateway: the ingest function answered %s: %v", out, err)
		http.Error(w, "bad function response", http.StatusBadGateway)
		return
	}
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if respBody, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			g.t.Errorf("API Gateway: the ingest function's body is not base64: %v", err)
		}
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

// awaitTotal polls a function's EMF output until the counts of metric name, summed over
// every connection and label, reach want (bounded: the output reaches the file through
// the emulator, possibly just after the invoke returned), and returns every count.
func awaitTotal(t *testing.T, f *function, name string, want int64) counts {
	t.Helper()
	return await(t, f, name, want, false)
}

// awaitAtLeast is awaitTotal for a sum that may exceed want: an event-only ticket change
// also brings the ticket's notes, each counted on its own.
func awaitAtLeast(t *testing.T, f *function, name string, want int64) counts {
	t.Helper()
	return await(t, f, name, want, true)
}

func await(t *testing.T, f *function, name string, want int64, atLeast bool) counts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := emfCounts(f.stdout)
		if err != nil {
			t.Fatalf("%s output: %v", f.name, err)
		}
		var total int64
		for _, n := range got.only(name) {
			total += n
		}
		if total == want || atLeast && total > want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the %s metrics in its EMF output sum to %d, want %d:%s", f.name, name, total, want, got.only(name))
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
}

// wantTableHoldsOnly scans the stack's table and checks that its object items (those
// keyed as change.PartitionKey and change.SortKey lay objects out; other items, such as
// records about deliveries, are not objects) are exactly the expected ones.
func wantTableHoldsOnly(t *testing.T, s *stack, exps []converge.Expectation) {
	t.Helper()
	want := map[converge.Key]bool{}
	for _, x := range exps {
		want[x.Key] = true
	}
	ddb := awstest.DynamoDB(t)
	in := &dynamodb.ScanInput{
		TableName:            aws.String(s.table),
		ProjectionExpression: aws.String("#pk, #sk, #c, #k, #i, #p"),
		ExpressionAttributeNames: map[string]string{
			"#pk": "pk", "#sk": "sk", "#c": "conn", "#k": "kind", "#i": "id", "#p": "parent_id",
		},
	}
	objects, others := 0, 0
	for {
		out, err := ddb.Scan(t.Context(), in)
		if err != nil {
			t.Fatalf("scan %s: %v", s.table, err)
		}
		for _, item := range out.Items {
			str := func(name string) string {
				if v, ok := item[name].(*ddbtypes.AttributeValueMemberS); ok {
					return v.Value
				}
				return ""
			}
			k := converge.Key{Kind: change.Kind(str("kind")), ID: str("id"), ParentID: str("parent_id")}
			if str("pk") != change.PartitionKey(str("conn"), k.Kind, k.ID, k.ParentID) || str("sk") != change.SortKey(k.Kind, k.ID) {
				others++
				continue
			}
			objects++
			if str("conn") != conn || !want[k] {
				t.Errorf("the table holds %s of connection %q, which the tenant never had", k, str("conn"))
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if objects != len(want) {
		t.Errorf("the table holds %d objects, want %d", objects, len(want))
	}
	t.Logf("the table holds the %d objects expected (and %d other items)", objects, others)
}
