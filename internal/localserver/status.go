package localserver

import (
	"context"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
)

// StatusStore keeps what /status and the dashboard show across restarts: the counters and
// the newest delivery records (sqlite.DB implements it).
type StatusStore interface {
	LoadStatus(ctx context.Context, keep int) ([]metrics.Entry, []change.Delivery, error)
	SaveStatus(ctx context.Context, counters []metrics.Entry, recent []change.Delivery, keep int) error
}

// SaveStatusEvery is how often the server saves its counters and the delivery records
// added since the last save, when any changed; it saves once more as it stops. Counting
// never writes: a crash loses at most this long's counts.
const SaveStatusEvery = time.Second

// loadStatus puts the saved counters into the server's (before anything counts) and the
// saved records into the ring.
func (s *Server) loadStatus(ctx context.Context) error {
	if s.statusStore == nil {
		return nil
	}
	counters, recent, err := s.statusStore.LoadStatus(ctx, RecentDeliveries)
	if err != nil {
		return err
	}
	for _, e := range counters {
		s.counts.Restore(e)
		s.saved[e.Metric] = e.Value
	}
	s.recent.load(recent)
	return nil
}

// saveStatus writes the counters that changed since the last save and the delivery
// records added since; a failed save is retried by the next.
func (s *Server) saveStatus(ctx context.Context) {
	if s.statusStore == nil {
		return
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	var changed []metrics.Entry
	for _, e := range s.counts.Snapshot() {
		if v, ok := s.saved[e.Metric]; !ok || v != e.Value {
			changed = append(changed, e)
		}
	}
	recent := s.recent.takeUnsaved()
	if len(changed) == 0 && len(recent) == 0 {
		return
	}
	if err := s.statusStore.SaveStatus(ctx, changed, recent, RecentDeliveries); err != nil {
		s.recent.keepUnsaved(recent)
		s.log.ErrorContext(ctx, "save status", "error", err.Error())
		return
	}
	for _, e := range changed {
		s.saved[e.Metric] = e.Value
	}
}

// keepStatus saves the status every SaveStatusEvery until ctx ends.
func (s *Server) keepStatus(ctx context.Context) {
	if s.statusStore == nil {
		return
	}
	t := time.NewTicker(SaveStatusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.saveStatus(ctx)
		}
	}
}
