// Package poller is halosync's safety net: it asks a connection's Halo API what changed
// since its stored cursor and feeds the same queue as the webhooks, with the same change
// envelopes (source "poll"), so the worker stays the only writer. What it finds that the
// copy lacks is the webhook gap, counted per kind.
package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/filter"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storedfields"
)

// Lister reads a kind's objects from the Halo API (haloapi.Client): lists them, or reads
// one, a note with its ticket (haloapi.ErrNotFound when Halo no longer has it).
type Lister interface {
	List(ctx context.Context, kind change.Kind, q haloapi.ListQuery, fn func(page []map[string]any) error) error
	Read(ctx context.Context, kind change.Kind, id, parentID string) (map[string]any, error)
}

// Sender enqueues changes for the worker.
type Sender interface {
	Send(ctx context.Context, msgs []message.Message) error
}

// Copy reads what the copy holds, to enqueue only what is newer.
type Copy interface {
	Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error)
}

// Cursors keeps the poller's state per connection: one document per name (a kind's
// cursor, or the schedule's state), stored as the store's cursor items
// (C#<conn>#CURSOR, <name>). The store keeps the bytes; the poller owns their meaning.
type Cursors interface {
	LoadCursor(ctx context.Context, conn, name string) ([]byte, bool, error)
	SaveCursor(ctx context.Context, conn, name string, doc []byte) error
}

// Counter counts what the poller finds.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Cursor is how far the poller has read one kind of one connection.
type Cursor struct {
	// Watermark: the next incremental read asks for changes since Watermark - Overlap.
	Watermark time.Time `json:"watermark"`
	// LastRun is when the kind was last read completely.
	LastRun time.Time `json:"last_run"`
	// Backfilled is set once the first full read finished; until then NextPage says
	// where it resumes and BackfillStarted when it began.
	Backfilled      bool      `json:"backfilled"`
	NextPage        int       `json:"next_page,omitempty"`
	BackfillStarted time.Time `json:"backfill_started,omitempty"`
	// Phase is where a ticket backfill stands (NextPage counts pages within it): "open"
	// (open tickets, the most recently changed first), "closed" (then the closed ones,
	// likewise), "notes" (notes across tickets by date window, newest first).
	Phase string `json:"phase,omitempty"`
	// NotesBefore: the notes backfill has read every note dated from here on; NotesSpan
	// is the window it asks next.
	NotesBefore time.Time     `json:"notes_before,omitzero"`
	NotesSpan   time.Duration `json:"notes_span,omitempty"`
	NotesRead   int           `json:"notes_read,omitempty"` // by earlier runs, for progress
	// Oldest is the earliest opening date of the tickets a backfill read: notes older
	// than it are asked for in one window.
	Oldest time.Time `json:"oldest,omitzero"`
	// BulkNotes is whether the tenant lists notes across tickets: "yes", "no", or ""
	// before the probe; NotesTotal is how many notes the probe counted (-1: unknown).
	BulkNotes  string `json:"bulk_notes,omitempty"`
	NotesTotal int    `json:"notes_total,omitempty"`
	// ScanPage is the next page of a scanned kind's slow scan (0: a new round), ScanPages
	// the pages its last round counted, SliceAt when its last slice was read.
	ScanPage  int       `json:"scan_page,omitempty"`
	ScanPages int       `json:"scan_pages,omitempty"`
	SliceAt   time.Time `json:"slice_at,omitzero"`
	// Filtered is, for a kind in Auto mode, whether the tenant filters it by
	// lastupdatefromdate: "yes", "no", or "" before the probe.
	Filtered string `json:"filtered,omitempty"`
}

// Mode is how a kind's changes are found.
type Mode string

const (
	// Incremental asks Halo for what changed since the watermark (lastupdatefromdate).
	Incremental Mode = "incremental"
	// Scan lists every object and enqueues those newer than the copy: for kinds whose
	// last-update filter Halo may not honour.
	Scan Mode = "scan"
	// Auto asks the tenant once (per first sync) whether it filters the kind by
	// lastupdatefromdate, and reads it incrementally if so, by scan otherwise.
	Auto Mode = "auto"
)

// Options tune a poller.
type Options struct {
	// Overlap is subtracted from the watermark, against clock skew and late commits
	// (default 2 minutes).
	Overlap time.Duration
	// Modes per kind; default incremental for tickets, scan for the others (Halo's
	// last-update filter is confirmed for tickets only).
	Modes map[change.Kind]Mode
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ProgressEvery is how often a long read logs its progress (default
	// DefaultProgressEvery).
	ProgressEvery time.Duration
	// Fields is the connection's stored-fields policy, applied before anything is queued.
	Fields *storedfields.Policy
	// Filter is the connection's filters, applied to what is read before it is queued.
	Filter *filter.Rules
	// Versions is the connection's version rule: what is read is checked against the
	// time it was read (docs/ARCHITECTURE.md, "Versions").
	Versions change.VersionRule
	// Progress, when set, is told where each long read stands (the local dashboard's
	// backfill progress); nil: progress is only logged.
	Progress ProgressReporter
	// BulkNotes is how notes are listed: "auto" (default: across tickets by date window
	// once a probe shows the tenant answers it), "on", "off" (per ticket). Connections
	// with filters list per ticket: a note read in bulk could not be judged by its
	// ticket.
	BulkNotes string
	// NotesMaxAge leaves closed tickets' notes dated before the backfill's start less
	// this out of the backfill (0: every note).
	NotesMaxAge time.Duration
	// Share, when set, is the poller's part of the connection's budget: every request it
	// makes also takes a unit of Share, and deferrable reads (backfill pages, scan
	// slices) stop for the run when Share is spent.
	Share *haloapi.Budget
	// ScanEvery spreads the full scan of scanned kinds over this long, a slice per poll;
	// 0: every poll scans them in full.
	ScanEvery time.Duration
	// Verify is the connection's continuous verification, run after each run's own work
	// in what it leaves of Share (docs/ARCHITECTURE.md, "Verification"); off without a
	// Share.
	Verify connection.Verify
}

// order is the order kinds are read in: tickets first, so that a first sync brings the
// open tickets within minutes (each kind is stored on its own, nothing waits for its
// owner); notes are read with their tickets.
var order = []change.Kind{change.Ticket, change.Client, change.Contact, change.Asset}

// Poller reads one connection.
type Poller struct {
	conn    string
	halo    Lister
	queue   Sender
	copy    Copy
	cursors Cursors
	count   Counter
	log     *slog.Logger
	opts    Options
}

// New returns a poller for one connection.
func New(conn string, l Lister, s Sender, c Copy, cur Cursors, count Counter, log *slog.Logger, opts Options) *Poller {
	if opts.Overlap <= 0 {
		opts.Overlap = connection.DefaultOverlap
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = DefaultProgressEvery
	}
	if opts.BulkNotes == "" {
		opts.BulkNotes = "auto"
	}
	if opts.Versions.MaxSkew <= 0 {
		opts.Versions.MaxSkew = change.DefaultMaxVersionSkew
	}
	return &Poller{conn: conn, halo: l, queue: s, copy: c, cursors: cur, count: count, log: log, opts: opts}
}

// Report says what one poll found, per kind.
type Report struct {
	Read     map[change.Kind]int // objects Halo returned
	Enqueued map[change.Kind]int // of them, newer than the copy
	Gap      map[change.Kind]int // of those, found after the first sync: the webhooks missed them
	// Queued holds the ids of every object the poll enqueued, so a reconcile in the same
	// run, which sees the copy before the worker applied them, neither fetches them again
	// nor tombstones them a second time.
	Queued map[change.Kind]map[string]bool
}

func (r *Report) add(kind change.Kind, read, enqueued, gap int) {
	r.Read[kind] += read
	r.Enqueued[kind] += enqueued
	r.Gap[kind] += gap
}

// Poll reads every kind once. A kind that fails keeps its cursor and the others go on;
// the errors are returned together.
func (p *Poller) Poll(ctx context.Context) (Report, error) {
	r := Report{Read: map[change.Kind]int{}, Enqueued: map[change.Kind]int{}, Gap: map[change.Kind]int{},
		Queued: map[change.Kind]map[string]bool{}}
	var errs []error
	ctx = haloapi.WithBudget(ctx, p.opts.Share)
	for _, kind := range order {
		if p.spent() {
			// A backfill paused with the share spent: the kinds after it wait for the next
			// run rather than wait on the budget here, so each run begins with tickets again
			// and a first sync brings the open tickets before anything else.
			p.log.InfoContext(ctx, "poll deferred to the next run: the poller's share of the budget is spent", "connection", p.conn, "kind", kind)
			break
		}
		if err := p.pollKind(ctx, kind, &r); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", kind, err))
			p.log.ErrorContext(ctx, "poll failed", "connection", p.conn, "kind", kind, "error", err.Error())
		}
	}
	for kind, n := range r.Enqueued {
		if n > 0 {
			p.count.Count(metrics.Metric{Name: metrics.ChangesByKind, Connection: p.conn, Kind: string(kind)}, int64(n))
		}
	}
	for kind, n := range r.Gap {
		if n > 0 {
			p.count.Count(metrics.Metric{Name: metrics.WebhookGap, Connection: p.conn, Kind: string(kind), Label: string(kind)}, int64(n))
		}
	}
	return r, errors.Join(errs...)
}

func (p *Poller) mode(kind change.Kind) Mode {
	if m, ok := p.opts.Modes[kind]; ok {
		return m
	}
	if kind == change.Ticket {
		return Incremental
	}
	return Scan
}

// cursor reads a kind's cursor; a missing one is the zero cursor (a first sync).
func (p *Poller) cursor(ctx context.Context, kind change.Kind) (Cursor, error) {
	return ReadCursor(ctx, p.cursors, p.conn, kind)
}

// ReadCursor reads a connection's cursor of kind, the zero cursor before its first sync:
// whether its backfill is done, for status.
func ReadCursor(ctx context.Context, cursors Cursors, conn string, kind change.Kind) (Cursor, error) {
	var c Cursor
	doc, ok, err := cursors.LoadCursor(ctx, conn, string(kind))
	if err != nil || !ok {
		return c, err
	}
	if err := json.Unmarshal(doc, &c); err != nil {
		return Cursor{}, fmt.Errorf("cursor of %s: %w", kind, err)
	}
	return c, nil
}

func (p *Poller) saveCursor(ctx context.Context, kind change.Kind, c Cursor) error {
	doc, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return p.cursors.SaveCursor(ctx, p.conn, string(kind), doc)
}

// Cursor returns a kind's cursor, for status and tests.
func (p *Poller) Cursor(ctx context.Context, kind change.Kind) (Cursor, error) {
	return p.cursor(ctx, kind)
}

func (p *Poller) pollKind(ctx context.Context, kind change.Kind, r *Report) error {
	cur, err := p.cursor(ctx, kind)
	if err != nil {
		return fmt.Errorf("read cursor: %w", err)
	}
	mode, err := p.modeOf(ctx, kind, &cur)
	if err != nil {
		return err
	}
	switch {
	case !cur.Backfilled && kind == change.Ticket:
		return p.backfillTickets(ctx, cur, r)
	case !cur.Backfilled:
		return p.backfill(ctx, kind, cur, r)
	case mode == Scan && p.opts.ScanEvery > 0:
		return p.scanSlice(ctx, kind, cur, r)
	}
	started := p.opts.Now()
	q := haloapi.ListQuery{IncludeInactive: true}
	if mode == Incremental {
		q.UpdatedFrom = cur.Watermark.Add(-p.opts.Overlap)
	}
	if kind == change.Ticket && cur.BulkNotes == "" {
		// A copy backfilled by an older release: ask once how its notes are listed.
		if err := p.decideBulk(ctx, &cur, time.Time{}); err != nil {
			return err
		}
	}
	ps := pass{gap: true, notesSince: cur.Watermark, progress: p.progress(kind, "poll", false, 0)}
	var deferred map[string]bool // tickets whose notes are read in bulk after the listing
	if kind == change.Ticket && p.bulk(cur) {
		deferred = map[string]bool{}
		ps.notes = func(id string, _ map[string]any) (haloapi.ListQuery, bool) {
			deferred[id] = true
			return haloapi.ListQuery{}, false
		}
	}
	newest, err := p.read(ctx, kind, q, ps, r)
	if err != nil {
		return err
	}
	if kind == change.Ticket && mode == Incremental {
		// Deleted tickets leave the ordinary listing; Halo lists them apart.
		q.Deleted, q.IncludeInactive = true, false
		ps.progress = p.progress(kind, "poll", false, 0)
		n, err := p.read(ctx, kind, q, ps, r)
		if err != nil {
			return err
		}
		newest = later(newest, n)
	}
	if len(deferred) > 0 {
		if err := p.pollNotes(ctx, &cur, deferred, cur.Watermark.Add(-p.opts.Overlap), started, r); err != nil {
			return err
		}
	}
	cur.Watermark = later(cur.Watermark, earlier(newest, started))
	cur.LastRun = started
	return p.saveCursor(ctx, kind, cur)
}

// backfill reads every object of a kind, page by page, saving its place after each page
// so a crash or a timeout resumes where it stopped. The watermark is then the time the
// backfill began: what changed while it ran is read again by the next poll.
func (p *Poller) backfill(ctx context.Context, kind change.Kind, cur Cursor, r *Report) error {
	if cur.BackfillStarted.IsZero() {
		cur.BackfillStarted = p.opts.Now()
	}
	if cur.NextPage < 1 {
		cur.NextPage = 1
	}
	p.log.InfoContext(ctx, "backfill", "connection", p.conn, "kind", kind, "from_page", cur.NextPage)
	pr := p.progress(kind, "backfill", true, cur.NextPage)
	q := haloapi.ListQuery{IncludeInactive: true, StartPage: cur.NextPage, Total: pr.setTotal}
	err := p.halo.List(ctx, kind, q, func(page []map[string]any) error {
		if _, err := p.consider(ctx, kind, page, pass{}, r); err != nil {
			return err
		}
		cur.NextPage++
		if err := p.saveCursor(ctx, kind, cur); err != nil {
			return err
		}
		pr.page(ctx, len(page))
		return nil
	})
	if err != nil {
		return err
	}
	pr.end(ctx)
	cur.Backfilled, cur.NextPage = true, 0
	cur.Watermark, cur.LastRun = cur.BackfillStarted, p.opts.Now()
	cur.BackfillStarted = time.Time{}
	return p.saveCursor(ctx, kind, cur)
}

// pass says how a read counts what it finds: gap, whether what is newer than the copy
// was missed by the webhooks (not during a first sync); notesSince, from which change
// marker on a listed ticket's notes are read even when the ticket itself is current;
// progress, when set, reports a long read.
type pass struct {
	gap        bool
	notesSince time.Time
	progress   *progress
	// notes, when set, says whether and how a listed ticket's notes are read (nil: all
	// of them, right after the ticket's page).
	notes func(id string, obj map[string]any) (haloapi.ListQuery, bool)
}

// read lists what q selects and considers it; it returns the newest change marker seen.
func (p *Poller) read(ctx context.Context, kind change.Kind, q haloapi.ListQuery, ps pass, r *Report) (time.Time, error) {
	var newest time.Time
	if ps.progress != nil {
		q.Total = ps.progress.setTotal
	}
	err := p.halo.List(ctx, kind, q, func(page []map[string]any) error {
		n, err := p.consider(ctx, kind, page, ps, r)
		newest = later(newest, n)
		if err == nil && ps.progress != nil {
			ps.progress.page(ctx, len(page))
		}
		return err
	})
	if err == nil && ps.progress != nil {
		ps.progress.end(ctx)
	}
	return newest, err
}

// consider enqueues the objects of a page that are newer than the copy, and for tickets
// reads their notes. gap says whether what is newer counts as missed by the webhooks.
func (p *Poller) consider(ctx context.Context, kind change.Kind, page []map[string]any, ps pass, r *Report) (time.Time, error) {
	spec, _ := change.Lookup(kind)
	var newest time.Time
	var msgs []message.Message
	var tickets []haloapi.ListQuery
	enqueued, missed := 0, 0
	readAt := p.opts.Now()
	for _, obj := range page {
		c, marker, vc, err := p.changeOf(ctx, spec, obj, readAt)
		if err != nil {
			p.log.WarnContext(ctx, "object skipped", "connection", p.conn, "kind", kind, "error", err.Error())
			continue
		}
		newest = later(newest, marker)
		if !p.wanted(ctx, c) {
			continue
		}
		stored, ok, err := p.copy.Get(ctx, p.conn, kind, c.ID, c.ParentID)
		if err != nil {
			return newest, fmt.Errorf("read the copy: %w", err)
		}
		current := ok && stored.Version >= c.Version
		if vc.Clamped && ok && stored.Deleted == c.Deleted() && len(change.DifferentFields(stored.Fields, p.opts.Fields.Apply(c).Fields)) == 0 {
			current = true // Halo keeps a marker in the future: the copy already holds what it says
		}
		if ok && stored.Version > c.Version {
			m, found, err := p.repair(ctx, kind, c, stored)
			if err != nil {
				return newest, err
			}
			if found {
				msgs = append(msgs, m)
			}
		}
		if kind == change.Ticket && (!current || marker.After(ps.notesSince)) {
			// A ticket changed since the last read may have notes the copy lacks even when
			// the copy holds the ticket itself: the webhook that carried the ticket's
			// latest change carried only that change's note. Tickets re-read only for the
			// overlap cost no note listing.
			q, ok := haloapi.ListQuery{TicketID: c.ID}, true
			if ps.notes != nil {
				q, ok = ps.notes(c.ID, obj)
			}
			if ok {
				tickets = append(tickets, q)
			}
		}
		if current {
			continue
		}
		if r.Queued[kind] == nil {
			r.Queued[kind] = map[string]bool{}
		}
		r.Queued[kind][c.ID] = true
		c.Backfill = !ps.gap
		m, err := message.Encode(message.Envelope{Change: p.opts.Fields.Apply(c), ReceivedAt: p.opts.Now().UTC()})
		if err != nil {
			p.log.WarnContext(ctx, "object too large to queue", "connection", p.conn, "kind", kind, "id", c.ID, "error", err.Error())
			continue
		}
		msgs = append(msgs, m)
		enqueued++
		if ps.gap {
			missed++
			p.log.InfoContext(ctx, "webhook gap", "connection", p.conn, "kind", kind, "id", c.ID, "version", c.Version, "stored_version", stored.Version)
		}
	}
	if len(msgs) > 0 {
		if err := p.queue.Send(ctx, msgs); err != nil {
			return newest, fmt.Errorf("enqueue %d changes: %w", len(msgs), err)
		}
	}
	r.add(kind, len(page), enqueued, missed)
	for _, q := range tickets {
		if _, err := p.read(ctx, change.Action, q, pass{gap: ps.gap}, r); err != nil {
			return newest, fmt.Errorf("notes of ticket %s: %w", q.TicketID, err)
		}
	}
	return newest, nil
}

// wanted applies the connection's filters to a change read from Halo: this is where a
// polled change enters, so it is judged here and nowhere else (docs/ARCHITECTURE.md,
// "Filters and stored fields"). A filtered ticket's notes are not listed.
func (p *Poller) wanted(ctx context.Context, c change.Change) bool {
	rule, keep := p.opts.Filter.Match(c)
	if !keep {
		p.count.Count(metrics.Metric{Name: metrics.ChangesFiltered, Connection: p.conn, Kind: string(c.Kind), Label: rule}, 1)
		p.log.DebugContext(ctx, "change filtered", "connection", p.conn, "kind", c.Kind, "id", c.ID, "rule", rule)
	}
	return keep
}

// changeOf turns an object read from Halo at readAt into a change at its own change
// marker, checked by the connection's version rule: a marker too far ahead of readAt is
// clamped to it, and an object without a readable marker, which cannot be ordered against
// the copy, is counted and skipped.
func (p *Poller) changeOf(ctx context.Context, spec change.KindSpec, obj map[string]any, readAt time.Time) (change.Change, time.Time, change.VersionCheck, error) {
	var none change.VersionCheck
	id, err := change.CanonicalID(obj["id"])
	if err != nil || id == "" {
		return change.Change{}, time.Time{}, none, fmt.Errorf("an object without a readable id")
	}
	c := change.Change{Connection: p.conn, Kind: spec.Kind, ID: id, Op: change.OpUpsert, Source: change.SourcePoll, Fields: obj}
	if spec.Parent != "" {
		if c.ParentID, err = change.CanonicalID(obj[spec.ParentField]); err != nil || c.ParentID == "" {
			return change.Change{}, time.Time{}, none, fmt.Errorf("%s %s names no %s", spec.Kind, id, spec.Parent)
		}
	}
	s, _ := obj[spec.VersionField].(string)
	marker, ok, err := change.ParseHaloTime(s)
	if err == nil && ok {
		c.Version, c.VersionFrom, c.OccurredAt = change.VersionOf(marker), spec.VersionField, marker
	}
	c, vc := connection.CheckVersion(ctx, p.opts.Versions, c, readAt, p.count, p.log)
	if vc.Missing {
		return change.Change{}, time.Time{}, none, fmt.Errorf("%s %s has no readable %s", spec.Kind, id, spec.VersionField)
	}
	return c, marker, vc, nil
}

// repair is the poller's answer to a stored version ahead of Halo's own marker for the
// object (c, as read): a version no Halo change made, such as a marker far in the future
// that an older release stored as it came, which would make every later change stale.
// When the stored fields differ from Halo's, it reads the object again, after the copy
// was read, so that a change the webhooks brought in since the listing is not undone,
// and returns a repair (change.Change.Repairs): Halo's object at its own marker, applied
// by the worker only while the stored version is still the one seen here. A tombstone's
// version is ahead of the object's marker by design (a delete takes the event's time), so
// a tombstone is repaired only when its version lies beyond the skew.
func (p *Poller) repair(ctx context.Context, kind change.Kind, c change.Change, stored change.Object) (message.Message, bool, error) {
	readAt := p.opts.Now()
	if stored.Deleted && stored.Version <= change.VersionOf(readAt.Add(p.opts.Versions.MaxSkew)) {
		return message.Message{}, false, nil
	}
	if len(change.DifferentFields(stored.Fields, p.opts.Fields.Apply(c).Fields)) == 0 {
		return message.Message{}, false, nil
	}
	obj, err := p.halo.Read(ctx, kind, c.ID, c.ParentID)
	if errors.Is(err, haloapi.ErrNotFound) {
		return message.Message{}, false, nil // the reconcile or a delete event decides
	}
	if err != nil {
		return message.Message{}, false, fmt.Errorf("read %s %s again: %w", kind, c.ID, err)
	}
	spec, _ := change.Lookup(kind)
	fresh, _, _, err := p.changeOf(ctx, spec, obj, readAt)
	if err != nil || fresh.Version >= stored.Version {
		return message.Message{}, false, nil // Halo moved on: the next read brings the change
	}
	fresh = p.opts.Fields.Apply(fresh)
	differ := change.DifferentFields(stored.Fields, fresh.Fields)
	if len(differ) == 0 {
		return message.Message{}, false, nil
	}
	fresh.Repairs = stored.Version
	m, err := message.Encode(message.Envelope{Change: fresh, ReceivedAt: readAt.UTC()})
	if err != nil {
		p.log.WarnContext(ctx, "object too large to queue", "connection", p.conn, "kind", kind, "id", c.ID, "error", err.Error())
		return message.Message{}, false, nil
	}
	p.log.WarnContext(ctx, "stored version ahead of Halo's marker: repair queued", "connection", p.conn, "kind", kind, "id", c.ID,
		"stored_version", stored.Version, "version", fresh.Version, "marker", obj[spec.VersionField], "fields", differ)
	return m, true, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() {
		return a
	}
	if b.Before(a) {
		return b
	}
	return a
}
