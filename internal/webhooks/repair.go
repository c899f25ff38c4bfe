package webhooks

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/metrics"
)

// Metrics the Repairer counts (namespace halosync, dimensions Connection and Label), so
// that an alarm can fire on them.
const (
	// MetricUnhealthy counts checks that found the webhook wrong; label: missing,
	// disabled, drifted, events or duplicates (one count per label found).
	MetricUnhealthy = "WebhookUnhealthy"
	// MetricRepaired counts repairs; label: re-enabled or reapplied.
	MetricRepaired = "WebhookRepaired"
	// MetricCheckFailed counts checks or repairs that failed; label: forbidden or error.
	MetricCheckFailed = "WebhookCheckFailed"
)

// Counter counts what the Repairer finds and does.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Repairer is the periodic check of a managed webhook, for the poller's runs: it plans as
// apply would and, by the Spec's repair mode, re-enables a disabled webhook (re-enable,
// the default: drift is reported, not changed), re-applies the whole configuration
// (reapply: also recreates a missing webhook, fixes drift and subscriptions), or only
// reports (off). Every finding is logged and counted. It is safe for concurrent use.
type Repairer struct {
	Manager *Manager
	Spec    Spec
	Count   Counter          // nil: not counted
	Log     *slog.Logger     // nil: not logged
	Now     func() time.Time // default time.Now

	mu   sync.Mutex
	last time.Time
}

// RepairReport is what one check found and did.
type RepairReport struct {
	Checked bool `json:"checked"` // false: not due yet
	Healthy bool `json:"healthy"`
	// Findings are the labels counted under MetricUnhealthy.
	Findings []string `json:"findings,omitempty"`
	// Action is "re-enabled", "reapplied" or "" (nothing done).
	Action string `json:"action,omitempty"`
	Plan   Plan   `json:"plan"`
}

// Check runs CheckNow when the Spec's CheckPeriod has passed since the last check in
// this process (each check costs two or more Halo requests); otherwise it reports
// Checked false.
func (r *Repairer) Check(ctx context.Context) (RepairReport, error) {
	now := r.now()
	r.mu.Lock()
	if !r.last.IsZero() && now.Sub(r.last) < r.Spec.CheckPeriod {
		r.mu.Unlock()
		return RepairReport{}, nil
	}
	r.last = now
	r.mu.Unlock()
	return r.CheckNow(ctx)
}

// CheckNow checks the webhook and repairs it as the repair mode says.
func (r *Repairer) CheckNow(ctx context.Context) (RepairReport, error) {
	s := r.Spec
	rep := RepairReport{Checked: true}
	p, err := r.Manager.Plan(ctx, s)
	if err != nil {
		r.failed(ctx, err)
		return rep, err
	}
	rep.Plan = p
	if !p.Changes() {
		rep.Healthy = true
		return rep, nil
	}
	switch {
	case p.Create:
		rep.Findings = append(rep.Findings, "missing")
	default:
		if p.Enable {
			rep.Findings = append(rep.Findings, "disabled")
		}
		if len(p.Update) > 0 {
			rep.Findings = append(rep.Findings, "drifted")
		}
		if len(p.Subscribe) > 0 || len(p.Unsubscribe) > 0 {
			rep.Findings = append(rep.Findings, "events")
		}
		if len(p.Duplicates) > 0 {
			rep.Findings = append(rep.Findings, "duplicates")
		}
	}
	for _, f := range rep.Findings {
		r.count(MetricUnhealthy, f)
	}
	r.log().WarnContext(ctx, "webhook unhealthy", "connection", s.Connection, "webhook", s.Name, "webhook_id", p.WebhookID,
		"findings", rep.Findings, "fields", fieldNames(p.Update), "repair", s.Repair)
	switch s.Repair {
	case config.RepairOff:
		return rep, nil
	case config.RepairReapply:
		if _, err := r.Manager.Apply(ctx, p); err != nil {
			r.failed(ctx, err)
			return rep, err
		}
		rep.Action = "reapplied"
	default: // re-enable
		if !p.Enable || p.WebhookID == "" {
			return rep, nil
		}
		if _, err := r.Manager.API.EnableWebhook(ctx, p.WebhookID); err != nil {
			r.failed(ctx, err)
			return rep, err
		}
		rep.Action = "re-enabled"
	}
	r.count(MetricRepaired, rep.Action)
	r.log().WarnContext(ctx, "webhook repaired", "connection", s.Connection, "webhook_id", p.WebhookID, "action", rep.Action)
	return rep, nil
}

func (r *Repairer) failed(ctx context.Context, err error) {
	label := "error"
	if errors.Is(err, haloapi.ErrForbidden) {
		label = "forbidden"
	}
	r.count(MetricCheckFailed, label)
	r.log().ErrorContext(ctx, "webhook check failed", "connection", r.Spec.Connection, "error", err.Error())
}

func (r *Repairer) count(name, label string) {
	if r.Count != nil {
		r.Count.Count(metrics.Metric{Name: name, Connection: r.Spec.Connection, Label: label}, 1)
	}
}

func (r *Repairer) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Repairer) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// CheckFor returns the poller's webhook check for a connection, or nil when its webhook is
// not managed (no webhook.manage): each run of the connection's poller checks every
// webhook the connection manages (the primary and, with backup_url, the backup), at most
// every CheckPeriod, and repairs each as configured. It reports checked when every one was
// checked (a failed check counts as not checked), and healthy when any one is: Halo still
// delivers through a healthy webhook, so the poll fallback waits while one is.
func CheckFor(conn config.Connection, api API, count Counter, log *slog.Logger) (func(context.Context) (checked, healthy bool), error) {
	if conn.Webhook.Manage == nil {
		return nil, nil
	}
	specs, err := SpecsFromConfig(conn)
	if err != nil {
		return nil, err
	}
	rs := make([]*Repairer, 0, len(specs))
	for _, spec := range specs {
		rs = append(rs, &Repairer{Manager: &Manager{API: api, Log: log}, Spec: spec, Count: count, Log: log})
	}
	return func(ctx context.Context) (bool, bool) {
		checked, healthy := true, false
		for _, r := range rs {
			rep, err := r.Check(ctx)
			if err != nil || !rep.Checked {
				checked = false
				continue
			}
			healthy = healthy || rep.Healthy
		}
		return checked, checked && healthy
	}, nil
}
