// Package metrics counts what halosync does, per connection: in Lambda as CloudWatch
// embedded-metric-format log lines (no API call on the hot path), locally in memory for
// the status page (docs/ARCHITECTURE.md, "Observability").
package metrics

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every halosync metric.
const Namespace = "halosync"

// Metric names.
const (
	DeliveriesAccepted   = "DeliveriesAccepted"
	DeliveriesByEndpoint = "DeliveriesByEndpoint" // label: the endpoint (primary, backup) an accepted delivery came through
	DeliveriesRejected   = "DeliveriesRejected"   // label: the reason
	ChangesEnqueued      = "ChangesEnqueued"
	WebhookGap           = "WebhookGap"          // label: the kind; changes the poller found that the webhooks missed
	PollFallback         = "PollFallback"        // label: engaged or recovered
	ReconcileRefused     = "ReconcileRefused"    // label: the kind; Halo listed too few objects to believe
	EventsUnknown        = "EventsUnknown"       // events of no known kind, kept for the dead-letter queue
	ChangesFiltered      = "ChangesFiltered"     // label: the filter rule
	ChangesApplied       = "ChangesApplied"      // label: the outcome (applied, pending, duplicate, stale)
	ChangesFailed        = "ChangesFailed"       // label: the reason
	ChangesFetched       = "ChangesFetched"      // label: found or not_found (an event-only delivery resolved)
	ChangesDeadLettered  = "ChangesDeadLettered" // label: the reason; permanent failures moved to the dead-letter queue by the worker
	PollsFailed          = "PollsFailed"         // label: error, timeout (ran out of its share of the run), no_time (none left)
	VersionsClamped      = "VersionsClamped"     // label: the kind; a version too far ahead of its receipt, replaced by the receipt time
	VersionsMissing      = "VersionsMissing"     // label: the kind; a snapshot without a readable change marker
	VersionsRepaired     = "VersionsRepaired"    // label: the kind; a stored object ahead of Halo's marker, replaced by Halo's
	ReadsRefused         = "ReadsRefused"        // label: the reason; the local server's reading routes, under connection _server
	EventsPublished      = "EventsPublished"     // per kind: change events the publisher put on the bus
	EventsFailed         = "EventsFailed"        // label: the reason (put_failed, undecodable); change events not published, retried from the stream

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
	BackfillLeft   = "BackfillLeft"   // label: the kind; objects a running backfill has still to read, by Halo's count (a gauge; 0 once done)
	ColdStarts     = "ColdStarts"     // label: the function (ingest, worker, poller); connection FunctionConnection

	// Verification of the copy against Halo (docs/ARCHITECTURE.md, "Verification").
	VerifyChecked       = "VerifyChecked"       // per kind, label: the kind; objects compared with Halo
	VerifyDiffering     = "VerifyDiffering"     // per kind, label: the cause (missing, extra, stale, ahead, fields)
	VerifyRepaired      = "VerifyRepaired"      // per kind, label: the cause; differences sent for repair
	VerifyEqualShare    = "VerifyEqualShare"    // percent of the copy found equal over the window, label: the kind or "all" (a gauge)
	VerifyEqualShareLow = "VerifyEqualShareLow" // its 95% Wilson lower bound, same labels (a gauge)
)

// FunctionConnection is the connection a function's own metrics (ColdStarts) are counted
// under.
const FunctionConnection = "_function"

// Units.
const (
	UnitCount        = "Count"
	UnitMilliseconds = "Milliseconds"
)

// UnitOf is a metric's unit: milliseconds for the timings, a count for everything else.
func UnitOf(name string) string {
	switch name {
	case SyncLatency, IngestDuration, ApplyDuration:
		return UnitMilliseconds
	}
	return UnitCount
}

// Observed reports whether each value of a metric is an observation (a timing, or a
// gauge's reading) rather than a count to add up.
func Observed(name string) bool {
	return UnitOf(name) == UnitMilliseconds || gauge(name)
}

func gauge(name string) bool {
	switch name {
	case HaloBudgetLeft, FallbackActive, BackfillLeft, VerifyEqualShare, VerifyEqualShareLow:
		return true
	}
	return false
}

// Millis is d in whole milliseconds, never negative (a clock ahead of ours reads as 0).
func Millis(d time.Duration) int64 { return max(d.Milliseconds(), 0) }

// Metric identifies one counter: a name, the connection, the kind of object it concerns
// (when it concerns one) and an optional label (a reason or an outcome).
type Metric struct {
	Name       string `json:"name"`
	Connection string `json:"connection"`
	Kind       string `json:"kind,omitempty"`
	Label      string `json:"label,omitempty"`
}

// Memory keeps counters in memory, for the local status page: counts add up, a timing
// adds up its milliseconds and counts its observations (so its average can be shown), a
// gauge keeps its last reading. Kind is not kept: a counter is one connection's, name's
// and label's. Safe for concurrent use.
type Memory struct {
	mu sync.Mutex
	m  map[Metric]int64
	n  map[Metric]int64 // a timing's observations
}

// NewMemory returns empty counters.
func NewMemory() *Memory { return &Memory{m: map[Metric]int64{}, n: map[Metric]int64{}} }

// Count adds n (sets it, for a gauge).
func (c *Memory) Count(m Metric, n int64) {
	m.Kind = ""
	c.mu.Lock()
	switch {
	case gauge(m.Name):
		c.m[m] = n
	case UnitOf(m.Name) == UnitMilliseconds:
		c.m[m] += n
		c.n[m]++
	default:
		c.m[m] += n
	}
	c.mu.Unlock()
}

// Restore sets a counter to a value saved earlier, with its observations for a timing.
func (c *Memory) Restore(e Entry) {
	e.Kind = ""
	c.mu.Lock()
	c.m[e.Metric] = e.Value
	if e.Observations > 0 {
		c.n[e.Metric] = e.Observations
	}
	c.mu.Unlock()
}

// Value returns one counter.
func (c *Memory) Value(m Metric) int64 {
	m.Kind = ""
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[m]
}

// Entry is one counter and its value. A timing's value is the sum of its milliseconds;
// Observations is how many it summed and AvgMS their mean, the figure to show.
type Entry struct {
	Metric
	Value        int64   `json:"value"`
	Observations int64   `json:"observations,omitempty"`
	AvgMS        float64 `json:"avg_ms,omitempty"`
}

// Average is the mean of a timing's observations in milliseconds, rounded to 0.1 ms; 0
// without observations.
func Average(sum, observations int64) float64 {
	if observations <= 0 {
		return 0
	}
	return math.Round(float64(sum)/float64(observations)*10) / 10
}

// Snapshot lists every counter, sorted.
func (c *Memory) Snapshot() []Entry {
	c.mu.Lock()
	out := make([]Entry, 0, len(c.m))
	for k, v := range c.m {
		e := Entry{Metric: k, Value: v}
		if n := c.n[k]; n > 0 {
			e.Observations, e.AvgMS = n, Average(v, n)
		}
		out = append(out, e)
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

// Levels a log line may carry, in Lambda's order (docs/ARCHITECTURE.md, "Observability").
var levels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// LineLevel is the "level" EMF lines carry: the highest of INFO and the given log levels
// (the function's own and Lambda's application log level), so that Lambda's log-level
// filter, which drops a JSON line below its threshold and reads a line without a level as
// INFO, keeps every metric line. Unknown names are ignored; WARNING reads as WARN.
func LineLevel(configured ...string) string {
	top := slices.Index(levels, "INFO")
	for _, l := range configured {
		l = strings.ToUpper(strings.TrimSpace(l))
		if l == "WARNING" {
			l = "WARN"
		}
		top = max(top, slices.Index(levels, l))
	}
	return levels[top]
}

// EMF writes counts as CloudWatch embedded-metric-format JSON lines (docs/ARCHITECTURE.md,
// "Observability"). Each line is one record of the metrics sharing a connection, kind and
// label, under the dimension sets [], [Connection], [Connection, Kind] when the kind is
// set, and [Label], [Connection, Label] when the label is set. A count is its sum; a
// timing or a gauge is the list of its observations. Safe for concurrent use.
type EMF struct {
	mu       sync.Mutex
	w        io.Writer
	now      func() time.Time
	level    string
	buffered bool
	pending  map[dims]*record
	order    []dims
}

// EMFOptions tune the lines.
type EMFOptions struct {
	// Level is the "level" member of every line (default INFO; see LineLevel).
	Level string
	// Buffered keeps counts until Flush, which writes them as one line per connection,
	// kind and label; otherwise each Count writes its line at once.
	Buffered bool
}

// NewEMF writes to w (os.Stdout in Lambda).
func NewEMF(w io.Writer, o EMFOptions) *EMF {
	if o.Level == "" {
		o.Level = "INFO"
	}
	return &EMF{w: w, now: time.Now, level: o.Level, buffered: o.Buffered, pending: map[dims]*record{}}
}

// dims are the dimension values of one record.
type dims struct{ connection, kind, label string }

// record is the metrics of one dims waiting for Flush, in the order first counted.
type record struct {
	names  []string
	sums   map[string]int64
	values map[string][]int64
}

// maxValues is how many values EMF accepts for one metric in one record.
const maxValues = 100

// Count implements the counter.
func (e *EMF) Count(m Metric, n int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.add(m, n)
	if !e.buffered {
		e.flush()
	}
}

// Flush writes what was counted since the last Flush (nothing unless Buffered).
func (e *EMF) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.flush()
}

// add keeps one count. e.mu is held.
func (e *EMF) add(m Metric, n int64) {
	d := dims{m.Connection, m.Kind, m.Label}
	r, ok := e.pending[d]
	if !ok {
		r = &record{sums: map[string]int64{}, values: map[string][]int64{}}
		e.pending[d] = r
		e.order = append(e.order, d)
	}
	_, summed := r.sums[m.Name]
	_, listed := r.values[m.Name]
	if !summed && !listed {
		r.names = append(r.names, m.Name)
	}
	if Observed(m.Name) {
		r.values[m.Name] = append(r.values[m.Name], n)
	} else {
		r.sums[m.Name] += n
	}
}

// flush writes every pending record. e.mu is held.
func (e *EMF) flush() {
	ts := e.now().UnixMilli()
	for _, d := range e.order {
		r := e.pending[d]
		for first := true; first || len(r.values) > 0; first = false {
			e.write(ts, d, r)
		}
	}
	clear(e.pending)
	e.order = e.order[:0]
}

// write writes one line of r, taking its sums and at most maxValues of each list.
func (e *EMF) write(ts int64, d dims, r *record) {
	sets := [][]string{{}, {"Connection"}}
	doc := map[string]any{"level": e.level, "Connection": d.connection}
	if d.kind != "" {
		sets = append(sets, []string{"Connection", "Kind"})
		doc["Kind"] = d.kind
	}
	if d.label != "" {
		sets = append(sets, []string{"Label"}, []string{"Connection", "Label"})
		doc["Label"] = d.label
	}
	var defs []any
	for _, name := range r.names {
		if n, ok := r.sums[name]; ok {
			doc[name] = n
			delete(r.sums, name)
		} else if vs, ok := r.values[name]; ok {
			take := min(len(vs), maxValues)
			if take == 1 {
				doc[name] = vs[0]
			} else {
				doc[name] = vs[:take]
			}
			if take == len(vs) {
				delete(r.values, name)
			} else {
				r.values[name] = vs[take:]
			}
		} else {
			continue
		}
		defs = append(defs, map[string]string{"Name": name, "Unit": UnitOf(name)})
	}
	doc["_aws"] = map[string]any{
		"Timestamp": ts,
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": sets,
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(doc)
	if err != nil {
		return
	}
	_, _ = e.w.Write(append(line, '\n'))
}

// Discard drops every count.
type Discard struct{}

// Count implements the counter.
func (Discard) Count(Metric, int64) {}

// Minute is one connection's activity in one minute, for the trends the local server
// keeps: webhook deliveries accepted and rejected, changes applied, and the sync latency
// (SyncLatency) observed, summed and at its highest.
type Minute struct {
	Connection   string    `json:"connection"`
	Start        time.Time `json:"start"`
	Deliveries   int64     `json:"deliveries"`
	Rejected     int64     `json:"rejected"`
	Applied      int64     `json:"applied"`
	LatencyCount int64     `json:"latency_count"`
	LatencySumMS int64     `json:"latency_sum_ms"`
	LatencyMaxMS int64     `json:"latency_max_ms"`
}
