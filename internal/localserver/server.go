// Package localserver runs the whole pipeline on one machine (`halosync serve`): an HTTP
// server whose webhook route hands each request to the ingest handler, an embedded queue,
// a pump that feeds queued batches to the worker's batch policy as the SQS event source
// mapping does in AWS, and the poller's run loop on a ticker. The handlers are the ones
// the Lambda functions run (internal/pipeline builds both).
package localserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/change"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/pipeline"
	"github.com/halosync/halosync/internal/readapi"
	"github.com/halosync/halosync/internal/sqlite"
	"github.com/halosync/halosync/internal/worker"
)

// Store is what the server needs of the object store: the pipeline's side, and what the
// read routes read.
type Store interface {
	pipeline.Store
	readapi.Store
}

// Queue is what the server needs of the embedded queue.
type Queue interface {
	ingest.Sender
	worker.Retrier
	Receive(ctx context.Context, max int, wait time.Duration) ([]message.Received, error)
	Delete(ctx context.Context, receiptHandles ...string) error
}

// CommitDeferrer is a store whose writes (its own and its database's queues') can be
// answered before their commit and committed later with others (sqlite.Store's
// DeferCommits): the writes made with the returned context are answered once run, and
// wait returns once they are all on disk, or the first commit that failed.
type CommitDeferrer interface {
	DeferCommits(ctx context.Context) (deferred context.Context, wait func() error)
}

// QueueStats reports queue depth for the status page, where the queue can tell.
type QueueStats interface {
	Stats(ctx context.Context) (visible, inFlight int, err error)
}

// Options are the adapters and settings the server runs with.
type Options struct {
	Store      Store
	Queue      Queue
	DeadLetter QueueStats // nil: not shown
	Log        *slog.Logger
	// PollEvery is how often the poller's run loop looks whether a connection's poll is
	// due (its plan sets the interval); 0: no polling.
	PollEvery time.Duration
	// HaloClient and Now are passed to the pipeline (pipeline.Ports).
	HaloClient func(c *connection.Connection) (*haloapi.Client, error)
	Now        func() time.Time
	// Probe is what GET /readyz checks takes a write; nil: /readyz answers 503.
	Probe Writable
	// HeaderTimeout is how long a connection may take to send a request's headers, and so
	// how long an idle one holds a place under server.max_connections; 0: 10 s.
	HeaderTimeout time.Duration
	// Status keeps the counters and the newest delivery records across restarts; nil:
	// they live in memory only.
	Status StatusStore
	// Demo are the connections the simulated tenant of `halosync serve --demo` drives:
	// /status and the dashboard mark their traffic as the demo's.
	Demo []string
}

// Server is the local all-in-one server.
type Server struct {
	trusted   []netip.Prefix
	forwarded string
	pipeline  *pipeline.Pipeline
	store     Store
	queue     Queue
	dlq       QueueStats
	counts    *metrics.Memory
	count     counting // counts, and the trends: what the pipeline counts into
	log       *slog.Logger
	pollEvery time.Duration

	guard         *readGuard
	read          *readapi.API // the read routes, the read function's too
	recent        *recent      // the newest delivery records, for /deliveries/recent
	readiness     readiness
	bodies        *byteBudget
	connections   map[string]bool // the configured connection ids
	maxConns      int
	headerTimeout time.Duration

	statusStore StatusStore
	saveMu      sync.Mutex               // one save at a time
	saved       map[metrics.Metric]int64 // the counters' values as last saved
	demo        []string                 // the demo's connections, sorted

	now           func() time.Time
	activity      *activity   // per-minute trends and last deliveries
	backfills     *backfills  // where the poller's long reads stand
	feed          *feed       // the open event streams
	outbox        EventOutbox // the store's change events; nil when it keeps none
	changed       *signal     // wakes the change event streams
	deferCommits  func(context.Context) (context.Context, func() error)
	changeStreams changeStreams
	objects       objectCounts
	prunedTo      time.Time // the trends' window start at the last save: idle saves write nothing
}

// Counts are the server's counters: ingest, the worker and the poller count into them.
func (s *Server) Counts() *metrics.Memory { return s.counts }

// Pipeline is the server's handlers.
func (s *Server) Pipeline() *pipeline.Pipeline { return s.pipeline }

// New builds the pipeline over the store and queue it is given, counting into counters
// that /status shows; the whole Halo request budget of each connection is this process's.
func New(cfg *config.Config, o Options) (*Server, error) {
	counts := metrics.NewMemory()
	now := o.Now
	if now == nil {
		now = time.Now
	}
	act, fills, fd := newActivity(now), newBackfills(), newFeed(MaxEventStreams)
	count := counting{counts, act}
	rec := newRecent(RecentDeliveries, fd.publish)
	changed := newSignal()
	ports := pipeline.Ports{Store: recordingStore{Store: notifyingStore{Store: o.Store, changed: changed}, recent: rec}, Queue: o.Queue, Count: count, Log: o.Log,
		HaloClient: o.HaloClient, Now: o.Now, Progress: fills}
	if dl, ok := o.DeadLetter.(worker.DeadLetterQueue); ok {
		ports.DeadLetters = dl // the worker moves permanent failures here with their reason
	}
	p, err := pipeline.Build(cfg, ports)
	if err != nil {
		return nil, err
	}
	trusted, err := config.ParseCIDRs(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("server.trusted_proxies: %w", err)
	}
	forwarded := cfg.Server.ForwardedHeader
	if forwarded == "" {
		forwarded = "X-Forwarded-For"
	}
	if len(cfg.Server.ReadTokens) == 0 {
		o.Log.Warn("no server.read_tokens: every read of the copy and of /status is refused")
	}
	known := map[string]bool{}
	for _, c := range cfg.Connections {
		known[c.ID] = true
	}
	headerTimeout := o.HeaderTimeout
	if headerTimeout <= 0 {
		headerTimeout = 10 * time.Second
	}
	demo := slices.Sorted(slices.Values(o.Demo))
	s := &Server{
		trusted: trusted, forwarded: forwarded, pipeline: p,
		store: o.Store, queue: o.Queue, dlq: o.DeadLetter, counts: counts, log: o.Log, pollEvery: o.PollEvery,
		guard:       newReadGuard(cfg.Server.ReadTokens, cfg.Server.Hosts, counts, o.Log),
		read:        readapi.New(o.Store, readapi.Options{Log: o.Log, Now: now}),
		recent:      rec,
		readiness:   readiness{probe: o.Probe},
		bodies:      &byteBudget{capacity: cfg.Server.BodyBytesInFlight()},
		connections: known, maxConns: cfg.Server.Connections(), headerTimeout: headerTimeout,
		statusStore: o.Status, saved: map[metrics.Metric]int64{}, demo: demo,
		now: now, activity: act, backfills: fills, feed: fd, count: count, changed: changed,
	}
	if ob, ok := o.Store.(EventOutbox); ok {
		s.outbox = ob
	}
	s.deferCommits = func(ctx context.Context) (context.Context, func() error) { return ctx, func() error { return nil } }
	if d, ok := o.Store.(CommitDeferrer); ok {
		s.deferCommits = d.DeferCommits
	}
	if err := s.loadStatus(context.Background()); err != nil {
		return nil, fmt.Errorf("load the saved status: %w", err)
	}
	return s, nil
}

// Queues opens the embedded change queue and its dead-letter queue in db, with the
// configuration's visibility timeout, receive limit and backlog limit.
func Queues(db *sqlite.DB, c config.Queue) (changes, deadLetter *sqlite.Queue) {
	changes = db.Queue("changes", sqlite.QueueOptions{Visibility: c.Visibility(), MaxReceive: c.Receives(), DeadLetter: "changes-dlq",
		MaxBacklog: c.Backlog()})
	deadLetter = db.Queue("changes-dlq", sqlite.QueueOptions{Visibility: c.Visibility()})
	return changes, deadLetter
}

// Handler is the HTTP side; its reading routes answer under the loopback names and
// server.hosts (Serve adds the host it listens on).
func (s *Server) Handler() http.Handler { return s.handler(s.guard) }

// handler routes: the webhook (its body bytes admitted first), /healthz and /readyz to
// anyone, the copy and /status only to a request the guard admits.
func (s *Server) handler(guard *readGuard) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(ingest.PathPrefix+"{connection}", s.admitBody(s.webhook))
	mux.HandleFunc(ingest.PathPrefix+"{connection}/{secret}", s.admitBody(s.webhook))
	// The backup endpoint: the same deliveries, counted and recorded as the backup's.
	mux.HandleFunc("/backup"+ingest.PathPrefix+"{connection}", s.admitBody(s.webhook))
	mux.HandleFunc("/backup"+ingest.PathPrefix+"{connection}/{secret}", s.admitBody(s.webhook))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.HandleFunc("GET /status", guard.wrap(s.status))
	mux.HandleFunc("GET /events", guard.wrap(s.events))
	mux.HandleFunc("GET /trends", guard.wrap(s.trends))
	mux.HandleFunc("GET /deliveries/recent", guard.wrap(s.recentDeliveries))
	mux.HandleFunc("GET /dashboard", guard.wrapPage(s.dashboard))
	mux.HandleFunc("GET /dashboard/{asset}", guard.wrap(s.dashboardAsset))
	mux.HandleFunc(readapi.ObjectRoute, guard.wrap(s.read.Object))
	mux.HandleFunc(readapi.NoteRoute, guard.wrap(s.read.Note))
	mux.HandleFunc(readapi.DeliveryRoute, guard.wrap(s.read.Delivery))
	mux.HandleFunc(readapi.ChangedRoute, guard.wrap(s.read.Changed))
	mux.HandleFunc("GET /connections/{connection}/events", guard.wrap(s.changeEvents))
	return readapi.JSONErrors(mux)
}

// webhook hands the request to the ingest handler as it came: the raw body (up to one
// byte past the connection's limit, so ingest can tell an oversize body), the headers,
// and the source address. The checks that need no body run first (ingest.Handler.Admit):
// a refused request's body is never read, so a sender without credentials cannot make
// the server wait for or hold one.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("connection")
	header := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		header[strings.ToLower(k)] = strings.Join(v, ",")
	}
	req := ingest.Request{
		Connection:    conn,
		PathSecret:    r.PathValue("secret"),
		Method:        r.Method,
		Header:        header,
		ContentLength: r.ContentLength,
		SourceIP:      s.sourceIP(r),
		RequestID:     newID(),
		Endpoint:      endpointOf(r),
	}
	write := func(resp ingest.Response) {
		w.Header().Set("content-type", "application/json")
		for k, v := range resp.Header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.Status)
		_, _ = w.Write(resp.Body)
	}
	label := conn
	if !s.connections[conn] {
		label = unknownConnection
	}
	if resp, ok := s.pipeline.Ingest.Admit(r.Context(), req); !ok {
		s.recent.ingested(label, resp, req.RequestID, s.now())
		// Closing the connection keeps net/http from reading the unread body to reuse it,
		// which would wait on a sender that never sends it.
		w.Header().Set("connection", "close")
		write(resp)
		return
	}
	body, err := readBody(r.Body, r.ContentLength, int64(s.pipeline.Ingest.BodyLimit(conn))+1)
	if err != nil {
		apierror.Write(w, apierror.UnreadableBody, "the body could not be read")
		return
	}
	req.Body = body
	resp := s.pipeline.Ingest.Handle(r.Context(), req)
	s.recent.ingested(label, resp, req.RequestID, s.now())
	write(resp)
}

// readBody reads up to limit bytes of body into one buffer sized by the request's
// Content-Length (size; -1 when unknown), rather than growing one from 512 bytes as
// io.ReadAll does (docs/PERFORMANCE.md, "Fourth pass").
func readBody(body io.Reader, size, limit int64) ([]byte, error) {
	b := make([]byte, 0, min(max(size, 511), limit)+1)
	r := io.LimitReader(body, limit)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// endpointOf is the endpoint a delivery came through: the backup route's pattern starts
// with /backup/, the webhook route's is the primary's.
func endpointOf(r *http.Request) string {
	if strings.HasPrefix(r.Pattern, "/backup/") {
		return change.EndpointBackup
	}
	return change.EndpointPrimary
}

// unknownConnection is the connection ingest counts a delivery to no configured
// connection under; its recent records go under it too, not under the path's name.
const unknownConnection = "_unknown"

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

// PumpWorkers is how many batches the pump has the worker process at once, as Lambda
// runs several worker instances (the event source mapping's MaximumConcurrency). A batch
// spends most of its time waiting for its writes' commits (or for Halo's API, for an
// event-only change); the store's writes are committed together (internal/sqlite), so the
// batches in flight share their fsyncs (docs/PERFORMANCE.md, "The local pipeline under
// load").
const PumpWorkers = 16

// continuousConsumer is a queue that hands this process's sends straight to its
// receives while a consumer says it receives continuously (sqlite.Queue.Consume).
type continuousConsumer interface {
	Consume() (stop func())
}

// Pump feeds queued messages to the worker until ctx ends, as Lambda's SQS event source
// mapping does: batches of up to ten to the worker's batch policy, up to PumpWorkers
// batches at once; messages it reports as failed stay on the queue for a later retry, the
// others are deleted. One receive runs at a time, for a free worker, so an idle pump
// makes one long poll, not one per worker. Batches may be applied in any order, as in
// AWS: the newest-wins rule makes the order of changes irrelevant. Pump returns when ctx
// has ended and the batches in flight are done.
//
// With a store that defers commits (CommitDeferrer), a batch's writes are answered as
// soon as they have run and are committed with the other batches' and the senders'
// writes; the batch's messages are deleted only once all its writes are on disk, so an
// accepted change is never lost, only delivered again. The receive and the delete are
// answered before their commit too: a lost one delivers a message again.
func (s *Server) Pump(ctx context.Context) {
	if c, ok := s.queue.(continuousConsumer); ok {
		defer c.Consume()() // after the batches in flight are done
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	free := make(chan struct{}, PumpWorkers)
	for ctx.Err() == nil {
		select {
		case free <- struct{}{}:
		case <-ctx.Done():
			return
		}
		deferred, _ := s.deferCommits(ctx)
		msgs, err := s.queue.Receive(deferred, 10, 2*time.Second)
		if err != nil || len(msgs) == 0 {
			<-free
			if err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "receive from queue", "error", err.Error())
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-free }()
			s.deliver(context.WithoutCancel(ctx), msgs)
		}()
	}
}

func (s *Server) deliver(ctx context.Context, msgs []message.Received) {
	batch, committed := s.deferCommits(ctx)
	failed := map[string]bool{}
	for _, id := range s.pipeline.Worker.HandleBatch(batch, msgs, s.queue) {
		failed[id] = true
	}
	if err := committed(); err != nil {
		// Not deleted: the messages come back after their visibility timeout.
		s.log.ErrorContext(ctx, "the batch's writes were not committed; its messages will be delivered again",
			"messages", len(msgs), "error", err.Error())
		return
	}
	s.changed.notify() // the change event streams read what is now committed
	var done []string
	for _, m := range msgs {
		if !failed[m.ID] {
			done = append(done, m.ReceiptHandle)
		}
	}
	deferred, _ := s.deferCommits(ctx)
	if err := s.queue.Delete(deferred, done...); err != nil {
		s.log.ErrorContext(ctx, "delete processed messages", "error", err.Error())
	}
}

// ServeGCPercent is the garbage collector's target `halosync serve` sets unless the GOGC
// environment variable sets one (a process-wide setting, so the command sets it, not
// Serve): a collection once the heap has grown by four times what the last one left. The
// server's live heap is small (tens of MB) and every delivery allocates its body, message
// and records, so Go's default (100) spends about a tenth of the server's CPU collecting;
// at 400 that share is about a quarter as large, for a heap up to five times the live one
// (docs/PERFORMANCE.md, "The local pipeline with group commit").
const ServeGCPercent = 400

// ServeProcsPerCPU is how many goroutines `halosync serve` runs at once per CPU (Go's
// default GOMAXPROCS, which follows the container's CPU limit too) unless
// the GOMAXPROCS environment variable sets a number (a process-wide setting too). A
// webhook's answer waits for an fsync of the hand-off log, and the goroutine that ends
// it, back from the system call, waits for a free P before it answers anyone; with one P
// per CPU that wait is behind whatever else runs, the worker's writes and the garbage
// collector. With two per CPU the kernel shares the CPUs between them instead, and the
// pipeline applies 20,000 deliveries in about 13% less time, with less CPU
// (docs/PERFORMANCE.md, "Sixth pass").
const ServeProcsPerCPU = 2

// Serve listens on addr and runs the pump until ctx ends, then shuts down gracefully.
// ready, if set, receives the bound address once the server accepts connections.
// At most server.max_connections connections are served at once; the timeouts cut idle
// and slow ones, so a connection waiting for a place waits a bounded time.
func (s *Server) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler(s.guard.withHosts(addr)),
		ReadHeaderTimeout: s.headerTimeout,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	// Shutdown waits for every handler; the event streams end as it begins.
	srv.RegisterOnShutdown(s.feed.shutdown)
	srvLn := limitListen(ln, s.maxConns)
	var wg sync.WaitGroup
	pumpCtx, stopPump := context.WithCancel(ctx)
	defer stopPump()
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.keepStatus(pumpCtx)
	}()
	go func() {
		defer wg.Done()
		s.Pump(pumpCtx)
	}()
	go func() {
		defer wg.Done()
		s.Poll(pumpCtx, s.pollEvery)
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(srvLn) }()
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
	// What the pump counted last is saved too.
	save, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	s.saveStatus(save)
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) { readapi.WriteJSON(w, status, v) }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
