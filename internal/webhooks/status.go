package webhooks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
)

// Status is the managed webhook's state in Halo and what its recent deliveries say.
type Status struct {
	Connection string `json:"connection"`
	// Endpoint is the endpoint the webhook delivers to: primary or backup.
	Endpoint  string `json:"endpoint"`
	Name      string `json:"name"`
	Exists    bool   `json:"exists"`
	WebhookID string `json:"webhook_id,omitempty"`
	Active    bool   `json:"active"`
	Disabled  bool   `json:"disabled"`
	URL       string `json:"url,omitempty"`
	URLOK     bool   `json:"url_ok"`
	AuthOK    bool   `json:"auth_ok"`
	EventsOK  bool   `json:"events_ok"`
	// Drift lists every field that differs from the configuration (secrets by fingerprint).
	Drift         []FieldChange `json:"drift,omitempty"`
	MissingEvents []Event       `json:"missing_events,omitempty"`
	// ExtraEvents are event numbers our webhook is subscribed to beyond the configured ones.
	ExtraEvents []int `json:"extra_events,omitempty"`
	Duplicates  int   `json:"duplicates,omitempty"`
	// Deliveries summarises Halo's delivery log since Deliveries.Since (nil when not read).
	Deliveries *DeliveryStats `json:"deliveries,omitempty"`
	// Healthy: the webhook exists, is enabled and matches the configuration.
	Healthy bool `json:"healthy"`
	// Failing: by Halo's delivery log, the endpoint fails: deliveries failed since the
	// window's start and none succeeded after the last failure. Problems then names the
	// endpoint and its last error.
	Failing  bool     `json:"failing"`
	Problems []string `json:"problems,omitempty"`
}

// DeliveryStats counts a webhook's deliveries in Halo's log.
type DeliveryStats struct {
	Since       time.Time  `json:"since"`
	Succeeded   int        `json:"succeeded"`
	Failed      int        `json:"failed"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastFailure *time.Time `json:"last_failure,omitempty"`
	// LastError is the newest failure's error, or its HTTP status.
	LastError string `json:"last_error,omitempty"`
	// Truncated: the log held more than was read (LogPages pages).
	Truncated bool `json:"truncated,omitempty"`
}

// LogPages bounds how many pages of the delivery log (100 each) Status and Replay read.
var LogPages = 20

// Status reads our webhook, its subscriptions and, when since is not zero, its delivery
// log from since on.
func (m *Manager) Status(ctx context.Context, s Spec, since time.Time) (Status, error) {
	st := Status{Connection: s.Connection, Endpoint: s.Endpoint, Name: s.Name}
	if st.Endpoint == "" {
		st.Endpoint = change.EndpointPrimary
	}
	p, w, err := m.plan(ctx, s)
	if err != nil {
		return st, err
	}
	st.Duplicates = len(p.Duplicates)
	if w == nil {
		st.Problems = append(st.Problems, fmt.Sprintf("no webhook named %q in Halo: run `halosync webhooks apply`", s.Name))
		return st, nil
	}
	st.Exists = true
	st.WebhookID, st.Active, st.Disabled, st.URL = w.ID, w.Active, w.Disabled, w.URL
	st.Drift = p.Update
	st.URLOK, st.AuthOK = true, true
	for _, c := range p.Update {
		switch c.Field {
		case "url":
			st.URLOK = false
		case "authentication_type", "authentication_header", "basic_username", "secret":
			st.AuthOK = false
		}
	}
	st.MissingEvents = p.Subscribe
	for _, n := range p.Unsubscribe {
		st.ExtraEvents = append(st.ExtraEvents, n.EventNo)
	}
	st.EventsOK = len(p.Subscribe) == 0 && len(p.Unsubscribe) == 0
	switch {
	case !w.Active:
		st.Problems = append(st.Problems, "inactive")
	case w.Disabled:
		st.Problems = append(st.Problems, "disabled by Halo")
	}
	if !st.URLOK {
		st.Problems = append(st.Problems, fmt.Sprintf("URL is %q, want %q", w.URL, s.URL))
	}
	if !st.AuthOK {
		st.Problems = append(st.Problems, "authentication differs from the configuration")
	}
	if other := len(p.Update) - countFields(p.Update, "url", "authentication_type", "authentication_header", "basic_username", "secret"); other > 0 {
		st.Problems = append(st.Problems, "settings differ: "+strings.Join(otherFields(p.Update), ", "))
	}
	if len(st.MissingEvents) > 0 {
		st.Problems = append(st.Problems, fmt.Sprintf("not subscribed to eventno %v", eventNos(st.MissingEvents)))
	}
	if len(st.ExtraEvents) > 0 {
		st.Problems = append(st.Problems, fmt.Sprintf("also subscribed to eventno %v", st.ExtraEvents))
	}
	if st.Duplicates > 0 {
		st.Problems = append(st.Problems, fmt.Sprintf("%d more webhooks with the same name", st.Duplicates))
	}
	st.Healthy = len(st.Problems) == 0
	if !since.IsZero() {
		ds, err := m.deliveryStats(ctx, w.ID, since)
		if err != nil {
			return st, fmt.Errorf("connection %s: %w", s.Connection, err)
		}
		st.Deliveries = &ds
		if ds.failing() {
			st.Failing = true
			st.Problems = append(st.Problems, fmt.Sprintf("%s endpoint failing: %s: no delivery succeeded since the last failure, at %s: %s",
				st.Endpoint, s.URL, ds.LastFailure.UTC().Format(time.RFC3339), ds.LastError))
		}
	}
	return st, nil
}

// failing reports whether the log says the endpoint fails now: a failure in the window,
// and no success after the newest one.
func (ds DeliveryStats) failing() bool {
	return ds.Failed > 0 && ds.LastFailure != nil && (ds.LastSuccess == nil || ds.LastFailure.After(*ds.LastSuccess))
}

// FailingEndpoints names the endpoints whose webhooks fail by Halo's delivery log, as
// "<connection> <endpoint> (<url>)", in the order given.
func FailingEndpoints(sts []Status) []string {
	var out []string
	for _, st := range sts {
		if st.Failing {
			out = append(out, fmt.Sprintf("%s %s (%s)", st.Connection, st.Endpoint, st.URL))
		}
	}
	return out
}

func countFields(cs []FieldChange, names ...string) int {
	n := 0
	for _, c := range cs {
		for _, x := range names {
			if c.Field == x {
				n++
			}
		}
	}
	return n
}

func otherFields(cs []FieldChange) []string {
	var out []string
	for _, c := range cs {
		if countFields([]FieldChange{c}, "url", "authentication_type", "authentication_header", "basic_username", "secret") == 0 {
			out = append(out, c.Field)
		}
	}
	return out
}

// deliveryStats summarises the log of one webhook from since on.
func (m *Manager) deliveryStats(ctx context.Context, webhookID string, since time.Time) (DeliveryStats, error) {
	ds := DeliveryStats{Since: since.UTC()}
	var lastFailure time.Time
	err := m.readLog(ctx, webhookID, since, func(e haloapi.WebhookEvent) {
		if e.Succeeded() {
			ds.Succeeded++
			if ds.LastSuccess == nil || e.Timestamp.After(*ds.LastSuccess) {
				t := e.Timestamp
				ds.LastSuccess = &t
			}
			return
		}
		ds.Failed++
		if ds.LastFailure == nil || e.Timestamp.After(lastFailure) {
			lastFailure = e.Timestamp
			t := e.Timestamp
			ds.LastFailure = &t
			ds.LastError = failureText(e)
		}
	})
	if errors.Is(err, errTruncated) {
		ds.Truncated, err = true, nil
	}
	return ds, err
}

// failureText is a short account of a failed delivery: its error, else its HTTP status.
func failureText(e haloapi.WebhookEvent) string {
	s := strings.Join(strings.Fields(e.Error), " ")
	if e.ResponseStatus != 0 {
		if s == "" {
			s = fmt.Sprintf("HTTP %d", e.ResponseStatus)
		} else {
			s = fmt.Sprintf("HTTP %d: %s", e.ResponseStatus, s)
		}
	}
	if s == "" {
		s = "failed (no status recorded)"
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

var errTruncated = errors.New("log truncated")

// readLog calls fn with every log entry from since on (entries without a readable time
// included). Halo is asked for the newest first; when a page comes back in that order and
// wholly older than since, the reading stops. It reads at most LogPages pages and then
// returns errTruncated.
func (m *Manager) readLog(ctx context.Context, webhookID string, since time.Time, fn func(haloapi.WebhookEvent)) error {
	pages := 0
	truncated := false
	err := m.API.WebhookEvents(ctx, webhookID, func(page []haloapi.WebhookEvent) error {
		pages++
		older, descending := 0, true
		for i, e := range page {
			if i > 0 && e.Timestamp.After(page[i-1].Timestamp) {
				descending = false
			}
			if !e.Timestamp.IsZero() && e.Timestamp.Before(since) {
				older++
				continue
			}
			fn(e)
		}
		if descending && older == len(page) {
			return haloapi.ErrStopPaging
		}
		if pages >= LogPages {
			truncated = true
			return haloapi.ErrStopPaging
		}
		return nil
	})
	if err == nil && truncated {
		return errTruncated
	}
	return err
}
