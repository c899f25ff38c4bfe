package config

import (
	"time"
)

// Connection is one Halo tenant.
type Connection struct {
	ID      string  `yaml:"id"`
	Halo    Halo    `yaml:"halo"`
	Webhook Webhook `yaml:"webhook"`
	// StoredFields keeps fields out of the copy, per kind (change.KindNames, or the key Halo
	// nests the kind under): an include list keeps only what it names, an exclude list drops
	// what it names. Applied before anything is stored.
	StoredFields map[string]FieldList `yaml:"stored_fields"`
	// Events maps Halo event names halosync does not know to a kind and operation.
	Events map[string]EventMapping `yaml:"events"`
	// Poll configures the poller for connections with halo: settings.
	Poll Poll `yaml:"poll"`
	// Versions says how far the versions changes carry are believed.
	Versions Versions `yaml:"versions"`
	// Verify checks the copy against Halo continuously, in a slice of the poller's share
	// (docs/ARCHITECTURE.md, "Verification").
	Verify Verify `yaml:"verify"`
}

// Verify configures the continuous verification of a polled connection's copy.
type Verify struct {
	// Enabled: verify after each poll (default true; false turns it off).
	Enabled *bool `yaml:"enabled"`
	// Share is the part of the poller's share (poll.share) verification may spend per
	// budget window: "unused" (default: what the poll leaves unused) or a fraction above 0
	// and at most 1, written as a number.
	Share string `yaml:"share"`
	// WindowHours is the rolling window of the estimate (default 24).
	WindowHours int `yaml:"window_hours"`
	// AlarmBelow is the percent of the copy found equal below which the estimate is
	// alarming (default 99); in AWS the CloudWatch alarm's threshold is a template
	// parameter.
	AlarmBelow float64 `yaml:"alarm_below"`
}

// Versions checks the versions of changes (docs/ARCHITECTURE.md, "Versions").
type Versions struct {
	// MaxSkewSeconds: a version further than this ahead of the time its change was received
	// (or read from Halo) is replaced by that time (default 600, at most MaxVersionSkewSeconds).
	MaxSkewSeconds int `yaml:"max_skew_seconds"`
}

// MaxVersionSkewSeconds is the largest versions.max_skew_seconds: a day. Beyond it a
// wrong clock pins an object for longer than the daily reconcile's cycle.
const MaxVersionSkewSeconds = 86400

// Poll configures how a connection is polled.
type Poll struct {
	// Mode: hybrid (default: webhooks, and a poll every interval), webhook (webhooks, and
	// only the daily reconcile), poll (no webhooks: a poll every interval).
	Mode string `yaml:"mode"`
	// IntervalMinutes between polls (default 15 in hybrid, 5 in poll mode).
	IntervalMinutes int `yaml:"interval_minutes"`
	// FallbackMinutes between polls while the webhooks look unhealthy (default 1).
	FallbackMinutes int `yaml:"fallback_minutes"`
	// SilenceMinutes without a webhook delivery, while the poller finds changes, after
	// which the webhooks count as unhealthy (default 10).
	SilenceMinutes int `yaml:"silence_minutes"`
	// OverlapSeconds re-read before each cursor, against clock skew (default 120).
	OverlapSeconds int `yaml:"overlap_seconds"`
	// ReconcileHours between reconciles of id lists, which find deletes (default 24).
	ReconcileHours int `yaml:"reconcile_hours"`
	// Kinds: incremental, scan or auto per kind (auto: incremental when a probe shows the
	// tenant filters the kind by lastupdatefromdate, else scan; default: incremental for
	// tickets, scan for the
	// others, since Halo's last-update filter is confirmed for tickets only).
	Kinds map[string]string `yaml:"kinds"`
	// BulkNotes: how a backfill (and a poll) lists notes. auto (default): across tickets
	// by date window (GET /api/Actions with startdate/enddate and no ticket_id) when a
	// probe shows the tenant answers it, else per ticket; on: across tickets without a
	// probe; off: per ticket. A connection with filters lists notes per ticket.
	BulkNotes string `yaml:"bulk_notes"`
	// NotesMaxAgeDays: a backfill leaves out closed tickets' notes older than this many
	// days (0: no limit); open tickets' notes are all read.
	NotesMaxAgeDays int `yaml:"notes_max_age_days"`
	// Share is the part of halo.budget the poller may spend per window (default 1/3,
	// above 0 and at most 1), leaving the rest to the worker and other integrations.
	Share float64 `yaml:"share"`
	// ScanHours spreads the full scan of the kinds read by scan (by default clients,
	// contacts and assets) over this many hours, a slice per poll (default 24 in hybrid
	// and webhook modes; in poll mode, without webhooks, every poll scans in full unless
	// this is set).
	ScanHours int `yaml:"scan_hours"`
}

// Halo is how halosync reaches a tenant's REST API. Without a BaseURL the connection is
// webhook-only: event-only deliveries stay pending.
type Halo struct {
	BaseURL string `yaml:"base_url"` // https://acme.halopsa.com (the resource server is <base_url>/api)
	// AuthURL is the authorisation server; empty means discover it from /api/authinfo.
	AuthURL      string `yaml:"auth_url"`
	Tenant       string `yaml:"tenant"` // hosted tenants: the token request's tenant parameter
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"` // a secret reference in practice
	Scope        string `yaml:"scope"`         // default "all"
	// Budget caps requests to the tenant, shared by everything halosync runs for this
	// connection: Halo allows about 300 per rolling 5 minutes for the whole tenant.
	Budget Budget `yaml:"budget"`
	// TimeoutSeconds bounds one HTTP request (default 30).
	TimeoutSeconds int `yaml:"timeout_seconds"`
}

// Budget is a number of requests per window.
type Budget struct {
	Requests      int `yaml:"requests"`       // default 250
	WindowSeconds int `yaml:"window_seconds"` // default 300
}

// FieldList is an include or an exclude list of field names.
type FieldList struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// EventMapping names the kind (change.KindNames) and operation (upsert or delete) of an
// event.
type EventMapping struct {
	Kind string `yaml:"kind"`
	Op   string `yaml:"op"`
}

// Configured reports whether the connection can call the Halo API.
func (h Halo) Configured() bool { return h.BaseURL != "" }

// Count is the budget's request count (default 250).
func (b Budget) Count() int {
	if b.Requests > 0 {
		return b.Requests
	}
	return 250
}

// Window is the budget's window (default 5 minutes).
func (b Budget) Window() time.Duration {
	if b.WindowSeconds > 0 {
		return time.Duration(b.WindowSeconds) * time.Second
	}
	return 5 * time.Minute
}

// Timeout bounds one request (default 30 s).
func (h Halo) Timeout() time.Duration {
	if h.TimeoutSeconds > 0 {
		return time.Duration(h.TimeoutSeconds) * time.Second
	}
	return 30 * time.Second
}
