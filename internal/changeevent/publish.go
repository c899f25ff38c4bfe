package changeevent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/halosync/halosync/internal/metrics"
)

// MaxBatch is how many events one Bus.Put takes: PutEvents' limit.
const MaxBatch = 10

// Bus publishes events. Put takes at most MaxBatch events and returns one error per
// event (nil: published), or an error when none was published.
type Bus interface {
	Put(ctx context.Context, events []Event) ([]error, error)
}

// Record is one record of the table's stream: its id (the sequence number, what a batch
// item failure names) and the object item's images before and after the write, as the
// stream holds them (nil when absent).
type Record struct {
	ID       string
	Old, New []byte
}

// Decoder turns a stream record's images into the event of the change the write applied;
// false when the write altered no object state (a pending marker, another item).
type Decoder func(old, new []byte) (Event, bool, error)

// Counter counts what the publisher does.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Publisher puts the events of a stream's records on a bus.
type Publisher struct {
	decode Decoder
	bus    Bus
	count  Counter
	log    *slog.Logger
	// Attempts is how often a batch's failed entries are put before the record is
	// reported failed (at least 1); Backoff the wait before each retry.
	Attempts int
	Backoff  time.Duration
}

// NewPublisher returns a publisher that puts each failed entry three times at most.
func NewPublisher(decode Decoder, bus Bus, count Counter, log *slog.Logger) *Publisher {
	return &Publisher{decode: decode, bus: bus, count: count, log: log, Attempts: 3, Backoff: 100 * time.Millisecond}
}

// pending is a record's event on its way.
type pending struct {
	record string
	event  Event
}

// Handle publishes the events of records, in order, in batches of MaxBatch, and returns
// the id of the first record whose event could not be published (or whose images could
// not be read), or "" when all were. A stream is read in order: its event source mapping
// retries from that record, so nothing after it is put in this call, and what was
// published before it is not repeated. An entry PutEvents refuses is put again, alone
// with the other refused ones, up to Attempts times first.
func (p *Publisher) Handle(ctx context.Context, records []Record) (failed string) {
	var batch []pending
	for _, r := range records {
		ev, ok, err := p.decode(r.Old, r.New)
		if err != nil {
			p.count.Count(metrics.Metric{Name: metrics.EventsFailed, Connection: metrics.FunctionConnection, Label: "undecodable"}, 1)
			p.log.ErrorContext(ctx, "stream record unreadable", "record", r.ID, "reason", "undecodable", "error", err.Error())
			if first := p.put(ctx, batch); first != "" {
				return first
			}
			return r.ID
		}
		if !ok {
			continue
		}
		batch = append(batch, pending{record: r.ID, event: ev})
		if len(batch) == MaxBatch {
			if first := p.put(ctx, batch); first != "" {
				return first
			}
			batch = batch[:0]
		}
	}
	return p.put(ctx, batch)
}

// put publishes a batch, retrying refused entries; it returns the record of the first
// entry still unpublished, or "".
func (p *Publisher) put(ctx context.Context, batch []pending) string {
	left := append([]pending(nil), batch...)
	var lastErr error
	for attempt := 1; len(left) > 0 && attempt <= max(p.Attempts, 1); attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				attempt = p.Attempts + 1
				lastErr = ctx.Err()
				continue
			case <-time.After(p.Backoff << (attempt - 2)):
			}
		}
		events := make([]Event, len(left))
		for i, e := range left {
			events[i] = e.event
		}
		errs, err := p.bus.Put(ctx, events)
		if err == nil && len(errs) != len(events) {
			err = fmt.Errorf("the bus answered for %d of %d events", len(errs), len(events))
		}
		if err != nil {
			lastErr = err
			continue
		}
		var still []pending
		for i, e := range left {
			if errs[i] != nil {
				lastErr = errs[i]
				still = append(still, e)
				continue
			}
			p.count.Count(metrics.Metric{Name: metrics.EventsPublished, Connection: e.event.Detail.Connection, Kind: string(e.event.Detail.Kind)}, 1)
		}
		left = still
	}
	if len(left) == 0 {
		return ""
	}
	for _, e := range left {
		p.count.Count(metrics.Metric{Name: metrics.EventsFailed, Connection: e.event.Detail.Connection, Kind: string(e.event.Detail.Kind), Label: "put_failed"}, 1)
	}
	first := left[0]
	p.log.ErrorContext(ctx, "change events not published; the stream retries from the first", "connection", first.event.Detail.Connection,
		"record", first.record, "event_id", first.event.ID, "unpublished", len(left), "reason", "put_failed", "error", fmt.Sprint(lastErr))
	return first.record
}
