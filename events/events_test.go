// Package events holds the sample Lambda events for `sam local invoke -e events/<file>`, and
// the env file and configuration that let it run without AWS (local-env.json,
// halosync.local.yaml; localenv_test.go checks them).
// This test keeps every event valid: each decodes into its aws-lambda-go type and runs
// through the real handler with the example configuration (the poller's, whose example
// connection has no halo: settings, against a fake Halo tenant).
package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/lambdaevent"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/pipeline"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// want is the answer each ingest event must get and how many changes it enqueues.
var want = map[string]struct {
	status  int
	changes int
}{
	"ingest-ticket-full.json":       {200, 1},
	"ingest-ticket-small.json":      {200, 1},
	"ingest-ticket-event-only.json": {200, 1},
	"ingest-ticket-batch.json":      {200, 3},
	"ingest-ticket-base64.json":     {200, 1},
	// The same delivery through the ingest function's URL, the backup endpoint.
	"ingest-ticket-function-url.json": {200, 1},
	"ingest-wrong-password.json":      {401, 0},
}

type sent struct {
	mu   sync.Mutex
	msgs []message.Message
}

func (s *sent) Send(_ context.Context, m []message.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m...)
	return nil
}

func decodeStrict(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestEveryEventRunsThroughItsHandler(t *testing.T) {
	cfg, err := config.Load(context.Background(), "../halosync.example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	files, _ := filepath.Glob("*.json")
	files = slices.DeleteFunc(files, func(f string) bool { return slices.Contains(notAnEvent, f) })
	if len(files) == 0 {
		t.Fatal("no sample events")
	}
	seen := 0
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			switch {
			case strings.HasPrefix(f, "ingest-"):
				w, ok := want[f]
				if !ok {
					t.Fatalf("%s has no expected answer in this test's table", f)
				}
				var e events.APIGatewayV2HTTPRequest
				decodeStrict(t, f, &e)
				q := &sent{}
				conns, err := connection.CompileAll(cfg)
				if err != nil {
					t.Fatal(err)
				}
				h := ingest.New(conns, q, metrics.Discard{}, log)
				resp, err := awslambda.Ingest(h)(context.Background(), e)
				if err != nil || resp.StatusCode != w.status {
					t.Fatalf("status %d err %v body %s; want %d", resp.StatusCode, err, resp.Body, w.status)
				}
				if len(q.msgs) != w.changes {
					t.Fatalf("enqueued %d changes, want %d", len(q.msgs), w.changes)
				}
				endpoint := change.EndpointPrimary
				if strings.Contains(e.RequestContext.DomainName, ".lambda-url.") {
					endpoint = change.EndpointBackup
				}
				for _, m := range q.msgs {
					if env, err := message.Decode(m.Body); err != nil || env.Change.Endpoint != endpoint {
						t.Fatalf("a change came through endpoint %q (%v), want %s", env.Change.Endpoint, err, endpoint)
					}
				}
			case strings.HasPrefix(f, "worker-"):
				var e events.SQSEvent
				decodeStrict(t, f, &e)
				store := storetest.NewMemory()
				resp, err := awslambda.Worker(worker.New(store, metrics.Discard{}, log, connection.Set{{ID: "default"}}, nil), nil)(context.Background(), e)
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("failures %v err %v", resp.BatchItemFailures, err)
				}
				if store.Len() != len(e.Records) {
					t.Fatalf("stored %d objects from %d records", store.Len(), len(e.Records))
				}
				o, ok, _ := store.Get(context.Background(), "default", change.Ticket, "4242", "")
				if !ok || o.Fields["summary"] == nil {
					t.Fatalf("ticket 4242 not stored with its fields: %+v", o)
				}
			case strings.HasPrefix(f, "publisher-"):
				var e events.DynamoDBEvent
				decodeStrict(t, f, &e)
				bus := &recordingBus{}
				resp, err := lambdaevent.Publisher(changeevent.NewPublisher(dynamo.StreamEvent, bus, metrics.Discard{}, log))(context.Background(), e)
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("failures %v err %v", resp.BatchItemFailures, err)
				}
				// The ticket created and reassigned; the last record only marks it pending.
				if len(bus.events) != 2 || bus.events[0].DetailType != "ticket created" || bus.events[1].Detail.Summary != "reassigned: agent_id 7 → 11, team_id 2 → 3" {
					t.Fatalf("published %+v", bus.events)
				}
			case strings.HasPrefix(f, "poller-"):
				var e events.EventBridgeEvent
				decodeStrict(t, f, &e)
				runPollerEvent(t, e, cfg, log)
			default:
				t.Fatalf("%s: name must start with ingest-, worker-, poller- or publisher-", f)
			}
			seen++
		})
	}
	if seen != len(files) {
		t.Fatalf("%d of %d files ran", seen, len(files))
	}
}

// recordingBus takes every event put on it.
type recordingBus struct{ events []changeevent.Event }

func (b *recordingBus) Put(_ context.Context, events []changeevent.Event) ([]error, error) {
	b.events = append(b.events, events...)
	return make([]error, len(events)), nil
}

// runPollerEvent runs a scheduled event through the poller function's handler: the
// example's connection, given halo: settings pointing at a seeded fake tenant, is polled
// with the example's (default) poll settings, the in-memory store as its copy and cursors,
// and what it enqueues is applied by the worker. The first run backfills every object; the
// same event again is not due (hybrid mode polls every 15 minutes).
func runPollerEvent(t *testing.T, e events.EventBridgeEvent, cfg *config.Config, log *slog.Logger) {
	t.Helper()
	if e.DetailType != "Scheduled Event" || e.Source != "aws.events" || e.Time.IsZero() || len(e.Resources) != 1 {
		t.Fatalf("not a scheduled event as EventBridge sends it: %+v", e)
	}
	tenant := halotest.Start(t, halosim.Options{})
	tenant.Seed(rand.New(rand.NewPCG(1, 2)), 2)
	client, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID,
		ClientSecret: tenant.Options().ClientSecret, Budget: haloapi.NewBudget(100000, time.Minute, nil)})
	if err != nil {
		t.Fatal(err)
	}
	store := storetest.NewMemory()
	q := &sent{}
	withHalo := *cfg
	withHalo.Connections = slices.Clone(cfg.Connections)
	withHalo.Connections[0].Halo = config.Halo{BaseURL: tenant.URL(), ClientID: tenant.Options().ClientID, ClientSecret: tenant.Options().ClientSecret}
	p, err := pipeline.Build(&withHalo, pipeline.Ports{Store: store, Queue: q, Count: metrics.Discard{}, Log: log,
		HaloClient: func(*connection.Connection) (*haloapi.Client, error) { return client, nil }})
	if err != nil {
		t.Fatal(err)
	}
	h := awslambda.Poller(p.Poller, log)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := h(ctx, e)
	if err != nil || len(res.Connections) != 1 || !res.Connections[0].Polled || res.EventID != e.ID {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	w := p.Worker
	for i, m := range q.msgs {
		if _, err := w.Process(ctx, "poll-"+strconv.Itoa(i), m.Body); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, kind := range []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action} {
		n := tenant.Count(kind)
		total += n
		if got := res.Connections[0].Enqueued[kind]; got != n {
			t.Errorf("%s: enqueued %d of the tenant's %d", kind, got, n)
		}
	}
	if store.Len() != total || len(q.msgs) != total {
		t.Errorf("the copy holds %d objects, %d enqueued; the tenant has %d", store.Len(), len(q.msgs), total)
	}
	res, err = h(ctx, e)
	if err != nil || len(res.Connections) != 1 || res.Connections[0].Polled {
		t.Fatalf("the same event a moment later: %+v, %v; want the connection not due", res, err)
	}
}
