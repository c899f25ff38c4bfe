// Package eventbridgebus puts change events on an EventBridge bus with PutEvents, one
// entry per event (source, detail-type, time, detail as JSON), reporting each entry's
// failure so that only refused entries are retried.
package eventbridgebus

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/halosync/halosync/internal/changeevent"
)

// API is the part of the EventBridge client the bus uses; *eventbridge.Client satisfies it.
type API interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Bus is one event bus.
type Bus struct {
	client API
	name   string
}

// New returns the bus named name (or its ARN).
func New(client API, name string) *Bus { return &Bus{client: client, name: name} }

// Open returns the bus named name (or its ARN) through an EventBridge client made from cfg.
func Open(cfg aws.Config, name string) *Bus { return New(eventbridge.NewFromConfig(cfg), name) }

// Put puts up to changeevent.MaxBatch events in one PutEvents call and returns each
// event's error (nil when EventBridge took it), or an error when the call failed whole.
// An event that cannot be encoded fails alone.
func (b *Bus) Put(ctx context.Context, events []changeevent.Event) ([]error, error) {
	if len(events) > changeevent.MaxBatch {
		return nil, fmt.Errorf("eventbridge: put %d events: at most %d at once", len(events), changeevent.MaxBatch)
	}
	errs := make([]error, len(events))
	var entries []types.PutEventsRequestEntry
	var sent []int // entries[i] is events[sent[i]]
	for i, e := range events {
		detail, err := e.EncodeDetail()
		if err != nil {
			errs[i] = fmt.Errorf("eventbridge: encode event %s: %w", e.ID, err)
			continue
		}
		entries = append(entries, types.PutEventsRequestEntry{
			EventBusName: aws.String(b.name), Source: aws.String(e.Source), DetailType: aws.String(e.DetailType),
			Time: aws.Time(e.Time), Detail: aws.String(string(detail)),
		})
		sent = append(sent, i)
	}
	if len(entries) == 0 {
		return errs, nil
	}
	out, err := b.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
	if err != nil {
		return nil, fmt.Errorf("eventbridge: put events on %s: %w", b.name, err)
	}
	if len(out.Entries) != len(entries) {
		return nil, fmt.Errorf("eventbridge: put events on %s: %d results for %d entries", b.name, len(out.Entries), len(entries))
	}
	for j, r := range out.Entries {
		if code := aws.ToString(r.ErrorCode); code != "" {
			errs[sent[j]] = fmt.Errorf("eventbridge: event %s: %w", events[sent[j]].ID, errors.New(code+": "+aws.ToString(r.ErrorMessage)))
		}
	}
	return errs, nil
}
