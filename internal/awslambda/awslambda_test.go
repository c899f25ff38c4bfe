package awslambda_test

import (
	"context"
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

type recorder struct{ msgs []message.Message }

func (r *recorder) Send(_ context.Context, m []message.Message) error {
	r.msgs = append(r.msgs, m...)
	return nil
}

func TestIngestReadsTheAPIGatewayEvent(t *testing.T) {
	cfg := &config.Config{Connections: []config.Connection{{ID: "acme", Webhook: config.Webhook{
		Auth: []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"correct-horse"}}}}}}}
	q := &recorder{}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := ingest.New(conns, q, metrics.Discard{}, slog.New(slog.DiscardHandler))
	body := `{"id":"d","event":"ticket updated","object_id":7,"timestamp":"2026-01-01T00:00:00Z"}`
	e := events.APIGatewayV2HTTPRequest{
		RawPath: "/webhooks/halo/acme", // no path parameters: the connection comes from the path
		Headers: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("halo:correct-horse")), "Content-Type": "application/json"},
		Body:    base64.StdEncoding.EncodeToString([]byte(body)), IsBase64Encoded: true,
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", SourceIP: "203.0.113.1"}},
	}
	resp, err := awslambda.Ingest(h)(context.Background(), e)
	if err != nil || resp.StatusCode != 200 || resp.Headers["content-type"] != "application/json" {
		t.Fatalf("response %+v, %v", resp, err)
	}
	if len(q.msgs) != 1 || q.msgs[0].Attributes["connection"] != "acme" {
		t.Fatalf("messages %+v", q.msgs)
	}
}

type visibility struct{ delays map[string]time.Duration }

func (v *visibility) ChangeVisibility(_ context.Context, receipt string, d time.Duration) error {
	v.delays[receipt] = d
	return nil
}

type flakyStore struct{ *storetest.Memory }

func (f flakyStore) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	if c.ID == "flaky" {
		return change.Result{}, context.DeadlineExceeded
	}
	return f.Memory.Apply(ctx, c)
}

func TestWorkerReportsOnlyFailedMessages(t *testing.T) {
	body := func(id string) string {
		m, err := message.Encode(message.Envelope{Change: change.Change{Connection: "c", Kind: change.Ticket, ID: id, Op: change.OpUpsert, Version: 5, Fields: map[string]any{"a": 1}}})
		if err != nil {
			t.Fatal(err)
		}
		return string(m.Body)
	}
	store := flakyStore{storetest.NewMemory()}
	vis := &visibility{delays: map[string]time.Duration{}}
	log := slog.New(slog.DiscardHandler)
	h := awslambda.Worker(worker.New(store, metrics.Discard{}, log, connection.Set{{ID: "c"}}, nil), vis)
	resp, err := h(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "ok", ReceiptHandle: "r-ok", Body: body("1")},
		{MessageId: "poison", ReceiptHandle: "r-poison", Body: "{not json", Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		{MessageId: "flaky", ReceiptHandle: "r-flaky", Body: body("flaky"), Attributes: map[string]string{"ApproximateReceiveCount": "3"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	if len(failed) != 2 || failed[0] != "poison" || failed[1] != "flaky" {
		t.Fatalf("failures %v, want poison and flaky", failed)
	}
	if d, ok := vis.delays["r-poison"]; !ok || d != 0 {
		t.Fatalf("poison visibility %v (set %v), want 0 so it reaches the dead-letter queue at once", d, ok)
	}
	if d := vis.delays["r-flaky"]; d < 8*time.Second*8/10 || d > 8*time.Second*12/10 {
		t.Fatalf("flaky retry delay %v, want Backoff(3): 8 s ± 20 %%", d)
	}
	if _, ok := vis.delays["r-ok"]; ok {
		t.Fatal("a processed message had its visibility changed")
	}
	if _, ok, _ := store.Get(context.Background(), "c", change.Ticket, "1", ""); !ok {
		t.Fatal("the good message was not applied")
	}
}

// TestWorkerFailsAnInvocationWhoseEveryMessageFailed: when the store is down, every
// message of a batch fails; the invocation returns an error (the function's Errors metric
// shows the outage) and still reports each message, delayed by its backoff.
func TestWorkerFailsAnInvocationWhoseEveryMessageFailed(t *testing.T) {
	store := flakyStore{storetest.NewMemory()}
	vis := &visibility{delays: map[string]time.Duration{}}
	h := awslambda.Worker(worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "c"}}, nil), vis)
	m, err := message.Encode(message.Envelope{Change: change.Change{Connection: "c", Kind: change.Ticket, ID: "flaky", Op: change.OpUpsert, Version: 5, Fields: map[string]any{"a": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "a", ReceiptHandle: "r-a", Body: string(m.Body), Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		{MessageId: "b", ReceiptHandle: "r-b", Body: string(m.Body), Attributes: map[string]string{"ApproximateReceiveCount": "2"}},
	}})
	if err == nil {
		t.Fatal("every message failed, and the invocation returned no error")
	}
	if len(resp.BatchItemFailures) != 2 || vis.delays["r-a"] == 0 || vis.delays["r-b"] == 0 {
		t.Fatalf("failures %v, delays %v; want both reported and backed off", resp.BatchItemFailures, vis.delays)
	}
	if resp, err := h(context.Background(), events.SQSEvent{}); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("an empty batch: %v, %v", resp, err)
	}
}

// TestIngestTellsTheEndpoint: the same delivery through API Gateway (its execute-api
// domain) and through the function's URL (a lambda-url domain, route $default, no path
// parameters) is accepted by both; each change carries the endpoint it came through, and
// DeliveriesByEndpoint counts one delivery for each.
func TestIngestTellsTheEndpoint(t *testing.T) {
	cfg := &config.Config{Connections: []config.Connection{{ID: "acme", Webhook: config.Webhook{
		Auth: []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"correct-horse"}}}}}}}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := &recorder{}
	counts := metrics.NewMemory()
	h := awslambda.Ingest(ingest.New(conns, q, counts, slog.New(slog.DiscardHandler)))
	body := `{"id":"d","event":"ticket updated","object_id":7,"timestamp":"2026-01-01T00:00:00Z"}`
	header := map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("halo:correct-horse")), "content-type": "application/json"}
	post := events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST", SourceIP: "203.0.113.1", Path: "/webhooks/halo/acme"}
	for _, tc := range []struct {
		name string
		e    events.APIGatewayV2HTTPRequest
		want string
	}{
		{"API Gateway", events.APIGatewayV2HTTPRequest{
			RouteKey: "POST /webhooks/halo/{connection}", RawPath: "/webhooks/halo/acme", PathParameters: map[string]string{"connection": "acme"},
			Headers: header, Body: body,
			RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "abc123", DomainName: "abc123.execute-api.eu-west-2.amazonaws.com", HTTP: post},
		}, change.EndpointPrimary},
		{"function URL", events.APIGatewayV2HTTPRequest{
			RouteKey: "$default", RawPath: "/webhooks/halo/acme",
			Headers: header, Body: body,
			RequestContext: events.APIGatewayV2HTTPRequestContext{APIID: "x7yz", DomainName: "x7yz.lambda-url.eu-west-2.on.aws", HTTP: post},
		}, change.EndpointBackup},
	} {
		before := len(q.msgs)
		resp, err := h(context.Background(), tc.e)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: response %+v, %v", tc.name, resp, err)
		}
		if len(q.msgs) != before+1 {
			t.Fatalf("%s: %d messages queued, want 1", tc.name, len(q.msgs)-before)
		}
		env, err := message.Decode(q.msgs[before].Body)
		if err != nil {
			t.Fatal(err)
		}
		if env.Change.Endpoint != tc.want {
			t.Errorf("%s: the change's endpoint is %q, want %q", tc.name, env.Change.Endpoint, tc.want)
		}
		if n := counts.Value(metrics.Metric{Name: metrics.DeliveriesByEndpoint, Connection: "acme", Label: tc.want}); n != 1 {
			t.Errorf("%s: DeliveriesByEndpoint{%s} = %d, want 1", tc.name, tc.want, n)
		}
	}
}
