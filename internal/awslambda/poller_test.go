package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

// fakeClock is the adapter's clock; runners move it on to stand for the time they take.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeRunner is one connection's runner: it records what it was given and answers as set.
type fakeRunner struct {
	clock  *fakeClock
	takes  time.Duration // moved on the clock by each run
	due    bool
	err    error
	block  bool // waits for its context to end, and returns its error
	report poller.Report

	runs     int
	forced   []bool
	deadline []time.Duration // each run's context deadline, from the real clock; -1: none
}

func (r *fakeRunner) Run(ctx context.Context, force bool) (bool, poller.Report, error) {
	r.runs++
	r.forced = append(r.forced, force)
	if d, ok := ctx.Deadline(); ok {
		r.deadline = append(r.deadline, time.Until(d))
	} else {
		r.deadline = append(r.deadline, -1)
	}
	if r.clock != nil {
		r.clock.Advance(r.takes)
	}
	if r.block {
		<-ctx.Done()
		return true, poller.Report{}, ctx.Err()
	}
	if !r.due && !force {
		return false, poller.Report{}, nil
	}
	return true, r.report, r.err
}

func report(read, enqueued, gap int) poller.Report {
	return poller.Report{
		Read:     map[change.Kind]int{change.Ticket: read, change.Client: 0},
		Enqueued: map[change.Kind]int{change.Ticket: enqueued},
		Gap:      map[change.Kind]int{change.Ticket: gap},
	}
}

var scheduled = events.EventBridgeEvent{
	Version: "0", ID: "e-1", DetailType: "Scheduled Event", Source: "aws.events",
	Time: time.Date(2026, 11, 27, 11, 0, 0, 0, time.UTC), Detail: json.RawMessage(`{}`),
}

func targets(runners ...*fakeRunner) []poller.Target {
	names := []string{"a", "b", "c", "d"}
	var out []poller.Target
	for i, r := range runners {
		out = append(out, poller.Target{Connection: names[i], Runner: r})
	}
	return out
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestPollerSlicesTheInvocationsTime: each connection gets an equal share of what is left
// of the invocation less the margin, recomputed after each, so what a quick one leaves
// passes on; the runner's context carries that share as its deadline.
func TestPollerSlicesTheInvocationsTime(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	a := &fakeRunner{clock: clock, takes: 5 * time.Second, due: true, report: report(10, 2, 1)}
	b := &fakeRunner{clock: clock, takes: 30 * time.Second, due: true, report: report(3, 0, 0)}
	c := &fakeRunner{clock: clock, takes: time.Second, due: true}
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(60*time.Second))
	defer cancel()
	counts := metrics.NewMemory()
	h := awslambda.Poller(poller.NewSchedule(targets(a, b, c), counts, quiet(), poller.RunOptions{Margin: 10 * time.Second, Now: clock.Now}), quiet())
	res, err := h(ctx, scheduled)
	if err != nil {
		t.Fatal(err)
	}
	// 60 s less a 10 s margin: a gets 50/3; after its 5 s, b gets 45/2; after b's 30 s, c
	// gets the 15 s left.
	wantMS := []int64{16666, 22500, 15000}
	for i, cr := range res.Connections {
		if cr.BudgetMS != wantMS[i] || !cr.Polled || cr.Error != "" {
			t.Errorf("%s: %+v, want budget %d ms, polled, no error", cr.Connection, cr, wantMS[i])
		}
	}
	for i, r := range []*fakeRunner{a, b, c} {
		if r.runs != 1 || r.forced[0] {
			t.Errorf("runner %d: %d runs, forced %v", i, r.runs, r.forced)
		}
		// The context's deadline is set from the real clock: the share, less what the
		// test took so far.
		want := time.Duration(wantMS[i]) * time.Millisecond
		if got := r.deadline[0]; got > want+time.Millisecond || got < want-2*time.Second {
			t.Errorf("runner %d: context deadline in %v, want about %v", i, got, want)
		}
	}
	if res.EventID != "e-1" || !res.Time.Equal(scheduled.Time) || len(res.Connections) != 3 {
		t.Errorf("result %+v", res)
	}
	if got := res.Connections[0]; got.Read[change.Ticket] != 10 || got.Enqueued[change.Ticket] != 2 || got.Gap[change.Ticket] != 1 || len(got.Read) != 1 {
		t.Errorf("a's counts %+v (zero counts are left out)", got)
	}
	if got := res.Connections[1].DurationMS; got != 30000 {
		t.Errorf("b took %d ms by the clock, want 30000", got)
	}
	if snap := counts.Snapshot(); len(snap) != 0 {
		t.Errorf("counted %v, want nothing", snap)
	}
}

// TestPollerMarginIsAtMostAFifth: an invocation with little time keeps a fifth of it back,
// not the whole margin.
func TestPollerMarginIsAtMostAFifth(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	a := &fakeRunner{clock: clock, due: true}
	ctx, cancel := context.WithDeadline(context.Background(), clock.Now().Add(10*time.Second))
	defer cancel()
	res, err := awslambda.Poller(poller.NewSchedule(targets(a), metrics.NewMemory(), quiet(), poller.RunOptions{Margin: 30 * time.Second, Now: clock.Now}), quiet())(ctx, scheduled)
	if err != nil || res.Connections[0].BudgetMS != 8000 {
		t.Fatalf("%+v %v; want a budget of 8 s of 10", res, err)
	}
}

// TestPollerWithoutADeadline: no deadline (a local run), no slicing.
func TestPollerWithoutADeadline(t *testing.T) {
	a := &fakeRunner{due: true}
	res, err := awslambda.Poller(poller.NewSchedule(targets(a), metrics.NewMemory(), quiet(), poller.RunOptions{}), quiet())(context.Background(), scheduled)
	if err != nil || res.Connections[0].BudgetMS != 0 || a.deadline[0] != -1 {
		t.Fatalf("%+v %v, deadline %v", res, err, a.deadline)
	}
}

// TestAFailingConnectionDoesNotStopTheOthers: the failure is in the result, logged and
// counted; the invocation succeeds while any connection polled fine.
func TestAFailingConnectionDoesNotStopTheOthers(t *testing.T) {
	a := &fakeRunner{due: true, err: errors.New("halo: list tickets page 1: unavailable")}
	b := &fakeRunner{due: true, report: report(1, 1, 0)}
	c := &fakeRunner{due: false}
	counts := metrics.NewMemory()
	res, err := awslambda.Poller(poller.NewSchedule(targets(a, b, c), counts, quiet(), poller.RunOptions{}), quiet())(context.Background(), scheduled)
	if err != nil {
		t.Fatalf("one failed connection of three failed the invocation: %v", err)
	}
	if res.Connections[0].Error == "" || res.Connections[1].Error != "" || !res.Connections[1].Polled || res.Connections[2].Polled {
		t.Errorf("results %+v", res.Connections)
	}
	if b.runs != 1 || c.runs != 1 {
		t.Errorf("runs after the failure: b %d, c %d", b.runs, c.runs)
	}
	if got := counts.Value(metrics.Metric{Name: metrics.PollsFailed, Connection: "a", Label: "error"}); got != 1 {
		t.Errorf("PollsFailed{a, error} = %d: %v", got, counts.Snapshot())
	}
	if len(counts.Snapshot()) != 1 {
		t.Errorf("counts %v", counts.Snapshot())
	}
}

// TestEveryConnectionFailingFailsTheInvocation: so the function's Errors alarm fires.
// Connections that were not due do not count either way.
func TestEveryConnectionFailingFailsTheInvocation(t *testing.T) {
	a := &fakeRunner{due: true, err: errors.New("boom")}
	b := &fakeRunner{due: false}
	c := &fakeRunner{due: true, err: errors.New("bang")}
	res, err := awslambda.Poller(poller.NewSchedule(targets(a, b, c), metrics.NewMemory(), quiet(), poller.RunOptions{}), quiet())(context.Background(), scheduled)
	if !errors.Is(err, poller.ErrEveryPollFailed) {
		t.Fatalf("err %v, want ErrEveryPollFailed", err)
	}
	if len(res.Connections) != 3 {
		t.Errorf("results %+v", res.Connections)
	}
	// Nothing due: nothing failed.
	if _, err := awslambda.Poller(poller.NewSchedule(targets(&fakeRunner{}), metrics.NewMemory(), quiet(), poller.RunOptions{}), quiet())(context.Background(), scheduled); err != nil {
		t.Errorf("a run with nothing due failed: %v", err)
	}
	// No connection to poll at all (every one webhook-only).
	if res, err := awslambda.Poller(poller.NewSchedule(nil, metrics.NewMemory(), quiet(), poller.RunOptions{}), quiet())(context.Background(), scheduled); err != nil || len(res.Connections) != 0 {
		t.Errorf("a run without connections: %+v %v", res, err)
	}
}

// TestAConnectionThatOverrunsItsShare: it is stopped at its share (counted as a timeout),
// and a connection after it that gets no time left is counted, not run.
func TestAConnectionThatOverrunsItsShare(t *testing.T) {
	slow := &fakeRunner{block: true}
	next := &fakeRunner{due: true}
	clock := &fakeClock{t: time.Now()}
	// The adapter's clock jumps past the deadline while the slow one runs, as if it had
	// ignored its context.
	slow.clock, slow.takes = clock, time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	counts := metrics.NewMemory()
	start := time.Now()
	res, err := awslambda.Poller(poller.NewSchedule(targets(slow, next), counts, quiet(), poller.RunOptions{Now: clock.Now}), quiet())(ctx, scheduled)
	if took := time.Since(start); took > 450*time.Millisecond {
		t.Errorf("the run took %v: the slow connection was not stopped at its share", took)
	}
	if !errors.Is(err, poller.ErrEveryPollFailed) {
		t.Fatalf("err %v", err)
	}
	if next.runs != 0 || res.Connections[1].Error == "" {
		t.Errorf("the connection with no time left ran %d times: %+v", next.runs, res.Connections[1])
	}
	for conn, label := range map[string]string{"a": "timeout", "b": "no_time"} {
		if got := counts.Value(metrics.Metric{Name: metrics.PollsFailed, Connection: conn, Label: label}); got != 1 {
			t.Errorf("PollsFailed{%s, %s} = %d: %v", conn, label, got, counts.Snapshot())
		}
	}
}

// TestAManualInvocationMayForceAndPick: the detail {"force": true, "connections": [...]}
// polls the named connections whether due or not; anything else in it is refused.
func TestAManualInvocationMayForceAndPick(t *testing.T) {
	a, b, c := &fakeRunner{}, &fakeRunner{}, &fakeRunner{}
	h := awslambda.Poller(poller.NewSchedule(targets(a, b, c), metrics.NewMemory(), quiet(), poller.RunOptions{}), quiet())
	ev := scheduled
	ev.Detail = json.RawMessage(`{"force": true, "connections": ["c", "a"]}`)
	res, err := h(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Connections) != 2 || res.Connections[0].Connection != "a" || res.Connections[1].Connection != "c" ||
		!res.Connections[0].Polled || !res.Connections[1].Polled {
		t.Errorf("results %+v, want a and c, in configuration order, polled", res.Connections)
	}
	if b.runs != 0 || len(a.forced) != 1 || !a.forced[0] || !c.forced[0] {
		t.Errorf("b ran %d times; a forced %v; c forced %v", b.runs, a.forced, c.forced)
	}
	for _, detail := range []string{`{"force": "yes"}`, `{"connection": "a"}`, `{"connections": ["z"]}`, `[1]`} {
		ev.Detail = json.RawMessage(detail)
		if _, err := h(context.Background(), ev); err == nil {
			t.Errorf("detail %s was accepted", detail)
		}
	}
	for _, detail := range []string{``, `null`, ` {} `} {
		ev.Detail = json.RawMessage(detail)
		if _, err := h(context.Background(), ev); err != nil {
			t.Errorf("detail %q: %v", detail, err)
		}
	}
	if a.runs != 4 || b.runs != 3 {
		t.Errorf("runs: a %d, b %d", a.runs, b.runs)
	}
}
