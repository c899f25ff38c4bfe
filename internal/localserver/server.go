// Package localserver runs the whole pipeline on one machine: an HTTP server whose webhook
// route becomes an API Gateway event for the ingest handler, an embedded queue, and a pump
// that feeds the queue to the worker handler in SQS-shaped batches, exactly as the event
// source mapping does in AWS. The handlers are the ones Lambda runs.
package localserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
	"github.com/halosync/halosync/internal/worker"
)

// Store is what the server needs of the object store: the worker's side, and reading
// delivery records.
type Store interface {
	worker.Store
	Deliveries(ctx context.Context, conn, deliveryID string) ([]change.Delivery, error)
}

// Queue is what the server needs of the embedded queue.
type Queue interface {
	ingest.Sender
	Receive(ctx context.Context, max int, wait time.Duration) ([]message.Received, error)
	Delete(ctx context.Context, receiptHandles ...string) error
	ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error
}

// QueueStats reports queue depth for the status page, where the queue can tell.
type QueueStats interface {
	Stats(ctx context.Context) (visible, inFlight int, err error)
}

// Server is the local all-in-one server.
type Server struct {
	trusted   []netip.Prefix
	forwarded string
	ingest    *ingest.Handler
	handleI   func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	handleW   func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)
	store     Store
	queue     Queue
	dlq       QueueStats
	counts    *metrics.Memory
	log       *slog.Logger

	pollers   map[string]poller.Runner
	pollEvery time.Duration
}

// Counts are the server's counters; the pollers count into them too.
func (s *Server) Counts() *metrics.Memory { return s.counts }

// SetPollers has Serve run these connections' pollers, looking every interval whether a
// poll is due.
func (s *Server) SetPollers(runners map[string]poller.Runner, every time.Duration) {
	s.pollers, s.pollEvery = runners, every
}

// New wires the server: the ingest and worker handlers over q and s, counting into
// counters that /status shows. newFetcher makes the Halo API client of a connection that
// configures one (nil: none, as in tests).
func New(cfg *config.Config, s Store, q Queue, dlq QueueStats, log *slog.Logger, newFetcher func(config.Connection) (worker.Fetcher, error)) (*Server, error) {
	counts := metrics.NewMemory()
	h, err := ingest.New(cfg, q, counts, log)
	if err != nil {
		return nil, err
	}
	conns, err := worker.ConnectionsFromConfig(cfg, newFetcher)
	if err != nil {
		return nil, err
	}
	w := worker.New(s, counts, log, conns)
	trusted, err := config.ParseCIDRs(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	forwarded := cfg.Server.ForwardedHeader
	if forwarded == "" {
		forwarded = "X-Forwarded-For"
	}
	return &Server{
		trusted: trusted, forwarded: forwarded,
		ingest: h, handleI: awslambda.Ingest(h), handleW: awslambda.Worker(w, q, log),
		store: s, queue: q, dlq: dlq, counts: counts, log: log,
	}, nil
}

// Queues opens the embedded change queue and its dead-letter queue in db, with the
// configuration's visibility timeout and receive limit.
func Queues(db *sqlite.DB, c config.Queue) (changes, deadLetter *sqlite.Queue) {
	changes = db.Queue("changes", sqlite.QueueOptions{Visibility: c.Visibility(), MaxReceive: c.Receives(), DeadLetter: "changes-dlq"})
	deadLetter = db.Queue("changes-dlq", sqlite.QueueOptions{Visibility: c.Visibility()})
	return changes, deadLetter
}

// Handler is the HTTP side.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(awslambda.WebhookPathPrefix+"{connection}", s.webhook)
	mux.HandleFunc(awslambda.WebhookPathPrefix+"{connection}/{secret}", s.webhook)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("GET /connections/{connection}/{kinds}/{id}", s.object)
	mux.HandleFunc("GET /connections/{connection}/tickets/{ticket}/actions/{id}", s.action)
	mux.HandleFunc("GET /connections/{connection}/deliveries/{deliveryId}", s.deliveries)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A path no route knows gets the JSON error body every other answer has; a known
		// path asked with another method keeps the router's 405 and its Allow header.
		if _, pattern := mux.Handler(r); pattern == "" {
			probe := r.Clone(r.Context())
			probe.Method = http.MethodGet
			if _, pattern := mux.Handler(probe); pattern == "" {
				writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": "no such route"})
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// webhook turns the HTTP request into the API Gateway event Lambda would receive.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	limit := int64(s.ingest.BodyLimit(r.PathValue("connection")))
	// Read one byte past the limit so ingest can tell an oversize body and answer 413.
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": ingest.CodeUnreadable, "message": "the body could not be read"})
		return
	}
	header := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		header[strings.ToLower(k)] = strings.Join(v, ",")
	}
	route, params := awslambda.WebhookPathPrefix+"{connection}", map[string]string{"connection": r.PathValue("connection")}
	if secret := r.PathValue("secret"); secret != "" {
		route, params["secret"] = route+"/{secret}", secret
	}
	e := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "POST " + route,
		RawPath:        r.URL.Path,
		RawQueryString: r.URL.RawQuery,
		Headers:        header,
		PathParameters: params,
		Body:           string(body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: newID(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: s.sourceIP(r), UserAgent: r.UserAgent(),
			},
		},
	}
	resp, err := s.handleI(r.Context(), e)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal", "message": "internal error"})
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.WriteString(w, resp.Body)
}

// sourceIP is the delivery's source address, as API Gateway's sourceIp is: the peer's
// address, unless the peer is a configured trusted proxy, in which case the forwarded
// header is read from the right, skipping trusted proxies, to the first address that is
// not one (the client the nearest untrusted hop connected from).
func (s *Server) sourceIP(r *http.Request) string {
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		peer = r.RemoteAddr
	}
	if !s.isTrusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values(s.forwarded), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		if _, err := netip.ParseAddr(hop); err != nil {
			return peer // a garbled header: believe only the connection
		}
		if !s.isTrusted(hop) {
			return hop
		}
	}
	return peer
}

func (s *Server) isTrusted(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Server) object(w http.ResponseWriter, r *http.Request) {
	kind, err := change.ParseKind(strings.TrimSuffix(r.PathValue("kinds"), "s"))
	if err != nil || kind == change.Action {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown_kind", "message": "use tickets, clients, contacts or assets"})
		return
	}
	s.writeObject(w, r, kind, r.PathValue("id"), "")
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	s.writeObject(w, r, change.Action, r.PathValue("id"), r.PathValue("ticket"))
}

func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, kind change.Kind, id, parent string) {
	o, ok, err := s.store.Get(r.Context(), r.PathValue("connection"), kind, id, parent)
	switch {
	case err != nil:
		s.log.ErrorContext(r.Context(), "read object", "kind", kind, "id", id, "error", err.Error())
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal", "message": "the store could not be read"})
	case !ok:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": fmt.Sprintf("no %s %s", kind, id)})
	default:
		writeJSON(w, http.StatusOK, o)
	}
}

// deliveries answers a delivery's records (change.Delivery, one per object it carried) as a
// JSON array, 404 when none is kept.
func (s *Server) deliveries(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("deliveryId")
	ds, err := s.store.Deliveries(r.Context(), r.PathValue("connection"), id)
	switch {
	case err != nil:
		s.log.ErrorContext(r.Context(), "read delivery records", "delivery_id", id, "error", err.Error())
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal", "message": "the store could not be read"})
	case len(ds) == 0:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": fmt.Sprintf("no record of delivery %s (records are kept %d days)", id, int(change.DeliveryRetention.Hours()/24))})
	default:
		writeJSON(w, http.StatusOK, ds)
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"counters": s.counts.Snapshot()}
	if qs, ok := s.queue.(QueueStats); ok {
		if v, f, err := qs.Stats(r.Context()); err == nil {
			out["queue"] = map[string]int{"visible": v, "in_flight": f}
		}
	}
	if s.dlq != nil {
		if v, f, err := s.dlq.Stats(r.Context()); err == nil {
			out["dead_letter_queue"] = map[string]int{"visible": v, "in_flight": f}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// Pump feeds queued messages to the worker handler until ctx ends, as Lambda's SQS event
// source mapping does: batches of up to ten, messages the handler reports as failed stay
// on the queue for a later retry, the others are deleted.
func (s *Server) Pump(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := s.queue.Receive(ctx, 10, 2*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.ErrorContext(ctx, "receive from queue", "error", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		s.deliver(context.WithoutCancel(ctx), msgs)
	}
}

func (s *Server) deliver(ctx context.Context, msgs []message.Received) {
	e := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	for _, m := range msgs {
		e.Records = append(e.Records, events.SQSMessage{
			MessageId:     m.ID,
			ReceiptHandle: m.ReceiptHandle,
			Body:          string(m.Body),
			Attributes: map[string]string{
				"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount),
				"SentTimestamp":           strconv.FormatInt(m.SentAt.UnixMilli(), 10),
			},
			MessageAttributes: messageAttributes(m.Attributes),
			EventSource:       "aws:sqs",
		})
	}
	resp, err := s.handleW(ctx, e)
	if err != nil {
		s.log.ErrorContext(ctx, "worker failed the batch", "error", err.Error())
		return // every message is retried after its visibility timeout
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var done []string
	for _, m := range msgs {
		if !failed[m.ID] {
			done = append(done, m.ReceiptHandle)
		}
	}
	if err := s.queue.Delete(ctx, done...); err != nil {
		s.log.ErrorContext(ctx, "delete processed messages", "error", err.Error())
	}
}

// messageAttributes renders a message's attributes as the event source mapping does.
func messageAttributes(attrs map[string]string) map[string]events.SQSMessageAttribute {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]events.SQSMessageAttribute, len(attrs))
	for k, v := range attrs {
		out[k] = events.SQSMessageAttribute{StringValue: &v, DataType: "String"}
	}
	return out
}

// Serve listens on addr and runs the pump until ctx ends, then shuts down gracefully.
// ready, if set, receives the bound address once the server accepts connections.
func (s *Server) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	var wg sync.WaitGroup
	pumpCtx, stopPump := context.WithCancel(ctx)
	defer stopPump()
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.Pump(pumpCtx)
	}()
	go func() {
		defer wg.Done()
		s.Poll(pumpCtx, s.pollers, s.pollEvery)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(shutdown)
		cancel()
	}
	stopPump()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
