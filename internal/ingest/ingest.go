// Package ingest is the webhook endpoint's logic: it checks where a delivery comes from,
// authenticates it on its raw bytes, decodes it into changes, drops the unwanted ones and
// enqueues the rest, answering fast. It makes no Halo API call and writes nothing but the
// queue.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/auth"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// PathPrefix is the webhook route's prefix; the connection id follows it, then, for the
// path-secret scheme, the secret.
const PathPrefix = "/webhooks/halo/"

// Sender enqueues messages; it returns only when every message is durably queued.
type Sender interface {
	Send(ctx context.Context, msgs []message.Message) error
}

// Counter counts what ingest does.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Request is one delivery as received: the connection and the optional secret segment
// from the path, the method, headers with lower-case keys, the raw body and the source
// address.
type Request struct {
	Connection string
	PathSecret string // the path segment after the connection id; never logged
	Method     string
	Header     map[string]string
	Body       []byte
	Base64     bool // the body is base64-encoded, as API Gateway sends binary bodies
	// ContentLength is the body's declared length, for Admit (-1: not declared, as with a
	// chunked body); Handle measures the body itself.
	ContentLength int64
	SourceIP      string
	RequestID     string
	// Endpoint is the endpoint the delivery came through, change.EndpointPrimary (also
	// when empty) or change.EndpointBackup, as the transport tells it.
	Endpoint string
}

// endpoint is the request's endpoint, the primary when the transport named none.
func (r Request) endpoint() string {
	if r.Endpoint == change.EndpointBackup {
		return change.EndpointBackup
	}
	return change.EndpointPrimary
}

// Response is the answer to send back.
type Response struct {
	Status int
	Header map[string]string // beyond content-type, which is always JSON
	Body   []byte
	// Reason is why a refused delivery was refused, as counted (DeliveriesRejected's
	// label); "" when it was accepted. It names a rule, never a secret or the body.
	Reason string
	// Filtered are the records of the changes the connection's filters dropped, outcome
	// change.Filtered with the rule as reason, for a transport that lists what happened
	// to recent deliveries (the local server's dashboard).
	Filtered []change.Delivery
}

// maxAttributeValue bounds a routing header's value carried on a message.
const maxAttributeValue = 256

// Handler serves deliveries for every configured connection.
type Handler struct {
	conns   map[string]*connection.Connection
	queue   Sender
	count   Counter
	log     *slog.Logger
	now     func() time.Time
	unknown string // the connection label for deliveries to no known connection
	sources *sources
}

// unknownWindow is the log window of refusals to no known connection, which has no
// auth_throttle settings: config.DefaultAuthWindow.
const unknownWindow = time.Minute

// New builds the handler over the compiled connections, once per process.
func New(conns connection.Set, q Sender, c Counter, log *slog.Logger) *Handler {
	h := &Handler{conns: make(map[string]*connection.Connection, len(conns)), queue: q, count: c, log: log, now: time.Now, unknown: "_unknown",
		sources: newSources(maxSources)}
	for _, conn := range conns {
		h.conns[conn.ID] = conn
	}
	return h
}

// MaxBodyLimit is the largest body limit of any connection: what a transport may read
// before handing the request over.
func (h *Handler) MaxBodyLimit() int {
	m := 0
	for _, c := range h.conns {
		m = max(m, c.BodyLimit)
	}
	return m
}

// BodyLimit is the body limit of one connection, or MaxBodyLimit for an unknown one.
func (h *Handler) BodyLimit(conn string) int {
	if c, ok := h.conns[conn]; ok {
		return c.BodyLimit
	}
	return h.MaxBodyLimit()
}

// outcome is what an accepted delivery came to.
type outcome struct {
	enqueued    int
	filtered    int
	unknown     int // of enqueued: events of no known kind
	deliveryIDs []string
	dropped     []change.Delivery     // the filtered changes' records
	byKind      map[change.Kind]int64 // the enqueued changes of a known kind (ChangesByKind)
	byEvent     map[string]int64      // the events, by known name or "other" (EventsByName)
}

// otherEvents is the EventsByName label of an event whose name halosync does not know,
// so that the label's values stay few.
const otherEvents = "other"

// Handle serves one delivery.
func (h *Handler) Handle(ctx context.Context, r Request) Response {
	start := h.now()
	conn, ok := h.conns[r.Connection]
	label := r.Connection
	if !ok {
		label = h.unknown
	}
	defer func() {
		h.count.Count(metrics.Metric{Name: metrics.IngestDuration, Connection: label}, metrics.Millis(h.now().Sub(start)))
	}()
	out, err := h.handle(ctx, conn, ok, r)
	if err != nil {
		return h.refuse(ctx, conn, label, r, out.deliveryIDs, err)
	}
	h.count.Count(metrics.Metric{Name: metrics.DeliveriesAccepted, Connection: conn.ID}, 1)
	h.count.Count(metrics.Metric{Name: metrics.DeliveriesByEndpoint, Connection: conn.ID, Label: r.endpoint()}, 1)
	h.count.Count(metrics.Metric{Name: metrics.ChangesEnqueued, Connection: conn.ID}, int64(out.enqueued))
	for kind, n := range out.byKind {
		h.count.Count(metrics.Metric{Name: metrics.ChangesByKind, Connection: conn.ID, Kind: string(kind)}, n)
	}
	for name, n := range out.byEvent {
		h.count.Count(metrics.Metric{Name: metrics.EventsByName, Connection: conn.ID, Label: name}, n)
	}
	status := "accepted"
	if out.enqueued == 0 && out.filtered > 0 {
		status = "filtered"
	}
	h.log.InfoContext(ctx, "delivery "+status, "connection", conn.ID, "changes", out.enqueued, "filtered", out.filtered,
		"delivery_ids", out.deliveryIDs, "endpoint", r.endpoint(), "source_ip", r.SourceIP, "request_id", r.RequestID)
	body, _ := json.Marshal(struct {
		Status   string `json:"status"`
		Changes  int    `json:"changes"`
		Filtered int    `json:"filtered,omitempty"`
		Unknown  int    `json:"unknown,omitempty"`
	}{status, out.enqueued, out.filtered, out.unknown})
	return Response{Status: http.StatusOK, Body: body, Filtered: out.dropped}
}

// refuse counts every refusal, logs it unless its source has had its share of log lines
// this window, counts a failed authentication against the source (conn is nil for an
// unknown connection), and builds the answer.
func (h *Handler) refuse(ctx context.Context, conn *connection.Connection, label string, r Request, deliveryIDs []string, err error) Response {
	e := classify(err)
	h.count.Count(metrics.Metric{Name: metrics.DeliveriesRejected, Connection: label, Label: e.Reason}, 1)
	resp := Response{Status: e.Status(), Body: e.Body(), Reason: e.Reason}
	var wait retryAfter
	switch {
	case e.Code == apierror.MethodNotAllowed:
		resp.Header = map[string]string{"allow": http.MethodPost}
	case errors.As(err, &wait):
		resp.Header = map[string]string{"retry-after": strconv.FormatInt(int64(math.Ceil(time.Duration(wait).Seconds())), 10)}
	}
	attrs := []any{"connection", label, "reason", e.Reason, "status", e.Status(), "endpoint", r.endpoint(), "source_ip", r.SourceIP, "request_id", r.RequestID}
	if len(deliveryIDs) > 0 {
		attrs = append(attrs, "delivery_ids", deliveryIDs)
	}
	if e.Status() >= 500 && e.Reason != ReasonBacklogFull {
		// The queue's failure, not the sender's: never throttled, always logged. A full
		// backlog is the pipeline holding its ground under overload, expected: its lines
		// are limited per source like other refusals.
		h.log.ErrorContext(ctx, "delivery failed", append(attrs, "error", e.Error())...)
		return resp
	}
	window, limit := unknownWindow, 0
	if conn != nil {
		window, limit = conn.AuthWindow, conn.AuthFailures
	}
	// A timestamp out of the window was signed with a configured secret: no guess.
	fail := conn != nil && e.Code == apierror.Unauthorized && e.Reason != auth.ReasonTimestamp
	logIt, blocked, owed := h.sources.refused(sourceKey(label, r.SourceIP), label, r.SourceIP, h.now(), window, fail, limit)
	for _, o := range owed {
		h.log.WarnContext(ctx, "delivery rejections not logged", "connection", o.label, "source_ip", o.ip, "since", o.since, "count", o.count)
	}
	if logIt {
		if e.Err != nil && e.Code != apierror.Unauthorized {
			attrs = append(attrs, "detail", e.Err.Error())
		}
		h.log.WarnContext(ctx, "delivery rejected", attrs...)
	}
	if blocked {
		h.log.WarnContext(ctx, "source throttled", "connection", label, "source_ip", r.SourceIP, "failures", limit, "for", window.String())
	}
	if e.RetryAfter > 0 {
		resp.Header = map[string]string{"retry-after": strconv.Itoa(int(e.RetryAfter.Round(time.Second) / time.Second))}
	}
	return resp
}

// retryAfter is how long a throttled source must wait, carried to the Retry-After header.
type retryAfter time.Duration

func (w retryAfter) Error() string { return "throttled for " + time.Duration(w).String() }

// Admit runs, before the body is read, the checks that need none, in the order Handle runs
// them: method, connection, source, the declared Content-Length against the body limit,
// media type and encoding, and the credentials when every scheme of the connection reads
// only headers or the path (basic, header, path-secret). A transport that reads the body
// itself calls it first, so an unauthenticated sender cannot make it hold a body
// (docs/ARCHITECTURE.md, "Ingest"). A refusal is counted and logged as Handle's are, and
// the body need not be read; an admitted request still goes through Handle in full.
func (h *Handler) Admit(ctx context.Context, r Request) (Response, bool) {
	conn, ok := h.conns[r.Connection]
	label := r.Connection
	if !ok {
		label = h.unknown
	}
	if _, err := h.admit(conn, ok, r, true); err != nil {
		return h.refuse(ctx, conn, label, r, nil, err), false
	}
	return Response{}, true
}

// admit runs the checks before decoding. Without the body (beforeBody), the size is the
// declared one and the credentials are checked only when no scheme needs the body. It
// returns the raw body, base64-decoded.
func (h *Handler) admit(conn *connection.Connection, known bool, r Request, beforeBody bool) ([]byte, error) {
	if !strings.EqualFold(r.Method, http.MethodPost) {
		return nil, refusal(apierror.MethodNotAllowed, "deliveries are POSTed", CodeMethodNotAllowed, nil)
	}
	if !known {
		return nil, refusal(apierror.UnknownConnection, "no such connection", CodeUnknownConnection, nil)
	}
	if !allowed(conn.AllowIPs, r.SourceIP) {
		return nil, refusal(apierror.Forbidden, "deliveries are not accepted from this address", ReasonIPNotAllowed, nil)
	}
	if wait, ok := h.sources.blocked(sourceKey(conn.ID, r.SourceIP), h.now()); ok {
		// Refused whatever it carries, right credentials too: a guesser learns nothing
		// until the window has passed.
		return nil, refusal(apierror.TooManyFailures, "too many failed authentications from this address; retry later", ReasonAuthThrottled, retryAfter(wait))
	}
	raw := r.Body
	size := int64(len(raw))
	if beforeBody {
		size = r.ContentLength
	} else if r.Base64 {
		decoded, err := base64.StdEncoding.DecodeString(string(raw))
		if err != nil {
			return nil, refusal(apierror.UnreadableBody, "the body is not valid base64", ReasonBadBase64, err)
		}
		raw, size = decoded, int64(len(decoded))
	}
	if size > int64(conn.BodyLimit) {
		return nil, refusal(apierror.BodyTooLarge, fmt.Sprintf("the body exceeds %d bytes", conn.BodyLimit), CodeTooLarge, nil)
	}
	if err := mediaType(r.Header); err != nil {
		return nil, err
	}
	if _, err := contentEncoding(r.Header); err != nil {
		return nil, err
	}
	if beforeBody && conn.Verifier.NeedsBody() {
		return nil, nil
	}
	if err := conn.Verifier.Verify(auth.Request{Header: r.Header, Body: raw, PathSecret: r.PathSecret, Now: h.now()}); err != nil {
		return nil, err
	}
	return raw, nil
}

func (h *Handler) handle(ctx context.Context, conn *connection.Connection, known bool, r Request) (outcome, error) {
	out := outcome{byKind: map[change.Kind]int64{}, byEvent: map[string]int64{}}
	raw, err := h.admit(conn, known, r, false)
	if err != nil {
		return out, err
	}
	gzipped, _ := contentEncoding(r.Header) // admit checked it
	body := raw
	if gzipped {
		if body, err = gunzip(raw, conn.BodyLimit); err != nil {
			return out, err
		}
	}
	events, err := halo.Decode(body)
	if err != nil {
		return out, err
	}
	received := h.now().UTC()
	attrs := routingAttributes(conn.Routing, r.Header)
	endpoint := r.endpoint()
	var msgs []message.Message
	for _, e := range events {
		if e.ID != "" {
			out.deliveryIDs = append(out.deliveryIDs, e.ID)
		}
		name, known := conn.Events.Known(e.Name)
		if !known {
			name = otherEvents
		}
		out.byEvent[name]++
		changes, err := e.Changes(conn.ID, conn.Events, received)
		if errors.Is(err, halo.ErrUnknownEvent) {
			// Kept, never dropped: the worker resolves it with names configured since, or it
			// waits in the dead-letter queue, where the alarm reports it.
			m, err := message.Encode(message.Envelope{Unknown: true, Raw: e.Raw, ReceivedAt: received,
				Change: change.Change{Connection: conn.ID, Event: e.Name, DeliveryID: e.ID, Source: change.SourceWebhook, Endpoint: endpoint, OccurredAt: received}})
			if err != nil {
				return out, refusal(apierror.BodyTooLarge, "an event in the delivery is too large to queue", CodeTooLarge, err)
			}
			out.unknown++
			h.count.Count(metrics.Metric{Name: metrics.EventsUnknown, Connection: conn.ID}, 1)
			h.log.WarnContext(ctx, "unknown event kept", "connection", conn.ID, "event", e.Name, "delivery_id", e.ID)
			msgs = append(msgs, m)
			continue
		}
		if err != nil {
			return out, err
		}
		for i := range changes {
			changes[i].Endpoint = endpoint
		}
		for i, d := range conn.Filter.MatchAll(changes) {
			c := changes[i]
			if !d.Keep {
				out.filtered++
				h.count.Count(metrics.Metric{Name: metrics.ChangesFiltered, Connection: conn.ID, Kind: string(c.Kind), Label: d.Rule}, 1)
				h.log.DebugContext(ctx, "change filtered", "connection", conn.ID, "kind", c.Kind, "id", c.ID, "rule", d.Rule, "delivery_id", c.DeliveryID)
				rec := change.NewDelivery(c, change.Result{Outcome: change.Filtered}, received, received)
				rec.Reason = d.Rule
				rec.Summary = rec.Summarize()
				out.dropped = append(out.dropped, rec)
				continue
			}
			c, _ = connection.CheckVersion(ctx, conn.Versions, c, received, h.count, h.log)
			c.Attributes = attrs
			env := message.Envelope{Change: conn.Fields.Apply(c), Raw: e.Raw, ReceivedAt: received}
			if conn.Fields.Applies(c.Kind) {
				// The raw event holds the fields the policy keeps out of the copy.
				env.Raw, env.RawOmitted = nil, true
			} else if c.HasSnapshot() {
				// The fields are the raw event's object under the kind's key (halo's
				// Changes): they travel once, in the raw event.
				spec, _ := change.Lookup(c.Kind)
				env.FieldsInRaw = spec.PayloadKey
			}
			m, err := message.Encode(env)
			if err != nil {
				return out, refusal(apierror.BodyTooLarge, "an object in the delivery is too large to queue", CodeTooLarge, err)
			}
			msgs = append(msgs, m)
			out.byKind[c.Kind]++
		}
	}
	if len(msgs) > 0 {
		if err := h.queue.Send(ctx, msgs); err != nil {
			if errors.Is(err, message.ErrBacklogFull) {
				e := refusal(apierror.Unavailable, "too many changes are waiting to be applied; send again later", ReasonBacklogFull, err)
				e.RetryAfter = BacklogRetryAfter
				return out, e
			}
			return out, fmt.Errorf("enqueue %d changes: %w", len(msgs), err)
		}
	}
	out.enqueued = len(msgs)
	return out, nil
}

// allowed reports whether ip may deliver: any address when no list is configured.
func allowed(list []netip.Prefix, ip string) bool {
	if len(list) == 0 {
		return true
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// mediaType accepts JSON content types only: application/json, application/*+json and
// text/json, with any charset parameter naming UTF-8.
func mediaType(h map[string]string) error {
	ct, ok := h["content-type"]
	if !ok || strings.TrimSpace(ct) == "" {
		return refusal(apierror.UnsupportedMediaType, "send Content-Type: application/json", ReasonNoContentType, nil)
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || mt == "text/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") || strings.EqualFold(cs, "utf8") {
			return nil
		}
	}
	return refusal(apierror.UnsupportedMediaType, "only JSON in UTF-8 is accepted", ReasonNotJSONType, nil)
}

// contentEncoding accepts identity and gzip.
func contentEncoding(h map[string]string) (gzipped bool, err error) {
	switch strings.ToLower(strings.TrimSpace(h["content-encoding"])) {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	default:
		return false, refusal(apierror.UnsupportedMediaType, "only gzip content encoding is accepted", ReasonEncoding, nil)
	}
}

// gunzip decompresses at most limit bytes; more is a refusal, so a small bomb cannot
// expand into memory.
func gunzip(raw []byte, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, refusal(apierror.UnreadableBody, "the body is not valid gzip", ReasonBadGzip, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, refusal(apierror.UnreadableBody, "the body is not valid gzip", ReasonBadGzip, err)
	}
	if len(out) > limit {
		return nil, refusal(apierror.BodyTooLarge, fmt.Sprintf("the body exceeds %d bytes once decompressed", limit), ReasonDecompressedTooLarge, nil)
	}
	return out, nil
}

// routingAttributes picks the configured headers' values for the queued changes.
func routingAttributes(names []string, h map[string]string) map[string]string {
	var attrs map[string]string
	for _, n := range names {
		v := strings.TrimSpace(h[n])
		if v == "" {
			continue
		}
		if len(v) > maxAttributeValue {
			v = strings.ToValidUTF8(v[:maxAttributeValue], "")
		}
		if attrs == nil {
			attrs = make(map[string]string, len(names))
		}
		attrs[n] = v
	}
	return attrs
}
