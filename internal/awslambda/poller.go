package awslambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

// PollsFailed counts the polls of a connection that failed (label: "error", "timeout"
// when the poll ran out of its share of the invocation's time, or "no_time" when none
// was left for it). The poller's own findings are counted by the poller (WebhookGap).
const PollsFailed = "PollsFailed"

// Runner polls one connection when its schedule says so (poller.Runner): polled is false
// when the connection was not due.
type Runner interface {
	Run(ctx context.Context, force bool) (polled bool, r poller.Report, err error)
}

// PollTarget is one connection the poller function reads.
type PollTarget struct {
	Connection string
	Runner     Runner
}

// Counter counts what the adapter sees.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// PollerOptions tune the scheduled handler.
type PollerOptions struct {
	// Margin is kept back from the invocation's deadline, so the function returns (and
	// its logs and metrics are written) before Lambda stops it; at most a fifth of the
	// time the invocation had when it started (default 10 s).
	Margin time.Duration
	// Now is the clock the deadline is compared with (default time.Now).
	Now func() time.Time
}

// PollDetail is what a manual invocation may put in the event's detail; EventBridge's
// scheduled events carry an empty detail ({}), which polls every connection that is due.
type PollDetail struct {
	// Force polls even the connections that are not due.
	Force bool `json:"force,omitempty"`
	// Connections, when set, limits the run to these connections.
	Connections []string `json:"connections,omitempty"`
}

// PollResult is what one invocation did: the function's response (what `sam local
// invoke` prints; EventBridge discards it).
type PollResult struct {
	EventID     string             `json:"event_id,omitempty"`
	Time        time.Time          `json:"time"` // the event's time: when the schedule fired
	Connections []ConnectionResult `json:"connections"`
}

// ConnectionResult is what one connection's poll did.
type ConnectionResult struct {
	Connection string `json:"connection"`
	// Polled is false when the connection was not due (or got no time, with Error).
	Polled bool `json:"polled"`
	// Budget is the share of the invocation's time the connection was given, in
	// milliseconds (0: no deadline).
	BudgetMS   int64               `json:"budget_ms"`
	DurationMS int64               `json:"duration_ms"`
	Read       map[change.Kind]int `json:"read,omitempty"`
	Enqueued   map[change.Kind]int `json:"enqueued,omitempty"`
	Gap        map[change.Kind]int `json:"gap,omitempty"`
	Error      string              `json:"error,omitempty"`
}

// ErrEveryPollFailed is returned (wrapped) when every connection polled in a run failed:
// the invocation fails, so the function's Errors alarm fires. A run in which some
// connections succeed returns no error; the failed ones are logged and counted.
var ErrEveryPollFailed = errors.New("every connection's poll failed")

// Poller returns the handler of the poller function's scheduled event. Each run reads
// every target in turn, each under its own deadline: an equal share of the time left
// before the invocation's deadline less the margin, recomputed before each connection, so
// the time a quick connection leaves unused passes to the next ones. Whether a connection
// is due is its Runner's decision (the schedule fires every minute); the event's detail
// may force a poll or pick connections (PollDetail).
func Poller(targets []PollTarget, count Counter, log *slog.Logger, opts PollerOptions) func(context.Context, events.EventBridgeEvent) (PollResult, error) {
	if opts.Margin <= 0 {
		opts.Margin = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return func(ctx context.Context, e events.EventBridgeEvent) (PollResult, error) {
		res := PollResult{EventID: e.ID, Time: e.Time, Connections: []ConnectionResult{}}
		detail, err := pollDetail(e.Detail)
		if err != nil {
			return res, err
		}
		run, err := selectTargets(targets, detail.Connections)
		if err != nil {
			return res, err
		}
		log.InfoContext(ctx, "poll run", "event_id", e.ID, "detail_type", e.DetailType, "scheduled", e.Time,
			"connections", len(run), "force", detail.Force)

		deadline, hasDeadline := ctx.Deadline()
		margin := opts.Margin
		if hasDeadline {
			margin = min(margin, deadline.Sub(opts.Now())/5)
		}
		polled, failed := 0, 0
		for i, tgt := range run {
			cr := ConnectionResult{Connection: tgt.Connection}
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if hasDeadline {
				left := deadline.Sub(opts.Now()) - margin
				if left <= 0 {
					// An earlier connection overran its share: this one waits for the
					// next run, and counts as failed so that it shows.
					cr.Error = "no time left in this invocation"
					res.Connections = append(res.Connections, cr)
					polled++
					failed++
					count.Count(metrics.Metric{Name: PollsFailed, Connection: tgt.Connection, Label: "no_time"}, 1)
					log.ErrorContext(ctx, "poll skipped", "connection", tgt.Connection, "error", cr.Error)
					continue
				}
				share := left / time.Duration(len(run)-i)
				cr.BudgetMS = share.Milliseconds()
				pctx, cancel = context.WithTimeout(ctx, share)
			}
			start := opts.Now()
			ok, rep, err := tgt.Runner.Run(pctx, detail.Force)
			timedOut := pctx.Err() != nil && ctx.Err() == nil
			cancel()
			cr.DurationMS = opts.Now().Sub(start).Milliseconds()
			cr.Polled = ok
			cr.Read, cr.Enqueued, cr.Gap = nonZero(rep.Read), nonZero(rep.Enqueued), nonZero(rep.Gap)
			if ok || err != nil {
				polled++
			}
			if err != nil {
				failed++
				cr.Error = err.Error()
				label := "error"
				if timedOut {
					label = "timeout"
				}
				count.Count(metrics.Metric{Name: PollsFailed, Connection: tgt.Connection, Label: label}, 1)
				log.ErrorContext(ctx, "poll failed", "connection", tgt.Connection, "reason", label,
					"budget_ms", cr.BudgetMS, "duration_ms", cr.DurationMS, "error", cr.Error)
			} else {
				log.InfoContext(ctx, "poll done", "connection", tgt.Connection, "polled", ok,
					"read", sum(rep.Read), "enqueued", sum(rep.Enqueued), "gap", sum(rep.Gap),
					"budget_ms", cr.BudgetMS, "duration_ms", cr.DurationMS)
			}
			res.Connections = append(res.Connections, cr)
		}
		if polled > 0 && failed == polled {
			return res, fmt.Errorf("%w (%d of %d)", ErrEveryPollFailed, failed, polled)
		}
		return res, nil
	}
}

// pollDetail reads the event's detail: empty, null or {} from a schedule; a PollDetail,
// strictly, from a manual invocation.
func pollDetail(raw json.RawMessage) (PollDetail, error) {
	var d PollDetail
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return d, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("poller: the event's detail is not a poll request ({\"force\": bool, \"connections\": [ids]}): %w", err)
	}
	return d, nil
}

// selectTargets keeps the named connections, in the configuration's order; none named
// keeps every one. A name that is not a polled connection is an error.
func selectTargets(targets []PollTarget, names []string) ([]PollTarget, error) {
	if len(names) == 0 {
		return targets, nil
	}
	var out []PollTarget
	for _, t := range targets {
		if slices.Contains(names, t.Connection) {
			out = append(out, t)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(targets, func(t PollTarget) bool { return t.Connection == n }) {
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
