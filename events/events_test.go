// Package events holds the sample Lambda events for `sam local invoke -e events/<file>`.
// This test keeps every file valid: each decodes into its aws-lambda-go type and runs
// through the real handler with the example configuration.
package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/queue"
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
	"ingest-wrong-password.json":    {401, 0},
}

type sent struct {
	mu   sync.Mutex
	msgs []queue.Message
}

func (s *sent) Send(_ context.Context, m []queue.Message) error {
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
				h, err := ingest.New(cfg, q, metrics.Discard{}, log)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := awslambda.Ingest(h)(context.Background(), e)
				if err != nil || resp.StatusCode != w.status {
					t.Fatalf("status %d err %v body %s; want %d", resp.StatusCode, err, resp.Body, w.status)
				}
				if len(q.msgs) != w.changes {
					t.Fatalf("enqueued %d changes, want %d", len(q.msgs), w.changes)
				}
			case strings.HasPrefix(f, "worker-"):
				var e events.SQSEvent
				decodeStrict(t, f, &e)
				store := storetest.NewMemory()
				resp, err := awslambda.Worker(worker.New(store, metrics.Discard{}, log, nil), nil, log)(context.Background(), e)
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
			default:
				t.Fatalf("%s: name must start with ingest- or worker-", f)
			}
			seen++
		})
	}
	if seen != len(files) {
		t.Fatalf("%d of %d files ran", seen, len(files))
	}
}
