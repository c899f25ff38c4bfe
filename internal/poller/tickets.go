package poller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
)

// A ticket backfill reads by value: open tickets first, then closed ones, each the most
// recently changed first, so the copy is useful long before the backfill ends; then, when
// the tenant lists notes across tickets, the notes by date window, newest first. Each
// phase saves its place after every page or window.
const (
	phaseOpen   = "open"
	phaseClosed = "closed"
	phaseNotes  = "notes"

	// bulkCount caps one window of notes listed across tickets (count=N): a window whose
	// record_count says more is halved and asked again.
	bulkCount = 500
	// firstSpan is the first notes window; it doubles while windows come back small.
	firstSpan = 24 * time.Hour
	// minSpan is the narrowest window: one still cut short is asked without count.
	minSpan = time.Second
)

// errShareSpent stops a deferrable read when the poller's share is spent for the window:
// the cursor holds its place and the next run goes on.
var errShareSpent = errors.New("the poller's share of the budget is spent for now")

// errBulkIgnored: a notes window came back with notes outside it, or without their
// ticket: the tenant does not honour the listing across tickets.
var errBulkIgnored = errors.New("the tenant ignored the notes window")

// spent reports whether the poller's share has no request left for deferrable reads.
func (p *Poller) spent() bool {
	return p.opts.Share != nil && p.opts.Share.Remaining() == 0
}

// bulk reports whether notes are listed across tickets, by the cursor's probe.
func (p *Poller) bulk(cur Cursor) bool {
	return p.opts.BulkNotes != "off" && p.opts.Filter.Empty() && cur.BulkNotes == "yes"
}

// decideBulk settles, once per backfill, whether notes are listed across tickets: "on"
// trusts the tenant, "auto" asks it one note over the backfill's range
// (GET /api/Actions?startdate=&enddate=&count=1, no ticket_id; without enddate for a
// copy an older release backfilled) and takes a note naming
// its ticket, or a record_count above what was asked, as a yes; a refusal (4xx) or an
// empty answer is a no, and notes are then listed per ticket.
func (p *Poller) decideBulk(ctx context.Context, cur *Cursor, from time.Time) error {
	switch {
	case cur.BulkNotes != "":
		return nil
	case p.opts.BulkNotes == "off" || !p.opts.Filter.Empty():
		cur.BulkNotes = "no"
		return nil
	case p.opts.BulkNotes == "on":
		cur.BulkNotes, cur.NotesTotal = "yes", -1
		return nil
	}
	if from.IsZero() {
		from = haloEpoch
	}
	total, named := -1, false
	err := p.halo.List(ctx, change.Action, haloapi.ListQuery{From: from, To: cur.BackfillStarted, Count: 1, Total: func(n int) { total = n }},
		func(page []map[string]any) error {
			for _, n := range page {
				id, err := change.CanonicalID(n["ticket_id"])
				named = named || (err == nil && id != "")
			}
			return nil
		})
	switch {
	case errors.Is(err, haloapi.ErrTruncated), err == nil && named:
		cur.BulkNotes, cur.NotesTotal = "yes", total
	case err == nil, errors.Is(err, haloapi.ErrPermanent), errors.Is(err, haloapi.ErrNotFound), errors.Is(err, haloapi.ErrBadResponse):
		// ErrBadResponse: an answer too large or unreadable, count ignored: windows would
		// fare no better.
		cur.BulkNotes = "no"
	default:
		return fmt.Errorf("probe the notes listing across tickets: %w", err)
	}
	p.log.InfoContext(ctx, "notes listing", "connection", p.conn, "across_tickets", cur.BulkNotes, "notes", total)
	return nil
}

// haloEpoch is the earliest date asked of Halo: it writes 1900-01-01 for no date.
var haloEpoch = time.Date(1981, 1, 1, 0, 0, 0, 0, time.UTC)

// backfillTickets is the ticket kind's first sync, by phases (see phaseOpen).
func (p *Poller) backfillTickets(ctx context.Context, cur Cursor, r *Report) error {
	if cur.BackfillStarted.IsZero() {
		cur.BackfillStarted = p.opts.Now()
	}
	if cur.Phase == "" {
		// A new backfill, or one an older release began by id: begin again by value.
		cur.Phase, cur.NextPage = phaseOpen, 1
	}
	cur.NextPage = max(cur.NextPage, 1)
	var cutoff time.Time
	if p.opts.NotesMaxAge > 0 {
		cutoff = cur.BackfillStarted.Add(-p.opts.NotesMaxAge)
	}
	if err := p.decideBulk(ctx, &cur, cutoff); err != nil {
		return err
	}
	for cur.Phase == phaseOpen || cur.Phase == phaseClosed {
		if err := p.ticketPhase(ctx, &cur, cutoff, r); err != nil {
			return p.paused(ctx, change.Ticket, err)
		}
	}
	if cur.Phase == phaseNotes {
		err := p.notesBackfill(ctx, &cur, cutoff, r)
		if errors.Is(err, errBulkIgnored) {
			// Read the tickets again, their notes per ticket.
			p.log.WarnContext(ctx, "notes listing across tickets not honoured: listing notes per ticket", "connection", p.conn)
			cur.BulkNotes, cur.Phase, cur.NextPage = "no", phaseOpen, 1
			if err := p.saveCursor(ctx, change.Ticket, cur); err != nil {
				return err
			}
			return p.backfillTickets(ctx, cur, r)
		}
		if err != nil {
			return p.paused(ctx, change.Ticket, err)
		}
	}
	cur.Backfilled, cur.NextPage, cur.Phase = true, 0, ""
	cur.NotesBefore, cur.NotesSpan, cur.NotesRead = time.Time{}, 0, 0
	cur.Watermark, cur.LastRun = cur.BackfillStarted, p.opts.Now()
	cur.BackfillStarted = time.Time{}
	return p.saveCursor(ctx, change.Ticket, cur)
}

// paused turns a read stopped because the share is spent into no error: the cursor holds
// its place.
func (p *Poller) paused(ctx context.Context, kind change.Kind, err error) error {
	if errors.Is(err, errShareSpent) {
		p.log.InfoContext(ctx, "backfill paused: the poller's share of the budget is spent", "connection", p.conn, "kind", kind)
		return nil
	}
	return err
}

// ticketPhase reads one phase of open or closed tickets, the most recently changed first,
// and moves the cursor to the next phase.
func (p *Poller) ticketPhase(ctx context.Context, cur *Cursor, cutoff time.Time, r *Report) error {
	open := cur.Phase == phaseOpen
	p.log.InfoContext(ctx, "backfill", "connection", p.conn, "kind", change.Ticket, "phase", cur.Phase, "from_page", cur.NextPage)
	pr := p.progress(change.Ticket, "backfill", true, cur.NextPage)
	pr.phase = cur.Phase + " tickets"
	bulk := p.bulk(*cur)
	ps := pass{notes: func(id string, obj map[string]any) (haloapi.ListQuery, bool) {
		opened, known := ticketDate(obj, "dateoccurred")
		if known && (cur.Oldest.IsZero() || opened.Before(cur.Oldest)) {
			cur.Oldest = opened
		}
		return backfillNotes(id, obj, open, bulk, cutoff, opened, known)
	}}
	q := haloapi.ListQuery{StartPage: cur.NextPage, OpenOnly: open, ClosedOnly: !open, Order: "last_update", OrderDesc: true, Total: pr.setTotal}
	err := p.halo.List(ctx, change.Ticket, q, func(page []map[string]any) error {
		if _, err := p.consider(ctx, change.Ticket, page, ps, r); err != nil {
			return err
		}
		cur.NextPage++
		if err := p.saveCursor(ctx, change.Ticket, *cur); err != nil {
			return err
		}
		pr.page(ctx, len(page))
		if p.spent() {
			return errShareSpent
		}
		return nil
	})
	if err != nil {
		return err
	}
	pr.end(ctx)
	cur.NextPage = 1
	switch {
	case open:
		cur.Phase = phaseClosed
	case bulk:
		cur.Phase = phaseNotes
	default:
		cur.Phase = ""
	}
	return p.saveCursor(ctx, change.Ticket, *cur)
}

// backfillNotes says how a backfill reads a ticket's notes. Without an age limit: per
// ticket, or not at all when the notes phase reads them across tickets. With one
// (cutoff), closed tickets' notes dated before it are left out: a closed ticket last
// changed before it costs no listing; open tickets' notes are all read, those before the
// cutoff per ticket when the notes phase stops at it.
func backfillNotes(id string, obj map[string]any, open, bulk bool, cutoff, opened time.Time, known bool) (haloapi.ListQuery, bool) {
	q := haloapi.ListQuery{TicketID: id}
	switch {
	case cutoff.IsZero():
		return q, !bulk
	case open && bulk:
		q.To = cutoff
		return q, !known || opened.Before(cutoff)
	case open:
		return q, true
	}
	if changed, ok := ticketDate(obj, "last_update"); ok && changed.Before(cutoff) {
		return q, false
	}
	q.From = cutoff
	return q, !bulk
}

// ticketDate reads a date field of an object; false when it has none (Halo's 1900).
func ticketDate(obj map[string]any, field string) (time.Time, bool) {
	s, _ := obj[field].(string)
	t, ok, err := change.ParseHaloTime(s)
	return t, err == nil && ok
}

// notesBackfill lists notes across tickets by date window, from the backfill's start
// back to the age limit (cutoff) or, without one, to the oldest ticket's opening, then
// everything older at once. The window adapts: halved when Halo counts more notes than
// one answer holds (count), doubled while answers are small.
func (p *Poller) notesBackfill(ctx context.Context, cur *Cursor, cutoff time.Time, r *Report) error {
	if cur.NotesBefore.IsZero() {
		cur.NotesBefore = cur.BackfillStarted.Add(time.Millisecond) // windows end before their end
	}
	if cur.NotesSpan <= 0 {
		cur.NotesSpan = firstSpan
	}
	pr := p.progress(change.Action, "backfill", true, 0)
	pr.phase, pr.before = "notes", cur.NotesRead
	pr.total = cur.NotesTotal
	if pr.total == 0 {
		pr.total = -1
	}
	for {
		end := cur.NotesBefore
		if !cutoff.IsZero() && !end.After(cutoff) {
			break
		}
		start := end.Add(-cur.NotesSpan)
		if !cutoff.IsZero() && start.Before(cutoff) {
			start = cutoff
		}
		rest := cutoff.IsZero() && (cur.Oldest.IsZero() || start.Before(cur.Oldest))
		if rest {
			start = haloEpoch // everything older, at once
		}
		if p.spent() {
			return errShareSpent
		}
		notes, err := p.notesIn(ctx, start, end, bulkCount)
		if errors.Is(err, haloapi.ErrTruncated) {
			if rest {
				cur.Oldest = cur.Oldest.AddDate(-1, 0, 0) // older notes than tickets: walk on
				if cur.Oldest.Before(haloEpoch) {
					cur.Oldest = haloEpoch
				}
			}
			if cur.NotesSpan = cur.NotesSpan / 2; cur.NotesSpan < minSpan {
				cur.NotesSpan = minSpan
				if notes, err = p.notesIn(ctx, start, end, 0); err != nil {
					return err
				}
			} else {
				continue
			}
		}
		if err != nil {
			return err
		}
		if _, err := p.consider(ctx, change.Action, notes, pass{}, r); err != nil {
			return err
		}
		pr.page(ctx, len(notes))
		cur.NotesBefore, cur.NotesRead = start, cur.NotesRead+len(notes)
		if len(notes) < bulkCount/4 {
			cur.NotesSpan *= 2
		}
		if err := p.saveCursor(ctx, change.Ticket, *cur); err != nil {
			return err
		}
		if rest {
			break
		}
	}
	pr.end(ctx)
	return nil
}

// notesIn lists the notes dated in [from, to) across tickets in one answer, count at most
// (0: no cap); a zero to leaves the window open. haloapi.ErrTruncated says the window holds more; errBulkIgnored that the
// answer holds notes outside it or naming no ticket.
func (p *Poller) notesIn(ctx context.Context, from, to time.Time, count int) ([]map[string]any, error) {
	var notes []map[string]any
	err := p.halo.List(ctx, change.Action, haloapi.ListQuery{From: from, To: to, Count: count}, func(page []map[string]any) error {
		for _, n := range page {
			at, ok := ticketDate(n, "datetime")
			ticket, err := change.CanonicalID(n["ticket_id"])
			if err != nil || ticket == "" || (ok && (at.Before(from.Add(-time.Millisecond)) || (!to.IsZero() && at.After(to)))) {
				return errBulkIgnored
			}
			if ok && !to.IsZero() && !at.Before(to) {
				continue // the later window's
			}
			notes = append(notes, n)
		}
		return nil
	})
	return notes, err
}

// pollNotes reads, for a poll, the notes dated since from across tickets, in one answer
// or, when Halo counts more, window by window up to now (Halo's clock may run ahead of
// ours by the version skew); a ticket the poll listed whose notes none of them named (a
// changed field, or an edited older note) is listed per ticket.
func (p *Poller) pollNotes(ctx context.Context, cur *Cursor, tickets map[string]bool, from, now time.Time, r *Report) error {
	var read func(from, to time.Time) error
	read = func(from, to time.Time) error {
		count := bulkCount
		if !to.IsZero() && to.Sub(from) < minSpan {
			count = 0
		}
		notes, err := p.notesIn(ctx, from, to, count)
		if errors.Is(err, haloapi.ErrTruncated) {
			if to.IsZero() {
				to = now.Add(p.opts.Versions.MaxSkew)
			}
			mid := from.Add(to.Sub(from) / 2)
			if err := read(from, mid); err != nil {
				return err
			}
			return read(mid, to)
		}
		if err != nil {
			return err
		}
		for _, n := range notes {
			id, _ := change.CanonicalID(n["ticket_id"])
			delete(tickets, id)
		}
		_, err = p.consider(ctx, change.Action, notes, pass{gap: true}, r)
		return err
	}
	err := read(from, time.Time{})
	if errors.Is(err, errBulkIgnored) {
		p.log.WarnContext(ctx, "notes listing across tickets not honoured: listing notes per ticket", "connection", p.conn)
		cur.BulkNotes = "no"
		err = nil
	}
	if err != nil {
		return fmt.Errorf("notes across tickets: %w", err)
	}
	for id := range tickets {
		if _, err := p.read(ctx, change.Action, haloapi.ListQuery{TicketID: id}, pass{gap: true}, r); err != nil {
			return fmt.Errorf("notes of ticket %s: %w", id, err)
		}
	}
	return nil
}
