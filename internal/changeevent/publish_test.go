package changeevent_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/metrics"
)

// fakeBus records what it was given and refuses the events refuse names, once each.
type fakeBus struct {
	calls  [][]string          // event ids per Put
	refuse map[string]int      // event id → refusals left
	put    map[string]struct{} // published event ids
}

func (b *fakeBus) Put(_ context.Context, events []changeevent.Event) ([]error, error) {
	if len(events) > changeevent.MaxBatch {
		return nil, errors.New("too many entries")
	}
	var ids []string
	errs := make([]error, len(events))
	for i, e := range events {
		ids = append(ids, e.ID)
		if b.refuse[e.ID] > 0 {
			b.refuse[e.ID]--
			errs[i] = errors.New("InternalFailure")
			continue
		}
		b.put[e.ID] = struct{}{}
	}
	b.calls = append(b.calls, ids)
	return errs, nil
}

// records are n stream records; the decoder makes record i's event with id "e<i>", and
// skips (a pending marker) the ids in skip.
func records(n int) []changeevent.Record {
	out := make([]changeevent.Record, n)
	for i := range out {
		out[i] = changeevent.Record{ID: "r" + strconv.Itoa(i), New: []byte(strconv.Itoa(i))}
	}
	return out
}

func decoder(skip ...int) changeevent.Decoder {
	return func(_, n []byte) (changeevent.Event, bool, error) {
		i, err := strconv.Atoi(string(n))
		if err != nil {
			return changeevent.Event{}, false, err
		}
		for _, s := range skip {
			if s == i {
				return changeevent.Event{}, false, nil
			}
		}
		return changeevent.Event{ID: "e" + strconv.Itoa(i), Detail: changeevent.Detail{Connection: "acme", Kind: change.Ticket}}, true, nil
	}
}

func newPublisher(bus changeevent.Bus, d changeevent.Decoder, attempts int) (*changeevent.Publisher, *metrics.Memory) {
	count := metrics.NewMemory()
	p := changeevent.NewPublisher(d, bus, count, slog.New(slog.DiscardHandler))
	p.Attempts, p.Backoff = attempts, 0
	return p, count
}

func TestPublishesInBatchesOfTenSkippingWritesThatChangedNothing(t *testing.T) {
	bus := &fakeBus{put: map[string]struct{}{}}
	p, count := newPublisher(bus, decoder(3), 3)
	if failed := p.Handle(context.Background(), records(22)); failed != "" {
		t.Fatalf("failed %q", failed)
	}
	if len(bus.calls) != 3 || len(bus.calls[0]) != 10 || len(bus.calls[1]) != 10 || len(bus.calls[2]) != 1 {
		t.Fatalf("puts %v", bus.calls)
	}
	if _, ok := bus.put["e3"]; ok || len(bus.put) != 21 {
		t.Fatalf("published %v", bus.put)
	}
	if n := count.Value(metrics.Metric{Name: metrics.EventsPublished, Connection: "acme"}); n != 21 {
		t.Fatalf("EventsPublished %d", n)
	}
}

func TestARefusedEntryIsPutAgainAloneWithinTheInvocation(t *testing.T) {
	bus := &fakeBus{put: map[string]struct{}{}, refuse: map[string]int{"e4": 1}}
	p, _ := newPublisher(bus, decoder(), 3)
	if failed := p.Handle(context.Background(), records(6)); failed != "" {
		t.Fatalf("failed %q", failed)
	}
	if len(bus.calls) != 2 || len(bus.calls[1]) != 1 || bus.calls[1][0] != "e4" {
		t.Fatalf("puts %v", bus.calls)
	}
}

func TestAnEntryStillRefusedIsTheBatchItemFailureAndTheRetryRepeatsNoEarlierEvent(t *testing.T) {
	bus := &fakeBus{put: map[string]struct{}{}, refuse: map[string]int{"e12": 1}}
	p, count := newPublisher(bus, decoder(), 1)
	recs := records(25)
	failed := p.Handle(context.Background(), recs)
	if failed != "r12" {
		t.Fatalf("failed %q, want r12", failed)
	}
	// Nothing after the failed batch was put: the stream retries from r12.
	if len(bus.calls) != 2 {
		t.Fatalf("puts %v", bus.calls)
	}
	if n := count.Value(metrics.Metric{Name: metrics.EventsFailed, Connection: "acme", Label: "put_failed"}); n != 1 {
		t.Fatalf("EventsFailed %d", n)
	}
	// Lambda's retry starts at the failed record: every event is then published, and
	// none of the first batch again.
	bus.calls = nil
	if failed := p.Handle(context.Background(), recs[12:]); failed != "" {
		t.Fatalf("retry failed %q", failed)
	}
	if len(bus.put) != 25 {
		t.Fatalf("published %d of 25", len(bus.put))
	}
	for _, call := range bus.calls {
		for _, id := range call {
			if n, _ := strconv.Atoi(id[1:]); n < 10 {
				t.Fatalf("the retry repeated %s", id)
			}
		}
	}
}

func TestAnUnreadableRecordFailsAfterWhatCameBeforeItIsPublished(t *testing.T) {
	bus := &fakeBus{put: map[string]struct{}{}}
	p, _ := newPublisher(bus, decoder(), 1)
	recs := records(4)
	recs[2].New = []byte("not a number")
	if failed := p.Handle(context.Background(), recs); failed != "r2" {
		t.Fatalf("failed %q, want r2", failed)
	}
	if len(bus.put) != 2 {
		t.Fatalf("published %v", bus.put)
	}
}

func TestABusThatAnswersNothingFailsTheFirstRecord(t *testing.T) {
	p, _ := newPublisher(downBus{}, decoder(), 2)
	if failed := p.Handle(context.Background(), records(3)); failed != "r0" {
		t.Fatalf("failed %q", failed)
	}
}

type downBus struct{}

func (downBus) Put(context.Context, []changeevent.Event) ([]error, error) {
	return nil, errors.New("connection refused")
}
