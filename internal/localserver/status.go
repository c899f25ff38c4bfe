package localserver

import (
	"context"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqlite"
)

// StatusStore keeps what /status and the dashboard show across restarts: the counters,
// the newest delivery records, the per-minute trends and each connection's last delivery
// (sqlite.DB implements it).
type StatusStore interface {
	LoadStatus(ctx context.Context, keep int) ([]metrics.Entry, []change.Delivery, error)
	SaveStatus(ctx context.Context, counters []metrics.Entry, recent []change.Delivery, keep int) error
	LoadTrends(ctx context.Context, since time.Time) ([]metrics.Minute, error)
	SaveTrends(ctx context.Context, minutes []metrics.Minute, prune time.Time) error
	LoadMarks(ctx context.Context) ([]sqlite.Mark, error)
	SaveMarks(ctx context.Context, marks []sqlite.Mark) error
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
	minutes, err := s.statusStore.LoadTrends(ctx, s.now().Add(-TrendWindow))
	if err != nil {
		return err
	}
	marks, err := s.statusStore.LoadMarks(ctx)
	if err != nil {
		return err
	}
	s.activity.load(minutes, marks)
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
	s.saveActivity(ctx)
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

// saveActivity writes the trends' minutes and the marks changed since the last save,
// and prunes the minutes older than TrendWindow. s.saveMu is held.
func (s *Server) saveActivity(ctx context.Context) {
	minutes, marks, since := s.activity.unsaved()
	if len(minutes) == 0 && len(marks) == 0 && since.Equal(s.prunedTo) {
		return
	}
	err := s.statusStore.SaveTrends(ctx, minutes, since)
	if err == nil && len(marks) > 0 {
		err = s.statusStore.SaveMarks(ctx, marks)
	}
	if err != nil {
		s.activity.keepUnsaved(minutes, marks)
		s.log.ErrorContext(ctx, "save trends", "error", err.Error())
		return
	}
	s.prunedTo = since
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
