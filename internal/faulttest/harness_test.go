package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/faultproxy"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/logtest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/pipeline"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/worker"
)

// The run's timing. The template gives the worker an invocation of minutes and the queue
// a visibility timeout of six times that (template.yaml); here an invocation has
// worker.Margin, which the worker keeps free at its end, plus batchDeadline of work (a
// quarter of a second a message), the queue a visibility timeout just over the whole
// invocation (SQS counts whole seconds), so that a fault window of a few seconds cannot
// use up a message's receives, and a message the worker failed comes back within
// retryCap.
const (
	batchDeadline = 2500 * time.Millisecond
	invocation    = worker.Margin + batchDeadline
	visibility    = invocation + time.Second
	maxReceive    = 8
	// retryCap caps worker.Backoff's delay before a failed message's next delivery
	// (2 s doubling to 5 minutes), for the test's speed; the retry itself is the worker's.
	retryCap = time.Second
	pollers  = 2 // the event source mapping's concurrent batches
	// receiveTimeout bounds one receive or delete call, which a fault may hold.
	receiveTimeout = 3 * time.Second
	// sdkMaxBackoff caps the SDK's retry backoff (20 s by default), for the test's speed;
	// its attempts and retry quota are the defaults the functions run with.
	sdkMaxBackoff = 100 * time.Millisecond
	// The Halo API client: a request is given up after haloTimeout (30 s by default) and
	// retried with short backoffs; a Retry-After is honoured up to haloRetryAfterMax.
	haloTimeout       = 400 * time.Millisecond
	haloRetryAfterMax = 250 * time.Millisecond
	// senderTimeout is how long a webhook delivery waits for ingest's answer;
	// redeliverEvery is the pause before a refused delivery is sent again.
	senderTimeout  = time.Second
	redeliverEvery = 100 * time.Millisecond
	// A fault stays on for window, and longer, up to windowMax, until the scenario's
	// minimum number of requests was faulted.
	window    = time.Second
	windowMax = 8 * time.Second
	// settle bounds delivering every refused delivery and draining the queue.
	settle = 30 * time.Second
)

// The tenant's changes: a starting data set made through the generator's changes (each
// raises its event, so the copy must know every object), then random steps, delivered
// every round changes.
var startSet = []struct {
	ct halosim.ChangeType
	n  int
}{
	{halosim.CreateClient, 3}, {halosim.CreateUser, 4}, {halosim.CreateAsset, 3},
	{halosim.NewTicket, 5}, {halosim.AddNote, 4}, {halosim.ChangeStatus, 2},
}

const (
	steps        = 14
	round        = 9
	tenantName   = "faults"
	webhookUser  = "halo"
	webhookPass  = "faults-basic-secret"
	webhookHMAC  = "faults-hmac-secret"
	unknownEvent = "widget polished"
	undecodable  = "this is not a change message"
	planted      = 2 // permanent failures: the undecodable message and the unknown event
)

// adapter names the service a scenario faults.
type adapter string

const (
	dynamoDB adapter = "dynamodb"
	sqsQueue adapter = "sqs"
	haloAPI  adapter = "halo"
)

// harness is one scenario's pipeline, its services behind their proxies, the tenant and
// its webhooks.
type harness struct {
	t      *testing.T
	conn   string
	seed   uint64
	tenant *halosim.Tenant
	clock  *halosim.Clock
	proxy  map[adapter]*faultproxy.Proxy
	pipe   *pipeline.Pipeline
	queue  *sqsqueue.Queue // through the proxy: ingest's sends, the pollers' receives and deletes, the worker's retries
	counts *metrics.Memory
	logs   *logtest.Buffer

	// Straight to the stand-ins, for the test's own looks.
	sqs     *sqs.Client
	mainURL string
	dlqURL  string
	copy    *dynamo.Store

	webhookURL string
	senders    []*halosim.Sender // full, event-only
	seen       []int             // deliveries of each sender already looked at
	gen, mix   *rand.Rand
	sent       []converge.SentEvent
	pending    []converge.SentEvent

	acked     [][]byte           // delivery bodies ingest answered 2xx
	refused   []halosim.Delivery // deliveries to send again
	unknownID string             // the planted unknown event's delivery id

	timedOut atomic.Int64 // batches past their deadline
	failures atomic.Int64 // receive or delete calls that failed
	stop     func()
}

// newHarness starts a scenario's pipeline over table, connection conn.
func newHarness(t *testing.T, table, conn string, seed uint64) *harness {
	ctx := t.Context()
	h := &harness{t: t, conn: conn, seed: seed, proxy: map[adapter]*faultproxy.Proxy{}, counts: metrics.NewMemory(),
		logs: &logtest.Buffer{}, gen: rand.New(rand.NewPCG(seed, 1)), mix: rand.New(rand.NewPCG(seed, 2))}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the pipeline's log, its end:\n%s", logtest.Tail(h.logs.String(), 6000))
		}
	})
	h.sqs = awstest.SQS(t)
	ddb := awstest.DynamoDB(t)
	h.copy = dynamo.New(ddb, table)

	var err error
	h.mainURL, h.dlqURL, err = sqsqueue.CreateQueuePair(ctx, sqsqueue.NewClient(awstest.SQSConfig(t)), fmt.Sprintf("halosync-faults-%s-%d", conn, time.Now().UnixNano()), visibility, maxReceive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, u := range []string{h.mainURL, h.dlqURL} {
			if _, err := h.sqs.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(u)}); err != nil {
				t.Errorf("delete queue %s: %v", u, err)
			}
		}
	})

	h.clock = halosim.NewClock(time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC))
	h.tenant = halotest.Start(t, halosim.Options{TenantName: tenantName, Clock: h.clock.Now})
	for a, target := range map[adapter]string{dynamoDB: awstest.DynamoDBEndpoint(t), sqsQueue: awstest.SQSEndpoint(t), haloAPI: h.tenant.URL()} {
		p, err := faultproxy.Start(target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		h.proxy[a] = p
	}

	// The adapters, as lambdaenv builds them, with the proxies as their endpoints.
	cfg := awstest.Config()
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = sdkMaxBackoff })
	}
	store := dynamo.New(dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(h.proxy[dynamoDB].URL()) }), table)
	queueCfg := cfg
	queueCfg.BaseEndpoint = aws.String(h.proxy[sqsQueue].URL())
	h.queue = sqsqueue.Open(queueCfg, h.mainURL)

	doc, err := config.Parse(ctx, []byte(configDoc(conn, h.proxy[haloAPI].URL())), nil)
	if err != nil {
		t.Fatal(err)
	}
	h.pipe, err = pipeline.Build(doc, pipeline.Ports{
		Store: store, Queue: h.queue, Count: h.counts,
		Log: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		HaloClient: func(c *connection.Connection) (*haloapi.Client, error) {
			hc := c.Config.Halo
			return haloapi.NewClient(haloapi.ClientOptions{
				BaseURL: hc.BaseURL, Tenant: hc.Tenant, ClientID: hc.ClientID, ClientSecret: hc.ClientSecret,
				Budget:  haloapi.NewBudget(hc.Budget.Count(), hc.Budget.Window(), nil),
				Timeout: haloTimeout, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
				RetryAfterMax: haloRetryAfterMax,
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	webhook := httptest.NewServer(http.HandlerFunc(h.serveWebhook))
	t.Cleanup(webhook.Close)
	h.webhookURL = webhook.URL + ingest.PathPrefix + conn
	sender := func(pt halosim.PayloadType, auth halosim.SenderAuth, stream uint64) *halosim.Sender {
		return halosim.NewSender(halosim.SenderOptions{
			URL: h.webhookURL, Auth: auth, PayloadType: pt, Batch: 4, Reorder: 4, DuplicateRate: 0.2,
			Rand: rand.New(rand.NewPCG(seed, stream)), Tenant: h.tenant, HTTPClient: &http.Client{Timeout: senderTimeout},
		})
	}
	h.senders = []*halosim.Sender{
		sender(halosim.PayloadFull, halosim.BasicAuth(webhookUser, webhookPass), 3),
		sender(halosim.PayloadEventOnly, halosim.HMACAuth(webhookHMAC), 4),
	}
	h.seen = make([]int, len(h.senders))

	pollCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range pollers {
		wg.Go(func() { h.poll(pollCtx) })
	}
	h.stop = sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(h.stop)
	return h
}

// configDoc is the connection: both webhooks' authentication and the tenant's API behind
// its proxy, with a budget that never holds a fetch back.
func configDoc(conn, haloURL string) string {
	return `connections:
  - id: ` + conn + `
    halo:
      base_url: ` + haloURL + `
      tenant: ` + tenantName + `
      client_id: halotest-client
      client_secret: halotest-secret
      budget: {requests: 100000, window_seconds: 300}
    webhook:
      auth:
        - scheme: basic
          username: ` + webhookUser + `
          passwords: ["` + webhookPass + `"]
        - scheme: hmac
          header: Token
          secrets: ["` + webhookHMAC + `"]
`
}

// serveWebhook plays API Gateway in front of the ingest function: the request as an
// ingest.Request (lower-case headers, raw body), the handler's answer as it is.
func (h *harness) serveWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return // the sender gave up
	}
	header := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		header[strings.ToLower(k)] = strings.Join(v, ",")
	}
	resp := h.pipe.Ingest.Handle(r.Context(), ingest.Request{
		Connection: strings.TrimPrefix(r.URL.Path, ingest.PathPrefix), Method: r.Method,
		Header: header, Body: body, SourceIP: "127.0.0.1", RequestID: strconv.FormatInt(time.Now().UnixNano(), 36),
	})
	w.Header().Set("content-type", "application/json")
	for k, v := range resp.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
}

// cappedRetry is the worker's Retrier with worker.Backoff's delay capped at retryCap.
type cappedRetry struct{ q *sqsqueue.Queue }

func (c cappedRetry) ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error {
	return c.q.ChangeVisibility(ctx, receiptHandle, min(timeout, retryCap))
}

// poll plays the SQS event source mapping and the worker function: it receives batches
// of up to ten, hands each to worker.HandleBatch under a deadline as an invocation has
// one, and deletes the messages that did not fail. An invocation that outlives its
// deadline fails as a whole (Lambda reports a timeout, not the handler's answer), so
// nothing of its batch is deleted and all of it comes back after the visibility timeout.
func (h *harness) poll(ctx context.Context) {
	retrier := cappedRetry{h.queue}
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, receiveTimeout)
		msgs, err := h.queue.Receive(rctx, sqsqueue.MaxBatch, time.Second)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				h.failures.Add(1)
				pause(ctx, 50*time.Millisecond) // as the mapping backs off a failing queue
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		bctx, cancel := context.WithTimeout(ctx, invocation)
		failed := h.pipe.Worker.HandleBatch(bctx, msgs, retrier)
		late := bctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if late {
			h.timedOut.Add(1)
			continue
		}
		var done []string
		for _, m := range msgs {
			if !slices.Contains(failed, m.ID) {
				done = append(done, m.ReceiptHandle)
			}
		}
		if len(done) == 0 {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, receiveTimeout)
		if err := h.queue.Delete(dctx, done...); err != nil {
			h.failures.Add(1) // the messages come back and are applied again: duplicates
		}
		cancel()
	}
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ---- the tenant and its webhooks ----

// raised queues an event for one of the two webhooks, at random.
func (h *harness) raised(e halosim.Event) {
	se := converge.Routed(e, h.mix)
	h.sent = append(h.sent, se)
	h.pending = append(h.pending, se)
}

// change makes the starting data set and the random steps, delivering every round
// changes, and delivers the rest.
func (h *harness) change() {
	h.t.Helper()
	n := 0
	made := func(e halosim.Event) {
		h.raised(e)
		if n++; n%round == 0 {
			h.deliver()
		}
	}
	for _, s := range startSet {
		for range s.n {
			converge.Tick(h.clock, h.gen)
			e, ok := h.tenant.Do(h.gen, s.ct)
			if !ok {
				h.t.Fatalf("the generator could not make a %q change", s.ct)
			}
			made(e)
		}
	}
	for range steps {
		converge.Tick(h.clock, h.gen)
		made(h.tenant.Step(h.gen))
	}
	h.deliver()
}

// deliver flushes both webhooks, then sends again every delivery ingest refused or did
// not answer, until it is acknowledged. halosim's Sender does not retry (whether Halo
// does is unconfirmed, docs/HALO.md); a refused delivery is sent again here as a
// retrying sender would, so that every event reaches ingest and the copy can be held to
// the tenant.
func (h *harness) deliver() {
	h.t.Helper()
	for _, e := range h.pending {
		if e.Payload == halosim.PayloadFull {
			h.senders[0].Send(e.Event)
		} else {
			h.senders[1].Send(e.Event)
		}
	}
	h.pending = nil
	// Halo delivers after it raised the event: no fetch may read the tenant at a time
	// before the event it answers (package converge, "The clock").
	h.clock.Advance(time.Second + time.Duration(h.gen.Int64N(int64(4*time.Second))))
	ctx, cancel := context.WithTimeout(h.t.Context(), settle)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(h.senders))
	for i, s := range h.senders {
		wg.Go(func() { _, errs[i] = s.Flush(ctx) })
	}
	wg.Wait()
	for i, s := range h.senders {
		if errs[i] != nil {
			h.t.Fatalf("webhook %d: %v", i, errs[i])
		}
		ds := s.Deliveries()
		for _, d := range ds[h.seen[i]:] {
			if d.Status >= 200 && d.Status <= 299 {
				h.acked = append(h.acked, d.Body)
			} else {
				h.refused = append(h.refused, d)
			}
		}
		h.seen[i] = len(ds)
	}
	h.redeliver(ctx)
}

// redeliver sends each refused delivery again until ingest acknowledges it.
func (h *harness) redeliver(ctx context.Context) {
	h.t.Helper()
	client := &http.Client{Timeout: senderTimeout}
	for _, d := range h.refused {
		for attempt := 1; ; attempt++ {
			status, _, err := h.post(ctx, client, d.Header, d.Body)
			if err == nil && status >= 200 && status <= 299 {
				h.acked = append(h.acked, d.Body)
				break
			}
			if ctx.Err() != nil {
				h.t.Fatalf("a delivery was refused %d times (last: %d %v); want it acknowledged once the fault clears", attempt, status, err)
			}
			pause(ctx, redeliverEvery)
		}
	}
	h.refused = nil
}

// post makes one delivery to the webhook route.
func (h *harness) post(ctx context.Context, client *http.Client, header http.Header, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.webhookURL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header = header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// ---- the permanent failures ----

// plant puts the scenario's two permanent failures on their way to the dead-letter
// queue: a message no worker can decode, sent to the queue directly, and an event of a
// kind nobody can tell, delivered through ingest, which accepts and queues it as it came
// and the worker then fails for good (docs/ARCHITECTURE.md, "Unknown events"). It
// returns once ingest has acknowledged the event.
func (h *harness) plant() {
	h.t.Helper()
	ctx := h.t.Context()
	if _, err := h.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(h.mainURL), MessageBody: aws.String(undecodable)}); err != nil {
		h.t.Fatal(err)
	}
	h.unknownID = fmt.Sprintf("00000000-0000-4000-8000-%012d", h.seed)
	body := fmt.Appendf(nil, `{"id":%q,"event":%q,"object_id":7,"timestamp":%q}`,
		h.unknownID, unknownEvent, h.clock.Now().UTC().Format("2006-01-02T15:04:05.0000000Z"))
	header := http.Header{"Content-Type": {"application/json"}, "Authorization": {authtest.Basic(webhookUser, webhookPass)}}
	ctx, cancel := context.WithTimeout(ctx, settle)
	defer cancel()
	client := &http.Client{Timeout: senderTimeout}
	for {
		status, answer, err := h.post(ctx, client, header, body)
		if err == nil && status == http.StatusOK {
			if !bytes.Contains(answer, []byte(`"unknown":1`)) {
				h.t.Fatalf("ingest's answer to an event of no known kind: %s; want it accepted as unknown", answer)
			}
			h.acked = append(h.acked, body)
			return
		}
		if ctx.Err() != nil {
			h.t.Fatalf("the unknown event was never acknowledged (last: %d %v)", status, err)
		}
		pause(ctx, redeliverEvery)
	}
}

// ---- waiting and checking ----

// depth is how many messages a queue holds: visible, in flight and delayed.
func (h *harness) depth(ctx context.Context, queueURL string) (int, error) {
	names := []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}
	out, err := h.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL), AttributeNames: names})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, n := range names {
		v, err := strconv.Atoi(out.Attributes[string(n)])
		if err != nil {
			return 0, fmt.Errorf("queue %s: %s = %q", queueURL, n, out.Attributes[string(n)])
		}
		total += v
	}
	return total, nil
}

// drain waits, polling within settle, until the change queue is empty and the
// dead-letter queue holds deadLetters messages, then stops the pollers.
func (h *harness) drain(deadLetters int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), settle)
	defer cancel()
	for {
		changes, err := h.depth(ctx, h.mainURL)
		dead, derr := h.depth(ctx, h.dlqURL)
		if err == nil && derr == nil && changes == 0 && dead >= deadLetters {
			break
		}
		if ctx.Err() != nil {
			h.t.Fatalf("after %s the change queue holds %d messages (%v) and the dead-letter queue %d (%v); want 0 and %d",
				settle, changes, err, dead, derr, deadLetters)
		}
		pause(ctx, 100*time.Millisecond)
	}
	h.stop()
}

// wantNothingElse fails the test unless the copy holds exactly the objects expected.
func (h *harness) wantNothingElse(exps []converge.Expectation) {
	h.t.Helper()
	want := map[converge.Key]bool{}
	for _, x := range exps {
		want[x.Key] = true
	}
	for _, spec := range change.Kinds() {
		err := h.copy.StoredIDs(h.t.Context(), h.conn, spec.Kind, func(ids []change.StoredID) error {
			for _, id := range ids {
				if k := (converge.Key{Kind: spec.Kind, ID: id.ID, ParentID: id.ParentID}); !want[k] {
					h.t.Errorf("the copy holds %s, which the tenant never had", k)
				}
			}
			return nil
		})
		if err != nil {
			h.t.Fatal(err)
		}
	}
}

// wantAcknowledgedApplied fails the test unless every event of every delivery ingest
// acknowledged was applied: it has its delivery record, not pending (an event-only one
// was fetched); or, where writing the record failed, which does not fail the message
// (docs/ARCHITECTURE.md, "Delivery records") and is counted, the copy holds the object
// at least at the event's version.
func (h *harness) wantAcknowledgedApplied() {
	h.t.Helper()
	ctx := h.t.Context()
	byID := map[string]converge.SentEvent{}
	for _, e := range h.sent {
		byID[e.ID] = e
	}
	checked := map[string]bool{}
	var unrecorded []string
	for _, body := range h.acked {
		var payloads []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &payloads); err != nil {
			var one struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(body, &one); err != nil {
				h.t.Fatalf("an acknowledged delivery is not JSON: %v", err)
			}
			payloads = append(payloads, one)
		}
		for _, p := range payloads {
			if checked[p.ID] || p.ID == h.unknownID {
				continue
			}
			checked[p.ID] = true
			e, ok := byID[p.ID]
			if !ok {
				h.t.Errorf("delivery %s was acknowledged but the tenant never raised it", p.ID)
				continue
			}
			recs, err := h.copy.Deliveries(ctx, h.conn, p.ID)
			if err != nil {
				h.t.Fatal(err)
			}
			id := strconv.FormatInt(e.ObjectID, 10)
			what := fmt.Sprintf("delivery %s (%s: %s %s, %s)", p.ID, e.What(), e.Kind, id, e.Payload)
			if i := slices.IndexFunc(recs, func(r change.Delivery) bool { return r.Kind == e.Kind && r.ID == id }); i >= 0 {
				if recs[i].Outcome == change.Pending {
					h.t.Errorf("%s was left pending: the object was never fetched", what)
				}
				// The copy's object names the delivery that wrote it: that delivery's record
				// says applied, even when its write's answer was lost and a retry found it.
				if o, found, err := h.copy.Get(ctx, h.conn, e.Kind, id, ""); err != nil {
					h.t.Fatal(err)
				} else if found && o.DeliveryID == p.ID && o.Version == recs[i].Version && recs[i].Outcome != change.Applied {
					h.t.Errorf("%s wrote the copy's %s %s at version %d, but its record says %q", what, e.Kind, id, o.Version, recs[i].Summary)
				}
				continue
			}
			unrecorded = append(unrecorded, what)
			o, found, err := h.copy.Get(ctx, h.conn, e.Kind, id, "") // events are never about a note alone
			if err != nil {
				h.t.Fatal(err)
			}
			if want := eventVersion(e); !found || o.Version < want {
				h.t.Errorf("%s was acknowledged but not applied: no delivery record, and the copy holds version %d (found %v); want at least %d",
					what, o.Version, found, want)
			}
		}
	}
	if len(checked) == 0 {
		h.t.Error("no delivery was acknowledged")
	}
	if failed := h.counts.Value(metrics.Metric{Name: metrics.ChangesFailed, Connection: h.conn, Label: "delivery_record"}); int64(len(unrecorded)) > failed {
		h.t.Errorf("%d acknowledged events have no delivery record, but only %d record writes failed: %v", len(unrecorded), failed, unrecorded)
	}
}

// eventVersion is the version the worker gives the change an event tells of: a full
// payload's object's change marker, else the event's timestamp (docs/ARCHITECTURE.md,
// "Versions"; a fetched object takes the later of its marker and the event's).
func eventVersion(e converge.SentEvent) int64 {
	if obj, ok := e.Objects[e.Kind]; ok && e.Payload == halosim.PayloadFull {
		spec, _ := change.Lookup(e.Kind)
		if s, ok := obj[spec.VersionField].(string); ok {
			if tm, ok, err := change.ParseHaloTime(s); err == nil && ok {
				return change.VersionOf(tm)
			}
		}
	}
	return change.VersionOf(e.Timestamp)
}

// wantDeadLetters fails the test unless the dead-letter queue holds the two permanent
// failures plant put on their way, and nothing else.
func (h *harness) wantDeadLetters() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), settle)
	defer cancel()
	held, err := h.depth(ctx, h.dlqURL)
	if err != nil {
		h.t.Fatal(err)
	}
	var bodies []string
	for len(bodies) < held {
		out, err := h.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(h.dlqURL),
			MaxNumberOfMessages: 10, VisibilityTimeout: 60, WaitTimeSeconds: 1})
		if err != nil {
			h.t.Fatalf("reading the dead-letter queue (%d of its %d messages read): %v", len(bodies), held, err)
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
	// A planted failure may be there twice: a send whose answer was lost is sent again
	// by the SDK, and a standard queue delivers at least once. Each copy is the same
	// message; anything else is a change the pipeline lost to the dead-letter queue.
	var sawUndecodable, sawUnknown bool
	for _, b := range bodies {
		if b == undecodable {
			sawUndecodable = true
			continue
		}
		env, err := message.Decode([]byte(b))
		if err == nil && env.Unknown && env.Change.DeliveryID == h.unknownID {
			sawUnknown = true
			continue
		}
		h.t.Errorf("the dead-letter queue holds a message the scenario did not plant: %.300s", b)
	}
	if !sawUndecodable || !sawUnknown {
		h.t.Errorf("the dead-letter queue lacks a planted failure: the undecodable message %v, the unknown event %v (it holds %d)", sawUndecodable, sawUnknown, len(bodies))
	}
}
