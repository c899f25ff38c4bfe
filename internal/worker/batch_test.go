package worker_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// delays records the visibility each failed message was given.
type delays map[string]time.Duration

func (d delays) ChangeVisibility(_ context.Context, receipt string, t time.Duration) error {
	d[receipt] = t
	return nil
}

// slowHalo is Halo's API taking its time: each fetch moves the clock on by took and then
// fails as the request's deadline ends it; it notes the deadline it was given.
type slowHalo struct {
	clock     *halosim.Clock
	took      time.Duration
	deadlines []time.Time
}

func (h *slowHalo) Fetch(ctx context.Context, _ change.Kind, _, _ string) (map[string]any, bool, error) {
	d, _ := ctx.Deadline()
	h.deadlines = append(h.deadlines, d)
	h.clock.Advance(h.took)
	return nil, false, context.DeadlineExceeded
}

func (h *slowHalo) FetchNotes(context.Context, string) ([]map[string]any, error) { return nil, nil }

// TestBatchStopsBeforeTheDeadline: a slow fetch uses most of the invocation; the fetch
// had to end before the deadline, less half the margin; the messages after it are not
// started but failed and made visible at once (they spent no attempt), while the slow one
// is backed off; nothing of the unstarted ones is written.
func TestBatchStopsBeforeTheDeadline(t *testing.T) {
	clock := halosim.NewClock(time.Now())
	deadline := clock.Now().Add(30 * time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	store, counts := storetest.NewMemory(), metrics.NewMemory()
	halo := &slowHalo{clock: clock, took: 25 * time.Second}
	w := worker.New(store, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, map[string]worker.Fetcher{"default": halo})
	worker.SetClock(w, clock.Now)

	eventOnly, err := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: "1",
		Op: change.OpUpsert, Version: 5, Source: change.SourceWebhook}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []message.Received{
		{ID: "slow", ReceiptHandle: "r-slow", ReceiveCount: 3, Body: eventOnly.Body},
		{ID: "next", ReceiptHandle: "r-next", ReceiveCount: 1, Body: ticketMessage(t, "2", 5, map[string]any{"a": 1}),
			Attributes: map[string]string{message.AttrConnection: "default"}},
		{ID: "last", ReceiptHandle: "r-last", ReceiveCount: 1, Body: ticketMessage(t, "3", 5, map[string]any{"a": 1})},
	}
	vis := delays{}
	failed := w.HandleBatch(ctx, msgs, vis)
	if !slices.Equal(failed, []string{"slow", "next", "last"}) {
		t.Fatalf("failed %v, want slow, next, last", failed)
	}
	if len(halo.deadlines) != 1 || halo.deadlines[0].IsZero() || halo.deadlines[0].After(deadline.Add(-worker.Margin/2)) {
		t.Fatalf("the fetch ran under deadlines %v, want one no later than %v", halo.deadlines, deadline.Add(-worker.Margin/2))
	}
	if d := vis["r-slow"]; d < 6*time.Second || d > 10*time.Second {
		t.Errorf("the slow message's retry delay is %v, want Backoff(3), 8 s ± 20 %%", d)
	}
	for _, r := range []string{"r-next", "r-last"} {
		if d, ok := vis[r]; !ok || d != 0 {
			t.Errorf("%s: visibility %v (set %v), want 0: not started, so visible again at once", r, d, ok)
		}
	}
	for _, id := range []string{"2", "3"} {
		if _, ok, _ := store.Get(ctx, "default", change.Ticket, id, ""); ok {
			t.Errorf("ticket %s was written, but its message was not to be started", id)
		}
	}
	if got := counts.Value(metrics.Metric{Name: metrics.ChangesFailed, Connection: "default", Label: "no_time"}); got != 1 {
		t.Errorf("ChangesFailed{default, no_time} = %d, want 1", got)
	}
	if got := counts.Value(metrics.Metric{Name: metrics.ChangesFailed, Connection: "_unknown", Label: "no_time"}); got != 1 {
		t.Errorf("ChangesFailed{_unknown, no_time} = %d, want 1", got)
	}
}

// TestBatchWithoutDeadlineStartsEverything: the local pump gives no deadline; every
// message is processed however long the one before took.
func TestBatchWithoutDeadlineStartsEverything(t *testing.T) {
	clock := halosim.NewClock(time.Now())
	store := storetest.NewMemory()
	halo := &slowHalo{clock: clock, took: time.Hour}
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, map[string]worker.Fetcher{"default": halo})
	worker.SetClock(w, clock.Now)
	eventOnly, err := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: "1",
		Op: change.OpUpsert, Version: 5}})
	if err != nil {
		t.Fatal(err)
	}
	failed := w.HandleBatch(context.Background(), []message.Received{
		{ID: "slow", Body: eventOnly.Body},
		{ID: "next", Body: ticketMessage(t, "2", 5, map[string]any{"a": 1})},
	}, nil)
	if !slices.Equal(failed, []string{"slow"}) {
		t.Fatalf("failed %v, want only slow", failed)
	}
	if len(halo.deadlines) != 1 || !halo.deadlines[0].IsZero() {
		t.Errorf("the fetch ran under deadlines %v, want none", halo.deadlines)
	}
	if _, ok, _ := store.Get(context.Background(), "default", change.Ticket, "2", ""); !ok {
		t.Error("the message after the slow one was not applied")
	}
}

// deadLetters is the dead-letter queue: what it was sent, or an error.
type deadLetters struct {
	sent []message.Message
	err  error
}

func (d *deadLetters) Send(_ context.Context, msgs []message.Message) error {
	if d.err != nil {
		return d.err
	}
	d.sent = append(d.sent, msgs...)
	return nil
}

// TestPermanentFailuresAreMovedWithTheirReason: an undecodable message and a change for
// an unconfigured connection go to the dead-letter queue at once, each carrying its
// reason, and are not reported failed (the caller deletes them); a change that may yet
// apply is failed and backed off, never dead-lettered. When the dead-letter queue refuses,
// the permanent failure is failed and made visible at once, for the redrive policy.
func TestPermanentFailuresAreMovedWithTheirReason(t *testing.T) {
	good := ticketMessage(t, "42", 10, map[string]any{"summary": "x"})
	elsewhere, err := message.Encode(message.Envelope{Change: change.Change{Connection: "gone", Kind: change.Ticket, ID: "1",
		Op: change.OpUpsert, Version: 1, Fields: map[string]any{"id": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []message.Received{
		{ID: "bad", Body: []byte("{not json"), ReceiptHandle: "r-bad", ReceiveCount: 1, Attributes: map[string]string{message.AttrConnection: "default"}},
		{ID: "gone", Body: elsewhere.Body, ReceiptHandle: "r-gone", ReceiveCount: 1, Attributes: elsewhere.Attributes},
		{ID: "down", Body: good, ReceiptHandle: "r-down", ReceiveCount: 3},
	}
	counts := metrics.NewMemory()
	w := worker.New(failingStore{context.DeadlineExceeded}, counts, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	dlq := &deadLetters{}
	w.SendDeadLettersTo(dlq)
	retry := delays{}
	failed := w.HandleBatch(context.Background(), msgs, retry)
	if !slices.Equal(failed, []string{"down"}) {
		t.Fatalf("failed %v; want only the change that may yet apply", failed)
	}
	if len(dlq.sent) != 2 || dlq.sent[0].Attributes[message.AttrFailureReason] != "undecodable" ||
		dlq.sent[1].Attributes[message.AttrFailureReason] != "unknown_connection" || string(dlq.sent[0].Body) != "{not json" {
		t.Fatalf("dead-lettered %+v", dlq.sent)
	}
	if retry["r-down"] <= 0 || len(retry) != 1 {
		t.Fatalf("retry delays %v; want only r-down backed off", retry)
	}
	if n := counts.Value(metrics.Metric{Name: metrics.ChangesDeadLettered, Connection: "gone", Label: "unknown_connection"}); n != 1 {
		t.Fatalf("ChangesDeadLettered{gone, unknown_connection} = %d", n)
	}

	refusing := &deadLetters{err: context.Canceled}
	w.SendDeadLettersTo(refusing)
	retry = delays{}
	if failed := w.HandleBatch(context.Background(), msgs[:1], retry); !slices.Equal(failed, []string{"bad"}) || retry["r-bad"] != 0 || len(retry) != 1 {
		t.Fatalf("with the dead-letter queue refusing: failed %v, delays %v; want bad failed and visible at once", failed, retry)
	}
}

// TestBatchReadsAHandedEnvelope: a message handed over in this process with its envelope
// (the embedded queue's hand-off) is applied from the envelope, checked as a decoded one
// is, without decoding its body again.
func TestBatchReadsAHandedEnvelope(t *testing.T) {
	store := storetest.NewMemory()
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	sent, err := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: "7",
		Op: change.OpUpsert, Version: 5, Source: change.SourceWebhook, Fields: map[string]any{"summary": "handed"}}})
	if err != nil {
		t.Fatal(err)
	}
	handed := sent.Handed()
	invalid := *handed
	invalid.Change.ID = ""
	failed := w.HandleBatch(context.Background(), []message.Received{
		{ID: "handed", Body: []byte("not read"), Envelope: handed},
		{ID: "invalid", Body: sent.Body, Envelope: &invalid},
	}, nil)
	if !slices.Equal(failed, []string{"invalid"}) {
		t.Fatalf("failed %v, want only the invalid envelope", failed)
	}
	if o, ok, _ := store.Get(context.Background(), "default", change.Ticket, "7", ""); !ok || o.Fields["summary"] != "handed" {
		t.Fatalf("stored %+v (%v), want the handed change", o, ok)
	}
}
