package localserver

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
)

// TrendWindow is how far back the per-minute trends go: older minutes are dropped from
// memory and from the database at each save.
const TrendWindow = 24 * time.Hour

// markLastDelivery names the mark of a connection's last webhook delivery accepted.
const markLastDelivery = "last_delivery"

type minuteKey struct {
	conn  string
	start int64 // Unix seconds
}

// activity keeps, from what the pipeline counts, each connection's per-minute trends
// (deliveries, rejections, changes applied, sync latency) and the time of its last
// webhook delivery, and tells changes to the event streams. Safe for concurrent use.
type activity struct {
	now func() time.Time

	mu       sync.Mutex
	minutes  map[minuteKey]*metrics.Minute
	dirty    map[minuteKey]bool
	last     map[string]time.Time
	lastSeen map[string]bool // marks changed since the last save
}

func newActivity(now func() time.Time) *activity {
	return &activity{now: now, minutes: map[minuteKey]*metrics.Minute{}, dirty: map[minuteKey]bool{},
		last: map[string]time.Time{}, lastSeen: map[string]bool{}}
}

// observe takes one count of the pipeline into the trends.
func (a *activity) observe(m metrics.Metric, n int64) {
	switch m.Name {
	case metrics.DeliveriesAccepted, metrics.DeliveriesRejected, metrics.SyncLatency:
	case metrics.ChangesApplied:
		if m.Label != string(change.Applied) {
			return
		}
	default:
		return
	}
	now := a.now().UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.bucket(m.Connection, now)
	switch m.Name {
	case metrics.DeliveriesAccepted:
		b.Deliveries += n
		a.last[m.Connection] = now
		a.lastSeen[m.Connection] = true
	case metrics.DeliveriesRejected:
		b.Rejected += n
	case metrics.ChangesApplied:
		b.Applied += n
	case metrics.SyncLatency:
		b.LatencyCount++
		b.LatencySumMS += n
		b.LatencyMaxMS = max(b.LatencyMaxMS, n)
	}
}

// bucket is conn's minute holding t, made when missing and marked for the next save.
// a.mu is held.
func (a *activity) bucket(conn string, t time.Time) *metrics.Minute {
	start := t.Truncate(time.Minute)
	k := minuteKey{conn, start.Unix()}
	b, ok := a.minutes[k]
	if !ok {
		b = &metrics.Minute{Connection: conn, Start: start}
		a.minutes[k] = b
	}
	a.dirty[k] = true
	return b
}

// load puts saved minutes and marks back.
func (a *activity) load(minutes []metrics.Minute, marks []sqlite.Mark) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range minutes {
		a.minutes[minuteKey{m.Connection, m.Start.Unix()}] = &m
	}
	for _, m := range marks {
		if m.Name == markLastDelivery {
			a.last[m.Connection] = m.At
		}
	}
}

// unsaved returns the minutes and marks changed since the last call, drops minutes older
// than the window from memory, and returns the window's start: what the next save
// writes and prunes. A failed save gives them back with keepUnsaved.
func (a *activity) unsaved() ([]metrics.Minute, []sqlite.Mark, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	since := a.now().UTC().Add(-TrendWindow).Truncate(time.Minute)
	for k := range a.minutes {
		if k.start < since.Unix() {
			delete(a.minutes, k)
			delete(a.dirty, k)
		}
	}
	var minutes []metrics.Minute
	for k := range a.dirty {
		minutes = append(minutes, *a.minutes[k])
	}
	clear(a.dirty)
	var marks []sqlite.Mark
	for conn := range a.lastSeen {
		marks = append(marks, sqlite.Mark{Connection: conn, Name: markLastDelivery, At: a.last[conn]})
	}
	clear(a.lastSeen)
	return minutes, marks, since
}

func (a *activity) keepUnsaved(minutes []metrics.Minute, marks []sqlite.Mark) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range minutes {
		if k := (minuteKey{m.Connection, m.Start.Unix()}); a.minutes[k] != nil {
			a.dirty[k] = true
		}
	}
	for _, m := range marks {
		a.lastSeen[m.Connection] = true
	}
}

// lastDelivery is when conn last accepted a webhook delivery; zero when never.
func (a *activity) lastDelivery(conn string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last[conn]
}

// trend returns conn's minutes (every connection's when conn is "") that started at
// since or later, by connection, oldest first.
func (a *activity) trend(conn string, since time.Time) []metrics.Minute {
	a.mu.Lock()
	out := []metrics.Minute{}
	for k, m := range a.minutes {
		if (conn == "" || k.conn == conn) && !m.Start.Before(since) {
			out = append(out, *m)
		}
	}
	a.mu.Unlock()
	slices.SortFunc(out, func(x, y metrics.Minute) int {
		if c := strings.Compare(x.Connection, y.Connection); c != 0 {
			return c
		}
		return x.Start.Compare(y.Start)
	})
	return out
}

// counting is the pipeline's counter: the server's counters, and the trends.
type counting struct {
	*metrics.Memory
	activity *activity
}

func (c counting) Count(m metrics.Metric, n int64) {
	c.Memory.Count(m, n)
	c.activity.observe(m, n)
}

// backfills keeps where each connection's long reads stand, as the poller reports them
// (poller.ProgressReporter): the newest report per connection and kind. Safe for
// concurrent use.
type backfills struct {
	mu sync.Mutex
	m  map[string]map[change.Kind]poller.Progress
}

func newBackfills() *backfills { return &backfills{m: map[string]map[change.Kind]poller.Progress{}} }

// Progress implements poller.ProgressReporter.
func (b *backfills) Progress(p poller.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m[p.Connection] == nil {
		b.m[p.Connection] = map[change.Kind]poller.Progress{}
	}
	b.m[p.Connection][p.Kind] = p
}

// of returns conn's newest report of kind.
func (b *backfills) of(conn string, kind change.Kind) (poller.Progress, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, ok := b.m[conn][kind]
	return p, ok
}
