// Package metrics counts what halosync does, per connection: in Lambda as CloudWatch
// embedded-metric-format log lines (no API call on the hot path), locally in memory for
// the status page.
package metrics

import (
	"encoding/json"
	"io"
	"sort"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every halosync metric.
const Namespace = "halosync"

// Metric names.
const (
	DeliveriesAccepted  = "DeliveriesAccepted"
	DeliveriesRejected  = "DeliveriesRejected" // label: the reason
	ChangesEnqueued     = "ChangesEnqueued"
	WebhookGap          = "WebhookGap"          // label: the kind; changes the poller found that the webhooks missed
	PollFallback        = "PollFallback"        // label: engaged or recovered
	ReconcileRefused    = "ReconcileRefused"    // label: the kind; Halo listed too few objects to believe
	EventsUnknown       = "EventsUnknown"       // events of no known kind, kept for the dead-letter queue
	ChangesFiltered     = "ChangesFiltered"     // label: the filter rule
	ChangesApplied      = "ChangesApplied"      // label: the outcome (applied, pending, duplicate, stale)
	ChangesFailed       = "ChangesFailed"       // label: the reason
	ChangesFetched      = "ChangesFetched"      // label: found or not_found (an event-only delivery resolved)
	ChangesDeadLettered = "ChangesDeadLettered" // label: the reason; permanent failures moved to the dead-letter queue by the worker
	PollsFailed         = "PollsFailed"         // label: error, timeout (ran out of its share of the run), no_time (none left)
	VersionsClamped     = "VersionsClamped"     // label: the kind; a version too far ahead of its receipt, replaced by the receipt time
	VersionsMissing     = "VersionsMissing"     // label: the kind; a snapshot without a readable change marker
	VersionsRepaired    = "VersionsRepaired"    // label: the kind; a stored object ahead of Halo's marker, replaced by Halo's
	ReadsRefused        = "ReadsRefused"        // label: the reason; the local server's reading routes, under connection _server

	// Timings (milliseconds) and volume.
	SyncLatency    = "SyncLatency"    // ms, per kind: Halo's event time (the delivery's timestamp, else the object's marker) to the change applied
	IngestDuration = "IngestDuration" // ms: one delivery through ingest, received to answered
	ApplyDuration  = "ApplyDuration"  // ms, per kind: one change through the worker, decoded to written
	ChangesRetried = "ChangesRetried" // a message received again (receive count above 1)
	ChangesByKind  = "ChangesByKind"  // per kind: changes a delivery or a poll carried (volume)
	EventsByName   = "EventsByName"   // label: the Halo event name when known, else "other" (volume)

	// The poller and the functions.
	HaloRequests   = "HaloRequests"   // requests spent on Halo's API in a run
	HaloBudgetLeft = "HaloBudgetLeft" // the connection's request budget left after a run (a gauge)
	FallbackActive = "FallbackActive" // 1 while the connection polls at the fallback interval, else 0 (a gauge)
	ColdStarts     = "ColdStarts"     // label: the function (ingest, worker, poller)
)

// Metric identifies one counter: a name, the connection and an optional label (a reason or
// an outcome).
type Metric struct {
	Name       string `json:"name"`
	Connection string `json:"connection"`
	Label      string `json:"label,omitempty"`
}

// Memory keeps counters in memory. Safe for concurrent use.
type Memory struct {
	mu sync.Mutex
	m  map[Metric]int64
}

// NewMemory returns empty counters.
func NewMemory() *Memory { return &Memory{m: map[Metric]int64{}} }

// Count adds n.
func (c *Memory) Count(m Metric, n int64) {
	c.mu.Lock()
	c.m[m] += n
	c.mu.Unlock()
}

// Value returns one counter.
func (c *Memory) Value(m Metric) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[m]
}

// Entry is one counter and its value.
type Entry struct {
	Metric
	Value int64 `json:"value"`
}

// Snapshot lists every counter, sorted.
func (c *Memory) Snapshot() []Entry {
	c.mu.Lock()
	out := make([]Entry, 0, len(c.m))
	for k, v := range c.m {
		out = append(out, Entry{k, v})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Connection != b.Connection {
			return a.Connection < b.Connection
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Label < b.Label
	})
	return out
}

// EMF writes each count as one CloudWatch embedded-metric-format JSON line, with the
// dimension sets {Connection} and {Connection, Label}. Safe for concurrent use.
type EMF struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewEMF writes to w (os.Stdout in Lambda).
func NewEMF(w io.Writer) *EMF { return &EMF{w: w, now: time.Now} }

// Count implements the counter.
func (e *EMF) Count(m Metric, n int64) {
	dims := [][]string{{"Connection"}}
	doc := map[string]any{
		"Connection": m.Connection,
		m.Name:       n,
	}
	if m.Label != "" {
		dims = append(dims, []string{"Connection", "Label"})
		doc["Label"] = m.Label
	}
	doc["_aws"] = map[string]any{
		"Timestamp": e.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": dims,
			"Metrics":    []any{map[string]string{"Name": m.Name, "Unit": "Count"}},
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(append(line, '\n'))
}

// Discard drops every count.
type Discard struct{}

// Count implements the counter.
func (Discard) Count(Metric, int64) {}
