package localserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/change"
)

// MaxEventStreams is how many GET /events streams the server serves at once: each holds
// a connection (of server.max_connections) and builds a status snapshot every second, so
// a page left open in many tabs cannot take the server's places. One more is refused
// with 503 and Retry-After; the page then polls.
const MaxEventStreams = 8

// Event stream timings: a status snapshot is sent at most every StatusEvery, when it
// differs from the last one sent; a comment every keepAliveEvery keeps proxies from
// closing a quiet stream; a stream ends after streamLife (the browser reconnects at
// once), so no stream outlives a rotated read token by long.
const (
	StatusEvery    = time.Second
	keepAliveEvery = 15 * time.Second
	streamLife     = 10 * time.Minute
	writeWait      = 10 * time.Second // a client that takes longer to take a write is dropped
	streamBuffer   = 256              // records a stream may fall behind by before it is dropped
)

// feed hands each new delivery record to the open event streams. Safe for concurrent use.
type feed struct {
	mu      sync.Mutex
	streams map[chan change.Delivery]bool
	max     int
	closed  chan struct{} // closed when the server shuts down: every stream ends
	once    sync.Once
}

func newFeed(max int) *feed {
	return &feed{streams: map[chan change.Delivery]bool{}, max: max, closed: make(chan struct{})}
}

// subscribe opens a stream's channel; false when MaxEventStreams are open.
func (f *feed) subscribe() (chan change.Delivery, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.streams) >= f.max {
		return nil, false
	}
	ch := make(chan change.Delivery, streamBuffer)
	f.streams[ch] = true
	return ch, true
}

func (f *feed) unsubscribe(ch chan change.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams[ch] {
		delete(f.streams, ch)
		close(ch)
	}
}

// publish hands d to every stream without waiting: a stream too far behind is closed
// (its client reconnects and reads the list afresh), never waited for.
func (f *feed) publish(d change.Delivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.streams {
		select {
		case ch <- d:
		default:
			delete(f.streams, ch)
			close(ch)
		}
	}
}

// shutdown ends every stream, now and to come: http.Server.Shutdown waits for handlers,
// and a stream's handler would otherwise wait for its client.
func (f *feed) shutdown() { f.once.Do(func() { close(f.closed) }) }

// events is GET /events, a server-sent events stream: "delivery" events, each a new
// record (change.Delivery, the worker's or the webhook endpoint's) as it is added, and
// "status" events, the /status document, first at once and then every StatusEvery when
// it changed. It ends when the client goes, the server shuts down, the client falls
// behind, or after streamLife.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ch, ok := s.feed.subscribe()
	if !ok {
		w.Header().Set("Retry-After", "10")
		apierror.Write(w, apierror.Unavailable, fmt.Sprintf("%d event streams are open already; poll /status instead", MaxEventStreams))
		return
	}
	defer s.feed.unsubscribe(ch)
	rc, ok := startStream(w)
	if !ok {
		return
	}

	send := func(event string, data []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
			return false
		}
		var b bytes.Buffer
		if event != "" {
			b.WriteString("event: " + event + "\n")
			b.WriteString("data: ")
			b.Write(data) // JSON without newlines: one data line
			b.WriteString("\n\n")
		} else {
			b.Write(data)
		}
		if _, err := w.Write(b.Bytes()); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var last []byte
	sendStatus := func() bool {
		doc, err := json.Marshal(s.report(r.Context()))
		if err != nil || bytes.Equal(doc, last) {
			return err == nil
		}
		last = doc
		return send("status", doc)
	}
	if !send("", []byte("retry: "+strconv.Itoa(int(reconnectAfter.Milliseconds()))+"\n\n")) || !sendStatus() {
		return
	}
	tick := time.NewTicker(StatusEvery)
	defer tick.Stop()
	end := time.NewTimer(streamLife)
	defer end.Stop()
	quiet := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.feed.closed:
			return
		case <-end.C:
			return
		case d, ok := <-ch:
			if !ok {
				return // fell behind: the client reconnects and reads afresh
			}
			doc, err := json.Marshal(d)
			if err != nil || !send("delivery", doc) {
				return
			}
			quiet = time.Now()
		case <-tick.C:
			before := last
			if !sendStatus() {
				return
			}
			if !bytes.Equal(before, last) {
				quiet = time.Now()
			} else if time.Since(quiet) >= keepAliveEvery {
				if !send("", []byte(": keep-alive\n\n")) {
					return
				}
				quiet = time.Now()
			}
		}
	}
}

// startStream answers 200 with a server-sent events stream; false (answered) when the
// connection cannot stream.
func startStream(w http.ResponseWriter) (*http.ResponseController, bool) {
	rc := http.NewResponseController(w)
	// The server's ReadTimeout bounds reading a request; left in place it would end a
	// stream after it, so this long response lifts it (the stream's own life bounds it).
	if err := rc.SetReadDeadline(time.Time{}); err != nil {
		apierror.Write(w, apierror.Internal, "this connection cannot stream")
		return nil, false
	}
	h := w.Header()
	h.Set("content-type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	return rc, true
}

// reconnectAfter is how soon a browser reconnects a stream that ended (the "retry" field).
const reconnectAfter = 2 * time.Second
