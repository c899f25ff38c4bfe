package localserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/logtest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/readapi"
	"github.com/halosync/halosync/internal/sqlite"
)

const (
	user     = "halo"
	password = "first-secret"
	rotated  = "next-secret"

	// readToken is the read token startServer gives a server whose configuration names
	// none; bearer is its Authorization header.
	readToken = "a-read-token-for-the-tests"
	bearer    = "Bearer " + readToken

	// pollTimeout bounds every wait for the asynchronous side (queue → worker → store).
	pollTimeout = 5 * time.Second
)

func testConfig() *config.Config {
	return &config.Config{Connections: []config.Connection{{
		ID: "default",
		Webhook: config.Webhook{Auth: []config.AuthScheme{{
			Scheme: "basic", Username: user, Passwords: []string{password, rotated},
		}}},
	}}}
}

// testServer is a running local server on the real SQLite adapter, wired as `halosync
// serve` wires it.
type testServer struct {
	url   string
	queue *sqlite.Queue
	dlq   *sqlite.Queue
	store *sqlite.Store
	db    *sqlite.DB
	srv   *localserver.Server
	logs  *logtest.Buffer // the server's log, JSON lines
	// stop (also run when the test ends) shuts the server down and closes the database,
	// so another server can open the same file.
	stop func()
}

// serverSetup is what differs between the tests' servers; startServer's options set it.
type serverSetup struct {
	path       string // the SQLite file; "" is a new one in t.TempDir()
	wrapQueue  func(*sqlite.Queue) localserver.Queue
	wrapStore  func(*sqlite.Store) localserver.Store
	haloClient func(*connection.Connection) (*haloapi.Client, error)
	now        func() time.Time
	logLevel   slog.Level
	logTail    int           // how much of the log a failed test shows
	headerWait time.Duration // localserver.Options.HeaderTimeout
	demo       []string      // localserver.Options.Demo
}

type serverOption func(*serverSetup)

// onFile runs the server on an existing (or to-be-shared) SQLite file, for restarts.
func onFile(path string) serverOption { return func(s *serverSetup) { s.path = path } }

// wrappingQueue wraps the change queue the server is given.
func wrappingQueue(wrap func(*sqlite.Queue) localserver.Queue) serverOption {
	return func(s *serverSetup) { s.wrapQueue = wrap }
}

// wrappingStore wraps the store the server is given.
func wrappingStore(wrap func(*sqlite.Store) localserver.Store) serverOption {
	return func(s *serverSetup) { s.wrapStore = wrap }
}

// withHaloClient gives the server the Halo API client of each connection with halo:
// settings.
func withHaloClient(f func(*connection.Connection) (*haloapi.Client, error)) serverOption {
	return func(s *serverSetup) { s.haloClient = f }
}

// withNow gives the server's poller a clock (localserver.Options.Now).
func withNow(now func() time.Time) serverOption {
	return func(s *serverSetup) { s.now = now }
}

// logTo sets the server log's level and how much of it a failed test shows.
func logTo(level slog.Level, tailChars int) serverOption {
	return func(s *serverSetup) { s.logLevel, s.logTail = level, tailChars }
}

// withHeaderTimeout sets how long a connection may take to send its headers.
func withHeaderTimeout(d time.Duration) serverOption {
	return func(s *serverSetup) { s.headerWait = d }
}

// withDemo names the connections the demo drives.
func withDemo(conns ...string) serverOption {
	return func(s *serverSetup) { s.demo = conns }
}

// startServer starts the server as `halosync serve` wires it (localserver.Queues, the
// SQLite store, the database as the readiness probe), shaped by opts. A configuration
// without read tokens gets readToken.
func startServer(t *testing.T, cfg *config.Config, opts ...serverOption) *testServer {
	t.Helper()
	if len(cfg.Server.ReadTokens) == 0 {
		c := *cfg
		c.Server.ReadTokens = []string{readToken}
		cfg = &c
	}
	o := serverSetup{logLevel: slog.LevelDebug, logTail: 8000}
	for _, opt := range opts {
		opt(&o)
	}
	if o.path == "" {
		o.path = filepath.Join(t.TempDir(), "halosync.db")
	}
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: o.logLevel}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logtest.Tail(logs.String(), o.logTail))
		}
	})

	db, err := sqlite.Open(o.path)
	if err != nil {
		t.Fatal(err)
	}
	store := db.Store()
	q, dlq := localserver.Queues(db, cfg.Queue)
	var changes localserver.Queue = q
	if o.wrapQueue != nil {
		changes = o.wrapQueue(q)
	}
	var st localserver.Store = store
	if o.wrapStore != nil {
		st = o.wrapStore(store)
	}
	srv, err := localserver.New(cfg, localserver.Options{Store: st, Queue: changes, DeadLetter: dlq, Log: log, HaloClient: o.haloClient, Now: o.now,
		Probe: db, HeaderTimeout: o.headerWait, Status: db, Demo: o.demo})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { ready <- a }) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("Serve did not return within 15 s of its context ending")
			}
			if err := db.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-ready:
		return &testServer{url: "http://" + a.String(), queue: q, dlq: dlq, store: store, db: db, srv: srv, logs: logs, stop: stop}
	case err := <-done:
		t.Fatalf("Serve returned before it was ready: %v", err)
	case <-time.After(pollTimeout):
		t.Fatal("the server did not become ready")
	}
	return nil
}

// sampleBody returns the Halo delivery held in the `body` field of an events/ file.
func sampleBody(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Body            string `json:"body"`
		IsBase64Encoded bool   `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if e.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(e.Body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	return []byte(e.Body)
}

// editTicket returns body (one event nesting a ticket) with the ticket's fields overridden.
func editTicket(t *testing.T, body []byte, fields map[string]any) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	tk := m["ticket"].(map[string]any)
	for k, v := range fields {
		tk[k] = v
	}
	if id, ok := fields["id"]; ok {
		m["object_id"] = id
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e.Error
}

func do(t *testing.T, method, url, auth string, body []byte) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *testServer) deliver(t *testing.T, conn, auth string, body []byte) response {
	t.Helper()
	return do(t, http.MethodPost, s.url+"/webhooks/halo/"+conn, auth, body)
}

// deliverOK posts body with good credentials and fails the test unless it is accepted.
func (s *testServer) deliverOK(t *testing.T, body []byte) {
	t.Helper()
	if r := s.deliver(t, "default", authtest.Basic(user, password), body); r.status != http.StatusOK {
		t.Fatalf("delivery answered %d %s, want 200", r.status, r.body)
	}
}

// eventually polls cond every 10 ms until it holds or timeout passes; cond returns what it
// saw, for the failure message.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last saw: %s", what, timeout, saw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// object reads one object from the server's read API.
func (s *testServer) object(t *testing.T, path string) (change.Object, response) {
	t.Helper()
	r := do(t, http.MethodGet, s.url+path, bearer, nil)
	var o change.Object
	if r.status == http.StatusOK {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.UseNumber()
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, r.body)
		}
	}
	return o, r
}

// waitObject polls path until it answers 200 and accept (nil: anything) holds.
func (s *testServer) waitObject(t *testing.T, path string, accept func(change.Object) bool) change.Object {
	t.Helper()
	var o change.Object
	eventually(t, pollTimeout, "GET "+path, func() (bool, string) {
		var r response
		o, r = s.object(t, path)
		return r.status == http.StatusOK && (accept == nil || accept(o)), fmt.Sprintf("%d %s", r.status, r.body)
	})
	return o
}

type queueStats struct {
	Visible  int `json:"visible"`
	InFlight int `json:"in_flight"`
}

type status struct {
	Counters        []metrics.Entry `json:"counters"`
	Queue           *queueStats     `json:"queue"`
	DeadLetterQueue *queueStats     `json:"dead_letter_queue"`
}

func (st status) count(name, conn, label string) int64 {
	for _, e := range st.Counters {
		if e.Name == name && e.Connection == conn && e.Label == label {
			return e.Value
		}
	}
	return 0
}

// total sums a counter over every connection and label.
func (st status) total(name string) int64 {
	var n int64
	for _, e := range st.Counters {
		if e.Name == name {
			n += e.Value
		}
	}
	return n
}

func (s *testServer) status(t *testing.T) status {
	t.Helper()
	r := do(t, http.MethodGet, s.url+"/status", bearer, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /status: %d %s", r.status, r.body)
	}
	var st status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("GET /status: %v in %s", err, r.body)
	}
	if st.Queue == nil || st.DeadLetterQueue == nil {
		t.Fatalf("GET /status shows no queue or dead-letter queue: %s", r.body)
	}
	return st
}

// waitStatus polls /status until cond holds, for at most timeout.
func (s *testServer) waitStatus(t *testing.T, timeout time.Duration, what string, cond func(status) bool) status {
	t.Helper()
	var st status
	eventually(t, timeout, what, func() (bool, string) {
		st = s.status(t)
		b, _ := json.Marshal(st)
		return cond(st), string(b)
	})
	return st
}

func version(s string) int64 {
	tm, err := time.Parse("2006-01-02T15:04:05.999999999", s)
	if err != nil {
		panic(err)
	}
	return change.VersionOf(tm)
}

func TestFullTicketDeliveryIsStored(t *testing.T) {
	s := startServer(t, testConfig())
	r := s.deliver(t, "default", authtest.Basic(user, password), sampleBody(t, "ingest-ticket-full.json"))
	if r.status != http.StatusOK {
		t.Fatalf("delivery answered %d %s, want 200", r.status, r.body)
	}
	var ack struct {
		Status  string `json:"status"`
		Changes int    `json:"changes"`
	}
	if err := json.Unmarshal(r.body, &ack); err != nil || ack.Status != "accepted" || ack.Changes != 1 {
		t.Fatalf("acknowledgement %s (%v), want accepted with 1 change", r.body, err)
	}

	o := s.waitObject(t, "/connections/default/tickets/4242", nil)
	want := change.Object{
		Connection: "default", Kind: change.Ticket, ID: "4242",
		Version: version("2026-09-25T06:41:07.523"), ClientID: "12",
		Source: change.SourceWebhook, DeliveryID: "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10", Event: "ticket status changed",
	}
	got := o
	got.Fields, got.SyncedAt = nil, time.Time{}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored ticket\n got %+v\nwant %+v", got, want)
	}
	if o.SyncedAt.IsZero() || time.Since(o.SyncedAt) > time.Minute {
		t.Errorf("synced_at = %v, want about now", o.SyncedAt)
	}
	// Every field of the delivery's ticket is stored exactly as Halo wrote it.
	var sent struct {
		Ticket map[string]any `json:"ticket"`
	}
	dec := json.NewDecoder(bytes.NewReader(sampleBody(t, "ingest-ticket-full.json")))
	dec.UseNumber()
	if err := dec.Decode(&sent); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Fields, sent.Ticket) {
		t.Errorf("stored fields\n got %v\nwant %v", o.Fields, sent.Ticket)
	}
	if o.Fields["summary"] != "Printer on the 3rd floor is jammed" || o.Fields["status_id"] != json.Number("2") {
		t.Errorf("stored fields: summary %#v, status_id %#v", o.Fields["summary"], o.Fields["status_id"])
	}

	st := s.waitStatus(t, pollTimeout, "queue drained", func(st status) bool { return st.Queue.Visible+st.Queue.InFlight == 0 })
	for _, c := range []struct {
		name, label string
		want        int64
	}{
		{metrics.DeliveriesAccepted, "", 1},
		{metrics.ChangesEnqueued, "", 1},
		{metrics.ChangesApplied, string(change.Applied), 1},
	} {
		if got := st.count(c.name, "default", c.label); got != c.want {
			t.Errorf("counter %s{%s} = %d, want %d", c.name, c.label, got, c.want)
		}
	}
}

func TestDuplicatesAndStaleVersionsKeepTheNewest(t *testing.T) {
	s := startServer(t, testConfig())
	newer := sampleBody(t, "ingest-ticket-full.json")
	const copies = 5
	for range copies {
		s.deliverOK(t, newer)
	}
	// The older version is sent once the newer one is stored, so it must come out stale.
	s.waitObject(t, "/connections/default/tickets/4242", nil)
	older := editTicket(t, newer, map[string]any{"last_update": "2026-09-25T06:00:00.000", "summary": "older summary", "status_id": 1})
	s.deliverOK(t, older)

	const total = copies + 1
	st := s.waitStatus(t, pollTimeout, "every change processed", func(st status) bool {
		return st.total(metrics.ChangesApplied) == total && st.Queue.Visible+st.Queue.InFlight == 0
	})
	for _, c := range []struct {
		outcome change.Outcome
		want    int64
	}{
		{change.Applied, 1},
		{change.Duplicate, copies - 1},
		{change.Stale, 1},
		{change.Pending, 0},
	} {
		if got := st.count(metrics.ChangesApplied, "default", string(c.outcome)); got != c.want {
			t.Errorf("ChangesApplied{%s} = %d, want %d", c.outcome, got, c.want)
		}
	}
	if got := st.count(metrics.DeliveriesAccepted, "default", ""); got != total {
		t.Errorf("DeliveriesAccepted = %d, want %d", got, total)
	}
	if got := st.total(metrics.ChangesFailed); got != 0 {
		t.Errorf("ChangesFailed = %d, want 0", got)
	}

	o, r := s.object(t, "/connections/default/tickets/4242")
	if r.status != http.StatusOK {
		t.Fatalf("GET ticket: %d %s", r.status, r.body)
	}
	if o.Version != version("2026-09-25T06:41:07.523") || o.Fields["summary"] != "Printer on the 3rd floor is jammed" || o.Fields["status_id"] != json.Number("2") {
		t.Errorf("stored ticket is not the newest version: version %d, fields %v", o.Version, o.Fields)
	}
}

func TestRotatedPasswordIsAccepted(t *testing.T) {
	s := startServer(t, testConfig())
	body := sampleBody(t, "ingest-ticket-small.json")
	for _, p := range []string{password, rotated} {
		if r := s.deliver(t, "default", authtest.Basic(user, p), body); r.status != http.StatusOK {
			t.Errorf("password %q: %d %s, want 200", p, r.status, r.body)
		}
	}
}

func TestWrongCredentialsEnqueueNothing(t *testing.T) {
	s := startServer(t, testConfig())
	body := sampleBody(t, "ingest-ticket-full.json")
	for _, c := range []struct{ name, auth, reason string }{
		{"wrong password", authtest.Basic(user, "not-the-secret"), "credentials_wrong"},
		{"wrong user", authtest.Basic("admin", password), "credentials_wrong"},
		{"no credentials", "", "credentials_missing"},
		{"not basic", "Bearer " + password, "credentials_malformed"},
	} {
		r := s.deliver(t, "default", c.auth, body)
		if r.status != http.StatusUnauthorized || r.errorCode(t) != ingest.CodeUnauthorized {
			t.Errorf("%s: %d %s, want 401 unauthorized", c.name, r.status, r.body)
		}
		if strings.Contains(string(r.body), password) {
			t.Errorf("%s: the answer shows the password: %s", c.name, r.body)
		}
	}
	// The rejected deliveries never reached the queue: Send was not called, so nothing is
	// visible or in flight, and nothing was counted as enqueued or applied.
	st := s.status(t)
	if *st.Queue != (queueStats{}) || *st.DeadLetterQueue != (queueStats{}) {
		t.Errorf("queues after refused deliveries: %+v, dlq %+v; want empty", *st.Queue, *st.DeadLetterQueue)
	}
	if st.total(metrics.ChangesEnqueued) != 0 || st.total(metrics.DeliveriesAccepted) != 0 {
		t.Errorf("refused deliveries counted as accepted: %+v", st.Counters)
	}
	if got := st.count(metrics.DeliveriesRejected, "default", "credentials_wrong"); got != 2 {
		t.Errorf("DeliveriesRejected{credentials_wrong} = %d, want 2", got)
	}

	// A good delivery afterwards is the only change the worker ever sees.
	s.deliverOK(t, body)
	st = s.waitStatus(t, pollTimeout, "the good delivery applied", func(st status) bool {
		return st.count(metrics.ChangesApplied, "default", "applied") == 1 && st.Queue.Visible+st.Queue.InFlight == 0
	})
	if got := st.total(metrics.ChangesApplied); got != 1 {
		t.Errorf("ChangesApplied over every outcome = %d, want 1: %+v", got, st.Counters)
	}
}

func TestWebhookRouteRefusals(t *testing.T) {
	s := startServer(t, testConfig())
	body := sampleBody(t, "ingest-ticket-full.json")
	auth := authtest.Basic(user, password)

	r := s.deliver(t, "nope", auth, body)
	if r.status != http.StatusNotFound || r.errorCode(t) != ingest.CodeUnknownConnection {
		t.Errorf("unknown connection: %d %s, want 404 %s", r.status, r.body, ingest.CodeUnknownConnection)
	}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		r := do(t, m, s.url+"/webhooks/halo/default", auth, nil)
		if r.status != http.StatusMethodNotAllowed || r.errorCode(t) != ingest.CodeMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
			t.Errorf("%s on the webhook route: %d %s (Allow %q), want 405 %s, Allow POST", m, r.status, r.body, r.header.Get("Allow"), ingest.CodeMethodNotAllowed)
		}
	}
	r = s.deliver(t, "default", auth, []byte("this is not JSON"))
	if r.status != http.StatusBadRequest || r.errorCode(t) != ingest.CodeUnreadable {
		t.Errorf("unreadable body: %d %s, want 400 %s", r.status, r.body, ingest.CodeUnreadable)
	}
	st := s.status(t)
	if st.total(metrics.ChangesEnqueued) != 0 || *st.Queue != (queueStats{}) {
		t.Errorf("refused deliveries reached the queue: %+v, %+v", *st.Queue, st.Counters)
	}
	if got := st.count(metrics.DeliveriesRejected, "_unknown", ingest.CodeUnknownConnection); got != 1 {
		t.Errorf("DeliveriesRejected{_unknown, unknown_connection} = %d, want 1", got)
	}
}

func TestHealthz(t *testing.T) {
	s := startServer(t, testConfig())
	r := do(t, http.MethodGet, s.url+"/healthz", "", nil)
	if r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /healthz: %d %q %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var h map[string]string
	if err := json.Unmarshal(r.body, &h); err != nil || h["status"] != "ok" {
		t.Errorf("GET /healthz body %s (%v), want status ok", r.body, err)
	}
	if r := do(t, http.MethodPost, s.url+"/healthz", "", nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", r.status)
	}
}

func TestReadRoutes(t *testing.T) {
	s := startServer(t, testConfig())
	// A ticket event nesting its new note: the note is stored under its ticket.
	note := []byte(`{"id":"c0000000-0000-4000-8000-000000000001","event":"action added","object_id":4242,` +
		`"timestamp":"2026-09-25T06:45:00.0000000Z",` +
		`"ticket":{"id":4242,"summary":"Printer on the 3rd floor is jammed","client_id":12,"last_update":"2026-09-25T06:44:59.000"},` +
		`"action":{"id":3,"ticket_id":4242,"outcome":"Note","note":"Replaced the pick-up roller.","who":"Alex Agent","last_updated":"2026-09-25T06:44:58.000"}}`)
	s.deliverOK(t, note)

	a := s.waitObject(t, "/connections/default/tickets/4242/actions/3", nil)
	if a.Kind != change.Action || a.ID != "3" || a.ParentID != "4242" || a.Fields["note"] != "Replaced the pick-up roller." ||
		a.Version != version("2026-09-25T06:44:58") {
		t.Errorf("stored note: %+v", a)
	}
	tk := s.waitObject(t, "/connections/default/tickets/4242", nil)
	if tk.Version != version("2026-09-25T06:44:59") || tk.ClientID != "12" {
		t.Errorf("stored ticket: %+v", tk)
	}

	for _, c := range []struct{ path, code string }{
		{"/connections/default/tickets/9999", "not_found"},
		{"/connections/default/tickets/9999/actions/3", "not_found"}, // another ticket's note 3
		{"/connections/default/tickets/4242/actions/4", "not_found"}, // no such note
		{"/connections/other/tickets/4242", "not_found"},             // another connection
		{"/connections/default/widgets/4242", "unknown_kind"},        // no such kind
		{"/connections/default/actions/3", "unknown_kind"},           // notes only under a ticket
		{"/connections/default/ticket/4242/actions/3", "not_found"},  // no such route
	} {
		r := do(t, http.MethodGet, s.url+c.path, bearer, nil)
		if r.status != http.StatusNotFound || r.errorCode(t) != c.code {
			t.Errorf("GET %s: %d %s, want 404 %s", c.path, r.status, r.body, c.code)
		}
	}
	// Every kind's plural is a read route.
	for _, kinds := range []string{"clients", "contacts", "assets"} {
		r := do(t, http.MethodGet, s.url+"/connections/default/"+kinds+"/1", bearer, nil)
		if r.status != http.StatusNotFound || r.errorCode(t) != "not_found" {
			t.Errorf("GET %s/1: %d %s, want 404 not_found", kinds, r.status, r.body)
		}
	}
}

// TestChangedRoute: the listing of what changed is a read route like the others, behind
// the read guard.
func TestChangedRoute(t *testing.T) {
	s := startServer(t, testConfig())
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	tk := s.waitObject(t, "/connections/default/tickets/4242", nil)

	r := do(t, http.MethodGet, s.url+"/connections/default/tickets?limit=10", bearer, nil)
	var p readapi.Page
	if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil || len(p.Items) != 1 || p.Items[0].ID != tk.ID ||
		!p.Items[0].SyncedAt.Equal(tk.SyncedAt) || p.More || p.Next == "" {
		t.Fatalf("GET tickets changed: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodGet, s.url+"/connections/default/tickets?cursor="+url.QueryEscape(p.Next), bearer, nil); r.status != http.StatusOK ||
		json.Unmarshal(r.body, &p) != nil || len(p.Items) != 0 {
		t.Errorf("GET tickets after the cursor: %d %s, want none", r.status, r.body)
	}
	if r := do(t, http.MethodGet, s.url+"/connections/default/tickets?limit=0", bearer, nil); r.status != http.StatusBadRequest || r.errorCode(t) != "invalid_query" {
		t.Errorf("limit=0: %d %s, want 400 invalid_query", r.status, r.body)
	}
	if r := do(t, http.MethodGet, s.url+"/connections/default/tickets", "", nil); r.status != http.StatusUnauthorized || bytes.Contains(r.body, []byte("4242")) {
		t.Errorf("without a token: %d %s, want 401 and nothing read", r.status, r.body)
	}
}

func TestEventOnlyDeliveryMarksPending(t *testing.T) {
	s := startServer(t, testConfig())
	s.deliverOK(t, sampleBody(t, "ingest-ticket-event-only.json"))
	o := s.waitObject(t, "/connections/default/tickets/4244", nil)
	if o.Version != 0 || o.PendingVersion != version("2026-09-25T07:05:00") || len(o.Fields) != 0 {
		t.Errorf("event-only ticket: %+v, want pending at the delivery timestamp without fields", o)
	}
}

// TestOversizeBodyIsRefusedEarly declares a 64 MiB body, sends only a little more than the
// limit and then waits for the answer: the server must answer 413 without waiting for the
// rest of the body.
// dial opens a raw connection to the server, for requests net/http would not send; a
// deadline of pollTimeout bounds every read and write, and the test's end closes it.
func (s *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), pollTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(pollTimeout)); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestOversizeBodyIsRefusedEarly(t *testing.T) {
	const limit = 4096
	cfg := testConfig()
	cfg.Connections[0].Webhook.MaxBodyBytes = limit
	s := startServer(t, cfg)

	// A body just over the limit, sent in full, is refused too.
	big := bytes.Repeat([]byte(" "), limit+1)
	if r := s.deliver(t, "default", authtest.Basic(user, password), big); r.status != http.StatusRequestEntityTooLarge || r.errorCode(t) != ingest.CodeTooLarge {
		t.Errorf("body of %d bytes: %d %s, want 413 %s", len(big), r.status, r.body, ingest.CodeTooLarge)
	}
	// Exactly the limit is not too large (it is unreadable, being blanks).
	if r := s.deliver(t, "default", authtest.Basic(user, password), big[:limit]); r.status != http.StatusBadRequest {
		t.Errorf("body of exactly %d bytes: %d %s, want 400", limit, r.status, r.body)
	}

	conn := s.dial(t)
	const declared = 64 << 20
	const sent = 16 * limit
	head := fmt.Sprintf("POST /webhooks/halo/default HTTP/1.1\r\nHost: halosync\r\nAuthorization: %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", authtest.Basic(user, password), declared)
	writeErr := make(chan error, 1)
	go func() {
		_, err := conn.Write(append([]byte(head), bytes.Repeat([]byte(" "), sent)...))
		writeErr <- err
	}()
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	t.Logf("answered in %v", time.Since(start))
	if err != nil {
		t.Fatalf("no answer after %d of %d declared bytes: %v", sent, declared, err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), ingest.CodeTooLarge) {
		t.Errorf("oversize streamed body: %d %s, want 413 %s", resp.StatusCode, b, ingest.CodeTooLarge)
	}
	if err := <-writeErr; err != nil {
		t.Logf("writing the partial body: %v", err)
	}

	st := s.status(t)
	if got := st.count(metrics.DeliveriesRejected, "default", ingest.CodeTooLarge); got != 2 {
		t.Errorf("DeliveriesRejected{body_too_large} = %d, want 2", got)
	}
	if st.total(metrics.ChangesEnqueued) != 0 || *st.Queue != (queueStats{}) {
		t.Errorf("an oversize delivery reached the queue: %+v, %+v", *st.Queue, st.Counters)
	}
}

// TestUnauthenticatedBodyIsNeverAwaited: a request without valid credentials whose body
// never arrives is refused at once, from its headers, and the connection closed: the
// server neither waits for the body nor holds it. Before Admit, the handler read the body
// first and answered only when the sender gave up.
func TestUnauthenticatedBodyIsNeverAwaited(t *testing.T) {
	s := startServer(t, testConfig())
	for _, auth := range []string{"", authtest.Basic(user, "not-the-password")} {
		conn := s.dial(t) // its deadline only bounds a failure; the answer needs no body byte
		head := "POST /webhooks/halo/default HTTP/1.1\r\nHost: halosync\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
		if auth != "" {
			head += "Authorization: " + auth + "\r\n"
		}
		if _, err := conn.Write([]byte(head + "\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer while the body is withheld: %v", err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), ingest.CodeUnauthorized) || !resp.Close {
			t.Errorf("credentials %q: %d %s (close %v), want 401 %s and the connection closed", auth, resp.StatusCode, b, resp.Close, ingest.CodeUnauthorized)
		}
	}
	st := s.status(t)
	if got := st.count(metrics.DeliveriesRejected, "default", "credentials_missing") + st.count(metrics.DeliveriesRejected, "default", "credentials_wrong"); got != 2 {
		t.Errorf("DeliveriesRejected{credentials_*} = %d, want 2", got)
	}
}

// TestUndecodableMessageGoesToTheDeadLetterQueue puts a message no worker can read
// straight on the queue: the worker fails it permanently and moves it to the dead-letter
// queue at once, on its first receive, with its reason.
func TestUndecodableMessageGoesToTheDeadLetterQueue(t *testing.T) {
	s := startServer(t, testConfig())

	const garbage = "this is not a change message"
	if err := s.queue.Send(context.Background(), []message.Message{{Body: []byte(garbage)}}); err != nil {
		t.Fatal(err)
	}
	// Counters are read before the queues in one /status: wait for both to show it.
	st := s.waitStatus(t, pollTimeout, "message moved to the dead-letter queue", func(st status) bool {
		return st.DeadLetterQueue.Visible == 1 && st.Queue.Visible+st.Queue.InFlight == 0 &&
			st.count(metrics.ChangesDeadLettered, "_unknown", "undecodable") == 1
	})
	if got := st.count(metrics.ChangesFailed, "_unknown", "undecodable"); got != 1 {
		t.Errorf("ChangesFailed{_unknown, undecodable} = %d, want 1: it is received once", got)
	}
	if got := st.total(metrics.ChangesApplied); got != 0 {
		t.Errorf("ChangesApplied = %d, want 0", got)
	}
	msgs, err := s.dlq.Receive(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].Body) != garbage || msgs[0].Attributes[message.AttrFailureReason] != "undecodable" {
		t.Fatalf("dead-letter queue holds %+v, want the one undecodable message, with its reason", msgs)
	}

	// The pipeline still works after a poisoned message.
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	s.waitObject(t, "/connections/default/tickets/4242", nil)
}

// TestInvalidChangeGoesToTheDeadLetterQueue: a well-formed message whose change can never
// be applied (no version) is also a permanent failure.
func TestInvalidChangeGoesToTheDeadLetterQueue(t *testing.T) {
	cfg := testConfig()
	cfg.Queue.MaxReceive = 1
	s := startServer(t, cfg)
	body := []byte(`{"change":{"connection":"default","kind":"ticket","id":"1","op":"upsert","version":0,"source":"webhook"}}`)
	if err := s.queue.Send(context.Background(), []message.Message{{Body: body}}); err != nil {
		t.Fatal(err)
	}
	// /status reads the counters and then the queues: wait for both, since one snapshot may
	// catch the message in the dead-letter queue before the counters it was read after.
	st := s.waitStatus(t, pollTimeout, "message moved to the dead-letter queue and its failure counted", func(st status) bool {
		return st.DeadLetterQueue.Visible == 1 && st.Queue.Visible+st.Queue.InFlight == 0 && st.total(metrics.ChangesFailed) > 0
	})
	if st.total(metrics.ChangesFailed) != 1 {
		t.Errorf("ChangesFailed = %+v, want one failure", st.Counters)
	}
}

func TestServeStopsWithItsContext(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	q := db.Queue("changes", sqlite.QueueOptions{MaxReceive: 5, DeadLetter: "changes-dlq"})
	cfg := testConfig()
	cfg.Server.ReadTokens = []string{readToken}
	srv, err := localserver.New(cfg, localserver.Options{Store: db.Store(), Queue: q, Log: log})
	if err != nil {
		t.Fatal(err)
	}

	// A taken address is an error at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := srv.Serve(context.Background(), ln.Addr().String(), nil); err == nil {
		t.Fatal("Serve on a taken address succeeded")
	}

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, "127.0.0.1:0", func(a net.Addr) { ready <- a }) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case <-time.After(pollTimeout):
		t.Fatal("not ready")
	}
	// Without a dead-letter queue /status still answers, with the queue alone.
	r := do(t, http.MethodGet, "http://"+addr.String()+"/status", bearer, nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"queue"`) || strings.Contains(string(r.body), "dead_letter_queue") {
		t.Errorf("GET /status without a DLQ: %d %s", r.status, r.body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after its context ended: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return")
	}
	if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		c.Close()
		t.Error("the server still accepts connections after Serve returned")
	}
}

// TestUnknownEventsAreKept: an event of no known kind is accepted, counted, and kept in
// the dead-letter queue, where the alarm reports it; nothing is dropped silently.
func TestUnknownEventsAreKept(t *testing.T) {
	cfg := testConfig()
	cfg.Queue.MaxReceive = 1
	s := startServer(t, cfg)
	r := s.deliver(t, "default", authtest.Basic(user, password), []byte(`{"id":"x","event":"frobnicated","object_id":1}`))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"unknown":1`) {
		t.Fatalf("unknown event: %d %s, want 200 with unknown 1", r.status, r.body)
	}
	st := s.waitStatus(t, pollTimeout, "unknown event kept in the dead-letter queue", func(st status) bool {
		return st.DeadLetterQueue.Visible == 1 && st.count(metrics.ChangesFailed, "default", "unknown_event") > 0
	})
	if st.count(metrics.EventsUnknown, "default", "") != 1 || st.count(metrics.ChangesFailed, "default", "unknown_event") != 1 {
		t.Errorf("counters %+v", st.Counters)
	}
}

// stallingStore holds the Apply of one ticket until released.
type stallingStore struct {
	localserver.Store
	ticket  string
	entered chan struct{} // closed when the ticket's Apply has begun
	release chan struct{}
	once    sync.Once
}

func (s *stallingStore) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	if c.Kind == change.Ticket && c.ID == s.ticket {
		s.once.Do(func() { close(s.entered) })
		<-s.release
	}
	return s.Store.Apply(ctx, c)
}

// TestAStalledBatchDoesNotHoldUpTheOthers: while one change is stuck in the worker (a slow
// Halo fetch, a slow write), changes delivered after it are still applied, as several
// Lambda worker instances would apply them.
func TestAStalledBatchDoesNotHoldUpTheOthers(t *testing.T) {
	stall := &stallingStore{ticket: "9001", entered: make(chan struct{}), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(stall.release) }) }
	s := startServer(t, testConfig(), wrappingStore(func(st *sqlite.Store) localserver.Store {
		stall.Store = st
		return stall
	}))
	t.Cleanup(release) // before the server's stop, which waits for the batch in flight
	full := sampleBody(t, "ingest-ticket-full.json")

	s.deliverOK(t, editTicket(t, full, map[string]any{"id": 9001}))
	select {
	case <-stall.entered:
	case <-time.After(pollTimeout):
		t.Fatal("the worker never applied ticket 9001")
	}
	s.deliverOK(t, editTicket(t, full, map[string]any{"id": 9002}))
	s.waitObject(t, "/connections/default/tickets/9002", nil)
	if _, r := s.object(t, "/connections/default/tickets/9001"); r.status != http.StatusNotFound {
		t.Fatalf("ticket 9001 answered %d while its Apply was held", r.status)
	}
	release()
	s.waitObject(t, "/connections/default/tickets/9001", nil)
}

// TestAFullBacklogIsRefusedWithRetryAfter: while the queue holds queue.max_backlog changes
// the worker has not finished, a delivery is answered 503 with Retry-After and counted as
// backlog_full; once the worker catches up, deliveries are accepted again.
func TestAFullBacklogIsRefusedWithRetryAfter(t *testing.T) {
	stall := &stallingStore{ticket: "9001", entered: make(chan struct{}), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(stall.release) }) }
	cfg := testConfig()
	cfg.Queue.MaxBacklog = 1
	s := startServer(t, cfg, wrappingStore(func(st *sqlite.Store) localserver.Store {
		stall.Store = st
		return stall
	}))
	t.Cleanup(release)
	full := sampleBody(t, "ingest-ticket-full.json")

	s.deliverOK(t, editTicket(t, full, map[string]any{"id": 9001}))
	<-stall.entered // in flight, so still queued
	next := editTicket(t, full, map[string]any{"id": 9002})
	r := s.deliver(t, "default", authtest.Basic(user, password), next)
	if r.status != http.StatusServiceUnavailable || r.errorCode(t) != ingest.CodeUnavailable || r.header.Get("Retry-After") != "10" {
		t.Fatalf("delivery to a full backlog answered %d %s, Retry-After %q; want 503 unavailable, Retry-After 10",
			r.status, r.body, r.header.Get("Retry-After"))
	}
	if n := s.status(t).count(metrics.DeliveriesRejected, "default", ingest.ReasonBacklogFull); n != 1 {
		t.Fatalf("DeliveriesRejected backlog_full = %d, want 1", n)
	}
	release()
	eventually(t, pollTimeout, "the stalled change applied and deleted", func() (bool, string) {
		st := s.status(t)
		return st.Queue.Visible+st.Queue.InFlight == 0, fmt.Sprintf("%+v", *st.Queue)
	})
	s.deliverOK(t, next)
	s.waitObject(t, "/connections/default/tickets/9002", nil)
}
