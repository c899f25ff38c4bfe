package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/metrics"
)

// Plan is when a connection is polled: its compiled poll settings, with the schedule's
// decisions (Due, After) on them.
type Plan struct {
	connection.Poll
}

// PlanOf is a connection's compiled poll settings as the schedule reads them.
func PlanOf(p connection.Poll) Plan {
	return Plan{Poll: p}
}

// OptionsOf is a connection's poller options: overlap, modes per kind, filters, stored
// fields, version rule and verification, compiled.
func OptionsOf(c *connection.Connection) Options {
	o := Options{Overlap: c.Poll.Overlap, Modes: map[change.Kind]Mode{}, Fields: c.Fields, Filter: c.Filter, Versions: c.Versions,
		BulkNotes: c.Poll.BulkNotes, NotesMaxAge: c.Poll.NotesMaxAge, ScanEvery: c.Poll.ScanEvery, Verify: c.Verify}
	for kind, mode := range c.Poll.Kinds {
		o.Modes[kind] = Mode(mode)
	}
	return o
}

// ShareOf is the poller's part of a connection's budget: c's poll share of the tenant's
// limit, Halo's 300 requests per 5 minutes (scaled to the budget's window) or the
// configured budget (halo.budget) where that is set higher, as for a tenant whose limit
// was raised; never more than the budget. It runs on the clock of budget, the
// connection's client's budget, which every request also takes. In AWS each instance's
// budget is its own part of the total: the smaller of the two binds.
func ShareOf(c *connection.Connection, budget *haloapi.Budget) *haloapi.Budget {
	h := c.Config.Halo.Budget
	limit := max(float64(haloapi.TenantLimit)*h.Window().Seconds()/haloapi.DefaultBudgetWindow.Seconds(), float64(h.Count()))
	return budget.Part(min(int(c.Poll.Share*limit), h.Count()))
}

// State is the schedule's memory of a connection, kept beside the cursors.
type State struct {
	LastPoll  time.Time `json:"last_poll"`
	Fallback  bool      `json:"fallback"`          // polling at the fallback interval
	Switched  time.Time `json:"switched,omitzero"` // when Fallback last changed
	LastFound time.Time `json:"last_found,omitzero"`
	// LastReconcile is when the id lists were last compared.
	LastReconcile time.Time `json:"last_reconcile,omitzero"`
	// WebhookChecked is when a managed webhook was last checked in Halo (a check that
	// failed does not count), and WebhookHealthy what that check found.
	WebhookChecked time.Time `json:"webhook_checked,omitzero"`
	WebhookHealthy bool      `json:"webhook_healthy,omitempty"`
}

const (
	stateName   = "_schedule"
	webhookName = "_webhook" // the worker's heartbeat: when a webhook change was last applied
)

// Due reports whether a poll is due now. In webhook mode only the first sync is polled
// for; the daily reconcile is separate.
func (p Plan) Due(now time.Time, s State, backfilled bool) bool {
	if !backfilled {
		return true
	}
	switch {
	case p.Mode == "webhook":
		return false
	case p.Mode == "hybrid" && s.Fallback:
		return !now.Before(s.LastPoll.Add(p.Fallback))
	default:
		return !now.Before(s.LastPoll.Add(p.Interval))
	}
}

// After updates the state after a poll that found newer objects or not, given when a
// webhook change was last applied. In hybrid mode the webhooks look unhealthy when none
// was applied for Silence while Halo changed (this poll, or one within Silence, found
// changes the copy lacked): polls then come at the fallback interval, until a webhook
// change is applied again. It returns "engaged" or "recovered" when that switches.
func (p Plan) After(now time.Time, s State, found bool, lastWebhook time.Time) (State, string) {
	s.LastPoll = now
	if found {
		s.LastFound = now
	}
	if p.Mode != "hybrid" {
		return s, ""
	}
	silent := now.Sub(lastWebhook) > p.Silence
	active := !s.LastFound.IsZero() && now.Sub(s.LastFound) <= p.Silence
	switch {
	case !s.Fallback && silent && active:
		s.Fallback, s.Switched = true, now
		return s, "engaged"
	case s.Fallback && lastWebhook.After(s.Switched):
		s.Fallback, s.Switched = false, now
		return s, "recovered"
	}
	return s, ""
}

// Runner polls a connection when its plan says so, and reconciles it daily, keeping the
// schedule's state in the store beside the cursors.
type Runner struct {
	Poller *Poller
	Plan   Plan
	// Stored lists the copy's ids for the reconcile; nil: no reconcile.
	Stored StoredIDs
	// Webhook checks (and repairs, as configured) the connection's webhook in Halo on
	// each run; nil: the webhook is not managed. A check that finds it unhealthy
	// (disabled, missing) engages the fallback at once.
	Webhook func(ctx context.Context) (checked, healthy bool)
	// Budget is the connection's Halo API request budget; when set, each run counts the
	// requests spent during it (HaloRequests) and what is left (HaloBudgetLeft).
	Budget RequestBudget
}

// RequestBudget is what a run reads of a connection's request budget (haloapi.Budget).
type RequestBudget interface {
	Spent() int64
	Remaining() int
}

// Run polls if due (or always, when force is set), then reconciles if that is due, then
// verifies a sample of the copy in what is left of the poller's share (verifyAfter), and
// returns whether it polled. Due or not, it then counts the connection's gauges:
// FallbackActive, and with a Budget, HaloRequests and HaloBudgetLeft.
func (r Runner) Run(ctx context.Context, force bool) (bool, Report, error) {
	var before int64
	if r.Budget != nil {
		before = r.Budget.Spent()
	}
	p := r.Poller
	shareBefore := p.opts.Share.Spent()
	polled, rep, fallback, err := r.run(ctx, force)
	if err == nil && ctx.Err() == nil {
		// Verification takes what the run's own work left of the poller's share: it
		// never fails the poll, and a failure shows in the log.
		if verr := r.verifyAfter(ctx, int(p.opts.Share.Spent()-shareBefore), rep.Queued); verr != nil {
			p.log.ErrorContext(ctx, "verification failed", "connection", p.conn, "error", verr.Error())
		}
	}
	if fallback != nil {
		active := int64(0)
		if *fallback {
			active = 1
		}
		p.count.Count(metrics.Metric{Name: metrics.FallbackActive, Connection: p.conn}, active)
	}
	if r.Budget != nil {
		p.count.Count(metrics.Metric{Name: metrics.HaloRequests, Connection: p.conn}, r.Budget.Spent()-before)
		p.count.Count(metrics.Metric{Name: metrics.HaloBudgetLeft, Connection: p.conn}, int64(r.Budget.Remaining()))
	}
	return polled, rep, err
}

// run is Run's work; fallback is whether the connection polls at the fallback interval
// after it, nil when its state could not be read.
func (r Runner) run(ctx context.Context, force bool) (bool, Report, *bool, error) {
	p := r.Poller
	ctx = haloapi.WithBudget(ctx, p.opts.Share) // the webhook's check is the poller's too
	now := p.opts.Now()
	s, err := r.state(ctx)
	if err != nil {
		return false, Report{}, nil, err
	}
	backfilled := true
	for _, kind := range order {
		c, err := p.cursor(ctx, kind)
		if err != nil {
			return false, Report{}, &s.Fallback, err
		}
		backfilled = backfilled && c.Backfilled
	}
	poll := force || r.Plan.Due(now, s, backfilled)
	reconcile := backfilled && r.Stored != nil && r.Plan.reconcileDue(now, s)
	if !poll && !reconcile {
		return false, Report{}, &s.Fallback, nil
	}
	var rep Report
	next := s
	if poll {
		rep, err = p.Poll(ctx)
		found := false
		for _, n := range rep.Gap {
			found = found || n > 0
		}
		last, lerr := LastWebhook(ctx, p.cursors, p.conn)
		if lerr != nil {
			return true, rep, &s.Fallback, lerr
		}
		checked, healthy := false, false
		if r.Webhook != nil {
			checked, healthy = r.Webhook(ctx)
		}
		unhealthy := checked && !healthy
		var switched string
		next, switched = r.Plan.After(now, s, found, last)
		if checked {
			next.WebhookChecked, next.WebhookHealthy = now, healthy
		}
		if unhealthy && !next.Fallback && r.Plan.Mode == "hybrid" {
			next.Fallback, next.Switched, switched = true, now, "engaged"
		}
		if switched != "" {
			p.count.Count(metrics.Metric{Name: metrics.PollFallback, Connection: p.conn, Label: switched}, 1)
			p.log.WarnContext(ctx, "webhook fallback "+switched, "connection", p.conn, "last_webhook", last, "fallback_interval", r.Plan.Fallback.String())
		}
	}
	if err == nil && reconcile {
		if _, err = p.Reconcile(ctx, r.Stored, rep.Queued); err == nil {
			next.LastReconcile = now
		}
	}
	if serr := r.save(ctx, next); serr != nil && err == nil {
		err = serr
	}
	return poll, rep, &next.Fallback, err
}

func (r Runner) state(ctx context.Context) (State, error) {
	return ReadState(ctx, r.Poller.cursors, r.Poller.conn)
}

// ReadState reads a connection's schedule state (the zero State before its first run):
// whether it polls at the fallback interval and since when, and its webhook's last check.
func ReadState(ctx context.Context, c Cursors, conn string) (State, error) {
	var s State
	doc, ok, err := c.LoadCursor(ctx, conn, stateName)
	if err != nil || !ok {
		return s, err
	}
	if err := json.Unmarshal(doc, &s); err != nil {
		return State{}, fmt.Errorf("schedule state: %w", err)
	}
	return s, nil
}

func (r Runner) save(ctx context.Context, s State) error {
	doc, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return r.Poller.cursors.SaveCursor(ctx, r.Poller.conn, stateName, doc)
}

// LastWebhook reads when a webhook change was last applied (the worker's heartbeat).
func LastWebhook(ctx context.Context, c Cursors, conn string) (time.Time, error) {
	doc, ok, err := c.LoadCursor(ctx, conn, webhookName)
	if err != nil || !ok {
		return time.Time{}, err
	}
	var hb struct {
		At time.Time `json:"at"`
	}
	if err := json.Unmarshal(doc, &hb); err != nil {
		return time.Time{}, fmt.Errorf("webhook heartbeat: %w", err)
	}
	return hb.At, nil
}

// Heartbeat records that a webhook change was applied at t.
func Heartbeat(ctx context.Context, c Cursors, conn string, t time.Time) error {
	doc, _ := json.Marshal(struct {
		At time.Time `json:"at"`
	}{t.UTC()})
	return c.SaveCursor(ctx, conn, webhookName, doc)
}

// Restart forgets a connection's cursors and schedule, so its next poll is a full first
// sync (halosync sync --full). Objects already in the copy stay; the sync enqueues only
// what is newer than them. Given kinds, only their cursors are forgotten (notes are read
// with their tickets: an action's is the ticket cursor), and the next poll reads those
// kinds again.
func Restart(ctx context.Context, c Cursors, conn string, kinds ...change.Kind) error {
	reset := order
	if len(kinds) > 0 {
		reset = nil
		for _, k := range kinds {
			if k == change.Action {
				k = change.Ticket
			}
			reset = append(reset, k)
		}
	}
	for _, kind := range reset {
		if err := c.SaveCursor(ctx, conn, string(kind), []byte("{}")); err != nil {
			return fmt.Errorf("reset the %s cursor: %w", kind, err)
		}
	}
	if len(kinds) > 0 {
		return nil
	}
	return c.SaveCursor(ctx, conn, stateName, []byte("{}"))
}
