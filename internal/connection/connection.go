// Package connection compiles a configured connection, once, into what ingest, the worker
// and the poller use: its authentication, source allowlist, filters, stored fields, event
// table and poll plan, with every default applied here (docs/ARCHITECTURE.md,
// "Connections").
package connection

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/auth"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/filter"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storedfields"
)

// Connection is one connection's settings, compiled.
type Connection struct {
	ID string
	// Config is the connection as configured: its Halo API settings and webhook
	// management are read from here by the packages that own them.
	Config config.Connection

	Verifier  auth.Verifier
	AllowIPs  []netip.Prefix // empty: any source
	BodyLimit int            // bytes, as received and decompressed
	Routing   []string       // routing header names, lower case
	// AuthFailures failed authentications of one source within AuthWindow refuse it for
	// AuthWindow (config.AuthThrottle).
	AuthFailures int
	AuthWindow   time.Duration

	Filter *filter.Rules
	Fields *storedfields.Policy
	Events halo.Events // Halo's known event names plus the configured ones
	Poll   Poll
	// Versions is how far the versions of changes are believed (VersionsOf).
	Versions change.VersionRule
	// Verify is how the copy is checked against Halo (VerifyOf).
	Verify Verify
}

// Verify is the continuous verification of a polled connection's copy.
type Verify struct {
	Enabled bool
	// Fraction is the part of the poller's share verification may spend per budget
	// window; 0: what the poll leaves unused.
	Fraction float64
	// Window is the rolling window of the estimate.
	Window time.Duration
	// AlarmBelow is the percent equal below which the estimate alarms.
	AlarmBelow float64
}

// Defaults of the verify: settings (config.Verify documents them).
const (
	DefaultVerifyWindow     = 24 * time.Hour
	DefaultVerifyAlarmBelow = 99.0
)

// VerifyOf applies the defaults to a connection's verify: settings, validated before.
func VerifyOf(v config.Verify) Verify {
	out := Verify{Enabled: v.Enabled == nil || *v.Enabled, Window: DefaultVerifyWindow, AlarmBelow: DefaultVerifyAlarmBelow}
	out.Fraction, _ = v.Fraction()
	if v.WindowHours > 0 {
		out.Window = time.Duration(v.WindowHours) * time.Hour
	}
	if v.AlarmBelow > 0 {
		out.AlarmBelow = v.AlarmBelow
	}
	return out
}

// Poll is when and how a connection is polled.
type Poll struct {
	Mode      string        // hybrid, webhook or poll
	Interval  time.Duration // between polls (hybrid, poll)
	Fallback  time.Duration // between polls while the webhooks look unhealthy (hybrid)
	Silence   time.Duration // no webhook change this long, while Halo changes: unhealthy
	Reconcile time.Duration // between reconciles of id lists
	Overlap   time.Duration // re-read before each cursor, against clock skew
	// Kinds says how each kind's changes are found: "incremental" or "scan"; a kind not
	// named takes the poller's default for it.
	Kinds map[change.Kind]string
	// BulkNotes is how notes are listed: "auto" (across tickets by date when a probe
	// shows the tenant answers it), "on" or "off" (per ticket).
	BulkNotes string
	// NotesMaxAge leaves closed tickets' notes older than this out of a backfill (0: none).
	NotesMaxAge time.Duration
	// Share is the part of the connection's budget the poller may spend per window.
	Share float64
	// ScanEvery spreads the full scan of scanned kinds over this long, a slice per
	// poll; 0: each poll scans them in full (poll mode, without webhooks).
	ScanEvery time.Duration
}

// Defaults of the poll: settings (config.Poll documents them).
const (
	DefaultOverlap        = 2 * time.Minute
	defaultHybridInterval = 15 * time.Minute
	defaultPollInterval   = 5 * time.Minute
	defaultFallback       = time.Minute
	defaultSilence        = 10 * time.Minute
	defaultReconcile      = 24 * time.Hour
	// DefaultShare is the part of the tenant's budget the poller may spend: a third,
	// leaving the rest to the worker's fetches and the tenant's other integrations.
	DefaultShare     = 1.0 / 3
	defaultScanEvery = 24 * time.Hour
)

// PollOf applies the defaults to a connection's poll: settings.
func PollOf(p config.Poll) Poll {
	out := Poll{Mode: p.Mode, Interval: defaultHybridInterval, Fallback: defaultFallback, Silence: defaultSilence,
		Reconcile: defaultReconcile, Overlap: DefaultOverlap, Kinds: map[change.Kind]string{}}
	if out.Mode == "" {
		out.Mode = "hybrid"
	}
	if out.Mode == "poll" {
		out.Interval = defaultPollInterval
	}
	if p.IntervalMinutes > 0 {
		out.Interval = time.Duration(p.IntervalMinutes) * time.Minute
	}
	if p.FallbackMinutes > 0 {
		out.Fallback = time.Duration(p.FallbackMinutes) * time.Minute
	}
	if p.SilenceMinutes > 0 {
		out.Silence = time.Duration(p.SilenceMinutes) * time.Minute
	}
	if p.ReconcileHours > 0 {
		out.Reconcile = time.Duration(p.ReconcileHours) * time.Hour
	}
	if p.OverlapSeconds > 0 {
		out.Overlap = time.Duration(p.OverlapSeconds) * time.Second
	}
	out.BulkNotes = p.BulkNotes
	if out.BulkNotes == "" {
		out.BulkNotes = "auto"
	}
	out.NotesMaxAge = time.Duration(p.NotesMaxAgeDays) * 24 * time.Hour
	out.Share = DefaultShare
	if p.Share > 0 {
		out.Share = p.Share
	}
	if out.Mode != "poll" {
		out.ScanEvery = defaultScanEvery // the webhooks keep scanned kinds current between slices
	}
	if p.ScanHours > 0 {
		out.ScanEvery = time.Duration(p.ScanHours) * time.Hour
	}
	for name, mode := range p.Kinds {
		if kind, err := change.ParseKind(name); err == nil {
			out.Kinds[kind] = mode
		}
	}
	return out
}

// VersionsOf applies the default to a connection's versions: settings.
func VersionsOf(v config.Versions) change.VersionRule {
	if v.MaxSkewSeconds > 0 {
		return change.VersionRule{MaxSkew: time.Duration(v.MaxSkewSeconds) * time.Second}
	}
	return change.VersionRule{MaxSkew: change.DefaultMaxVersionSkew}
}

// Counter counts what checking versions adjusts.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// CheckVersion checks c's version by rule against received, the time the change was
// received or read from Halo, where a change enters halosync (docs/ARCHITECTURE.md,
// "Versions"): a version too far ahead is clamped, counted (VersionsClamped) and logged
// with the marker as written; a snapshot without a readable marker is counted
// (VersionsMissing) and logged.
func CheckVersion(ctx context.Context, rule change.VersionRule, c change.Change, received time.Time, count Counter, log *slog.Logger) (change.Change, change.VersionCheck) {
	checked, vc := rule.Check(c, received)
	if vc.Missing {
		count.Count(metrics.Metric{Name: metrics.VersionsMissing, Connection: c.Connection, Kind: string(c.Kind), Label: string(c.Kind)}, 1)
		log.InfoContext(ctx, "change marker missing or unreadable", "connection", c.Connection, "kind", c.Kind, "id", c.ID,
			"marker", vc.Marker, "version_from", c.VersionFrom)
	}
	if vc.Clamped {
		count.Count(metrics.Metric{Name: metrics.VersionsClamped, Connection: c.Connection, Kind: string(c.Kind), Label: string(c.Kind)}, 1)
		log.WarnContext(ctx, "version too far ahead: clamped to the receipt time", "connection", c.Connection, "kind", c.Kind,
			"id", c.ID, "marker", vc.Marker, "version_from", c.VersionFrom, "version_was", vc.Was, "version", checked.Version,
			"delivery_id", c.DeliveryID)
	}
	return checked, vc
}

// Compile compiles one connection.
func Compile(c config.Connection) (*Connection, error) {
	v, err := auth.New(c.Webhook.Auth)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.ID, err)
	}
	allow, err := config.ParseCIDRs(c.Webhook.AllowIPs)
	if err != nil {
		return nil, fmt.Errorf("connection %s: allow_ips: %w", c.ID, err)
	}
	rules, err := filter.New(c.Webhook.Filters)
	if err != nil {
		return nil, fmt.Errorf("connection %s: filters: %w", c.ID, err)
	}
	fields, err := storedfields.New(c.StoredFields)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.ID, err)
	}
	events, err := halo.EventsFromConfig(c.Events)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.ID, err)
	}
	routing := make([]string, 0, len(c.Webhook.RoutingHeaders))
	for _, name := range c.Webhook.RoutingHeaders {
		routing = append(routing, strings.ToLower(name))
	}
	return &Connection{ID: c.ID, Config: c, Verifier: v, AllowIPs: allow, BodyLimit: c.Webhook.BodyLimit(),
		Routing: routing, AuthFailures: c.Webhook.AuthThrottle.Limit(), AuthWindow: c.Webhook.AuthThrottle.Window(),
		Filter: rules, Fields: fields, Events: events, Poll: PollOf(c.Poll), Versions: VersionsOf(c.Versions),
		Verify: VerifyOf(c.Verify)}, nil
}

// Set is every connection of a configuration, in its order.
type Set []*Connection

// CompileAll compiles every connection of cfg.
func CompileAll(cfg *config.Config) (Set, error) {
	out := make(Set, 0, len(cfg.Connections))
	for _, c := range cfg.Connections {
		cc, err := Compile(c)
		if err != nil {
			return nil, err
		}
		out = append(out, cc)
	}
	return out, nil
}

// Get returns the connection with the given id.
func (s Set) Get(id string) (*Connection, bool) {
	for _, c := range s {
		if c.ID == id {
			return c, true
		}
	}
	return nil, false
}

// MustCompileAll compiles cfg, panicking on an error: for configurations a program
// builds itself, already known to be valid.
func MustCompileAll(cfg *config.Config) Set {
	s, err := CompileAll(cfg)
	if err != nil {
		panic(err)
	}
	return s
}
