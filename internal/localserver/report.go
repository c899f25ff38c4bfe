package localserver

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
	"github.com/halosync/halosync/internal/verify"
)

// ObjectCounter counts the copy's objects per connection and kind (sqlite.Store does);
// a store that cannot leaves the status without object counts.
type ObjectCounter interface {
	CountObjects(ctx context.Context) ([]sqlite.ObjectCount, error)
}

// DeadLetterPeek reads the dead-letter queue's newest messages without receiving them
// (sqlite.Queue does).
type DeadLetterPeek interface {
	PeekNewest(ctx context.Context, limit int) ([]message.Received, error)
}

// Status document limits: how many dead letters it lists, and how long object counts are
// reused at least (each is a scan of an index, about 30 ms per 200,000 objects, and every
// open stream asks every second): a count is reused for 20 times as long as it took, so
// counting takes at most a twentieth of one reader's time on a large copy.
const (
	newestDeadLetters = 5
	objectCountsFor   = time.Second
	objectCountsShare = 20
)

// Report is GET /status, and the "status" event of GET /events. Counters, connections,
// demo_connections, queue and dead_letter_queue are the first fields it had; callers read
// them still.
type Report struct {
	Counters        []metrics.Entry             `json:"counters"`
	Connections     []string                    `json:"connections"`
	Demo            []string                    `json:"demo_connections,omitempty"`
	Queue           *QueueDepth                 `json:"queue,omitempty"`
	DeadLetterQueue *QueueDepth                 `json:"dead_letter_queue,omitempty"`
	DeadLetters     *DeadLetters                `json:"dead_letters,omitempty"`
	ByConnection    map[string]ConnectionReport `json:"by_connection"`
}

// QueueDepth is a queue's messages waiting and in flight.
type QueueDepth struct {
	Visible  int `json:"visible"`
	InFlight int `json:"in_flight"`
}

// DeadLetters are the dead-letter queue's count and newest messages, each with its reason.
type DeadLetters struct {
	Count  int          `json:"count"`
	Newest []DeadLetter `json:"newest"`
}

// DeadLetter is one message of the dead-letter queue, by its attributes.
type DeadLetter struct {
	ID         string    `json:"id"`
	Connection string    `json:"connection,omitempty"`
	Kind       string    `json:"kind,omitempty"`
	Reason     string    `json:"reason"` // failure_reason; "unknown" when the redrive policy moved it
	SentAt     time.Time `json:"sent_at"`
	Receives   int       `json:"receives"`
}

// ConnectionReport is one connection's state, for people.
type ConnectionReport struct {
	Demo bool `json:"demo,omitempty"`
	// SyncMode is the connection's poll.mode (hybrid, poll, webhook); Polled is false for
	// a connection without halo: settings, which only webhooks keep in sync.
	SyncMode string         `json:"sync_mode"`
	Polled   bool           `json:"polled"`
	Fallback FallbackReport `json:"fallback"`
	// LastDelivery is when the webhook endpoint last accepted a delivery for it;
	// LastWebhookChange when the worker last applied a change a webhook carried.
	LastDelivery      *time.Time             `json:"last_delivery,omitempty"`
	LastWebhookChange *time.Time             `json:"last_webhook_change,omitempty"`
	Webhook           WebhookReport          `json:"webhook"`
	Objects           map[change.Kind]int64  `json:"objects,omitempty"`
	Backfill          []BackfillReport       `json:"backfill,omitempty"`
	SyncLatencyMS     LatencyReport          `json:"sync_latency_ms"`
	Errors            map[string]LabelCounts `json:"errors"`
	// Endpoints are the deliveries accepted through each endpoint, primary (the webhook
	// route) and backup (the backup route), DeliveriesByEndpoint.
	Endpoints LabelCounts `json:"deliveries_by_endpoint"`
	// Verification is the copy checked against Halo over the connection's window
	// (docs/ARCHITECTURE.md, "Verification"); absent before anything was checked.
	Verification *verify.Report `json:"verification,omitempty"`
}

// FallbackReport says whether the poller polls at the fallback interval because the
// webhooks look unhealthy, and since when.
type FallbackReport struct {
	Active bool       `json:"active"`
	Since  *time.Time `json:"since,omitempty"`
}

// WebhookReport is the managed webhook's last check in Halo (webhook.manage), made by the
// poller's runs.
type WebhookReport struct {
	Managed   bool       `json:"managed"`
	CheckedAt *time.Time `json:"checked_at,omitempty"`
	Healthy   *bool      `json:"healthy,omitempty"`
}

// BackfillReport is where one kind's first full read stands: "pending" (not begun, or
// begun before this server started), "running" with its figures, or "done".
type BackfillReport struct {
	Kind  change.Kind `json:"kind"`
	State string      `json:"state"`
	// Phase is a ticket backfill's phase while it runs: open tickets, closed tickets, or
	// notes (kind action).
	Phase       string  `json:"phase,omitempty"`
	Done        int     `json:"done,omitempty"`
	Total       int     `json:"total,omitempty"` // 0 while Halo gave no record_count
	PerSecond   float64 `json:"per_second,omitempty"`
	LeftSeconds int64   `json:"left_seconds,omitempty"`
	Left        string  `json:"left,omitempty"`
}

// LatencyReport is the sync latency in milliseconds: the mean over every change applied,
// and the mean and highest over the last hour.
type LatencyReport struct {
	Avg         float64 `json:"avg"`
	LastHourAvg float64 `json:"last_hour_avg"`
	LastHourMax int64   `json:"last_hour_max"`
}

// LabelCounts are one counter's values by label.
type LabelCounts map[string]int64

// errorCounters are the counters the error summary shows, by its names for them.
var errorCounters = map[string]string{
	"rejected":      metrics.DeliveriesRejected,
	"failed":        metrics.ChangesFailed,
	"dead_lettered": metrics.ChangesDeadLettered,
	"polls_failed":  metrics.PollsFailed,
}

// backfilledKinds are the kinds a first sync reads, in the poller's order; notes come
// with their tickets, or after them in a phase of their own.
var backfilledKinds = []change.Kind{change.Client, change.Contact, change.Asset, change.Ticket, change.Action}

// objectCounts reuses one count of the copy's objects for objectCountsFor.
type objectCounts struct {
	mu   sync.Mutex
	at   time.Time     // when the last count ended
	took time.Duration // how long it took
	last map[string]map[change.Kind]int64
}

func (o *objectCounts) get(ctx context.Context, c ObjectCounter) map[string]map[change.Kind]int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.last != nil && time.Since(o.at) < max(objectCountsFor, objectCountsShare*o.took) {
		return o.last
	}
	start := time.Now()
	counts, err := c.CountObjects(ctx)
	if err != nil {
		return o.last // the previous count, rather than none
	}
	m := map[string]map[change.Kind]int64{}
	for _, n := range counts {
		if m[n.Connection] == nil {
			m[n.Connection] = map[change.Kind]int64{}
		}
		m[n.Connection][n.Kind] = n.Count
	}
	o.last, o.at, o.took = m, time.Now(), time.Since(start)
	return m
}

// report builds the status document. A part that cannot be read now is left out.
func (s *Server) report(ctx context.Context) Report {
	conns := slices.Sorted(func(yield func(string) bool) {
		for c := range s.connections {
			if !yield(c) {
				return
			}
		}
	})
	counters := s.counts.Snapshot()
	out := Report{Counters: counters, Connections: conns, Demo: s.demo, ByConnection: map[string]ConnectionReport{}}
	if qs, ok := s.queue.(QueueStats); ok {
		if v, f, err := qs.Stats(ctx); err == nil {
			out.Queue = &QueueDepth{v, f}
		}
	}
	if s.dlq != nil {
		if v, f, err := s.dlq.Stats(ctx); err == nil {
			out.DeadLetterQueue = &QueueDepth{v, f}
			out.DeadLetters = s.deadLetters(ctx, v+f)
		}
	}
	var objects map[string]map[change.Kind]int64
	if oc, ok := s.store.(ObjectCounter); ok {
		objects = s.objects.get(ctx, oc)
	}
	polled := map[string]bool{}
	for _, c := range s.pipeline.Poller.Connections() {
		polled[c] = true
	}
	hourAgo := s.now().Add(-time.Hour)
	for _, id := range conns {
		cs := ConnectionReport{Demo: slices.Contains(s.demo, id), SyncMode: "webhook", Polled: polled[id], Errors: map[string]LabelCounts{},
			Endpoints: LabelCounts{change.EndpointPrimary: 0, change.EndpointBackup: 0}}
		if c, ok := s.pipeline.Connections.Get(id); ok && cs.Polled {
			cs.SyncMode = c.Poll.Mode
			cs.Webhook.Managed = c.Config.Webhook.Manage != nil
		}
		if cs.Polled {
			if st, err := poller.ReadState(ctx, s.store, id); err == nil {
				cs.Fallback = FallbackReport{Active: st.Fallback, Since: timeOrNil(st.Switched)}
				if !st.Fallback {
					cs.Fallback.Since = nil
				}
				if cs.Webhook.Managed && !st.WebhookChecked.IsZero() {
					healthy := st.WebhookHealthy
					cs.Webhook.CheckedAt, cs.Webhook.Healthy = timeOrNil(st.WebhookChecked), &healthy
				}
			}
			cs.Backfill = s.backfillOf(ctx, id)
			if c, ok := s.pipeline.Connections.Get(id); ok {
				cs.Verification, _ = poller.ReadVerification(ctx, s.store, id, c.Verify.Window, s.now())
			}
		}
		cs.LastDelivery = timeOrNil(s.activity.lastDelivery(id))
		if at, err := poller.LastWebhook(ctx, s.store, id); err == nil {
			cs.LastWebhookChange = timeOrNil(at)
		}
		if objects != nil {
			cs.Objects = objects[id]
			if cs.Objects == nil {
				cs.Objects = map[change.Kind]int64{}
			}
		}
		var latSum, latN int64
		for _, m := range s.activity.trend(id, hourAgo) {
			latSum += m.LatencySumMS
			latN += m.LatencyCount
			cs.SyncLatencyMS.LastHourMax = max(cs.SyncLatencyMS.LastHourMax, m.LatencyMaxMS)
		}
		cs.SyncLatencyMS.LastHourAvg = metrics.Average(latSum, latN)
		for _, e := range counters {
			if e.Connection != id {
				continue
			}
			switch {
			case e.Name == metrics.SyncLatency && e.Label == "":
				cs.SyncLatencyMS.Avg = e.AvgMS
			case e.Name == metrics.DeliveriesByEndpoint:
				cs.Endpoints[e.Label] += e.Value
			}
			for name, metric := range errorCounters {
				if e.Name == metric && e.Value > 0 {
					if cs.Errors[name] == nil {
						cs.Errors[name] = LabelCounts{}
					}
					cs.Errors[name][e.Label] += e.Value
				}
			}
		}
		out.ByConnection[id] = cs
	}
	return out
}

// backfillOf is where each kind's first sync stands: the poller's newest report from
// this server's run, else what the kind's cursor says. Notes (kind action) are listed
// only once the poller reported a notes phase: they are read with the tickets, whose
// cursor says when they are done.
func (s *Server) backfillOf(ctx context.Context, conn string) []BackfillReport {
	var out []BackfillReport
	for _, kind := range backfilledKinds {
		cursorKind := kind
		if kind == change.Action {
			cursorKind = change.Ticket
		}
		done := false
		if c, err := poller.ReadCursor(ctx, s.store, conn, cursorKind); err == nil {
			done = c.Backfilled
		}
		p, reported := s.backfills.of(conn, kind)
		reported = reported && p.What == "backfill"
		b := BackfillReport{Kind: kind, State: "pending"}
		switch {
		case reported && !p.Finished:
			b.State, b.Phase = "running", p.Phase
			if p.Total >= 0 {
				b.Done, b.Total, b.PerSecond = p.Done, p.Total, p.PerSecond
				b.LeftSeconds, b.Left = int64(p.Left/time.Second), p.Left.String()
			}
		case done:
			b.State = "done"
		case reported:
			b.State = "running" // between two phases, or paused until the next run
		case kind == change.Action:
			continue
		}
		out = append(out, b)
	}
	return out
}

// deadLetters lists the dead-letter queue's newest messages by their attributes; the
// bodies are not read.
func (s *Server) deadLetters(ctx context.Context, count int) *DeadLetters {
	out := &DeadLetters{Count: count, Newest: []DeadLetter{}}
	peek, ok := s.dlq.(DeadLetterPeek)
	if !ok || count == 0 {
		return out
	}
	msgs, err := peek.PeekNewest(ctx, newestDeadLetters)
	if err != nil {
		return out
	}
	for _, m := range msgs {
		reason := m.Attributes[message.AttrFailureReason]
		if reason == "" {
			reason = "unknown"
		}
		out.Newest = append(out.Newest, DeadLetter{ID: m.ID, Connection: m.Attributes[message.AttrConnection],
			Kind: m.Attributes[message.AttrKind], Reason: reason, SentAt: m.SentAt, Receives: m.ReceiveCount})
	}
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.report(r.Context()))
}

// trendMinute is one minute of GET /trends.
type trendMinute struct {
	Connection   string    `json:"connection"`
	Start        time.Time `json:"start"`
	Deliveries   int64     `json:"deliveries"`
	Rejected     int64     `json:"rejected"`
	Applied      int64     `json:"applied"`
	LatencyAvgMS float64   `json:"latency_avg_ms"`
	LatencyMaxMS int64     `json:"latency_max_ms"`
}

// DefaultTrendHours is how many hours GET /trends answers without ?hours=.
const DefaultTrendHours = 3

// trends is GET /trends: the per-minute trends of the last ?hours= (default
// DefaultTrendHours; more than TrendWindow reads as all of it), of ?connection= only when given, minutes
// without activity left out.
func (s *Server) trends(w http.ResponseWriter, r *http.Request) {
	hours := DefaultTrendHours
	if n, err := strconv.Atoi(r.URL.Query().Get("hours")); err == nil && n >= 1 {
		hours = min(n, int(TrendWindow/time.Hour))
	}
	now := s.now().UTC()
	since := now.Add(-time.Duration(hours) * time.Hour).Truncate(time.Minute)
	out := []trendMinute{}
	for _, m := range s.activity.trend(r.URL.Query().Get("connection"), since) {
		out = append(out, trendMinute{Connection: m.Connection, Start: m.Start, Deliveries: m.Deliveries, Rejected: m.Rejected,
			Applied: m.Applied, LatencyAvgMS: metrics.Average(m.LatencySumMS, m.LatencyCount), LatencyMaxMS: m.LatencyMaxMS})
	}
	writeJSON(w, http.StatusOK, map[string]any{"since": since, "until": now, "minutes": out})
}
