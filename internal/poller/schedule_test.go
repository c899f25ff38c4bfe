package poller_test

import (
	"context"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

func TestPlanDefaults(t *testing.T) {
	h := poller.PlanOf(connection.PollOf(config.Poll{}))
	if h.Mode != "hybrid" || h.Interval != 15*time.Minute || h.Fallback != time.Minute || h.Silence != 10*time.Minute || h.Reconcile != 24*time.Hour {
		t.Fatalf("hybrid defaults %+v", h)
	}
	if p := poller.PlanOf(connection.PollOf(config.Poll{Mode: "poll"})); p.Interval != 5*time.Minute {
		t.Fatalf("poll mode interval %v", p.Interval)
	}
	if p := poller.PlanOf(connection.PollOf(config.Poll{Mode: "poll", IntervalMinutes: 2, FallbackMinutes: 3})); p.Interval != 2*time.Minute || p.Fallback != 3*time.Minute {
		t.Fatalf("configured %+v", p)
	}
}

func TestDue(t *testing.T) {
	now := time.Date(2026, 9, 25, 8, 0, 0, 0, time.UTC)
	last := poller.State{LastPoll: now.Add(-2 * time.Minute)}
	fallback := poller.State{LastPoll: now.Add(-2 * time.Minute), Fallback: true}
	cases := []struct {
		name       string
		plan       poller.Plan
		state      poller.State
		backfilled bool
		want       bool
	}{
		{"first sync in any mode", poller.PlanOf(connection.PollOf(config.Poll{Mode: "webhook"})), poller.State{}, false, true},
		{"webhook mode after the first sync", poller.PlanOf(connection.PollOf(config.Poll{Mode: "webhook"})), poller.State{}, true, false},
		{"hybrid, 2 of 15 minutes", poller.PlanOf(connection.PollOf(config.Poll{})), last, true, false},
		{"hybrid in fallback, 2 of 1 minute", poller.PlanOf(connection.PollOf(config.Poll{})), fallback, true, true},
		{"poll mode, 2 of 5 minutes", poller.PlanOf(connection.PollOf(config.Poll{Mode: "poll"})), last, true, false},
		{"poll mode, 2 of 2 minutes", poller.PlanOf(connection.PollOf(config.Poll{Mode: "poll", IntervalMinutes: 2})), last, true, true},
		{"never polled", poller.PlanOf(connection.PollOf(config.Poll{})), poller.State{}, true, true},
	}
	for _, c := range cases {
		if got := c.plan.Due(now, c.state, c.backfilled); got != c.want {
			t.Errorf("%s: due %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFallbackEngagesAndRecovers(t *testing.T) {
	plan := poller.PlanOf(connection.PollOf(config.Poll{}))
	t0 := time.Date(2026, 9, 25, 8, 0, 0, 0, time.UTC)
	lastWebhook := t0
	var s poller.State
	var switched string
	// Webhooks flowing, Halo changing: healthy.
	if s, switched = plan.After(t0.Add(5*time.Minute), s, true, lastWebhook); s.Fallback || switched != "" {
		t.Fatalf("healthy: %+v %q", s, switched)
	}
	// Webhooks silent 11 minutes, but Halo quiet: still healthy.
	if s, switched = plan.After(t0.Add(11*time.Minute), poller.State{}, false, lastWebhook); s.Fallback || switched != "" {
		t.Fatalf("quiet tenant: %+v %q", s, switched)
	}
	// Webhooks silent 11 minutes while the poll finds changes: fallback.
	s, switched = plan.After(t0.Add(11*time.Minute), s, true, lastWebhook)
	if !s.Fallback || switched != "engaged" {
		t.Fatalf("silent webhooks: %+v %q", s, switched)
	}
	// Still silent: stays engaged, no second switch.
	if s, switched = plan.After(t0.Add(12*time.Minute), s, true, lastWebhook); !s.Fallback || switched != "" {
		t.Fatalf("still silent: %+v %q", s, switched)
	}
	// A webhook change applied after the switch: recovered.
	lastWebhook = t0.Add(12*time.Minute + 30*time.Second)
	if s, switched = plan.After(t0.Add(13*time.Minute), s, false, lastWebhook); s.Fallback || switched != "recovered" {
		t.Fatalf("webhooks back: %+v %q", s, switched)
	}
	// Poll mode never falls back: it polls at its interval anyway.
	if s, switched = poller.PlanOf(connection.PollOf(config.Poll{Mode: "poll"})).After(t0.Add(30*time.Minute), poller.State{}, true, time.Time{}); s.Fallback || switched != "" {
		t.Fatalf("poll mode: %+v %q", s, switched)
	}
}

// TestRunnerFallsBackWhenWebhooksStopAndReturns: the whole loop against the fake tenant:
// webhooks stop, the poller keeps finding changes, falls back to polling every minute,
// and recovers once a webhook change is applied again.
func TestRunnerFallsBackWhenWebhooksStopAndReturns(t *testing.T) {
	s := newSetup(t, 0)
	r := poller.Runner{Poller: s.poller, Plan: poller.PlanOf(connection.PollOf(config.Poll{}))}
	ctx := context.Background()
	run := func() bool {
		t.Helper()
		polled, _, err := r.Run(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		return polled
	}
	if !run() {
		t.Fatal("the first sync did not run")
	}
	if err := poller.Heartbeat(ctx, s.cursors, "default", s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(5 * time.Minute)
	if run() {
		t.Fatal("polled 5 minutes after the last poll in hybrid mode")
	}
	// The webhooks stop; Halo keeps changing.
	for range 12 {
		s.clock.Advance(90 * time.Second)
		s.tenant.Step(s.rng)
		run()
	}
	if n := s.counts.Value(metrics.Metric{Name: metrics.PollFallback, Connection: "default", Label: "engaged"}); n != 1 {
		t.Fatalf("fallback engaged %d times; counters %+v", n, s.counts.Snapshot())
	}
	s.clock.Advance(time.Minute)
	if !run() {
		t.Fatal("in fallback, no poll a minute after the last")
	}
	s.converged(t)
	// The webhooks come back.
	if err := poller.Heartbeat(ctx, s.cursors, "default", s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(time.Minute)
	run()
	if n := s.counts.Value(metrics.Metric{Name: metrics.PollFallback, Connection: "default", Label: "recovered"}); n != 1 {
		t.Fatalf("fallback recovered %d times; counters %+v", n, s.counts.Snapshot())
	}
	s.clock.Advance(time.Minute)
	if run() {
		t.Fatal("still polling every minute after the webhooks recovered")
	}
}

// TestADisabledWebhookEngagesTheFallbackAtOnce: when the webhook check finds Halo's
// webhook disabled or missing, the next poll comes at the fallback interval.
func TestADisabledWebhookEngagesTheFallbackAtOnce(t *testing.T) {
	s := newSetup(t, 0)
	healthy := true
	r := poller.Runner{Poller: s.poller, Plan: poller.PlanOf(connection.PollOf(config.Poll{})),
		Webhook: func(context.Context) (bool, bool) { return true, healthy }}
	ctx := context.Background()
	if _, _, err := r.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := poller.Heartbeat(ctx, s.cursors, "default", s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	healthy = false
	s.clock.Advance(15 * time.Minute)
	if polled, _, err := r.Run(ctx, false); err != nil || !polled {
		t.Fatalf("polled %v, %v", polled, err)
	}
	if n := s.counts.Value(metrics.Metric{Name: metrics.PollFallback, Connection: "default", Label: "engaged"}); n != 1 {
		t.Fatalf("fallback engaged %d times", n)
	}
	// The state kept beside the cursors says what the last check found and when, and
	// since when the fallback is on: what the status page shows, after a restart too.
	st, err := poller.ReadState(ctx, s.cursors, "default")
	if err != nil || st.WebhookHealthy || !st.WebhookChecked.Equal(s.clock.Now()) || !st.Fallback || !st.Switched.Equal(s.clock.Now()) {
		t.Fatalf("state %+v, %v; want the webhook checked unhealthy now and the fallback on since now", st, err)
	}
	s.clock.Advance(time.Minute)
	if polled, _, _ := r.Run(ctx, false); !polled {
		t.Fatal("no poll a minute later with the webhook disabled")
	}
}

// budgetFake reads as spent the values given, in turn, and has left requests left.
type budgetFake struct {
	spent []int64
	left  int
}

func (b *budgetFake) Spent() int64 {
	v := b.spent[0]
	b.spent = b.spent[1:]
	return v
}

func (b *budgetFake) Remaining() int { return b.left }

// TestARunCountsItsRequestsAndGauges: each run, due or not, counts the requests it spent,
// the budget left and whether the fallback is engaged; a poll counts its changes.
func TestARunCountsItsRequestsAndGauges(t *testing.T) {
	s := newSetup(t, 0)
	healthy := true
	budget := &budgetFake{spent: []int64{10, 17}, left: 33}
	r := poller.Runner{Poller: s.poller, Plan: poller.PlanOf(connection.PollOf(config.Poll{})), Budget: budget,
		Webhook: func(context.Context) (bool, bool) { return true, healthy }}
	ctx := context.Background()
	value := func(name string) int64 { return s.counts.Value(metrics.Metric{Name: name, Connection: "default"}) }
	_, rep, err := r.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	enqueued := 0
	for _, n := range rep.Enqueued {
		enqueued += n
	}
	if enqueued == 0 || value(metrics.ChangesByKind) != int64(enqueued) {
		t.Fatalf("ChangesByKind %d, want the %d changes the first sync enqueued", value(metrics.ChangesByKind), enqueued)
	}
	if value(metrics.HaloRequests) != 7 || value(metrics.HaloBudgetLeft) != 33 || value(metrics.FallbackActive) != 0 {
		t.Fatalf("HaloRequests %d, HaloBudgetLeft %d, FallbackActive %d; want 7, 33, 0",
			value(metrics.HaloRequests), value(metrics.HaloBudgetLeft), value(metrics.FallbackActive))
	}
	if err := poller.Heartbeat(ctx, s.cursors, "default", s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	healthy = false
	s.clock.Advance(15 * time.Minute)
	budget.spent, budget.left = []int64{17, 19}, 31
	if polled, _, err := r.Run(ctx, false); err != nil || !polled {
		t.Fatalf("polled %v, %v", polled, err)
	}
	if value(metrics.HaloRequests) != 7+2 || value(metrics.HaloBudgetLeft) != 31 || value(metrics.FallbackActive) != 1 {
		t.Fatalf("after the fallback engaged: HaloRequests %d, HaloBudgetLeft %d, FallbackActive %d; want 9, 31, 1",
			value(metrics.HaloRequests), value(metrics.HaloBudgetLeft), value(metrics.FallbackActive))
	}
	// Not due: the gauges are still counted.
	budget.spent, budget.left = []int64{19, 19}, 30
	if polled, _, err := r.Run(ctx, false); err != nil || polled {
		t.Fatalf("polled %v, %v with no time passed", polled, err)
	}
	if value(metrics.HaloBudgetLeft) != 30 || value(metrics.FallbackActive) != 1 {
		t.Fatalf("a run not due: HaloBudgetLeft %d, FallbackActive %d; want 30, 1", value(metrics.HaloBudgetLeft), value(metrics.FallbackActive))
	}
}
