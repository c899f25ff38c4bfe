package localserver

import (
	"net"
	"net/http"
	"sync"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
)

// limitListener serves at most cap(slots) connections at once: Accept waits for one to
// close, and the connections beyond wait in the kernel's backlog. Idle ones are cut by the
// server's header and idle timeouts, which bound that wait (docs/ARCHITECTURE.md, "Local
// mode").
type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func limitListen(l net.Listener, n int) *limitListener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

// Accept takes a slot before it accepts, so a connection beyond the cap is not accepted.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close ends an Accept waiting for a slot too.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// slotConn gives its slot back when it is closed, once.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// byteBudget is the webhook body bytes that may be read at once across requests.
type byteBudget struct {
	mu       sync.Mutex
	used     int64
	capacity int64
}

// take admits n bytes if they fit, without waiting: a sender told 503 retries later,
// where a waiting request would hold its connection.
func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.capacity {
		return false
	}
	b.used += n
	return true
}

func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// admitBody runs next once the bytes the request may read are admitted: its declared
// length, or the connection's body limit plus the one byte that tells an oversize body
// when no length is declared or it is longer. The budget is given back when next returns.
// reasonOverloaded is the DeliveriesRejected label of a delivery refused because
// server.max_body_bytes_in_flight are being read.
const reasonOverloaded = "overloaded"

func (s *Server) admitBody(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn := r.PathValue("connection")
		need := int64(s.pipeline.Ingest.BodyLimit(conn)) + 1
		if r.ContentLength >= 0 {
			need = min(need, r.ContentLength)
		}
		need = min(need, s.bodies.capacity)
		if !s.bodies.take(need) {
			if !s.connections[conn] {
				conn = unknownConnection // as ingest counts a path naming no connection
			}
			s.count.Count(metrics.Metric{Name: metrics.DeliveriesRejected, Connection: conn, Label: reasonOverloaded}, 1)
			s.recent.ingested(conn, ingest.Response{Status: apierror.Unavailable.Status(), Reason: reasonOverloaded}, "", s.now())
			s.log.WarnContext(r.Context(), "delivery refused", "connection", conn, "reason", reasonOverloaded,
				"status", apierror.Unavailable.Status(), "bytes", need, "peer", r.RemoteAddr)
			w.Header().Set("Retry-After", "1")
			apierror.Write(w, apierror.Unavailable, "too many deliveries are being read at once; send again in a second")
			return
		}
		defer s.bodies.give(need)
		next(w, r)
	}
}
