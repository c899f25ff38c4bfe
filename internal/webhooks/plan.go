package webhooks

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"sort"
	"strconv"
	"strings"

	"github.com/halosync/halosync/internal/haloapi"
)

// Manager reads and changes a tenant's webhook configuration for one connection at a
// time.
type Manager struct {
	API API
	// Log receives what was changed (never a secret); nil discards.
	Log *slog.Logger
	// Probe, when set, is asked before Halo is given credentials it does not have yet
	// (the webhook is created, or its secret changes): it must answer nil only when our
	// endpoint accepts them, so that Halo is never pointed at an endpoint that refuses
	// its deliveries. Endpoint.Probe is the usual one.
	Probe func(ctx context.Context, s Spec) error
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

// FieldChange is one webhook field that differs from the configuration. A secret is never
// shown: From and To then carry fingerprints or "(unknown)".
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// Plan is what apply would do to make Halo's webhook match a Spec.
type Plan struct {
	Connection string `json:"connection"`
	Name       string `json:"name"`
	// WebhookID is our webhook's id, "" when it does not exist.
	WebhookID string `json:"webhook_id,omitempty"`
	// Create: there is no webhook of ours; it is created with every event.
	Create bool `json:"create,omitempty"`
	// Update lists fields of the existing webhook that differ.
	Update []FieldChange `json:"update,omitempty"`
	// Enable: the existing webhook is inactive or disabled (Halo disables a webhook after
	// failed deliveries).
	Enable bool `json:"enable,omitempty"`
	// SecretChange: Halo is to be given a secret it does not have (a create, or a changed
	// secret): our endpoint must accept it first (Manager.Probe).
	SecretChange bool `json:"secret_change,omitempty"`
	// Subscribe are events to add; Unsubscribe are subscriptions of our webhook to remove
	// (events no longer wanted, and second subscriptions to one event).
	Subscribe   []Event                `json:"subscribe,omitempty"`
	Unsubscribe []haloapi.Notification `json:"unsubscribe,omitempty"`
	// Duplicates are further webhooks with our name (a create that was retried); they are
	// deleted.
	Duplicates []string `json:"duplicates,omitempty"`

	spec Spec
}

// String describes the plan (it holds the Spec, whose secret is never printed).
func (p Plan) String() string {
	return fmt.Sprintf("webhooks.Plan{%s %q: %s}", p.Connection, p.Name, strings.Join(p.Lines(), "; "))
}

// GoString leaves the secret out of %#v too.
func (p Plan) GoString() string { return p.String() }

// Changes reports whether applying the plan would change anything.
func (p Plan) Changes() bool {
	return p.Create || len(p.Update) > 0 || p.Enable || len(p.Subscribe) > 0 || len(p.Unsubscribe) > 0 || len(p.Duplicates) > 0
}

// Lines describe the plan for people, one change a line ("no change" when none).
func (p Plan) Lines() []string {
	var out []string
	s := p.spec
	if p.Create {
		out = append(out, fmt.Sprintf("+ create webhook %q: POST %s, JSON, %s", p.Name, s.URL, s.Auth))
	}
	for _, c := range p.Update {
		out = append(out, fmt.Sprintf("~ %s: %s → %s", c.Field, c.From, c.To))
	}
	if p.Enable {
		out = append(out, "~ enable the webhook (it is inactive or disabled)")
	}
	for _, e := range p.Subscribe {
		out = append(out, fmt.Sprintf("+ subscribe to %q (eventno %d)", e.Name, e.No))
	}
	for _, n := range p.Unsubscribe {
		out = append(out, fmt.Sprintf("- unsubscribe notification %s (eventno %d, %q)", n.ID, n.EventNo, n.Name))
	}
	for _, id := range p.Duplicates {
		out = append(out, fmt.Sprintf("- delete duplicate webhook %s (same name)", id))
	}
	if len(out) == 0 {
		out = append(out, "no change")
	}
	return out
}

// ours finds our webhook among all of them: the webhooks named exactly name (surrounding
// space aside; "HALOSYNC:acme" is someone else's). The one kept is the first that apply
// wrote (its note carries a secret fingerprint), else the first; the others are
// duplicates.
func ours(all []haloapi.Webhook, name string) (*haloapi.Webhook, []haloapi.Webhook) {
	var named []haloapi.Webhook
	for _, w := range all {
		if strings.TrimSpace(w.Name) == name {
			named = append(named, w)
		}
	}
	if len(named) == 0 {
		return nil, nil
	}
	keep := 0
	for i, w := range named {
		if fingerprintIn(w.Note) != "" {
			keep = i
			break
		}
	}
	w := named[keep]
	return &w, append(named[:keep:keep], named[keep+1:]...)
}

// Plan reads Halo's webhooks and our webhook's subscriptions and works out what apply
// must do. It changes nothing.
func (m *Manager) Plan(ctx context.Context, s Spec) (Plan, error) {
	p, _, err := m.plan(ctx, s)
	return p, err
}

// plan is Plan, also returning our webhook as read (nil when there is none).
func (m *Manager) plan(ctx context.Context, s Spec) (Plan, *haloapi.Webhook, error) {
	all, err := m.API.Webhooks(ctx)
	if err != nil {
		return Plan{}, nil, fmt.Errorf("connection %s: %w", s.Connection, err)
	}
	p := Plan{Connection: s.Connection, Name: s.Name, spec: s}
	w, dups := ours(all, s.Name)
	if w == nil {
		p.Create, p.SecretChange = true, true
		p.Subscribe = append(p.Subscribe, s.Events...)
		return p, nil, nil
	}
	p.WebhookID = w.ID
	for _, d := range dups {
		p.Duplicates = append(p.Duplicates, d.ID)
	}
	p.Update, p.SecretChange = compare(s, *w)
	p.Enable = !w.Enabled()
	subs, err := m.API.Notifications(ctx, w.ID)
	if err != nil {
		return Plan{}, nil, fmt.Errorf("connection %s: %w", s.Connection, err)
	}
	p.Subscribe, p.Unsubscribe = compareEvents(s.Events, subs)
	return p, w, nil
}

// compare lists the fields of w that differ from s, and whether the secret does. A field
// Halo's answer does not carry is not compared (it cannot be known), so that apply stays
// idempotent on a tenant that answers fewer fields.
func compare(s Spec, w haloapi.Webhook) ([]FieldChange, bool) {
	var out []FieldChange
	has := func(k string) bool {
		for f := range w.Fields {
			if strings.EqualFold(f, k) {
				return true
			}
		}
		return false
	}
	num := func(field string, have, want int) {
		if has(field) && have != want {
			out = append(out, FieldChange{field, strconv.Itoa(have), strconv.Itoa(want)})
		}
	}
	if w.URL != s.URL {
		out = append(out, FieldChange{"url", strconv.Quote(w.URL), strconv.Quote(s.URL)})
	}
	num("type", w.Type, haloapi.WebhookTypeOutbound)
	num("method", w.Method, haloapi.WebhookMethodPost)
	if has("content_type") {
		mt, _, err := mime.ParseMediaType(w.ContentType)
		if err != nil || mt != haloapi.WebhookContentType {
			out = append(out, FieldChange{"content_type", strconv.Quote(w.ContentType), strconv.Quote(haloapi.WebhookContentType)})
		}
	}
	num("authentication_type", w.AuthenticationType, s.Auth.haloType())
	if s.Auth.Method == AuthHMAC {
		if !strings.EqualFold(w.AuthenticationHeader, s.Auth.Header) {
			out = append(out, FieldChange{"authentication_header", strconv.Quote(w.AuthenticationHeader), strconv.Quote(s.Auth.Header)})
		}
	} else if w.BasicUsername != s.Auth.Username {
		out = append(out, FieldChange{"basic_username", strconv.Quote(w.BasicUsername), strconv.Quote(s.Auth.Username)})
	}
	secret := secretDiffers(s.Auth, w)
	if secret {
		from := fingerprintIn(w.Note)
		if from == "" {
			from = "(unknown)"
		} else {
			from = "fingerprint " + from
		}
		out = append(out, FieldChange{"secret", from, "fingerprint " + s.Auth.Fingerprint()})
	}
	if strings.TrimSpace(w.Note) != s.Note() && !secret {
		out = append(out, FieldChange{"note", strconv.Quote(w.Note), strconv.Quote(s.Note())})
	}
	if s.PayloadType != nil {
		num("payload_type", w.PayloadType, *s.PayloadType)
	}
	num("batch_method", w.BatchMethod, s.BatchMethod)
	if s.BatchMethod != 0 {
		num("batch_delay_seconds", w.BatchDelaySeconds, s.BatchDelaySeconds)
		num("batch_limit", w.BatchLimit, s.BatchLimit)
	}
	if s.AutoDisableAttempts != nil {
		num("auto_disable_attempts", w.AutoDisableAttempts, *s.AutoDisableAttempts)
	}
	return out, secret
}

// secretDiffers tells whether Halo's webhook holds another secret than ours: by the
// password itself when Halo answers it unmasked, else by the fingerprint in the note (a
// webhook without one counts as different: it was not set by us).
func secretDiffers(a Auth, w haloapi.Webhook) bool {
	if p := w.BasicPassword; p != "" && strings.Trim(p, "*•") != "" {
		return subtle.ConstantTimeCompare([]byte(p), []byte(a.Secret)) != 1
	}
	return fingerprintIn(w.Note) != a.Fingerprint()
}

// compareEvents works out the subscriptions to add and remove.
func compareEvents(want []Event, have []haloapi.Notification) (add []Event, remove []haloapi.Notification) {
	wanted := map[int]bool{}
	for _, e := range want {
		wanted[e.No] = true
	}
	seen := map[int]bool{}
	for _, n := range have {
		if !wanted[n.EventNo] || seen[n.EventNo] {
			remove = append(remove, n)
			continue
		}
		seen[n.EventNo] = true
	}
	for _, e := range want {
		if !seen[e.No] {
			add = append(add, e)
		}
	}
	sort.SliceStable(remove, func(i, j int) bool { return remove[i].EventNo < remove[j].EventNo })
	return add, remove
}

func notificationSpecs(events []Event) []haloapi.NotificationSpec {
	out := make([]haloapi.NotificationSpec, 0, len(events))
	for _, e := range events {
		out = append(out, haloapi.NotificationSpec{EventNo: e.No, Name: "halosync: " + e.Name})
	}
	return out
}

// ErrPartial marks an apply that failed after changing part of an existing webhook: the
// next apply finishes it.
var ErrPartial = errors.New("partly applied: run apply again")

// ErrLeftBehind marks a create that failed part way and whose webhook could not be
// deleted again: the error names it, to delete in Halo.
var ErrLeftBehind = errors.New("a half-created webhook is left in Halo")

// Apply carries out a plan made by Plan and returns our webhook's id. A create that fails
// part way is undone: the webhook made is deleted, so nothing half-created is left (if
// even that is refused, the error names the webhook to delete by hand). A failure while
// changing an existing webhook is wrapped in ErrPartial.
func (m *Manager) Apply(ctx context.Context, p Plan) (string, error) {
	s := p.spec
	if !p.Changes() {
		return p.WebhookID, nil
	}
	if p.SecretChange && m.Probe != nil {
		if err := m.Probe(ctx, s); err != nil {
			return p.WebhookID, fmt.Errorf("connection %s: Halo was not changed: %w", s.Connection, err)
		}
	}
	if p.Create {
		return m.create(ctx, s)
	}
	id := p.WebhookID
	done := 0
	partial := func(err error) error {
		if done == 0 {
			return fmt.Errorf("connection %s: %w", s.Connection, err)
		}
		return fmt.Errorf("connection %s: webhook %s: %w: %w", s.Connection, id, ErrPartial, err)
	}
	switch {
	case len(p.Update) > 0:
		if _, err := m.API.SaveWebhook(ctx, s.haloSpec(id)); err != nil {
			return id, partial(err)
		}
		m.log().InfoContext(ctx, "webhook updated", "connection", s.Connection, "webhook_id", id, "fields", fieldNames(p.Update), "enabled", p.Enable)
		done++
	case p.Enable:
		if _, err := m.API.EnableWebhook(ctx, id); err != nil {
			return id, partial(err)
		}
		m.log().InfoContext(ctx, "webhook enabled", "connection", s.Connection, "webhook_id", id)
		done++
	}
	// Subscribe before unsubscribing, so the webhook is never left with no events.
	if len(p.Subscribe) > 0 {
		if _, err := m.API.Subscribe(ctx, id, notificationSpecs(p.Subscribe)); err != nil {
			return id, partial(err)
		}
		m.log().InfoContext(ctx, "webhook subscribed", "connection", s.Connection, "webhook_id", id, "events", eventNos(p.Subscribe))
		done++
	}
	for _, n := range p.Unsubscribe {
		if err := m.API.DeleteNotification(ctx, n.ID); err != nil && !errors.Is(err, haloapi.ErrNotFound) {
			return id, partial(err)
		}
		m.log().InfoContext(ctx, "webhook unsubscribed", "connection", s.Connection, "webhook_id", id, "notification_id", n.ID, "eventno", n.EventNo)
		done++
	}
	for _, dup := range p.Duplicates {
		if err := m.API.DeleteWebhook(ctx, dup); err != nil && !errors.Is(err, haloapi.ErrNotFound) {
			return id, partial(err)
		}
		m.log().InfoContext(ctx, "duplicate webhook deleted", "connection", s.Connection, "webhook_id", dup)
		done++
	}
	return id, nil
}

// create makes the webhook and subscribes it; on failure it deletes what it made.
func (m *Manager) create(ctx context.Context, s Spec) (string, error) {
	w, err := m.API.SaveWebhook(ctx, s.haloSpec(""))
	if err != nil {
		// The request may have been carried out even though no answer came (a timeout
		// after Halo saved it): look for a webhook of ours and delete it.
		return "", m.undoCreate(ctx, s, "", fmt.Errorf("connection %s: %w", s.Connection, err))
	}
	m.log().InfoContext(ctx, "webhook created", "connection", s.Connection, "webhook_id", w.ID, "url", s.URL)
	if _, err := m.API.Subscribe(ctx, w.ID, notificationSpecs(s.Events)); err != nil {
		return "", m.undoCreate(ctx, s, w.ID, fmt.Errorf("connection %s: subscribe webhook %s to its events: %w", s.Connection, w.ID, err))
	}
	m.log().InfoContext(ctx, "webhook subscribed", "connection", s.Connection, "webhook_id", w.ID, "events", eventNos(s.Events))
	return w.ID, nil
}

// undoCreate deletes the webhook a failed create made (id, or any webhook with our name
// when the create's answer was lost) and returns cause, with what could not be undone.
func (m *Manager) undoCreate(ctx context.Context, s Spec, id string, cause error) error {
	ids := []string{}
	if id != "" {
		ids = append(ids, id)
	} else if all, err := m.API.Webhooks(ctx); err == nil {
		w, dups := ours(all, s.Name)
		if w != nil {
			ids = append(ids, w.ID)
		}
		for _, d := range dups {
			ids = append(ids, d.ID)
		}
	} else if !errors.Is(cause, haloapi.ErrForbidden) {
		return fmt.Errorf("%w (%w? could not check whether Halo made webhook %q anyway: %v; delete it in Halo if it is there)", cause, ErrLeftBehind, s.Name, err)
	}
	for _, x := range ids {
		if err := m.API.DeleteWebhook(ctx, x); err != nil && !errors.Is(err, haloapi.ErrNotFound) {
			return fmt.Errorf("%w (%w: %s named %q could not be deleted: %v; delete it in Halo)", cause, ErrLeftBehind, x, s.Name, err)
		}
		m.log().WarnContext(ctx, "half-created webhook deleted", "connection", s.Connection, "webhook_id", x)
	}
	if len(ids) > 0 {
		return fmt.Errorf("%w (the webhook made was deleted again: nothing was left behind)", cause)
	}
	return cause
}

// Removal is what Remove deleted (or would delete).
type Removal struct {
	Connection    string   `json:"connection"`
	Name          string   `json:"name"`
	Webhooks      []string `json:"webhooks"`
	Notifications int      `json:"notifications"`
}

// Remove deletes every webhook named s.Name, and whatever subscriptions of theirs Halo
// does not delete with them; nothing else. With dryRun it only reports.
func (m *Manager) Remove(ctx context.Context, s Spec, dryRun bool) (Removal, error) {
	r := Removal{Connection: s.Connection, Name: s.Name, Webhooks: []string{}}
	all, err := m.API.Webhooks(ctx)
	if err != nil {
		return r, fmt.Errorf("connection %s: %w", s.Connection, err)
	}
	w, dups := ours(all, s.Name)
	if w == nil {
		return r, nil
	}
	for _, x := range append([]haloapi.Webhook{*w}, dups...) {
		subs, err := m.API.Notifications(ctx, x.ID)
		if err != nil {
			return r, fmt.Errorf("connection %s: %w", s.Connection, err)
		}
		r.Webhooks = append(r.Webhooks, x.ID)
		r.Notifications += len(subs)
		if dryRun {
			continue
		}
		// The webhook first: it never stays with its subscriptions gone.
		if err := m.API.DeleteWebhook(ctx, x.ID); err != nil && !errors.Is(err, haloapi.ErrNotFound) {
			return r, fmt.Errorf("connection %s: %w", s.Connection, err)
		}
		left, err := m.API.Notifications(ctx, x.ID)
		if err != nil {
			return r, fmt.Errorf("connection %s: webhook %s deleted, but its subscriptions could not be listed: %w", s.Connection, x.ID, err)
		}
		for _, n := range left {
			if err := m.API.DeleteNotification(ctx, n.ID); err != nil && !errors.Is(err, haloapi.ErrNotFound) {
				return r, fmt.Errorf("connection %s: webhook %s deleted, but not its notification %s: %w", s.Connection, x.ID, n.ID, err)
			}
		}
		m.log().InfoContext(ctx, "webhook removed", "connection", s.Connection, "webhook_id", x.ID, "notifications", len(subs))
	}
	return r, nil
}

func fieldNames(cs []FieldChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Field
	}
	return out
}

func eventNos(es []Event) []int {
	out := make([]int, len(es))
	for i, e := range es {
		out[i] = e.No
	}
	return out
}
