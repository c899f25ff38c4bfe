package halosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Webhook management, kept simple but real: POST /api/Webhook creates or updates
// webhooks from a JSON array, GET lists them as a bare array, GET/DELETE /api/Webhook/{id}
// read or remove one (uuid ids); /api/Notification holds the event subscriptions
// (webhook_id, delivery_method 6, eventno) and /api/WebhookEvent the delivery log.

// zeroUUID is what clients send as "no id yet".
const zeroUUID = "00000000-0000-0000-0000-000000000000"

// readArray decodes a POSTed JSON array of objects, keeping numbers as written.
func readArray(r *http.Request) ([]map[string]any, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var items []map[string]any
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("the body must be a JSON array of objects: %v", err)
	}
	return items, nil
}

// serveWebhooks answers /api/Webhook and /api/Webhook/{id}.
func (t *Tenant) serveWebhooks(w http.ResponseWriter, r *http.Request, id string) {
	p := params(r)
	switch {
	case id == "" && r.Method == http.MethodGet:
		t.mu.Lock()
		out := []map[string]any{}
		for _, h := range t.webhooks {
			if v, ok := p["type"]; ok && v != "" && !sameID(h["type"], v) {
				continue
			}
			out = append(out, copyMap(h))
		}
		t.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	case id == "" && r.Method == http.MethodPost:
		items, err := readArray(r)
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		out, err := t.saveWebhooks(items)
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, out)
	case id != "" && r.Method == http.MethodGet:
		t.mu.Lock()
		h, _ := t.webhookByID(id)
		var out map[string]any
		if h != nil {
			out = copyMap(h)
			if flag(p, "includedetails") {
				events := []map[string]any{}
				for _, n := range t.notifications {
					if strings.EqualFold(fmt.Sprint(n["webhook_id"]), fmt.Sprint(h["id"])) {
						events = append(events, copyMap(n))
					}
				}
				out["events"] = events
			}
		}
		t.mu.Unlock()
		if out == nil {
			notFound(w, "webhook not found")
			return
		}
		writeJSON(w, http.StatusOK, out)
	case id != "" && r.Method == http.MethodDelete:
		if !t.DeleteWebhook(id) {
			notFound(w, "webhook not found")
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		methodNotAllowed(w, "GET, POST, DELETE")
	}
}

// webhookByID finds a webhook (ids compare without regard to case); t.mu is held.
func (t *Tenant) webhookByID(id string) (map[string]any, int) {
	for i, h := range t.webhooks {
		if strings.EqualFold(fmt.Sprint(h["id"]), id) {
			return h, i
		}
	}
	return nil, -1
}

// saveWebhooks creates or updates webhooks; the answer is the saved array.
func (t *Tenant) saveWebhooks(items []map[string]any) ([]map[string]any, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Check every item first: a refused array changes nothing.
	for i, item := range items {
		id, _ := item["id"].(string)
		if id != "" && id != zeroUUID {
			if h, _ := t.webhookByID(id); h == nil {
				return nil, fmt.Errorf("[%d]: no webhook with id %s", i, id)
			}
		} else if name, _ := item["name"].(string); strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("[%d]: a new webhook needs a name", i)
		}
	}
	out := make([]map[string]any, 0, len(items))
	for _, item := range items {
		id, _ := item["id"].(string)
		h, _ := t.webhookByID(id)
		if h == nil {
			h = map[string]any{
				"id": t.newUUID("webhook"), "type": int64(0), "method": int64(0),
				"content_type": "application/json", "active": true,
				"authentication_type": int64(0), "payload_type": int64(0),
				"batch_method": int64(0), "log_retention_policy_days": int64(30),
				"auto_disable_attempts": int64(0),
			}
			t.webhooks = append(t.webhooks, h)
		}
		for k, v := range item {
			if k == "id" || strings.HasPrefix(k, "_") { // _test and other actions are not stored
				continue
			}
			h[k] = copyValue(v)
		}
		out = append(out, copyMap(h))
	}
	return out, nil
}

// AddWebhook creates a webhook as POST /api/Webhook would and returns its id.
func (t *Tenant) AddWebhook(fields map[string]any) string {
	f := copyMap(fields)
	delete(f, "id")
	if name, _ := f["name"].(string); strings.TrimSpace(name) == "" {
		f["name"] = "halotest"
	}
	out, err := t.saveWebhooks([]map[string]any{f})
	if err != nil {
		panic("halosim: " + err.Error()) // cannot happen: the item has a name and no id
	}
	return out[0]["id"].(string)
}

// Webhook returns a copy of one webhook.
func (t *Tenant) Webhook(id string) (map[string]any, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h, _ := t.webhookByID(id)
	return copyMap(h), h != nil
}

// Webhooks returns copies of every webhook, in creation order.
func (t *Tenant) Webhooks() []map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]map[string]any, len(t.webhooks))
	for i, h := range t.webhooks {
		out[i] = copyMap(h)
	}
	return out
}

// DeleteWebhook removes a webhook and its notifications; it reports whether it existed.
func (t *Tenant) DeleteWebhook(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, i := t.webhookByID(id)
	if i < 0 {
		return false
	}
	t.webhooks = append(t.webhooks[:i], t.webhooks[i+1:]...)
	keep := t.notifications[:0]
	for _, n := range t.notifications {
		if !strings.EqualFold(fmt.Sprint(n["webhook_id"]), id) {
			keep = append(keep, n)
		}
	}
	t.notifications = keep
	return true
}

// serveNotifications answers /api/Notification and /api/Notification/{id}.
func (t *Tenant) serveNotifications(w http.ResponseWriter, r *http.Request, id string) {
	p := params(r)
	switch {
	case id == "" && r.Method == http.MethodGet:
		t.mu.Lock()
		out := []map[string]any{}
		for _, n := range t.notifications {
			if v := p["webhook_id"]; v != "" && !strings.EqualFold(fmt.Sprint(n["webhook_id"]), v) {
				continue
			}
			out = append(out, copyMap(n))
		}
		t.mu.Unlock()
		t.writeManagementList(w, "notifications", out, len(out))
	case id == "" && r.Method == http.MethodPost:
		items, err := readArray(r)
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		out, err := t.saveNotifications(items)
		if err != nil {
			badRequest(w, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, out)
	case id != "" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		n, _ := strconv.ParseInt(id, 10, 64)
		t.mu.Lock()
		var found map[string]any
		for i, x := range t.notifications {
			if sameID(x["id"], strconv.FormatInt(n, 10)) {
				found = copyMap(x)
				if r.Method == http.MethodDelete {
					t.notifications = append(t.notifications[:i], t.notifications[i+1:]...)
				}
				break
			}
		}
		t.mu.Unlock()
		switch {
		case found == nil:
			notFound(w, "notification not found")
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusOK)
		default:
			writeJSON(w, http.StatusOK, found)
		}
	default:
		methodNotAllowed(w, "GET, POST, DELETE")
	}
}

// saveNotifications creates or updates event subscriptions. Each names an existing
// webhook_id; new ones default to type -2 and delivery_method 6 (webhook).
func (t *Tenant) saveNotifications(items []map[string]any) ([]map[string]any, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	existing := func(item map[string]any) map[string]any {
		id, ok := toInt64(item["id"])
		if !ok || id <= 0 {
			return nil
		}
		for _, n := range t.notifications {
			if sameID(n["id"], strconv.FormatInt(id, 10)) {
				return n
			}
		}
		return nil
	}
	for i, item := range items {
		if id, ok := toInt64(item["id"]); ok && id > 0 && existing(item) == nil {
			return nil, fmt.Errorf("[%d]: no notification with id %d", i, id)
		}
		if wid, ok := item["webhook_id"]; ok || existing(item) == nil {
			s, _ := wid.(string)
			if h, _ := t.webhookByID(s); h == nil {
				return nil, fmt.Errorf("[%d]: webhook_id %v names no webhook", i, wid)
			}
		}
		if _, ok := item["eventno"]; !ok && existing(item) == nil {
			return nil, fmt.Errorf("[%d]: a new notification needs an eventno", i)
		}
	}
	out := make([]map[string]any, 0, len(items))
	for _, item := range items {
		n := existing(item)
		if n == nil {
			n = map[string]any{"id": t.nextNotification, "type": int64(-2), "delivery_method": int64(6)}
			t.nextNotification++
			t.notifications = append(t.notifications, n)
		}
		for k, v := range item {
			if k != "id" {
				n[k] = copyValue(v)
			}
		}
		out = append(out, copyMap(n))
	}
	return out, nil
}

// Subscribe adds a notification subscribing a webhook to an event number (see
// EventNumber) and returns its id.
func (t *Tenant) Subscribe(webhookID string, eventNo int) (int64, error) {
	out, err := t.saveNotifications([]map[string]any{{
		"webhook_id": webhookID, "eventno": int64(eventNo), "name": "halotest " + strconv.Itoa(eventNo),
	}})
	if err != nil {
		return 0, err
	}
	id, _ := toInt64(out[0]["id"])
	return id, nil
}

// Notifications returns copies of the notifications of a webhook ("" for all).
func (t *Tenant) Notifications(webhookID string) []map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []map[string]any
	for _, n := range t.notifications {
		if webhookID == "" || strings.EqualFold(fmt.Sprint(n["webhook_id"]), webhookID) {
			out = append(out, copyMap(n))
		}
	}
	return out
}

// subscription returns the id of the webhook's notification for an event number; ok is
// false when the webhook has notifications and none is for it. A webhook without any
// notification receives everything (and notification id 0).
func (t *Tenant) subscription(webhookID string, eventNo int) (id int64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	subscribed := false
	for _, n := range t.notifications {
		if !strings.EqualFold(fmt.Sprint(n["webhook_id"]), webhookID) {
			continue
		}
		subscribed = true
		if no, _ := toInt64(n["eventno"]); no == int64(eventNo) {
			id, _ := toInt64(n["id"])
			return id, true
		}
	}
	return 0, !subscribed
}

// serveWebhookEvents answers GET /api/WebhookEvent (the delivery log, oldest first unless
// orderdesc=true; webhook_id filters; pageinate/page_size/page_no page it, capped at
// PageCap) and GET /api/WebhookEvent/{id}.
func (t *Tenant) serveWebhookEvents(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	p := params(r)
	t.mu.Lock()
	var rows []map[string]any
	for _, d := range t.deliveries {
		if id != "" && !strings.EqualFold(fmt.Sprint(d["id"]), id) {
			continue
		}
		if v := p["webhook_id"]; v != "" && !strings.EqualFold(fmt.Sprint(d["webhook_id"]), v) {
			continue
		}
		rows = append(rows, copyMap(d))
	}
	t.mu.Unlock()
	if id != "" {
		if len(rows) == 0 {
			notFound(w, "webhook event not found")
			return
		}
		writeJSON(w, http.StatusOK, rows[0])
		return
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	if flag(p, "orderdesc") {
		for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
			rows[i], rows[j] = rows[j], rows[i]
		}
	}
	total := len(rows)
	if flag(p, "pageinate") {
		size := atoiDefault(p["page_size"], t.opts.PageCap)
		if size <= 0 || size > t.opts.PageCap {
			size = t.opts.PageCap
		}
		no := max(atoiDefault(p["page_no"], 1), 1)
		start := min((no-1)*size, total)
		rows = rows[start:min(start+size, total)]
	}
	t.writeManagementList(w, "webhookevents", rows, total)
}

// writeManagementList answers a bare array, or an envelope with EnvelopeManagementLists.
func (t *Tenant) writeManagementList(w http.ResponseWriter, key string, rows []map[string]any, total int) {
	if t.opts.EnvelopeManagementLists {
		writeJSON(w, http.StatusOK, map[string]any{"record_count": total, key: rows})
		return
	}
	writeJSON(w, http.StatusOK, rows)
}

// Delivery log statuses, as the fake writes them in WebhookEvent.status (Halo's own codes
// are not documented).
const (
	DeliverySucceeded = 1
	DeliveryFailed    = 2
)

// logDelivery appends one delivery to the WebhookEvent log.
func (t *Tenant) logDelivery(d deliveryLog) {
	t.mu.Lock()
	defer t.mu.Unlock()
	status := DeliverySucceeded
	if d.err != "" || d.code < 200 || d.code > 299 {
		status = DeliveryFailed
	}
	t.deliveries = appendCapped(t.deliveries, map[string]any{
		"id":                                 t.newUUID("webhookevent"),
		"webhook_id":                         d.webhookID,
		"notification_id":                    d.notificationID,
		"entity_id":                          d.entityID,
		"timestamp":                          haloTime(d.at),
		"status":                             status,
		"responsestatus":                     d.code,
		"error":                              d.err,
		"duration":                           d.duration.Milliseconds(),
		"requestbody":                        string(d.body),
		"requestheaders":                     headerText(d.reqHeader),
		"responsebody":                       d.respBody,
		"responseheaders":                    headerText(d.respHeader),
		"log_retention_policy_deletion_date": haloTime(d.at.Add(30 * 24 * time.Hour)),
	})
}

// deliveryLog is what the sender tells the log about one delivery.
type deliveryLog struct {
	webhookID      string
	notificationID int64
	entityID       int64
	at             time.Time
	duration       time.Duration
	code           int
	err            string
	body           []byte
	reqHeader      http.Header
	respBody       string
	respHeader     http.Header
}

// headerText writes headers one per line, sorted (the sender masks credentials first).
func headerText(h http.Header) string {
	if len(h) == 0 {
		return ""
	}
	var b strings.Builder
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	return b.String()
}

// WebhookEvents returns copies of the delivery log (the last 10000 deliveries), oldest first.
func (t *Tenant) WebhookEvents() []map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]map[string]any, len(t.deliveries))
	for i, d := range t.deliveries {
		out[i] = copyMap(d)
	}
	return out
}
