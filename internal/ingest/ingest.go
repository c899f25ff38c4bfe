// Package ingest is the webhook endpoint's logic: it authenticates a delivery on its raw
// bytes, decodes it into changes and enqueues them, answering fast. It makes no Halo API
// call and writes nothing but the queue.
package ingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/auth"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/queue"
)

// Sender enqueues messages; it returns only when every message is durably queued.
type Sender interface {
	Send(ctx context.Context, msgs []queue.Message) error
}

// Counter counts what ingest does.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Request is one delivery as received: the connection from the path, the method, headers
// with lower-case keys, the raw body (already base64-decoded) and the source address.
type Request struct {
	Connection string
	Method     string
	Header     map[string]string
	Body       []byte
	Base64     bool // the body is base64-encoded, as API Gateway sends binary bodies
	SourceIP   string
	RequestID  string
}

// Response is the answer to send back.
type Response struct {
	Status int
	Header map[string]string // beyond content-type, which is always JSON
	Body   []byte
}

type connection struct {
	id        string
	verifier  auth.Verifier
	bodyLimit int
}

// Handler serves deliveries for every configured connection.
type Handler struct {
	conns   map[string]connection
	queue   Sender
	count   Counter
	log     *slog.Logger
	events  halo.Events
	now     func() time.Time
	unknown string // the connection label for deliveries to no known connection
}

// New builds the handler from the configuration, once per process.
func New(cfg *config.Config, q Sender, c Counter, log *slog.Logger) (*Handler, error) {
	h := &Handler{conns: map[string]connection{}, queue: q, count: c, log: log, now: time.Now, unknown: "_unknown"}
	for _, conn := range cfg.Connections {
		v, err := auth.New(conn.Webhook.Auth)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", conn.ID, err)
		}
		h.conns[conn.ID] = connection{id: conn.ID, verifier: v, bodyLimit: conn.Webhook.BodyLimit()}
	}
	return h, nil
}

// MaxBodyLimit is the largest body limit of any connection: what a transport may read
// before handing the request over.
func (h *Handler) MaxBodyLimit() int {
	m := 0
	for _, c := range h.conns {
		m = max(m, c.bodyLimit)
	}
	return m
}

// Handle serves one delivery.
func (h *Handler) Handle(ctx context.Context, r Request) Response {
	conn, ok := h.conns[r.Connection]
	label := r.Connection
	if !ok {
		label = h.unknown
	}
	n, deliveryIDs, err := h.handle(ctx, conn, ok, r)
	if err != nil {
		e := classify(err)
		attrs := []any{"connection", label, "reason", e.Reason, "status", e.Status, "source_ip", r.SourceIP, "request_id", r.RequestID}
		if len(deliveryIDs) > 0 {
			attrs = append(attrs, "delivery_ids", deliveryIDs)
		}
		if e.Status >= 500 {
			h.log.ErrorContext(ctx, "delivery failed", append(attrs, "error", e.Error())...)
		} else {
			if e.Err != nil && e.Code != CodeUnauthorized {
				attrs = append(attrs, "detail", e.Err.Error())
			}
			h.log.WarnContext(ctx, "delivery rejected", attrs...)
		}
		h.count.Count(metrics.Metric{Name: metrics.DeliveriesRejected, Connection: label, Label: e.Reason}, 1)
		resp := Response{Status: e.Status, Body: errorBody(e)}
		if e.Status == http.StatusMethodNotAllowed {
			resp.Header = map[string]string{"allow": http.MethodPost}
		}
		return resp
	}
	h.count.Count(metrics.Metric{Name: metrics.DeliveriesAccepted, Connection: conn.id}, 1)
	h.count.Count(metrics.Metric{Name: metrics.ChangesEnqueued, Connection: conn.id}, int64(n))
	h.log.InfoContext(ctx, "delivery accepted", "connection", conn.id, "changes", n, "delivery_ids", deliveryIDs, "request_id", r.RequestID)
	body, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Changes int    `json:"changes"`
	}{"accepted", n})
	return Response{Status: http.StatusOK, Body: body}
}

func (h *Handler) handle(ctx context.Context, conn connection, known bool, r Request) (int, []string, error) {
	if !strings.EqualFold(r.Method, http.MethodPost) {
		return 0, nil, &Error{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed, Message: "deliveries are POSTed", Reason: CodeMethodNotAllowed}
	}
	if !known {
		return 0, nil, &Error{Status: http.StatusNotFound, Code: CodeUnknownConnection, Message: "no such connection", Reason: CodeUnknownConnection}
	}
	if r.Base64 {
		decoded, err := base64.StdEncoding.DecodeString(string(r.Body))
		if err != nil {
			return 0, nil, &Error{Status: http.StatusBadRequest, Code: CodeUnreadable, Message: "the body is not valid base64", Reason: CodeUnreadable, Err: err}
		}
		r.Body = decoded
	}
	if len(r.Body) > conn.bodyLimit {
		return 0, nil, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge,
			Message: fmt.Sprintf("the body exceeds %d bytes", conn.bodyLimit), Reason: CodeTooLarge}
	}
	if err := conn.verifier.Verify(auth.Request{Header: r.Header, Body: r.Body}); err != nil {
		return 0, nil, err
	}
	events, err := halo.Decode(r.Body)
	if err != nil {
		return 0, nil, err
	}
	received := h.now().UTC()
	ids := make([]string, 0, len(events))
	var msgs []queue.Message
	for _, e := range events {
		if e.ID != "" {
			ids = append(ids, e.ID)
		}
		changes, err := e.Changes(conn.id, h.events, received)
		if err != nil {
			return 0, ids, err
		}
		for _, c := range changes {
			m, err := queue.Encode(queue.Envelope{Change: c, Raw: e.Raw, ReceivedAt: received})
			if err != nil {
				return 0, ids, &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: "an object in the delivery is too large to queue", Reason: CodeTooLarge, Err: err}
			}
			msgs = append(msgs, m)
		}
	}
	if err := h.queue.Send(ctx, msgs); err != nil {
		return 0, ids, fmt.Errorf("enqueue %d changes: %w", len(msgs), err)
	}
	return len(msgs), ids, nil
}
