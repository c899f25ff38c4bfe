package ingest

import (
	"container/list"
	"net/netip"
	"sync"
	"time"
)

// Bounds of what the handler remembers of the sources it refuses (docs/ARCHITECTURE.md,
// "Authentication"). Each Lambda instance keeps its own.
const (
	// maxSources bounds the sources remembered at once, a few hundred bytes each; beyond
	// it the least recently refused is forgotten.
	maxSources = 10000
	// logFirst is how many refusals of one source and connection are logged in a window;
	// the rest are counted, and a line per window says how many were not logged.
	logFirst = 5
)

// sources remembers, per connection and source, the failed authentications of the current
// window, a block once they reach the connection's limit, and the refusals logged.
type sources struct {
	mu      sync.Mutex
	max     int
	entries map[string]*list.Element // of *source
	order   *list.List               // least recently refused first
}

type source struct {
	key, label, ip string
	failStart      time.Time // the failure window's start
	failures       int
	blockedUntil   time.Time
	logStart       time.Time // the log window's start
	logged         int
	unlogged       int
}

// unlogged is a summary line owed: refusals of a source that were counted but not logged.
type unlogged struct {
	label, ip string
	since     time.Time
	count     int
}

func newSources(max int) *sources {
	return &sources{max: max, entries: map[string]*list.Element{}, order: list.New()}
}

// sourceKey is who a throttle applies to: an IPv4 address, or an IPv6 /64, the block one
// host is commonly given (any address of it would otherwise be a fresh source).
func sourceKey(label, ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		a = a.Unmap()
		if a.Is6() {
			p, _ := a.Prefix(64)
			return label + " " + p.String()
		}
		return label + " " + a.String()
	}
	return label + " " + ip
}

// blocked reports how long the source stays refused, if it is.
func (s *sources) blocked(key string, now time.Time) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.entries[key]
	if !ok {
		return 0, false
	}
	until := el.Value.(*source).blockedUntil
	return until.Sub(now), now.Before(until)
}

// refused records one refusal: whether to log it, a failed authentication when fail is
// set (the limit-th within window blocks the source for window; it reports blocked), and
// the summaries of unlogged refusals now owed.
func (s *sources) refused(key, label, ip string, now time.Time, window time.Duration, fail bool, limit int) (logIt, blocked bool, owed []unlogged) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *source
	if el, ok := s.entries[key]; ok {
		s.order.MoveToBack(el)
		e = el.Value.(*source)
	} else {
		for s.order.Len() >= s.max {
			old := s.order.Remove(s.order.Front()).(*source)
			delete(s.entries, old.key)
			if old.unlogged > 0 {
				owed = append(owed, unlogged{old.label, old.ip, old.logStart, old.unlogged})
			}
		}
		e = &source{key: key, label: label, ip: ip}
		s.entries[key] = s.order.PushBack(e)
	}
	if !now.Before(e.logStart.Add(window)) {
		if e.unlogged > 0 {
			owed = append(owed, unlogged{e.label, e.ip, e.logStart, e.unlogged})
		}
		e.logStart, e.logged, e.unlogged = now, 0, 0
	}
	if e.logged < logFirst {
		e.logged++
		logIt = true
	} else {
		e.unlogged++
	}
	if fail {
		if !now.Before(e.failStart.Add(window)) {
			e.failStart, e.failures = now, 0
		}
		if e.failures++; e.failures >= limit {
			e.blockedUntil, e.failures = now.Add(window), 0
			blocked = true
		}
	}
	return logIt, blocked, owed
}
