package localserver_test

// The edge scenarios of package edgetest over real HTTP, as `halosync serve` runs them:
// every authentication scheme with two secrets at once, a secret rotated across restarts
// on the same SQLite file, the IP allowlist behind a trusted proxy, gzip and routing
// headers through the embedded queue. internal/lambdae2e runs the same scenarios through
// the emulated Lambda path. The configurations are YAML documents parsed by
// config.Parse, as `halosync serve --config` reads them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/edgetest"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqlite"
)

// edgeHarness is edgetest.Harness on local servers sharing one SQLite file, each
// started by startServer.
type edgeHarness struct {
	path string
	s    *testServer
	rec  *receivedLog // what the running server's pump received
	// base are the counters the running server loaded from the file at its start: the
	// counts a previous server saved. Counts reads the running pipeline's own, above them.
	base map[metrics.Metric]int64
}

func newEdgeHarness(t *testing.T) *edgeHarness {
	return &edgeHarness{path: filepath.Join(t.TempDir(), "halosync.db")}
}

func (h *edgeHarness) Start(t *testing.T, doc string) {
	t.Helper()
	cfg, err := config.Parse(t.Context(), []byte(doc), nil)
	if err != nil {
		t.Fatalf("the configuration does not parse: %v\n%s", err, doc)
	}
	if h.s != nil {
		h.s.stop() // without waiting for the queue to drain; saves its counters
	}
	h.base = map[metrics.Metric]int64{}
	if h.s != nil {
		db, err := sqlite.Open(h.path)
		if err != nil {
			t.Fatal(err)
		}
		counters, _, err := db.LoadStatus(t.Context(), 0)
		if err := errors.Join(err, db.Close()); err != nil {
			t.Fatal(err)
		}
		for _, e := range counters {
			h.base[e.Metric] = e.Value
		}
	}
	h.s = startServer(t, cfg, onFile(h.path), wrappingQueue(func(q *sqlite.Queue) localserver.Queue {
		h.rec = &receivedLog{Queue: q}
		return h.rec
	}))
}

// Post sends d over HTTP with a JSON content type unless d's headers name one; the peer
// is the loopback, so d.SourceIP goes last in the forwarded header.
func (h *edgeHarness) Post(t *testing.T, d edgetest.Delivery) edgetest.Response {
	t.Helper()
	url := h.s.url + "/webhooks/halo/" + d.Conn
	if d.PathSecret != "" {
		url += "/" + d.PathSecret
	}
	ctx, cancel := context.WithTimeout(t.Context(), pollTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = d.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if d.SourceIP != "" {
		req.Header.Add("X-Forwarded-For", d.SourceIP)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s/webhooks/halo/%s/…: %v", h.s.url, d.Conn, err) // the path secret stays out of the log
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST to %s: read body: %v", d.Conn, err)
	}
	return edgetest.Response{Status: resp.StatusCode, Body: b}
}

func (h *edgeHarness) Drain(t *testing.T) {
	t.Helper()
	h.s.waitStatus(t, pollTimeout, "the queue drained", drained)
}

func (h *edgeHarness) Queues(t *testing.T) (changes, deadLetters int) {
	t.Helper()
	st := h.s.status(t)
	return st.Queue.Visible + st.Queue.InFlight, st.DeadLetterQueue.Visible + st.DeadLetterQueue.InFlight
}

func (h *edgeHarness) Counts(t *testing.T, name string) edgetest.Counts {
	t.Helper()
	out := edgetest.Counts{}
	for _, e := range h.s.status(t).Counters {
		if e.Name == name && e.Value != h.base[e.Metric] {
			out[e.Metric] = e.Value - h.base[e.Metric]
		}
	}
	return out
}

func (h *edgeHarness) Ticket(t *testing.T, conn string, id int) (change.Object, bool) {
	t.Helper()
	o, r := h.s.object(t, "/connections/"+conn+"/tickets/"+strconv.Itoa(id))
	switch r.status {
	case http.StatusOK:
		return o, true
	case http.StatusNotFound:
		return o, false
	}
	t.Fatalf("GET ticket %s/%d: %d %s", conn, id, r.status, r.body)
	return o, false
}

func (h *edgeHarness) Attributes(t *testing.T, conn string, id int) []map[string]string {
	t.Helper()
	return h.rec.attributesOf(t, conn, id)
}

func drained(st status) bool {
	return st.Queue.Visible+st.Queue.InFlight == 0
}

// receivedLog wraps the embedded queue and records every message the pump receives
// from it, as the worker will see it: what went through SQLite.
type receivedLog struct {
	*sqlite.Queue
	mu   sync.Mutex
	msgs []message.Received
}

func (r *receivedLog) Receive(ctx context.Context, max int, wait time.Duration) ([]message.Received, error) {
	msgs, err := r.Queue.Receive(ctx, max, wait)
	r.mu.Lock()
	r.msgs = append(r.msgs, msgs...)
	r.mu.Unlock()
	return msgs, err
}

// attributesOf returns the attributes of the received messages about ticket id of conn.
func (r *receivedLog) attributesOf(t *testing.T, conn string, id int) []map[string]string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]string
	for _, m := range r.msgs {
		var e message.Envelope
		if err := json.Unmarshal(m.Body, &e); err != nil {
			t.Fatalf("a received message is not an envelope: %v: %s", err, m.Body)
		}
		if e.Change.Connection == conn && e.Change.Kind == change.Ticket && e.Change.ID == strconv.Itoa(id) {
			out = append(out, m.Attributes)
		}
	}
	return out
}

// TestEdgeScenarios runs every edge scenario, each on its own SQLite file; Rotation
// restarts the server on it.
func TestEdgeScenarios(t *testing.T) {
	for _, sc := range edgetest.Scenarios {
		t.Run(sc.Name, func(t *testing.T) { sc.Run(t, newEdgeHarness(t)) })
	}
}

// TestEdgeForwardedSource: the source a connection's allow_ips is checked against is the
// peer address, unless the peer is a trusted proxy: then the right-most forwarded address
// that is not a trusted proxy. Local only: on the Lambda path the source is API
// Gateway's sourceIp, and no header is read for it.
func TestEdgeForwardedSource(t *testing.T) {
	forwarded := func(xff ...string) http.Header {
		h := edgetest.OfficeAuth()
		if len(xff) > 0 {
			h["X-Forwarded-For"] = xff
		}
		return h
	}
	cases := []struct {
		name    string
		trusted bool // the server trusts 127.0.0.1/32 as a proxy
		header  http.Header
		ok      bool
	}{
		{"no proxy trusted: the peer 127.0.0.1", false, forwarded(), false},
		{"no proxy trusted: the forwarded header is ignored", false, forwarded("192.0.2.10"), false},
		{"no proxy trusted: two hops ignored", false, forwarded("198.51.100.1, 192.0.2.10"), false},
		{"trusted proxy: right-most untrusted hop inside", true, forwarded("198.51.100.1, 192.0.2.10"), true},
		{"trusted proxy: right-most untrusted hop outside", true, forwarded("192.0.2.10, 198.51.100.1"), false},
		{"trusted proxy: a trusted hop is skipped", true, forwarded("192.0.2.10, 127.0.0.1"), true},
		{"trusted proxy: the header on two lines", true, forwarded("198.51.100.1", "192.0.2.10"), true},
		{"trusted proxy: no forwarded header, the proxy itself", true, forwarded(), false},
		{"trusted proxy: a garbled hop, the peer", true, forwarded("192.0.2.10, not-an-address"), false},
	}
	harnesses := map[bool]*edgeHarness{false: newEdgeHarness(t), true: newEdgeHarness(t)}
	harnesses[false].Start(t, edgetest.Config(edgetest.BothSecrets, edgetest.OfficeConnection, ""))
	harnesses[true].Start(t, edgetest.Config(edgetest.BothSecrets, edgetest.OfficeConnection, edgetest.TrustLoopback))
	accepted, refused := map[bool][]edgetest.Delivered{}, map[bool][]edgetest.Delivered{}
	for i, c := range cases {
		d := edgetest.Delivered{Conn: "office", ID: 8000 + i, Summary: c.name}
		r := harnesses[c.trusted].Post(t, edgetest.Delivery{Conn: d.Conn, Header: c.header, Body: edgetest.Ticket(d.ID, d.Summary)})
		if c.ok {
			edgetest.WantAccepted(t, c.name, r, 1)
			accepted[c.trusted] = append(accepted[c.trusted], d)
		} else {
			edgetest.WantRefused(t, c.name, r, http.StatusForbidden, ingest.CodeForbidden)
			refused[c.trusted] = append(refused[c.trusted], d)
		}
	}
	for trusted, h := range harnesses {
		edgetest.WantDrained(t, h)
		edgetest.WantStored(t, h, accepted[trusted])
		edgetest.WantNotStored(t, h, refused[trusted])
		edgetest.WaitCounts(t, h, metrics.DeliveriesRejected, edgetest.Counts{
			{Name: metrics.DeliveriesRejected, Connection: "office", Label: ingest.ReasonIPNotAllowed}: int64(len(refused[trusted])),
		})
		// Only the accepted deliveries were queued.
		enqueued := edgetest.Counts{}
		if n := len(accepted[trusted]); n > 0 {
			enqueued[metrics.Metric{Name: metrics.ChangesEnqueued, Connection: "office"}] = int64(n)
		}
		edgetest.WaitCounts(t, h, metrics.ChangesEnqueued, enqueued)
	}
}
