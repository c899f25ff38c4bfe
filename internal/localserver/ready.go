package localserver

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/apierror"
)

// Writable is what readiness probes: whether the embedded database takes a write, without
// which every delivery would be refused (internal/sqlite's DB is one).
type Writable interface {
	CheckWrite(ctx context.Context) error
}

const (
	// probeEvery is how long one probe's answer stands: /readyz is unauthenticated, so
	// however often it is asked, the database sees at most one probe write a second.
	probeEvery = time.Second
	// probeTimeout bounds one probe; a database that long locked is not ready either.
	probeTimeout = 2 * time.Second
)

// readiness runs the probe, one at a time, and keeps its answer for probeEvery.
type readiness struct {
	probe Writable
	mu    sync.Mutex
	at    time.Time
	err   error
}

func (p *readiness) check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < probeEvery {
		return p.err
	}
	// The answer is shared by every caller: one caller leaving does not cut it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
	defer cancel()
	p.err, p.at = p.probe.CheckWrite(ctx), time.Now()
	return p.err
}

// ready answers 200 when the embedded database takes a write, 503 when it does not.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.readiness.probe == nil {
		apierror.Write(w, apierror.Unavailable, "this server was started without a readiness probe")
		return
	}
	if err := s.readiness.check(r.Context()); err != nil {
		s.log.ErrorContext(r.Context(), "not ready", "error", err.Error())
		apierror.Write(w, apierror.Unavailable, "the embedded database cannot be written: deliveries would be refused; see the log")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
