package filter

import (
	"encoding/json"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

// benchTicket is a ticket snapshot as the webhook decoder leaves it: numbers as
// json.Number, a few dozen fields.
func benchTicket() change.Change {
	f := fields{
		"id": json.Number("4242"), "summary": "Printer on fire", "details": "It is on fire.",
		"client_id": json.Number("1234"), "client_name": "Acme", "site_id": json.Number("17"),
		"user_id": json.Number("981"), "agent_id": json.Number("12"), "team_id": json.Number("3"),
		"tickettype_id": json.Number("1"), "priority_id": json.Number("2"), "status_id": json.Number("9"),
		"sla_id": json.Number("1"), "last_update": "2026-09-25T06:41:08.123", "hasbeenclosed": false,
		"dateoccurred": "2026-09-24T06:41:08", "datecreated": "2026-09-24T06:41:08", "deleted": false,
	}
	for _, k := range []string{"category_1", "category_2", "category_3", "category_4", "team", "agent_name", "user_name", "site_name"} {
		f[k] = "x"
	}
	return change.Change{Connection: "acme", Kind: change.Ticket, ID: "4242", Op: change.OpUpsert, Version: 1,
		Source: change.SourceWebhook, Event: "ticket status changed", DeliveryID: "d", Fields: f}
}

func BenchmarkMatch(b *testing.B) {
	tk := benchTicket()
	nt := change.Change{Connection: "acme", Kind: change.Action, ID: "1", ParentID: "4242", Op: change.OpUpsert,
		Version: 1, Source: change.SourceWebhook, Event: "ticket status changed",
		Fields: fields{"id": json.Number("1"), "ticket_id": json.Number("4242"), "new_status": json.Number("9")}}
	cl := change.Change{Connection: "acme", Kind: change.Client, ID: "1234", Op: change.OpUpsert, Version: 1,
		Source: change.SourcePoll, Fields: fields{"id": 1234.0, "name": "Acme", "inactive": false}}
	sets := []struct {
		name string
		f    config.Filters
	}{
		{"empty", config.Filters{}},
		{"clients", config.Filters{Clients: ids(list("1234", "1235", "1236"), list("99"))}},
		{"ticket_types", config.Filters{TicketTypes: ids(list("1", "2"), nil)}},
		{"priorities", config.Filters{Priorities: ids(nil, list("4"))}},
		{"statuses", config.Filters{Statuses: ids(nil, list("8", "10"))}},
		{"events", config.Filters{Events: ids(list("ticket status changed", "ticket updated"), list("ticket deleted"))}},
		{"status_changes_only", config.Filters{StatusChangesOnly: true}},
		{"skip_inactive", config.Filters{SkipInactive: true}},
		{"all", config.Filters{
			Clients:     ids(list("1234", "1235", "1236"), nil),
			TicketTypes: ids(list("1", "2"), nil), Priorities: ids(nil, list("4")), Statuses: ids(nil, list("8", "10")),
			Events:            ids(nil, list("ticket deleted")),
			StatusChangesOnly: true, SkipInactive: true,
		}},
	}
	for _, s := range sets {
		r, err := New(s.f)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []change.Change{tk, nt, cl} {
			if _, keep := r.Match(c); !keep {
				b.Fatalf("%s drops the %s", s.name, c.Kind)
			}
		}
		b.Run(s.name+"/ticket", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Match(tk)
			}
		})
		if s.name == "empty" || s.name == "all" {
			b.Run(s.name+"/note", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r.Match(nt)
				}
			})
			b.Run(s.name+"/client", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					r.Match(cl)
				}
			})
		}
	}
	b.Run("all/MatchAll", func(b *testing.B) {
		r, _ := New(sets[len(sets)-1].f)
		cs := []change.Change{tk, nt}
		b.ReportAllocs()
		for b.Loop() {
			r.MatchAll(cs)
		}
	})
}
