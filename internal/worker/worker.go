// Package worker applies queued changes to the store: one conditional write per change,
// newest version wins, duplicates and stale changes are acknowledged and counted. A change
// that came with a delivery id (a webhook's) also gets its delivery record: what the
// delivery did to the object, one put.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
)

// Store applies a change with the newest-wins rule of change.Apply (reporting the values
// it replaced), reads what is stored (to skip a fetch the copy no longer needs), and keeps
// delivery records.
type Store interface {
	Apply(ctx context.Context, c change.Change) (change.Result, error)
	Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error)
	RecordDelivery(ctx context.Context, d change.Delivery) error
}

// Fetcher reads from a connection's Halo API: one object (found is false when Halo no
// longer has it), a note with its ticket (parentID), and a ticket's notes.
type Fetcher interface {
	Fetch(ctx context.Context, kind change.Kind, id, parentID string) (fields map[string]any, found bool, err error)
	FetchNotes(ctx context.Context, ticketID string) ([]map[string]any, error)
}

// Counter counts what the worker does.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Worker processes change messages.
type Worker struct {
	store    Store
	count    Counter
	log      *slog.Logger
	conns    map[string]*connection.Connection
	fetchers map[string]Fetcher
	now      func() time.Time
	// deadLetters receives permanent failures directly (SendDeadLettersTo); nil: the
	// queue's redrive policy moves them.
	deadLetters DeadLetterQueue

	beatMu sync.Mutex
	beats  map[string]time.Time // per connection: when this process last wrote the heartbeat
}

// heartbeatEvery bounds how often a process records that webhooks are arriving.
const heartbeatEvery = 30 * time.Second

// New returns a worker over the compiled connections. fetchers holds the Halo API client
// of each connection that configures one: an event-only delivery for a connection without
// one stays pending until a webhook or the poller brings the object.
func New(s Store, c Counter, log *slog.Logger, conns connection.Set, fetchers map[string]Fetcher) *Worker {
	w := &Worker{store: s, count: c, log: log, conns: make(map[string]*connection.Connection, len(conns)), fetchers: fetchers, now: time.Now}
	for _, conn := range conns {
		w.conns[conn.ID] = conn
	}
	return w
}

// connection returns a connection's compiled settings; Process has refused a change for a
// connection that is not configured.
func (w *Worker) connection(id string) *connection.Connection {
	return w.conns[id]
}

// ErrPermanent marks a message that will fail however often it is retried: HandleBatch
// moves it to the dead-letter queue with its reason (or, without one, makes it visible at
// once so the redrive policy moves it), where it can be inspected and replayed.
var ErrPermanent = errors.New("permanent failure")

// PermanentError is a permanent failure with its reason, the label it is counted under
// and the attribute the dead-lettered message carries. It matches ErrPermanent.
type PermanentError struct {
	Reason string
	Err    error
}

func (e *PermanentError) Error() string {
	return "permanent failure (" + e.Reason + "): " + e.Err.Error()
}
func (e *PermanentError) Unwrap() error        { return e.Err }
func (e *PermanentError) Is(target error) bool { return target == ErrPermanent }

func permanent(reason string, err error) error { return &PermanentError{Reason: reason, Err: err} }

// reasonOf is a failure's reason: a permanent failure's own, else "permanent".
func reasonOf(err error) string {
	var p *PermanentError
	if errors.As(err, &p) {
		return p.Reason
	}
	return "permanent"
}

// Process applies one message body and returns the outcome.
func (w *Worker) Process(ctx context.Context, messageID string, body []byte) (change.Outcome, error) {
	return w.process(ctx, messageID, body, nil)
}

// process is Process of a message whose envelope may have been handed over with it in
// this process (message.Received.Envelope): then it is checked as Decode checks it, not
// decoded again.
func (w *Worker) process(ctx context.Context, messageID string, body []byte, handed *message.Envelope) (change.Outcome, error) {
	var env message.Envelope
	var err error
	if handed != nil {
		env, err = message.Check(*handed)
	} else {
		env, err = message.Decode(body)
	}
	if err != nil {
		w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: "_unknown", Label: "undecodable"}, 1)
		w.log.ErrorContext(ctx, "change message undecodable", "message_id", messageID, "reason", "undecodable", "error", err.Error())
		return "", permanent("undecodable", fmt.Errorf("message %s: %w", messageID, err))
	}
	if conn := env.Change.Connection; w.conns[conn] == nil {
		// Queued for a connection the configuration does not name (removed since, or
		// never configured): nothing is written under a connection nobody configured.
		w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: conn, Label: "unknown_connection"}, 1)
		w.log.ErrorContext(ctx, "change for a connection that is not configured", "connection", conn, "kind", env.Change.Kind,
			"id", env.Change.ID, "delivery_id", env.Change.DeliveryID, "message_id", messageID, "reason", "unknown_connection")
		return "", permanent("unknown_connection", fmt.Errorf("message %s: connection %q is not configured", messageID, conn))
	}
	if env.Unknown {
		return w.unknown(ctx, messageID, env)
	}
	return w.apply(ctx, messageID, env.Change, env.ReceivedAt, false)
}

// unknown retries an event of no known kind with the connection's configured names: if
// they now tell its kind, its changes are applied; if not, it fails permanently, so it is
// kept in the dead-letter queue and the alarm on it reports it.
func (w *Worker) unknown(ctx context.Context, messageID string, env message.Envelope) (change.Outcome, error) {
	conn := env.Change.Connection
	events, err := halo.Decode(env.Raw)
	var changes []change.Change
	for i := 0; err == nil && i < len(events); i++ {
		var cs []change.Change
		cs, err = events[i].Changes(conn, w.connection(conn).Events, env.ReceivedAt)
		changes = append(changes, cs...)
	}
	if err != nil {
		w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: conn, Label: "unknown_event"}, 1)
		w.log.ErrorContext(ctx, "unknown event: map its name under the connection's events to keep it", "connection", conn,
			"event", env.Change.Event, "delivery_id", env.Change.DeliveryID, "message_id", messageID, "reason", "unknown_event")
		return "", permanent("unknown_event", fmt.Errorf("event %q: %w", env.Change.Event, err))
	}
	var last change.Outcome
	for _, c := range changes {
		// Decoded here, not at ingest: this is where these changes enter, so they are
		// filtered and cut here (docs/ARCHITECTURE.md, "Filters and stored fields").
		if last, err = w.apply(ctx, messageID, c, env.ReceivedAt, true); err != nil {
			return "", err
		}
	}
	return last, nil
}

// apply applies one change: fetching the object an event-only change announced, then
// writing it, then recording what the delivery did. A change enters the copy's rules
// (filters, stored fields) once, where it enters halosync: a webhook's at ingest, a
// poll's in the poller, and here what the worker brings in itself (entering: fetched
// objects and notes, and events decoded here).
func (w *Worker) apply(ctx context.Context, messageID string, c change.Change, receivedAt time.Time, entering bool) (change.Outcome, error) {
	start := w.now()
	fetcher := w.fetchers[c.Connection]
	if c.Op == change.OpUpsert && !c.HasSnapshot() && fetcher != nil {
		fetched, notes, err := w.resolve(ctx, fetcher, c)
		if err != nil {
			label := "fetch_error"
			if errors.Is(err, ErrPermanent) {
				label = reasonOf(err)
			}
			w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: c.Connection, Kind: string(c.Kind), Label: label}, 1)
			w.log.WarnContext(ctx, "could not fetch the object an event announced", "connection", c.Connection, "kind", c.Kind,
				"id", c.ID, "delivery_id", c.DeliveryID, "message_id", messageID, "error", err.Error())
			return "", fmt.Errorf("fetch %s %s: %w", c.Kind, c.ID, err)
		}
		outcome, err := w.write(ctx, messageID, fetched, receivedAt, start, true)
		if err != nil {
			return "", err
		}
		// An event-only ticket event may be a note added, a status change or a
		// reassignment, each of which adds a note the event does not carry.
		for _, n := range notes {
			if _, err := w.write(ctx, messageID, n, receivedAt, start, true); err != nil {
				return "", err
			}
		}
		return outcome, nil
	}
	return w.write(ctx, messageID, c, receivedAt, start, entering)
}

// write writes one change, and records what it did; a change entering here is first
// filtered and cut to the stored fields. start is when the worker began on the change
// (ApplyDuration).
func (w *Worker) write(ctx context.Context, messageID string, c change.Change, receivedAt, start time.Time, entering bool) (change.Outcome, error) {
	if entering {
		conn := w.connection(c.Connection)
		if c.HasSnapshot() && c.Op == change.OpUpsert {
			if rule, keep := conn.Filter.Match(c); !keep {
				w.count.Count(metrics.Metric{Name: metrics.ChangesFiltered, Connection: c.Connection, Kind: string(c.Kind), Label: rule}, 1)
				w.log.InfoContext(ctx, "change filtered", "connection", c.Connection, "kind", c.Kind, "id", c.ID, "rule", rule)
				w.record(ctx, messageID, c, change.Result{Outcome: change.Filtered}, rule, receivedAt)
				return change.Filtered, nil
			}
		}
		// What the worker fetches or decodes is checked against the time it does so.
		c, _ = connection.CheckVersion(ctx, conn.Versions, c, w.now(), w.count, w.log)
		c = conn.Fields.Apply(c)
	}
	if c.Op == change.OpUpsert && c.Deleted() {
		c.Op = change.OpDelete // Halo keeps deleted tickets, flagged: the copy keeps a tombstone
	}
	res, err := w.store.Apply(ctx, c)
	if err != nil {
		reason := "store_error"
		if errors.Is(err, change.ErrInvalid) {
			reason, err = "invalid", permanent("invalid", err)
		}
		w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: c.Connection, Kind: string(c.Kind), Label: reason}, 1)
		w.log.ErrorContext(ctx, "change not applied", "connection", c.Connection, "kind", c.Kind, "id", c.ID,
			"version", c.Version, "delivery_id", c.DeliveryID, "message_id", messageID, "reason", reason, "error", err.Error())
		return "", fmt.Errorf("apply %s %s: %w", c.Kind, c.ID, err)
	}
	now, kind := w.now(), string(c.Kind)
	w.count.Count(metrics.Metric{Name: metrics.ApplyDuration, Connection: c.Connection, Kind: kind}, metrics.Millis(now.Sub(start)))
	w.count.Count(metrics.Metric{Name: metrics.ChangesApplied, Connection: c.Connection, Kind: kind, Label: string(res.Outcome)}, 1)
	if at, ok := eventTime(c, receivedAt); ok && res.Outcome == change.Applied {
		w.count.Count(metrics.Metric{Name: metrics.SyncLatency, Connection: c.Connection, Kind: kind}, metrics.Millis(now.Sub(at)))
	}
	if c.Repairs != 0 && res.Outcome == change.Applied {
		w.count.Count(metrics.Metric{Name: metrics.VersionsRepaired, Connection: c.Connection, Kind: kind, Label: kind}, 1)
		w.log.WarnContext(ctx, "stored version was ahead of Halo's marker: replaced by Halo's object", "connection", c.Connection,
			"kind", c.Kind, "id", c.ID, "version_was", c.Repairs, "version", c.Version, "message_id", messageID)
	}
	summary := w.record(ctx, messageID, c, res, "", receivedAt)
	if w.log.Enabled(ctx, slog.LevelInfo) { // the line's fields cost allocations of their own
		attrs := []any{"connection", c.Connection, "kind", c.Kind, "id", c.ID, "version", c.Version, "outcome", res.Outcome,
			"source", c.Source, "delivery_id", c.DeliveryID, "event", c.Event}
		if client := c.ClientID(); client != "" {
			// The Halo client the object belongs to: the dashboard's most active clients
			// (a Contributor Insights rule on this line), not a metric dimension.
			attrs = append(attrs, "client_id", client)
		}
		if summary != "" {
			attrs = append(attrs, "summary", summary)
		}
		w.log.InfoContext(ctx, "change processed", attrs...)
	}
	if c.Source == change.SourceWebhook && res.Outcome != change.Filtered {
		w.heartbeat(ctx, c.Connection)
	}
	return res.Outcome, nil
}

// eventTime is when Halo says the change happened, which SyncLatency is measured from:
// the delivery's timestamp (a webhook's occurred-at, unless ingest filled it with the
// receipt time), else the object's change marker (the version, when read from it); ok is
// false when the change carries neither (a version from its receipt, clamped, or a
// reconcile's), and for a backfill's change, whose marker may be months old.
func eventTime(c change.Change, receivedAt time.Time) (time.Time, bool) {
	if c.Backfill {
		return time.Time{}, false
	}
	if c.Source == change.SourceWebhook && !c.OccurredAt.IsZero() && !c.OccurredAt.Equal(receivedAt) {
		return c.OccurredAt, true
	}
	if spec, ok := change.Lookup(c.Kind); ok && c.Version > 0 && c.VersionFrom == spec.VersionField {
		return time.Unix(0, c.Version), true
	}
	return time.Time{}, false
}

// record writes the delivery record of a change that came with a delivery id (webhooks;
// poll results have none): its outcome, whatever it is, and for an applied change the
// fields whose value it changed (change.NewDelivery). It is the change's second write,
// one put after the conditional state write.
//
// A failure to record is logged and counted (ChangesFailed, label delivery_record) but
// does not fail the message: the state is already written, and processing the message
// again would only find its change stored, a duplicate, and could not tell what it had
// changed. The record is an account of deliveries, not part of the copy.
//
// It returns the record's summary, "" when there is no record.
func (w *Worker) record(ctx context.Context, messageID string, c change.Change, res change.Result, reason string, receivedAt time.Time) string {
	if c.DeliveryID == "" {
		return ""
	}
	d := change.NewDelivery(c, res, receivedAt, w.now())
	if reason != "" {
		d.Reason = reason
		d.Summary = d.Summarize()
	}
	if d.Outcome == change.Duplicate {
		// The duplicate may be this delivery's own write, applied once already with its
		// answer lost (a timeout or a dropped connection after the store acted): the
		// stored object then names this delivery at this version, and the record says the
		// delivery applied it, without a replaced record's knowledge of what it changed.
		if o, ok, err := w.store.Get(ctx, c.Connection, c.Kind, c.ID, c.ParentID); err == nil && ok {
			// Only a duplicate of this delivery's own version costs the records' read.
			if r := d.Recovered(o); r.ChangesUnknown && !w.recorded(ctx, d) {
				d = r
			}
		}
	}
	if err := w.store.RecordDelivery(ctx, d); err != nil {
		w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: c.Connection, Kind: string(c.Kind), Label: "delivery_record"}, 1)
		w.log.WarnContext(ctx, "delivery record not written; the change is applied", "connection", c.Connection, "kind", c.Kind,
			"id", c.ID, "version", c.Version, "outcome", res.Outcome, "delivery_id", c.DeliveryID, "message_id", messageID, "error", err.Error())
	}
	return d.Summary
}

// recorded reports whether the store already keeps a record of d's delivery and object:
// then a duplicate is a plain redelivery, not a write whose answer was lost. A store that
// cannot tell counts as having none (the record's write is conditional either way).
func (w *Worker) recorded(ctx context.Context, d change.Delivery) bool {
	r, ok := w.store.(interface {
		Deliveries(ctx context.Context, conn, deliveryID string) ([]change.Delivery, error)
	})
	if !ok {
		return false
	}
	ds, err := r.Deliveries(ctx, d.Connection, d.DeliveryID)
	return err == nil && slices.ContainsFunc(ds, func(old change.Delivery) bool {
		return old.Kind == d.Kind && old.ID == d.ID && old.Version == d.Version
	})
}

// resolve turns an event-only change into one with the object's fields, fetched from
// Halo, unless the copy is already at least as new as the event (a duplicate delivery, or
// one that came after a newer change): then the change goes on as it is, and the store
// counts it. An object Halo no longer has becomes a tombstone at the event's version.
//
// The fetched object's version is the later of its own change marker and the event's:
// what Halo returns now includes every change up to the event, so a later change always
// carries a newer marker, and the pending marker the event may have left is cleared. For a
// ticket it also reads the ticket's notes: the event may be a note added, a status change
// or a reassignment, which add notes the event does not carry; the store keeps the newer.
func (w *Worker) resolve(ctx context.Context, f Fetcher, c change.Change) (change.Change, []change.Change, error) {
	spec, _ := change.Lookup(c.Kind)
	if spec.Parent != "" && c.ParentID == "" {
		// Halo reads a note only with its ticket (docs/HALO.md, "The calls halosync
		// makes"), and the copy keeps it under the ticket: an event naming neither cannot
		// be resolved. The poller brings the note with its ticket's notes.
		return c, nil, permanent("no_ticket", fmt.Errorf("%s %s: the delivery names no %s, which reading it from Halo needs", c.Kind, c.ID, spec.Parent))
	}
	stored, ok, err := w.store.Get(ctx, c.Connection, c.Kind, c.ID, c.ParentID)
	if err != nil {
		return c, nil, fmt.Errorf("read the copy: %w", err)
	}
	if ok && stored.Version >= c.Version {
		// The ticket itself is as new as the event, but a note the event announced may not
		// be: a later change to the ticket, delivered first, carries only its own note.
		notes, err := w.notes(ctx, f, c)
		return c, notes, err
	}
	fields, found, err := f.Fetch(ctx, c.Kind, c.ID, c.ParentID)
	if err != nil {
		return c, nil, err
	}
	if !found {
		w.count.Count(metrics.Metric{Name: metrics.ChangesFetched, Connection: c.Connection, Kind: string(c.Kind), Label: "not_found"}, 1)
		c.Op = change.OpDelete
		return c, nil, nil
	}
	w.count.Count(metrics.Metric{Name: metrics.ChangesFetched, Connection: c.Connection, Kind: string(c.Kind), Label: "found"}, 1)
	c.Fields = fields
	if s, ok := fields[spec.VersionField].(string); ok {
		if t, ok, err := change.ParseHaloTime(s); err == nil && ok && change.VersionOf(t) > c.Version {
			c.Version, c.VersionFrom = change.VersionOf(t), spec.VersionField
		}
	}
	notes, err := w.notes(ctx, f, c)
	return c, notes, err
}

// notes lists a ticket's notes as changes (none for other kinds); the store keeps what is
// newer than the copy.
func (w *Worker) notes(ctx context.Context, f Fetcher, c change.Change) ([]change.Change, error) {
	if c.Kind != change.Ticket {
		return nil, nil
	}
	listed, err := f.FetchNotes(ctx, c.ID)
	if err != nil {
		return nil, fmt.Errorf("notes of ticket %s: %w", c.ID, err)
	}
	notes := make([]change.Change, 0, len(listed))
	actions, _ := change.Lookup(change.Action)
	for _, n := range listed {
		id, err := change.CanonicalID(n["id"])
		if err != nil || id == "" {
			continue // a note without an id cannot be stored; the poller reconciles
		}
		s, _ := n[actions.VersionField].(string)
		t, ok, terr := change.ParseHaloTime(s)
		note := change.Change{Connection: c.Connection, Kind: change.Action, ID: id, ParentID: c.ID,
			Op: change.OpUpsert, OccurredAt: t, Source: c.Source, DeliveryID: c.DeliveryID, Event: c.Event, Fields: n}
		if terr != nil || !ok {
			// A note without its marker cannot be ordered against the copy: counted as
			// missing and left to the poller.
			connection.CheckVersion(ctx, w.connection(c.Connection).Versions, note, w.now(), w.count, w.log)
			continue
		}
		note.Version, note.VersionFrom = change.VersionOf(t), actions.VersionField
		notes = append(notes, note)
	}
	return notes, nil
}

// heartbeat records, at most every heartbeatEvery per connection and process, that a
// webhook change was applied: the poller's measure of the webhooks' health. A store that
// keeps no cursors, or a failed write, only costs the poller that measure.
func (w *Worker) heartbeat(ctx context.Context, conn string) {
	cursors, ok := w.store.(poller.Cursors)
	if !ok {
		return
	}
	now := w.now()
	w.beatMu.Lock()
	if now.Sub(w.beats[conn]) < heartbeatEvery {
		w.beatMu.Unlock()
		return
	}
	if w.beats == nil {
		w.beats = map[string]time.Time{}
	}
	w.beats[conn] = now
	w.beatMu.Unlock()
	if err := poller.Heartbeat(ctx, cursors, conn, now); err != nil {
		w.log.WarnContext(ctx, "could not record the webhook heartbeat", "connection", conn, "error", err.Error())
	}
}

// The retry delay of a message whose change failed for a reason that may pass (the store
// or Halo's API unavailable, throttled or slow): long enough that an outage of hours is
// waited out within the queue's receive limit (RetryHorizon), and jittered so that the
// messages one outage failed do not all come back at the same moment.
const (
	backoffBase   = 2 * time.Second
	backoffCap    = 15 * time.Minute
	backoffJitter = 0.2 // ± this fraction, at random
)

// Backoff is the visibility delay after the n-th receive of a message failed (n ≥ 1):
// 2 s doubling to at most 15 minutes, each ±20 % at random. At most 18 minutes, well
// under SQS's 12-hour limit of a visibility timeout.
func Backoff(receiveCount int) time.Duration {
	d := nominalBackoff(receiveCount)
	return time.Duration(float64(d) * (1 - backoffJitter + 2*backoffJitter*rand.Float64()))
}

// nominalBackoff is Backoff without its jitter.
func nominalBackoff(receiveCount int) time.Duration {
	d := backoffBase
	for i := 1; i < receiveCount && d < backoffCap; i++ {
		d *= 2
	}
	return min(d, backoffCap)
}

// RetryHorizon is how long, at the least whatever the jitter, a message failing for a
// reason that may pass is retried when the queue moves it to the dead-letter queue after
// maxReceive receives: the time from its first attempt to its last, the sum of the delays
// after the first maxReceive-1 failures, each at its shortest. An outage of the store or
// of Halo's API shorter than this loses nothing and dead-letters nothing.
func RetryHorizon(maxReceive int) time.Duration {
	var h time.Duration
	for n := 1; n < maxReceive; n++ {
		h += time.Duration(float64(nominalBackoff(n)) * (1 - backoffJitter))
	}
	return h
}
