package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
)

// Scheduled polls one connection when its plan says so (Runner): polled is false when
// the connection was not due.
type Scheduled interface {
	Run(ctx context.Context, force bool) (polled bool, r Report, err error)
}

// Target is one connection a run reads.
type Target struct {
	Connection string
	Runner     Scheduled
}

// RunOptions tune the run loop.
type RunOptions struct {
	// Margin is kept back from the run's deadline, so the run returns (and its logs and
	// metrics are written) before the deadline; at most a fifth of the time the run had
	// when it started (default 10 s).
	Margin time.Duration
	// Now is the clock the deadline is compared with (default time.Now).
	Now func() time.Time
}

// ConnectionResult is what one connection's poll did in a run.
type ConnectionResult struct {
	Connection string `json:"connection"`
	// Polled is false when the connection was not due (or got no time, with Error).
	Polled bool `json:"polled"`
	// BudgetMS is the share of the run's time the connection was given, in milliseconds
	// (0: no deadline).
	BudgetMS   int64               `json:"budget_ms"`
	DurationMS int64               `json:"duration_ms"`
	Read       map[change.Kind]int `json:"read,omitempty"`
	Enqueued   map[change.Kind]int `json:"enqueued,omitempty"`
	Gap        map[change.Kind]int `json:"gap,omitempty"`
	Error      string              `json:"error,omitempty"`
}

// ErrEveryPollFailed is returned (wrapped) when every connection polled in a run failed:
// in AWS the invocation fails, so the function's Errors alarm fires. A run in which some
// connections succeed returns no error; the failed ones are logged and counted.
var ErrEveryPollFailed = errors.New("every connection's poll failed")

// Schedule is the run loop over every polled connection: the poller function runs it on
// each scheduled event, `halosync serve` on each tick.
type Schedule struct {
	targets []Target
	count   Counter
	log     *slog.Logger
	opts    RunOptions
}

// NewSchedule returns the run loop over targets, in their order.
func NewSchedule(targets []Target, count Counter, log *slog.Logger, opts RunOptions) *Schedule {
	if opts.Margin <= 0 {
		opts.Margin = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Schedule{targets: targets, count: count, log: log, opts: opts}
}

// Connections names the polled connections, in order.
func (s *Schedule) Connections() []string {
	out := make([]string, 0, len(s.targets))
	for _, t := range s.targets {
		out = append(out, t.Connection)
	}
	return out
}

// Run reads every target in turn (or those named in only), each under its own deadline
// when ctx has one: an equal share of the time left before the deadline less the margin,
// recomputed before each connection, so the time a quick connection leaves unused passes
// to the next ones. Whether a connection is due is its runner's decision; force polls even
// those that are not. A connection's failure is counted (PollsFailed: "error", "timeout"
// when it ran out of its share, "no_time" when none was left for it) and the others go on.
func (s *Schedule) Run(ctx context.Context, force bool, only []string) ([]ConnectionResult, error) {
	results := []ConnectionResult{}
	run, err := s.selectTargets(only)
	if err != nil {
		return results, err
	}
	deadline, hasDeadline := ctx.Deadline()
	margin := s.opts.Margin
	if hasDeadline {
		margin = min(margin, deadline.Sub(s.opts.Now())/5)
	}
	polled, failed := 0, 0
	for i, tgt := range run {
		cr := ConnectionResult{Connection: tgt.Connection}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if hasDeadline {
			left := deadline.Sub(s.opts.Now()) - margin
			if left <= 0 {
				// An earlier connection overran its share: this one waits for the next
				// run, and counts as failed so that it shows.
				cr.Error = "no time left in this run"
				results = append(results, cr)
				polled++
				failed++
				s.count.Count(metrics.Metric{Name: metrics.PollsFailed, Connection: tgt.Connection, Label: "no_time"}, 1)
				s.log.ErrorContext(ctx, "poll skipped", "connection", tgt.Connection, "error", cr.Error)
				continue
			}
			share := left / time.Duration(len(run)-i)
			cr.BudgetMS = share.Milliseconds()
			pctx, cancel = context.WithTimeout(ctx, share)
		}
		start := s.opts.Now()
		ok, rep, err := tgt.Runner.Run(pctx, force)
		timedOut := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		cr.DurationMS = s.opts.Now().Sub(start).Milliseconds()
		cr.Polled = ok
		cr.Read, cr.Enqueued, cr.Gap = nonZero(rep.Read), nonZero(rep.Enqueued), nonZero(rep.Gap)
		if ok || err != nil {
			polled++
		}
		switch {
		case err != nil && errors.Is(ctx.Err(), context.Canceled):
			// The whole run was called off (the local server shutting down): not the
			// connection's failure. A run that reaches its deadline is counted below.
			cr.Error = err.Error()
		case err != nil:
			failed++
			cr.Error = err.Error()
			label := "error"
			if timedOut {
				label = "timeout"
			}
			s.count.Count(metrics.Metric{Name: metrics.PollsFailed, Connection: tgt.Connection, Label: label}, 1)
			s.log.ErrorContext(ctx, "poll failed", "connection", tgt.Connection, "reason", label,
				"budget_ms", cr.BudgetMS, "duration_ms", cr.DurationMS, "error", cr.Error)
		case ok:
			s.log.InfoContext(ctx, "poll done", "connection", tgt.Connection, "polled", ok,
				"read", sum(rep.Read), "enqueued", sum(rep.Enqueued), "gap", sum(rep.Gap),
				"budget_ms", cr.BudgetMS, "duration_ms", cr.DurationMS)
		default:
			s.log.DebugContext(ctx, "poll not due", "connection", tgt.Connection)
		}
		results = append(results, cr)
	}
	if polled > 0 && failed == polled {
		return results, fmt.Errorf("%w (%d of %d)", ErrEveryPollFailed, failed, polled)
	}
	return results, nil
}

// selectTargets keeps the named connections, in the configuration's order; none named
// keeps every one. A name that is not a polled connection is an error.
func (s *Schedule) selectTargets(names []string) ([]Target, error) {
	if len(names) == 0 {
		return s.targets, nil
	}
	var out []Target
	for _, t := range s.targets {
		if slices.Contains(names, t.Connection) {
			out = append(out, t)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(s.targets, func(t Target) bool { return t.Connection == n }) {
			return nil, fmt.Errorf("poller: connection %q is not polled (it is not configured, or has no halo: settings)", n)
		}
	}
	return out, nil
}

func nonZero(m map[change.Kind]int) map[change.Kind]int {
	var out map[change.Kind]int
	for k, v := range m {
		if v != 0 {
			if out == nil {
				out = map[change.Kind]int{}
			}
			out[k] = v
		}
	}
	return out
}

func sum(m map[change.Kind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
