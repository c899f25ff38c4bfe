package poller_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/poller"
)

func isClosed(o map[string]any) bool {
	id, _ := change.CanonicalID(o["status_id"])
	return id == "9"
}

// noteRequests counts the notes listings asked, and of them those naming a ticket.
func noteRequests(tenant *halosim.Tenant) (all, perTicket int) {
	for _, r := range tenant.Requests() {
		if strings.EqualFold(r.Path, "/api/Actions") {
			all++
			if r.Query.Get("ticket_id") != "" {
				perTicket++
			}
		}
	}
	return all, perTicket
}

// A backfill enqueues every open ticket before any closed one, each group the most
// recently changed first, so the copy is useful long before the backfill ends.
func TestBackfillReadsOpenTicketsFirst(t *testing.T) {
	s := tenantSetup(t, halosim.Options{PageCap: 7}, poller.Options{}, 12, 0)
	s.poll(t)
	var tickets []change.Change
	for _, c := range s.copy.take() {
		if c.Kind == change.Ticket {
			tickets = append(tickets, c)
		}
	}
	if len(tickets) != s.tenant.Count(change.Ticket) {
		t.Fatalf("%d tickets enqueued of %d", len(tickets), s.tenant.Count(change.Ticket))
	}
	seenClosed, opens, closeds := false, 0, 0
	var prev int64
	for i, c := range tickets {
		closed := isClosed(c.Fields)
		if closed && !seenClosed {
			prev = 0 // a new group
		}
		if seenClosed && !closed {
			t.Fatalf("open ticket %s enqueued at %d, after a closed one", c.ID, i)
		}
		if prev != 0 && c.Version > prev {
			t.Errorf("ticket %s (version %d) enqueued after one changed earlier (%d)", c.ID, c.Version, prev)
		}
		prev = c.Version
		seenClosed = seenClosed || closed
		if closed {
			closeds++
		} else {
			opens++
		}
	}
	if opens == 0 || closeds == 0 {
		t.Fatalf("%d open and %d closed tickets: the tenant tests too little", opens, closeds)
	}
	s.converged(t)
}

// Where the tenant lists notes across tickets, a backfill reads them by date window: far
// fewer requests than one per ticket, and every note arrives. A tenant that refuses the
// listing gets one listing per ticket, and the same copy.
func TestBackfillListsNotesInBulkOrPerTicket(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		reports := &progressLog{}
		s := tenantSetup(t, halosim.Options{RefuseBulkActions: refuse}, poller.Options{Progress: reports}, 40, 0)
		tickets := s.tenant.Count(change.Ticket)
		s.poll(t)
		s.converged(t)
		var notes []poller.Progress
		for _, r := range reports.got {
			if r.Kind == change.Action && r.Phase == "notes" {
				notes = append(notes, r)
			}
		}
		if n := s.tenant.Count(change.Action); !refuse && (len(notes) < 2 || notes[0].Total != n || !notes[len(notes)-1].Finished || notes[len(notes)-1].Done != n) {
			t.Errorf("the notes phase's reports %+v; want them to count up to the probe's %d", notes, n)
		}
		all, perTicket := noteRequests(s.tenant)
		cur, _ := s.poller.Cursor(context.Background(), change.Ticket)
		switch {
		case !refuse && (all > tickets/10 || perTicket != 0 || cur.BulkNotes != "yes"):
			t.Errorf("bulk: %d note listings (%d per ticket) for %d tickets; cursor %+v", all, perTicket, tickets, cur)
		case refuse && (perTicket != tickets || cur.BulkNotes != "no"):
			t.Errorf("refused: %d note listings per ticket for %d tickets; cursor %+v", perTicket, tickets, cur)
		}
	}
}

// A window holding more notes than one answer may (count) is halved until each answer
// is whole: a ticket with 1,200 notes in one hour is read completely.
func TestBulkNotesNarrowTheirWindow(t *testing.T) {
	s := tenantSetup(t, halosim.Options{}, poller.Options{}, 2, 0)
	tk := s.tenant.Upsert(change.Ticket, map[string]any{"summary": "busy", "client_id": int64(12), "status_id": int64(1)})
	start := s.clock.Now().Add(-time.Hour)
	for i := range 1200 {
		s.tenant.Upsert(change.Action, map[string]any{"ticket_id": tk["id"], "note": "n",
			"datetime": start.Add(time.Duration(i) * 3 * time.Second)})
	}
	s.poll(t)
	s.converged(t)
	for _, r := range s.tenant.Requests() {
		if strings.EqualFold(r.Path, "/api/Actions") && r.Query.Get("ticket_id") != "" {
			t.Fatalf("a note listing per ticket: %s", r.Query.Encode())
		}
	}
	if all, _ := noteRequests(s.tenant); all < 4 || all > 40 {
		t.Errorf("%d note listings for 1,200 notes in an hour (at most 500 an answer)", all)
	}
}

// With notes_max_age_days, closed tickets' notes older than the limit stay out of the
// copy, and cost no listing; open tickets' notes are all read. The same with notes read
// across tickets and per ticket.
func TestNotesAgeLimit(t *testing.T) {
	const maxAge = 30 * 24 * time.Hour
	for _, refuse := range []bool{false, true} {
		s := tenantSetup(t, halosim.Options{RefuseBulkActions: refuse}, poller.Options{NotesMaxAge: maxAge}, 40, 0)
		cutoff := s.clock.Now().Add(-maxAge)
		s.poll(t)
		open := map[string]bool{}
		for _, o := range s.tenant.Objects(change.Ticket) {
			id, _ := change.CanonicalID(o["id"])
			open[id] = !isClosed(o)
		}
		var old, kept, recent int
		for _, n := range s.tenant.Objects(change.Action) {
			id, _ := change.CanonicalID(n["id"])
			ticket, _ := change.CanonicalID(n["ticket_id"])
			at, _, _ := change.ParseHaloTime(n["datetime"].(string))
			_, stored, _ := s.copy.Get(context.Background(), "default", change.Action, id, ticket)
			switch {
			case !open[ticket] && at.Before(cutoff):
				old++
				if stored {
					t.Errorf("bulk refused %v: note %s of closed ticket %s, dated %s, before the limit, was read", refuse, id, ticket, at)
				}
			case open[ticket] && at.Before(cutoff):
				kept++
				if !stored {
					t.Errorf("bulk refused %v: old note %s of open ticket %s was left out", refuse, id, ticket)
				}
			default:
				recent++
				if !stored {
					t.Errorf("bulk refused %v: note %s of ticket %s, dated %s, within the limit, was left out", refuse, id, ticket, at)
				}
			}
		}
		if old == 0 || kept == 0 || recent == 0 {
			t.Fatalf("notes: %d old of closed tickets, %d old of open ones, %d recent: the tenant tests too little", old, kept, recent)
		}
		for _, r := range s.tenant.Requests() {
			if r.Status != http.StatusOK && !(refuse && r.Status == http.StatusBadRequest) {
				t.Errorf("%s?%s answered %d", r.Path, r.Query.Encode(), r.Status)
			}
		}
	}
}

// A copy backfilled before notes could be listed across tickets (its cursor says
// nothing of them) is asked once, at its next poll, and later polls list the changed
// tickets' notes in bulk.
func TestAnOlderCopyLearnsToListNotesInBulk(t *testing.T) {
	s := tenantSetup(t, halosim.Options{}, poller.Options{BulkNotes: "off"}, 8, 0)
	s.poll(t)
	doc, _, _ := s.cursors.LoadCursor(context.Background(), "default", string(change.Ticket))
	older := strings.Replace(string(doc), `"bulk_notes":"no"`, `"x":""`, 1)
	if older == string(doc) {
		t.Fatalf("the cursor %s says nothing of notes", doc)
	}
	if err := s.cursors.SaveCursor(context.Background(), "default", string(change.Ticket), []byte(older)); err != nil {
		t.Fatal(err)
	}
	s.poller = poller.New("default", s.client, s.copy, s.copy, s.cursors, s.counts, slog.New(slog.DiscardHandler), poller.Options{Now: s.clock.Now})
	for range 20 {
		s.clock.Advance(time.Duration(1+s.rng.IntN(20)) * time.Second)
		s.tenant.Step(s.rng)
	}
	s.clock.Advance(time.Minute)
	s.tenant.ResetRequests()
	s.poll(t)
	s.converged(t)
	if cur, _ := s.poller.Cursor(context.Background(), change.Ticket); cur.BulkNotes != "yes" {
		t.Errorf("cursor %+v after the poll, want notes listed across tickets", cur)
	}
	if all, perTicket := noteRequests(s.tenant); all-perTicket < 2 {
		t.Errorf("%d note listings, %d per ticket: want the probe and a listing across tickets", all, perTicket)
	}
}
