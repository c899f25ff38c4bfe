package haloapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Webhook management through Halo's API (docs/HALO.md, "The REST API"): outbound webhooks
// (/api/Webhook), their event subscriptions (/api/Notification) and their delivery log
// (/api/WebhookEvent). Writes POST a JSON array; an item with an id updates. Halo keeps no
// owner on a webhook: callers recognise their own by name.

// ErrForbidden: Halo answered 403 to a webhook management call. The API application's
// scope or its agent's role does not allow it; the error's Detail names what to grant.
var ErrForbidden = errors.New("forbidden")

// ErrStopPaging, returned by a WebhookEvents callback, ends the listing without an error.
var ErrStopPaging = errors.New("stop paging")

// PermissionHint says what to grant when Halo refuses webhook management.
const PermissionHint = "the API application may not manage webhooks: give the agent it logs in as " +
	"(Configuration > Integrations > Halo API > the application > Login) a role allowed to administer " +
	"Configuration > Integrations > Webhooks and notifications, and the application the scope \"all\" " +
	"(halo.scope; Halo documents no narrower scope for webhooks)"

// Halo's codes for the webhook fields halosync sets (docs/HALO.md, "The REST API"). Only type 0,
// method 0 and delivery method 6 are seen in code that works against tenants; the
// authentication codes are those of django-psa (1 Basic, 3 signed body).
const (
	WebhookTypeOutbound      = 0
	WebhookMethodPost        = 0
	WebhookAuthNone          = 0
	WebhookAuthBasic         = 1
	WebhookAuthSignedBody    = 3
	NotificationTypeWebhook  = -2
	NotificationDeliveryHook = 6
	WebhookContentType       = "application/json"
	webhookEventsEnvelope    = "webhookevents"
	notificationsEnvelope    = "notifications"
	webhooksEnvelope         = "webhooks"
)

// Webhook is one of Halo's webhooks as the API answers it.
type Webhook struct {
	ID                   string `json:"id"`
	Name                 string `json:"name"`
	URL                  string `json:"url"`
	Type                 int    `json:"type"`
	Method               int    `json:"method"`
	ContentType          string `json:"content_type"`
	Active               bool   `json:"active"`
	Disabled             bool   `json:"disabled"`
	AuthenticationType   int    `json:"authentication_type"`
	AuthenticationHeader string `json:"authentication_header,omitempty"`
	BasicUsername        string `json:"basic_username,omitempty"`
	// BasicPassword is the password or signing secret as Halo answers it: Halo may leave
	// it out or mask it. It is never printed or marshalled.
	BasicPassword       string `json:"-"`
	PayloadType         int    `json:"payload_type"`
	BatchMethod         int    `json:"batch_method"`
	BatchDelaySeconds   int    `json:"batch_delay_seconds"`
	BatchLimit          int    `json:"batch_limit"`
	AutoDisableAttempts int    `json:"auto_disable_attempts"`
	Note                string `json:"note,omitempty"`
	// Fields is the whole answer, numbers as json.Number, basic_password left out.
	Fields map[string]any `json:"-"`
}

// Enabled reports whether Halo sends the webhook's deliveries: active and not disabled.
func (w Webhook) Enabled() bool { return w.Active && !w.Disabled }

// String leaves the secret out, should the webhook be printed.
func (w Webhook) String() string {
	return fmt.Sprintf("haloapi.Webhook{ID: %q, Name: %q, URL: %q, Active: %t, Disabled: %t}", w.ID, w.Name, w.URL, w.Active, w.Disabled)
}

// GoString leaves the secret out of %#v too.
func (w Webhook) GoString() string { return w.String() }

// WebhookSpec is what is written to a webhook: exactly these fields are sent, as
// django-psa sends them, with type 0 (outbound), method 0 (POST), content type JSON and
// active true. An empty ID creates a webhook; otherwise the webhook is updated.
type WebhookSpec struct {
	ID                   string
	Name                 string
	URL                  string
	Note                 string
	AuthenticationType   int
	AuthenticationHeader string
	BasicUsername        string
	BasicPassword        string
	// PayloadType, when set, is sent as payload_type (Halo's codes are undocumented).
	PayloadType       *int
	BatchMethod       int
	BatchDelaySeconds int
	BatchLimit        int
	// AutoDisableAttempts, when set, is sent as auto_disable_attempts (0: never).
	AutoDisableAttempts *int
}

// String leaves the secret out.
func (s WebhookSpec) String() string {
	return fmt.Sprintf("haloapi.WebhookSpec{ID: %q, Name: %q, URL: %q}", s.ID, s.Name, s.URL)
}

// GoString leaves the secret out of %#v too.
func (s WebhookSpec) GoString() string { return s.String() }

func (s WebhookSpec) body() map[string]any {
	m := map[string]any{
		"name":                        s.Name,
		"url":                         s.URL,
		"note":                        s.Note,
		"type":                        WebhookTypeOutbound,
		"method":                      WebhookMethodPost,
		"content_type":                WebhookContentType,
		"active":                      true,
		"disabled":                    false,
		"authentication_type":         s.AuthenticationType,
		"authentication_header":       s.AuthenticationHeader,
		"basic_username":              s.BasicUsername,
		"basic_password":              s.BasicPassword,
		"batch_method":                s.BatchMethod,
		"batch_delay_seconds":         s.BatchDelaySeconds,
		"batch_limit":                 s.BatchLimit,
		"certificate_id":              0,
		"inbound_authentication_type": 0,
		"algorithm":                   0,
		"runbook_start_type":          0,
	}
	if s.ID != "" {
		m["id"] = s.ID
	}
	if s.PayloadType != nil {
		m["payload_type"] = *s.PayloadType
	}
	if s.AutoDisableAttempts != nil {
		m["auto_disable_attempts"] = *s.AutoDisableAttempts
	}
	return m
}

// Notification is one event subscription (GET/POST /api/Notification).
type Notification struct {
	ID             string `json:"id"`
	WebhookID      string `json:"webhook_id"`
	EventNo        int    `json:"eventno"`
	Name           string `json:"name,omitempty"`
	Type           int    `json:"type"`
	DeliveryMethod int    `json:"delivery_method"`
}

// NotificationSpec subscribes a webhook to one event: type -2, delivery method 6.
type NotificationSpec struct {
	EventNo int
	Name    string
}

// WebhookEvent is one delivery in a webhook's log (GET /api/WebhookEvent).
type WebhookEvent struct {
	ID             string    `json:"id"`
	WebhookID      string    `json:"webhook_id"`
	NotificationID string    `json:"notification_id,omitempty"`
	EntityID       string    `json:"entity_id,omitempty"`
	Timestamp      time.Time `json:"timestamp"`
	// Status is Halo's own status code of the delivery (undocumented); ResponseStatus is
	// the HTTP status the receiver answered (0: none), Error why it failed.
	Status         int    `json:"status"`
	ResponseStatus int    `json:"responsestatus"`
	Error          string `json:"error,omitempty"`
	DurationMillis int64  `json:"duration,omitempty"`
	// RequestBody is the body Halo sent ("" with lightweight logs).
	RequestBody string `json:"-"`
}

// Succeeded reports whether the receiver accepted the delivery: a 2xx answer and no
// error. (Halo's status codes are not documented, so the HTTP status decides.)
func (e WebhookEvent) Succeeded() bool {
	return e.ResponseStatus >= 200 && e.ResponseStatus <= 299 && strings.TrimSpace(e.Error) == ""
}

// --- Calls ------------------------------------------------------------------------------

// Webhooks lists the tenant's outbound webhooks (GET /api/Webhook?type=0).
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	const op = "list webhooks"
	items, err := c.hookList(ctx, op, "Webhook", url.Values{"type": {strconv.Itoa(WebhookTypeOutbound)}}, webhooksEnvelope)
	if err != nil {
		return nil, err
	}
	out := make([]Webhook, 0, len(items))
	for _, it := range items {
		w := decodeWebhook(it)
		if w.ID == "" {
			return nil, &Error{Op: op, class: ErrBadResponse, Detail: "a webhook without an id"}
		}
		out = append(out, w)
	}
	return out, nil
}

// SaveWebhook creates (no ID) or updates a webhook (POST /api/Webhook) and returns it as
// Halo saved it.
func (c *Client) SaveWebhook(ctx context.Context, s WebhookSpec) (Webhook, error) {
	op := "create webhook " + strconv.Quote(s.Name)
	if s.ID != "" {
		op = "update webhook " + s.ID
	}
	return c.postWebhook(ctx, op, s.body(), s.BasicPassword)
}

// EnableWebhook switches a webhook back on (active true, disabled false), changing
// nothing else.
func (c *Client) EnableWebhook(ctx context.Context, id string) (Webhook, error) {
	return c.postWebhook(ctx, "enable webhook "+id, map[string]any{"id": id, "active": true, "disabled": false}, "")
}

// TestWebhook asks Halo to send a test delivery (POST [{id, _test: true}], as
// halopsa-node does; what Halo sends is not documented).
func (c *Client) TestWebhook(ctx context.Context, id string) error {
	_, err := c.hookPost(ctx, "test webhook "+id, "/api/Webhook", []map[string]any{{"id": id, "_test": true}}, "")
	return err
}

// DeleteWebhook deletes a webhook (DELETE /api/Webhook/{id}); ErrNotFound when it is gone.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.hookDelete(ctx, "delete webhook "+id, "/api/Webhook/"+url.PathEscape(id))
}

// Notifications lists a webhook's event subscriptions (GET /api/Notification?webhook_id=).
// Only subscriptions that name the webhook are returned, whatever Halo answers: a tenant
// that ignored the filter would otherwise list every notification it has.
func (c *Client) Notifications(ctx context.Context, webhookID string) ([]Notification, error) {
	op := "list notifications of webhook " + webhookID
	items, err := c.hookList(ctx, op, "Notification", url.Values{"webhook_id": {webhookID}}, notificationsEnvelope)
	if err != nil {
		return nil, err
	}
	var out []Notification
	for _, it := range items {
		n := decodeNotification(it)
		if n.ID != "" && strings.EqualFold(n.WebhookID, webhookID) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Subscribe adds event subscriptions to a webhook (POST /api/Notification: webhook_id,
// type -2, delivery_method 6, eventno, name) and returns them as saved.
func (c *Client) Subscribe(ctx context.Context, webhookID string, events []NotificationSpec) ([]Notification, error) {
	if len(events) == 0 {
		return nil, nil
	}
	items := make([]map[string]any, 0, len(events))
	for _, e := range events {
		items = append(items, map[string]any{
			"webhook_id": webhookID, "type": NotificationTypeWebhook, "delivery_method": NotificationDeliveryHook,
			"eventno": e.EventNo, "name": e.Name,
		})
	}
	op := fmt.Sprintf("subscribe webhook %s to %d events", webhookID, len(events))
	saved, err := c.hookPost(ctx, op, "/api/Notification", items, "")
	if err != nil {
		return nil, err
	}
	out := make([]Notification, 0, len(saved))
	for _, it := range saved {
		out = append(out, decodeNotification(it))
	}
	return out, nil
}

// DeleteNotification deletes one event subscription (DELETE /api/Notification/{id});
// ErrNotFound when it is gone.
func (c *Client) DeleteNotification(ctx context.Context, id string) error {
	return c.hookDelete(ctx, "delete notification "+id, "/api/Notification/"+url.PathEscape(id))
}

// WebhookEvents reads a webhook's delivery log, newest first as asked (order=timestamp,
// orderdesc=true; Halo may not honour it, so callers must not rely on the order), a page
// of up to 100 at a time, calling fn with each non-empty page. fn returning ErrStopPaging
// ends the listing without an error; any other error is returned wrapped.
func (c *Client) WebhookEvents(ctx context.Context, webhookID string, fn func(page []WebhookEvent) error) error {
	err := c.listPages(ctx, listing{
		op:   "list deliveries of webhook " + webhookID,
		path: "WebhookEvent", params: url.Values{"webhook_id": {webhookID}, "order": {"timestamp"}, "orderdesc": {"true"}},
		envelope: webhookEventsEnvelope, status: hookStatus, mode: barePaged,
	}, func(items []map[string]any) error {
		page := make([]WebhookEvent, 0, len(items))
		for _, it := range items {
			page = append(page, decodeWebhookEvent(it))
		}
		return fn(page)
	})
	if errors.Is(err, ErrStopPaging) {
		return nil
	}
	return err
}

// --- Plumbing ---------------------------------------------------------------------------

func (c *Client) postWebhook(ctx context.Context, op string, item map[string]any, secret string) (Webhook, error) {
	saved, err := c.hookPost(ctx, op, "/api/Webhook", []map[string]any{item}, secret)
	if err != nil {
		return Webhook{}, err
	}
	if len(saved) == 0 {
		return Webhook{}, &Error{Op: op, class: ErrBadResponse, Detail: "Halo answered no webhook"}
	}
	w := decodeWebhook(saved[0])
	if w.ID == "" {
		return Webhook{}, &Error{Op: op, class: ErrBadResponse, Detail: "the saved webhook has no id"}
	}
	return w, nil
}

// hookList reads a management list in one request (unpaged): a bare array, or an
// envelope under key.
func (c *Client) hookList(ctx context.Context, op, path string, params url.Values, key string) ([]map[string]any, error) {
	var items []map[string]any
	err := c.listPages(ctx, listing{op: op, path: path, params: params, envelope: key, status: hookStatus, mode: unpaged},
		func(page []map[string]any) error {
			items = append(items, page...)
			return nil
		})
	return items, err
}

// hookPost POSTs a JSON array and reads the saved items back: an array, or one object.
// secret, when set, is cut out of anything Halo says back.
func (c *Client) hookPost(ctx context.Context, op, path string, items []map[string]any, secret string) ([]map[string]any, error) {
	body, err := json.Marshal(items)
	if err != nil {
		return nil, &Error{Op: op, class: ErrPermanent, cause: err}
	}
	resp, err := c.send(ctx, op, true, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	})
	if err != nil {
		return nil, redactError(err, secret)
	}
	if err := hookStatus(op, resp); err != nil {
		return nil, redactError(err, secret)
	}
	trimmed := bytes.TrimSpace(resp.body)
	if len(trimmed) == 0 {
		return nil, nil
	}
	if trimmed[0] == '{' {
		m, err := decodeJSONObject(trimmed)
		if err != nil {
			return nil, &Error{Op: op, Status: resp.status, class: ErrBadResponse, cause: err}
		}
		return []map[string]any{m}, nil
	}
	saved, err := decodeItems(trimmed)
	if err != nil {
		return nil, &Error{Op: op, Status: resp.status, class: ErrBadResponse, cause: err}
	}
	return saved, nil
}

func (c *Client) hookDelete(ctx context.Context, op, path string) error {
	resp, err := c.send(ctx, op, true, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodDelete, c.base+path, nil)
	})
	if err != nil {
		return err
	}
	return hookStatus(op, resp)
}

// hookStatus turns a final management answer into nil (2xx) or the error it means; a 403
// is ErrForbidden and names what to grant.
func hookStatus(op string, r *response) error {
	return answerError(op, r, "", ErrForbidden, PermissionHint)
}

// redactError cuts a secret out of an error's text (Halo might echo a refused body).
func redactError(err error, secret string) error {
	var he *Error
	if secret == "" || len(secret) < 4 || !errors.As(err, &he) {
		return err
	}
	if strings.Contains(he.Detail, secret) {
		e := *he
		e.Detail = strings.ReplaceAll(e.Detail, secret, "[secret]")
		return &e
	}
	return err
}

// --- Decoding ---------------------------------------------------------------------------

func decodeWebhook(m map[string]any) Webhook {
	fields := make(map[string]any, len(m))
	for k, v := range m {
		if !strings.EqualFold(k, "basic_password") {
			fields[k] = v
		}
	}
	return Webhook{
		ID:                   asString(lookupKey(m, "id")),
		Name:                 asString(lookupKey(m, "name")),
		URL:                  asString(lookupKey(m, "url")),
		Type:                 asInt(lookupKey(m, "type")),
		Method:               asInt(lookupKey(m, "method")),
		ContentType:          asString(lookupKey(m, "content_type")),
		Active:               asBool(lookupKey(m, "active")),
		Disabled:             asBool(lookupKey(m, "disabled")),
		AuthenticationType:   asInt(lookupKey(m, "authentication_type")),
		AuthenticationHeader: asString(lookupKey(m, "authentication_header")),
		BasicUsername:        asString(lookupKey(m, "basic_username")),
		BasicPassword:        asString(lookupKey(m, "basic_password")),
		PayloadType:          asInt(lookupKey(m, "payload_type")),
		BatchMethod:          asInt(lookupKey(m, "batch_method")),
		BatchDelaySeconds:    asInt(lookupKey(m, "batch_delay_seconds")),
		BatchLimit:           asInt(lookupKey(m, "batch_limit")),
		AutoDisableAttempts:  asInt(lookupKey(m, "auto_disable_attempts")),
		Note:                 asString(lookupKey(m, "note")),
		Fields:               fields,
	}
}

func decodeNotification(m map[string]any) Notification {
	return Notification{
		ID:             asString(lookupKey(m, "id")),
		WebhookID:      asString(lookupKey(m, "webhook_id")),
		EventNo:        asInt(lookupKey(m, "eventno")),
		Name:           asString(lookupKey(m, "name")),
		Type:           asInt(lookupKey(m, "type")),
		DeliveryMethod: asInt(lookupKey(m, "delivery_method")),
	}
}

func decodeWebhookEvent(m map[string]any) WebhookEvent {
	e := WebhookEvent{
		ID:             asString(lookupKey(m, "id")),
		WebhookID:      asString(lookupKey(m, "webhook_id")),
		NotificationID: asString(lookupKey(m, "notification_id")),
		EntityID:       asString(lookupKey(m, "entity_id")),
		Status:         asInt(lookupKey(m, "status")),
		ResponseStatus: asInt(lookupKey(m, "responsestatus")),
		Error:          asString(lookupKey(m, "error")),
		DurationMillis: int64(asInt(lookupKey(m, "duration"))),
		RequestBody:    asString(lookupKey(m, "requestbody")),
	}
	if t, ok, err := change.ParseHaloTime(asString(lookupKey(m, "timestamp"))); ok && err == nil {
		e.Timestamp = t
	}
	return e
}

// asString reads a string or a number as text ("" for null and anything else).
func asString(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case json.Number:
		if id, err := change.CanonicalID(x); err == nil {
			return id
		}
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

// asInt reads a number, a numeric string or a boolean (0 for anything else).
func asInt(v any) int {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return int(n)
		}
		if f, err := x.Float64(); err == nil {
			return int(f)
		}
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return int(f)
		}
	case float64:
		return int(x)
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

// asBool reads true, "true", 1 or "1" as true.
func asBool(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		b, _ := strconv.ParseBool(strings.TrimSpace(x))
		return b
	case json.Number, float64:
		return asInt(x) != 0
	}
	return false
}
