package ingest

import "time"

// SetClock gives the handler a clock, for the throttle's windows.
func (h *Handler) SetClock(now func() time.Time) { h.now = now }

// LimitSources bounds the sources the handler remembers to n.
func (h *Handler) LimitSources(n int) { h.sources = newSources(n) }

// SourcesRemembered is how many sources the handler remembers.
func (h *Handler) SourcesRemembered() int {
	h.sources.mu.Lock()
	defer h.sources.mu.Unlock()
	return len(h.sources.entries)
}
