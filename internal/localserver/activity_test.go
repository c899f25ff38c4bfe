package localserver

import (
	"testing"
	"time"

	"github.com/halosync/halosync/internal/metrics"
)

// The trends keep one bucket per connection and minute, the latency's count, sum and
// highest, and drop what is older than TrendWindow before a save.
func TestActivityBucketsAndPrunes(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	a := newActivity(func() time.Time { return now })
	count := counting{metrics.NewMemory(), a}
	count.Count(metrics.Metric{Name: metrics.DeliveriesAccepted, Connection: "c"}, 1)
	count.Count(metrics.Metric{Name: metrics.SyncLatency, Connection: "c", Kind: "ticket"}, 30)
	count.Count(metrics.Metric{Name: metrics.SyncLatency, Connection: "c", Kind: "ticket"}, 90)
	count.Count(metrics.Metric{Name: metrics.ChangesApplied, Connection: "c", Label: "duplicate"}, 1) // not an applied change
	count.Count(metrics.Metric{Name: metrics.ChangesApplied, Connection: "c", Label: "applied"}, 2)
	now = now.Add(time.Minute)
	count.Count(metrics.Metric{Name: metrics.DeliveriesRejected, Connection: "c", Label: "credentials_wrong"}, 1)

	got := a.trend("c", time.Time{})
	want := []metrics.Minute{
		{Connection: "c", Start: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Deliveries: 1, Applied: 2, LatencyCount: 2, LatencySumMS: 120, LatencyMaxMS: 90},
		{Connection: "c", Start: time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC), Rejected: 1},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("trend = %+v, want %+v", got, want)
	}
	minutes, marks, _ := a.unsaved()
	if len(minutes) != 2 || len(marks) != 1 || !marks[0].At.Equal(time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)) {
		t.Fatalf("unsaved: %+v, %+v; want both minutes and the last delivery", minutes, marks)
	}
	if minutes, marks, _ := a.unsaved(); len(minutes)+len(marks) != 0 {
		t.Fatalf("saved twice: %+v, %+v", minutes, marks)
	}
	now = now.Add(TrendWindow)
	_, _, since := a.unsaved()
	if got := a.trend("", time.Time{}); len(got) != 1 || !got[0].Start.Equal(want[1].Start) || since.After(want[1].Start) {
		t.Errorf("a window later: %+v (window from %v), want the second minute only", got, since)
	}
}
