package lambdaevent_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/lambdaevent"
	"github.com/halosync/halosync/internal/metrics"
)

// takingBus takes every event, but refuses those of refuse.
type takingBus struct {
	events []changeevent.Event
	refuse string // an object id
}

func (b *takingBus) Put(_ context.Context, evs []changeevent.Event) ([]error, error) {
	errs := make([]error, len(evs))
	for i, e := range evs {
		if e.Detail.ID == b.refuse {
			errs[i] = context.DeadlineExceeded
			continue
		}
		b.events = append(b.events, e)
	}
	return errs, nil
}

const streamBatch = `{"Records": [
 {"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "11",
  "OldImage": {"gsi2pk": {"S": "C#acme#KIND#asset"}, "conn": {"S": "acme"}, "kind": {"S": "asset"}, "id": {"S": "1"}, "version": {"N": "1"},
   "fields": {"M": {"z": {"S": "a"}, "ss": {"SS": ["a"]}}}},
  "NewImage": {"gsi2pk": {"S": "C#acme#KIND#asset"}, "conn": {"S": "acme"}, "kind": {"S": "asset"}, "id": {"S": "1"}, "version": {"N": "2"},
   "synced_at": {"S": "2026-01-01T00:00:00Z"},
   "fields": {"M": {"z": {"NULL": true}, "ss": {"SS": ["a", "b"]}, "bin": {"B": "aGk="}, "ns": {"NS": ["1", "2"]}}}}}},
 {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "12",
  "NewImage": {"gsi2pk": {"S": "C#acme#KIND#asset"}, "conn": {"S": "acme"}, "kind": {"S": "asset"}, "id": {"S": "2"}, "version": {"N": "5"},
   "fields": {"M": {}}}}}
]}`

func TestPublisherReadsLambdasStreamEvent(t *testing.T) {
	var e events.DynamoDBEvent
	if err := json.Unmarshal([]byte(streamBatch), &e); err != nil {
		t.Fatal(err)
	}
	bus := &takingBus{refuse: "2"}
	p := changeevent.NewPublisher(dynamo.StreamEvent, bus, metrics.Discard{}, slog.New(slog.DiscardHandler))
	p.Attempts, p.Backoff = 1, 0
	resp, err := lambdaevent.Publisher(p)(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "12" {
		t.Fatalf("batch item failures %+v, want record 12's", resp.BatchItemFailures)
	}
	if len(bus.events) != 1 {
		t.Fatalf("published %+v", bus.events)
	}
	changed := bus.events[0].Detail.Changed
	if len(changed) != 4 || changed["z"].From != "a" || changed["z"].To != nil || !changed["bin"].Added || !changed["ns"].Added {
		t.Fatalf("changed %+v", changed)
	}
}
