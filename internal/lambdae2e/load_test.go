package lambdae2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/loadgen"
)

// loadEnv turns TestLambdaLoad into `make load`'s Lambda-path run: several functions of
// each kind, fixed rates and saturation, the figures printed as a Markdown table.
const loadEnv = "HALOSYNC_LOAD"

// lambdaTarget is loadgen's view of a stack: ingest invoked as API Gateway would (each
// emulator runs one invoke at a time, as one Lambda instance does), the worker fed by
// event source mapping loops, the copy read from DynamoDB.
type lambdaTarget struct {
	s         *stack
	ingest    chan *function
	auth      string
	processed atomic.Int64
	seq       atomic.Int64
}

func (l *lambdaTarget) Deliver(ctx context.Context, body []byte) (int, error) {
	f := <-l.ingest
	defer func() { l.ingest <- f }()
	path := ingest.PathPrefix + conn
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "POST " + ingest.PathPrefix + "{connection}", RawPath: path,
		Headers:        map[string]string{"authorization": l.auth, "content-type": "application/json"},
		PathParameters: map[string]string{"connection": conn},
		Body:           string(body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "load-" + strconv.FormatInt(l.seq.Add(1), 10), Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodPost, Path: path, SourceIP: "127.0.0.1"},
		},
	}
	out, err := f.invoke(ctx, ev)
	if err != nil {
		return 0, err
	}
	var r events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("ingest answer %q: %w", out, err)
	}
	return r.StatusCode, nil
}

func (l *lambdaTarget) Version(ctx context.Context, id string) (int64, bool, error) {
	o, ok, err := l.s.store.Get(ctx, conn, change.Ticket, id, "")
	return o.Version, ok, err
}

func (l *lambdaTarget) Processed(context.Context) (int64, error) { return l.processed.Load(), nil }

// feed plays the event source mapping for one worker function until ctx ends: receive a
// batch, invoke the worker, delete what it did not report failed.
func (l *lambdaTarget) feed(ctx context.Context, t *testing.T, worker *function, arn string) {
	player := newPlayer(t, l.s.queue, worker, arn) // for its record, as Lambda builds it
	for ctx.Err() == nil {
		msgs, err := l.s.queue.Receive(ctx, 10, time.Second)
		if err != nil || len(msgs) == 0 {
			continue
		}
		ev := events.SQSEvent{}
		for _, m := range msgs {
			ev.Records = append(ev.Records, player.record(m))
		}
		out, err := worker.invoke(context.WithoutCancel(ctx), ev)
		if err != nil {
			t.Errorf("worker: %v", err)
			return
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Errorf("worker answer %q: %v", out, err)
			return
		}
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		var handles []string
		for _, m := range msgs {
			if !failed[m.ID] {
				handles = append(handles, m.ReceiptHandle)
			}
		}
		if err := l.s.queue.Delete(context.WithoutCancel(ctx), handles...); err != nil {
			t.Errorf("delete: %v", err)
			return
		}
		l.processed.Add(int64(len(handles)))
	}
}

// TestLambdaLoad drives the functions under the emulator with loadgen, the generator
// `make load` runs against `halosync serve`. By default briefly (20 deliveries a second
// for two seconds): every delivery is accepted, processed and read back from DynamoDB.
// With HALOSYNC_LOAD=1 (`make load`), with four functions of each kind, at the rates in
// HALOSYNC_LOAD_RATES (default 25,50 a second) and at saturation, printing the figures
// docs/PERFORMANCE.md records.
func TestLambdaLoad(t *testing.T) {
	t.Parallel()
	full := os.Getenv(loadEnv) != ""
	s := newStack(t, "load")
	target := &lambdaTarget{s: s, ingest: make(chan *function, 8), auth: authtest.Basic("halo", "first-secret")}
	ingests, workers := []*function{s.ingest}, []*function{s.worker}
	if full {
		for range 3 {
			ingests = append(ingests, startConfigured(t, s, "ingest", s.config, warmupIngest))
			workers = append(workers, startConfigured(t, s, "worker", s.config, events.SQSEvent{Records: []events.SQSMessage{}}))
		}
	}
	for _, f := range ingests {
		target.ingest <- f
	}
	arn := s.player.arn // the queue's, as the mapping names it
	ctx, stop := context.WithCancel(t.Context())
	var feeding sync.WaitGroup
	for _, w := range workers {
		feeding.Add(1)
		go func() {
			defer feeding.Done()
			target.feed(ctx, t, w, arn)
		}()
	}
	defer func() {
		stop()
		feeding.Wait()
	}()

	gen := loadgen.NewGen(uint32(time.Now().Unix()), 500)
	if !full {
		r, err := loadgen.Rate(ctx, target, gen, 20, 2*time.Second, len(ingests), loadgen.Options{Drain: 30 * time.Second, SampleEvery: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s\n%s", loadgen.Header(), r.Row())
		if r.Accepted != r.Sent || r.Accepted == 0 || !r.Drained || r.Latency.Samples == 0 || r.Latency.Unreadable > 0 {
			t.Fatalf("sent %d, accepted %d, drained %v, %d samples read back, %d not: every delivery should be accepted, applied and readable",
				r.Sent, r.Accepted, r.Drained, r.Latency.Samples, r.Latency.Unreadable)
		}
		return
	}
	var rates []int
	for _, f := range strings.Split(envOr("HALOSYNC_LOAD_RATES", "25,50"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("HALOSYNC_LOAD_RATES: %v", err)
		}
		rates = append(rates, n)
	}
	window := 10 * time.Second
	fmt.Printf("\nLambda path: %d ingest and %d worker functions under the emulator, DynamoDB Local, fauxqs\n\n%s\n",
		len(ingests), len(workers), loadgen.Header())
	for _, rate := range rates {
		r, err := loadgen.Rate(ctx, target, gen, rate, window, len(ingests), loadgen.Options{Drain: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(r.Row())
	}
	r, err := loadgen.Saturate(ctx, target, gen, len(ingests), window, loadgen.Options{Drain: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(r.Row())
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
