package filter

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

type fields = map[string]any

func webhook(kind change.Kind, event string, f fields) change.Change {
	c := change.Change{Connection: "acme", Kind: kind, ID: "7", Op: change.OpUpsert, Version: 1,
		Source: change.SourceWebhook, Event: event, Fields: f}
	if kind == change.Action {
		c.ParentID = "7"
		c.ID = "70"
	}
	return c
}

func ticket(f fields) change.Change { return webhook(change.Ticket, "ticket updated", f) }
func note(f fields) change.Change   { return webhook(change.Action, "action added", f) }

func poll(c change.Change) change.Change {
	c.Source, c.Event, c.DeliveryID = change.SourcePoll, "", ""
	return c
}

func deleted(c change.Change) change.Change {
	c.Op = change.OpDelete
	return c
}

func eventOnly(c change.Change) change.Change {
	c.Fields = nil
	return c
}

func withEvent(c change.Change, e string) change.Change {
	c.Event = e
	return c
}

func ids(allow, deny []string) config.IDFilter { return config.IDFilter{Allow: allow, Deny: deny} }
func list(s ...string) []string                { return s }

var (
	allowClient3 = config.Filters{Clients: ids(list("3"), nil)}
	denyClient3  = config.Filters{Clients: ids(nil, list("3.0"))}
)

type matchCase struct {
	name string
	f    config.Filters
	c    change.Change
	rule string // "" when kept
}

var num = json.Number("3")

var matchCases = []matchCase{
	// No filters.
	{"empty keeps a ticket", config.Filters{}, ticket(fields{"client_id": num}), ""},
	{"empty keeps a delete", config.Filters{}, deleted(ticket(nil)), ""},

	// Clients, every value form, every kind that names a client.
	{"client allow json.Number", allowClient3, ticket(fields{"client_id": json.Number("3")}), ""},
	{"client allow float64", allowClient3, ticket(fields{"client_id": 3.0}), ""},
	{"client allow string", allowClient3, ticket(fields{"client_id": "3"}), ""},
	{"client allow string 3.0", allowClient3, ticket(fields{"client_id": "3.0"}), ""},
	{"client allow json.Number 3.0", allowClient3, ticket(fields{"client_id": json.Number("3.0")}), ""},
	{"client allow leading zeros", allowClient3, ticket(fields{"client_id": "003"}), ""},
	{"client allow int", allowClient3, ticket(fields{"client_id": 3}), ""},
	{"client allow other", allowClient3, ticket(fields{"client_id": json.Number("4")}), ClientNotAllowed},
	{"client allow other float", allowClient3, ticket(fields{"client_id": 4.0}), ClientNotAllowed},
	{"client allow null", allowClient3, ticket(fields{"client_id": nil}), ClientNotAllowed},
	{"client allow empty string", allowClient3, ticket(fields{"client_id": ""}), ClientNotAllowed},
	{"client allow non-integral", allowClient3, ticket(fields{"client_id": 3.5}), ClientNotAllowed},
	{"client allow a name", allowClient3, ticket(fields{"client_id": "Acme"}), ClientNotAllowed},
	{"client allow a bool", allowClient3, ticket(fields{"client_id": true}), ClientNotAllowed},
	{"client allow 0 is an id", allowClient3, ticket(fields{"client_id": 0.0}), ClientNotAllowed},
	{"client allow field missing", allowClient3, ticket(fields{"summary": "x"}), ""},
	{"client allow event-only ticket", allowClient3, eventOnly(ticket(nil)), ""},
	{"client allow contact", allowClient3, webhook(change.Contact, "user updated", fields{"client_id": "3"}), ""},
	{"client allow contact other", allowClient3, webhook(change.Contact, "user updated", fields{"client_id": "4"}), ClientNotAllowed},
	{"client allow asset other", allowClient3, webhook(change.Asset, "asset updated", fields{"client_id": 9.0}), ClientNotAllowed},
	{"client allow asset", allowClient3, webhook(change.Asset, "asset updated", fields{"client_id": 3.0}), ""},
	{"client allow note passes", allowClient3, note(fields{"ticket_id": 7.0}), ""},
	{"client allow poll result", allowClient3, poll(ticket(fields{"client_id": num})), ""},
	{"client allow poll result other", allowClient3, poll(ticket(fields{"client_id": "4"})), ClientNotAllowed},
	{"client allow delete passes", allowClient3, deleted(ticket(fields{"client_id": "4"})), ""},
	{"client deny json.Number", denyClient3, ticket(fields{"client_id": json.Number("3")}), ClientDenied},
	{"client deny float64", denyClient3, ticket(fields{"client_id": 3.0}), ClientDenied},
	{"client deny string", denyClient3, ticket(fields{"client_id": "3"}), ClientDenied},
	{"client deny string 3.0", denyClient3, ticket(fields{"client_id": "3.0"}), ClientDenied},
	{"client deny other", denyClient3, ticket(fields{"client_id": "4"}), ""},
	{"client deny null", denyClient3, ticket(fields{"client_id": nil}), ""},
	{"client deny unreadable", denyClient3, ticket(fields{"client_id": "Acme"}), ""},
	{"client deny missing", denyClient3, ticket(fields{}), ""},
	{"client deny event-only", denyClient3, eventOnly(ticket(nil)), ""},
	{"client deny delete passes", denyClient3, deleted(ticket(fields{"client_id": "3"})), ""},
	{"client deny note passes", denyClient3, note(fields{"client_id": "3"}), ""},
	{"client deny poll contact", denyClient3, poll(webhook(change.Contact, "", fields{"client_id": json.Number("3")})), ClientDenied},

	// A client is judged by its own id, with or without a snapshot.
	{"client self allowed", allowClient3, withID(webhook(change.Client, "client updated", fields{"name": "x"}), "3"), ""},
	{"client self not allowed", allowClient3, withID(webhook(change.Client, "client updated", fields{"name": "x"}), "4"), ClientNotAllowed},
	{"client self not allowed event-only", allowClient3, withID(eventOnly(webhook(change.Client, "client updated", nil)), "4"), ClientNotAllowed},
	{"client self denied event-only", denyClient3, withID(eventOnly(webhook(change.Client, "client updated", nil)), "3"), ClientDenied},
	{"client self id 3.0", allowClient3, withID(webhook(change.Client, "client updated", nil), "3.0"), ""},
	{"client self id not a number", allowClient3, withID(webhook(change.Client, "client updated", nil), "x"), ClientNotAllowed},
	{"client self denied poll", denyClient3, withID(poll(webhook(change.Client, "", fields{})), "3"), ClientDenied},
	{"client self denied delete passes", denyClient3, withID(deleted(webhook(change.Client, "client deleted", nil)), "3"), ""},

	// Ticket types, priorities, statuses: tickets only.
	{"ticket type allow", config.Filters{TicketTypes: ids(list("1", "2"), nil)}, ticket(fields{"tickettype_id": json.Number("2")}), ""},
	{"ticket type allow other", config.Filters{TicketTypes: ids(list("1", "2"), nil)}, ticket(fields{"tickettype_id": 5.0}), TicketTypeNotAllowed},
	{"ticket type allow missing", config.Filters{TicketTypes: ids(list("1"), nil)}, ticket(fields{"client_id": "3"}), ""},
	{"ticket type allow null", config.Filters{TicketTypes: ids(list("1"), nil)}, ticket(fields{"tickettype_id": nil}), TicketTypeNotAllowed},
	{"ticket type deny", config.Filters{TicketTypes: ids(nil, list("5"))}, ticket(fields{"tickettype_id": "5.0"}), TicketTypeDenied},
	{"ticket type deny other", config.Filters{TicketTypes: ids(nil, list("5"))}, ticket(fields{"tickettype_id": "6"}), ""},
	{"ticket type deny asset passes", config.Filters{TicketTypes: ids(nil, list("5"))}, webhook(change.Asset, "asset updated", fields{"tickettype_id": "5"}), ""},
	{"ticket type allow note passes", config.Filters{TicketTypes: ids(list("1"), nil)}, note(fields{"tickettype_id": "5"}), ""},
	{"ticket type allow event-only", config.Filters{TicketTypes: ids(list("1"), nil)}, eventOnly(ticket(nil)), ""},
	{"ticket type allow delete", config.Filters{TicketTypes: ids(list("1"), nil)}, deleted(ticket(fields{"tickettype_id": "5"})), ""},
	{"priority allow", config.Filters{Priorities: ids(list("1"), nil)}, ticket(fields{"priority_id": json.Number("1")}), ""},
	{"priority allow other", config.Filters{Priorities: ids(list("1"), nil)}, ticket(fields{"priority_id": json.Number("4")}), PriorityNotAllowed},
	{"priority deny", config.Filters{Priorities: ids(nil, list("4"))}, ticket(fields{"priority_id": 4.0}), PriorityDenied},
	{"priority deny 0", config.Filters{Priorities: ids(nil, list("0"))}, ticket(fields{"priority_id": json.Number("0")}), PriorityDenied},
	{"priority deny poll", config.Filters{Priorities: ids(nil, list("4"))}, poll(ticket(fields{"priority_id": "4"})), PriorityDenied},
	{"status allow", config.Filters{Statuses: ids(list("1", "2"), nil)}, ticket(fields{"status_id": "2"}), ""},
	{"status allow other", config.Filters{Statuses: ids(list("1", "2"), nil)}, ticket(fields{"status_id": 9.0}), StatusNotAllowed},
	{"status deny", config.Filters{Statuses: ids(nil, list("9"))}, ticket(fields{"status_id": json.Number("9.0")}), StatusDenied},
	{"status deny asset status passes", config.Filters{Statuses: ids(nil, list("9"))}, webhook(change.Asset, "asset updated", fields{"status_id": "9"}), ""},
	{"first failing rule names the drop", config.Filters{Clients: ids(nil, list("3")), Statuses: ids(nil, list("9"))},
		ticket(fields{"client_id": "3", "status_id": "9"}), ClientDenied},
	{"every ticket rule passes", config.Filters{Clients: ids(list("3"), nil), TicketTypes: ids(list("1"), nil), Priorities: ids(nil, list("4")), Statuses: ids(list("2"), nil)},
		ticket(fields{"client_id": num, "tickettype_id": 1.0, "priority_id": "3", "status_id": json.Number("2")}), ""},

	// Events.
	{"event allow", config.Filters{Events: ids(list("Ticket Status Changed"), nil)}, withEvent(ticket(nil), "ticket status changed"), ""},
	{"event allow case and spaces", config.Filters{Events: ids(list("ticket status changed"), nil)}, withEvent(ticket(nil), "  Ticket\tSTATUS  changed "), ""},
	{"event allow other", config.Filters{Events: ids(list("ticket status changed"), nil)}, ticket(nil), EventNotAllowed},
	{"event allow other event-only", config.Filters{Events: ids(list("ticket status changed"), nil)}, eventOnly(ticket(nil)), EventNotAllowed},
	{"event allow poll passes", config.Filters{Events: ids(list("ticket status changed"), nil)}, poll(ticket(fields{})), ""},
	{"event allow applies to deletes", config.Filters{Events: ids(list("ticket updated"), nil)}, withEvent(deleted(ticket(nil)), "ticket deleted"), EventNotAllowed},
	{"event deny", config.Filters{Events: ids(nil, list("Ticket  Updated"))}, ticket(fields{}), EventDenied},
	{"event deny case", config.Filters{Events: ids(nil, list("ticket updated"))}, withEvent(ticket(nil), "TICKET UPDATED"), EventDenied},
	{"event deny other", config.Filters{Events: ids(nil, list("ticket updated"))}, withEvent(ticket(nil), "ticket status changed"), ""},
	{"event deny applies to deletes", config.Filters{Events: ids(nil, list("action deleted"))}, withEvent(deleted(note(nil)), "action deleted"), EventDenied},
	{"event deny poll passes", config.Filters{Events: ids(nil, list("ticket updated"))}, poll(ticket(nil)), ""},
	{"event deny non-ASCII case", config.Filters{Events: ids(nil, list("TICKET ÉTAT"))}, withEvent(ticket(nil), "ticket état"), EventDenied},

	// status_changes_only.
	{"status changes: ticket status changed", config.Filters{StatusChangesOnly: true}, withEvent(ticket(fields{}), "ticket status changed"), ""},
	{"status changes: case", config.Filters{StatusChangesOnly: true}, withEvent(ticket(fields{}), "Ticket Status Changed"), ""},
	{"status changes: ticket closed", config.Filters{StatusChangesOnly: true}, withEvent(ticket(fields{}), "ticket closed"), ""},
	{"status changes: ticket re-opened", config.Filters{StatusChangesOnly: true}, withEvent(ticket(fields{}), "ticket re-opened"), ""},
	{"status changes: ticket reopened event-only", config.Filters{StatusChangesOnly: true}, eventOnly(withEvent(ticket(nil), "ticket reopened")), ""},
	{"status changes: ticket updated", config.Filters{StatusChangesOnly: true}, ticket(fields{"status_id": "2"}), NotAStatusChange},
	{"status changes: new ticket logged", config.Filters{StatusChangesOnly: true}, withEvent(ticket(fields{}), "new ticket logged"), NotAStatusChange},
	{"status changes: statuses is not status", config.Filters{StatusChangesOnly: true}, withEvent(ticket(fields{}), "ticket statuses listed"), NotAStatusChange},
	{"status changes: ticket updated event-only", config.Filters{StatusChangesOnly: true}, eventOnly(ticket(nil)), NotAStatusChange},
	{"status changes: ticket poll passes", config.Filters{StatusChangesOnly: true}, poll(ticket(fields{"status_id": "2"})), ""},
	{"status changes: ticket delete passes", config.Filters{StatusChangesOnly: true}, withEvent(deleted(ticket(nil)), "ticket deleted"), ""},
	{"status changes: note new_status number", config.Filters{StatusChangesOnly: true}, note(fields{"new_status": json.Number("9")}), ""},
	{"status changes: note new_status float", config.Filters{StatusChangesOnly: true}, note(fields{"new_status": 9.0}), ""},
	{"status changes: note new_status string", config.Filters{StatusChangesOnly: true}, note(fields{"new_status": "9"}), ""},
	{"status changes: note new_status 0", config.Filters{StatusChangesOnly: true}, note(fields{"new_status": json.Number("0")}), NotAStatusChange},
	{"status changes: note new_status 0.0", config.Filters{StatusChangesOnly: true}, note(fields{"new_status": "0.0"}), NotAStatusChange},
	{"status changes: note new_status null", config.Filters{StatusChangesOnly: true}, note(fields{"new_status": nil}), NotAStatusChange},
	{"status changes: note new_status missing", config.Filters{StatusChangesOnly: true}, note(fields{"note": "hi"}), ""},
	{"status changes: note event-only", config.Filters{StatusChangesOnly: true}, eventOnly(note(nil)), ""},
	{"status changes: note in status event", config.Filters{StatusChangesOnly: true}, withEvent(note(fields{"new_status": 0.0}), "ticket status changed"), ""},
	{"status changes: note poll passes", config.Filters{StatusChangesOnly: true}, poll(note(fields{"new_status": 0.0})), ""},
	{"status changes: note delete passes", config.Filters{StatusChangesOnly: true}, withEvent(deleted(note(nil)), "action deleted"), ""},
	{"status changes: client passes", config.Filters{StatusChangesOnly: true}, webhook(change.Client, "client updated", fields{}), ""},
	{"status changes: asset passes", config.Filters{StatusChangesOnly: true}, webhook(change.Asset, "asset updated", fields{}), ""},

	// skip_inactive.
	{"inactive client bool", config.Filters{SkipInactive: true}, webhook(change.Client, "client updated", fields{"inactive": true}), Inactive},
	{"inactive client string", config.Filters{SkipInactive: true}, webhook(change.Client, "client updated", fields{"inactive": "True"}), Inactive},
	{"inactive contact number", config.Filters{SkipInactive: true}, webhook(change.Contact, "user updated", fields{"inactive": json.Number("1")}), Inactive},
	{"inactive asset float", config.Filters{SkipInactive: true}, webhook(change.Asset, "asset updated", fields{"inactive": 1.0}), Inactive},
	{"inactive asset string 1", config.Filters{SkipInactive: true}, webhook(change.Asset, "asset updated", fields{"inactive": "1"}), Inactive},
	{"inactive poll contact", config.Filters{SkipInactive: true}, poll(webhook(change.Contact, "", fields{"inactive": true})), Inactive},
	{"active client false", config.Filters{SkipInactive: true}, webhook(change.Client, "client updated", fields{"inactive": false}), ""},
	{"active client 0", config.Filters{SkipInactive: true}, webhook(change.Client, "client updated", fields{"inactive": json.Number("0")}), ""},
	{"active client string false", config.Filters{SkipInactive: true}, webhook(change.Client, "client updated", fields{"inactive": "false"}), ""},
	{"active client null", config.Filters{SkipInactive: true}, webhook(change.Client, "client updated", fields{"inactive": nil}), ""},
	{"active client missing", config.Filters{SkipInactive: true}, webhook(change.Client, "client updated", fields{"name": "x"}), ""},
	{"inactive event-only passes", config.Filters{SkipInactive: true}, eventOnly(webhook(change.Client, "client updated", nil)), ""},
	{"inactive delete passes", config.Filters{SkipInactive: true}, deleted(webhook(change.Asset, "asset deleted", fields{"inactive": true})), ""},
	{"inactive ticket passes", config.Filters{SkipInactive: true}, ticket(fields{"inactive": true}), ""},
	{"inactive note passes", config.Filters{SkipInactive: true}, note(fields{"inactive": true}), ""},
}

func TestMatch(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			rule, keep := r.Match(tt.c)
			if rule != tt.rule || keep != (tt.rule == "") {
				t.Errorf("Match = %q, %v; want %q, %v", rule, keep, tt.rule, tt.rule == "")
			}
			if tt.rule != "" && !slices.Contains(Names(), tt.rule) {
				t.Errorf("rule %q is not in Names()", tt.rule)
			}
			// MatchAll of a single change agrees with Match.
			if d := r.MatchAll([]change.Change{tt.c}); len(d) != 1 || d[0] != (Decision{Rule: rule, Keep: keep}) {
				t.Errorf("MatchAll = %+v; want %q, %v", d, rule, keep)
			}
		})
	}
}

func withID(c change.Change, id string) change.Change {
	c.ID = id
	return c
}

func TestEveryRuleIsReachable(t *testing.T) {
	for _, name := range Names() {
		if !slices.ContainsFunc(matchCases, func(tt matchCase) bool { return tt.rule == name }) {
			t.Errorf("rule %s: no case in TestMatch drops by it", name)
		}
	}
	want := []string{"event_denied", "event_not_allowed", "client_denied", "client_not_allowed",
		"ticket_type_denied", "ticket_type_not_allowed", "priority_denied", "priority_not_allowed",
		"status_denied", "status_not_allowed", "not_a_status_change", "inactive"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v; want %v", got, want)
	}
}

func TestNilAndEmpty(t *testing.T) {
	var nilRules *Rules
	if !nilRules.Empty() {
		t.Error("nil rules are not empty")
	}
	if rule, keep := nilRules.Match(ticket(fields{})); rule != "" || !keep {
		t.Errorf("nil rules dropped a change: %q", rule)
	}
	if d := nilRules.MatchAll([]change.Change{ticket(nil), note(nil)}); len(d) != 2 || !d[0].Keep || !d[1].Keep {
		t.Errorf("nil rules MatchAll = %+v", d)
	}
	r, err := New(config.Filters{Clients: config.IDFilter{Allow: []string{}}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Empty() {
		t.Error("empty lists make non-empty rules")
	}
	for _, f := range []config.Filters{
		allowClient3, denyClient3,
		{TicketTypes: ids(nil, list("1"))}, {Priorities: ids(list("1"), nil)}, {Statuses: ids(nil, list("1"))},
		{Events: ids(list("ticket updated"), nil)}, {Events: ids(nil, list("ticket updated"))},
		{StatusChangesOnly: true}, {SkipInactive: true},
	} {
		r, err := New(f)
		if err != nil {
			t.Fatal(err)
		}
		if r.Empty() {
			t.Errorf("%+v: Empty() = true", f)
		}
	}
}

func TestNewInvalid(t *testing.T) {
	tests := []struct {
		name string
		f    config.Filters
		want string // in the message
	}{
		{"client not a number", config.Filters{Clients: ids(list("12", "abc"), nil)}, `clients.allow[1]: "abc" is not a Halo id`},
		{"client empty", config.Filters{Clients: ids(nil, list(" "))}, `clients.deny[0]`},
		{"client GUID", config.Filters{Clients: ids(list("6f1c2b9e-0d4a-4e0b-9a61-2c8f3f9b1a77"), nil)}, `clients.allow[0]`},
		{"client non-integral", config.Filters{Clients: ids(list("12.5"), nil)}, `"12.5" is not a Halo id`},
		{"ticket type not a number", config.Filters{TicketTypes: ids(nil, list("incident"))}, `ticket_types.deny[0]`},
		{"priority not a number", config.Filters{Priorities: ids(list("P1"), nil)}, `priorities.allow[0]`},
		{"status not a number", config.Filters{Statuses: ids(list("1", "closed"), nil)}, `statuses.allow[1]`},
		{"client overlap", config.Filters{Clients: ids(list("12", "13"), list("14", "12.0"))}, `clients: 12 both allowed and denied`},
		{"client overlap leading zero", config.Filters{Clients: ids(list("0012"), list("12"))}, `clients: 12 both allowed and denied`},
		{"status overlap", config.Filters{Statuses: ids(list("1", "2"), list("2", "1"))}, `statuses: 1, 2 both allowed and denied`},
		{"event overlap", config.Filters{Events: ids(list("Ticket Updated"), list("ticket  updated"))}, `events: ticket updated both allowed and denied`},
		{"event empty", config.Filters{Events: ids(list("ticket updated", "  "), nil)}, `events.allow[1]: the event name is empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.f)
			if err == nil {
				t.Fatalf("New accepted %+v", tt.f)
			}
			if r != nil {
				t.Error("New returned rules with an error")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error %v does not wrap config.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestNewAcceptsIDForms(t *testing.T) {
	r, err := New(config.Filters{Clients: ids(list("12", "13.0", " 14 ", "+15", "0016", "-1"), nil)})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{"12", 13.0, json.Number("14"), "15", json.Number("16.0"), -1.0} {
		if rule, keep := r.Match(ticket(fields{"client_id": v})); !keep {
			t.Errorf("client_id %#v: dropped by %s", v, rule)
		}
	}
}

// TestIDOfAgreesWithCanonicalID guards the allocation-free id reader against drifting from
// change.CanonicalID, which the rest of halosync uses.
func TestIDOfAgreesWithCanonicalID(t *testing.T) {
	values := []any{nil, "", " ", "12", " 12 ", "+12", "-3", "0012", "12.0", "12.5", "1e3", "abc",
		"9223372036854775807", "9223372036854775808", json.Number("12"), json.Number("12.0"), json.Number("1e2"),
		json.Number("12.5"), json.Number("x"), 12.0, 12.5, math.Copysign(0, -1), 1 << 53, float64(1<<53 + 2), 12, int64(12),
		true, []any{}, fields{}}
	for _, v := range values {
		got, ok := idOf(v)
		s, err := change.CanonicalID(v)
		var want int64
		wantOK := err == nil && s != ""
		if wantOK {
			var perr error
			if want, perr = strconv.ParseInt(s, 10, 64); perr != nil {
				wantOK = false
			}
		}
		if ok != wantOK || (ok && got != want) {
			t.Errorf("idOf(%#v) = %d, %v; CanonicalID gives %q, %v", v, got, ok, s, err)
		}
	}
}

func TestNormalizeEvent(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"ticket updated":          "ticket updated",
		"Ticket Updated":          "ticket updated",
		" ticket updated":         "ticket updated",
		"ticket updated ":         "ticket updated",
		"ticket  updated":         "ticket updated",
		"ticket\tupdated":         "ticket updated",
		"ticket\u00a0updated":     "ticket updated",
		"TICKET ÉTAT":             "ticket état",
		"ticket status changed":   "ticket status changed",
		"   ":                     "",
		"ticket status changed\n": "ticket status changed",
	} {
		if got := normalizeEvent(in); got != want {
			t.Errorf("normalizeEvent(%q) = %q; want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { normalizeEvent("ticket status changed") }); n != 0 {
		t.Errorf("normalizeEvent allocates %v times for a normal name", n)
	}
}

func TestMatchAll(t *testing.T) {
	tk := func(f fields) change.Change { c := ticket(f); c.ID = "7"; return c }
	nt := func(f fields) change.Change { c := note(f); c.ParentID = "7"; return c }
	other := func(c change.Change) change.Change { c.ParentID = "8"; return c }
	tests := []struct {
		name string
		f    config.Filters
		cs   []change.Change
		want []Decision
	}{
		{"note follows a denied client",
			denyClient3,
			[]change.Change{tk(fields{"client_id": "3"}), nt(fields{"note": "x"})},
			[]Decision{{ClientDenied, false}, {ClientDenied, false}}},
		{"note follows a not allowed status",
			config.Filters{Statuses: ids(list("1"), nil)},
			[]change.Change{nt(fields{"note": "x"}), tk(fields{"status_id": "2"})},
			[]Decision{{StatusNotAllowed, false}, {StatusNotAllowed, false}}},
		{"note of another ticket is kept",
			denyClient3,
			[]change.Change{tk(fields{"client_id": "3"}), other(nt(fields{}))},
			[]Decision{{ClientDenied, false}, {"", true}}},
		{"note of another connection is kept",
			denyClient3,
			[]change.Change{tk(fields{"client_id": "3"}), func() change.Change { c := nt(nil); c.Connection = "other"; return c }()},
			[]Decision{{ClientDenied, false}, {"", true}}},
		{"note delete is kept",
			denyClient3,
			[]change.Change{tk(fields{"client_id": "3"}), deleted(nt(nil))},
			[]Decision{{ClientDenied, false}, {"", true}}},
		{"note alone is kept",
			denyClient3,
			[]change.Change{nt(fields{})},
			[]Decision{{"", true}}},
		{"kept ticket keeps its note",
			denyClient3,
			[]change.Change{tk(fields{"client_id": "4"}), nt(fields{})},
			[]Decision{{"", true}, {"", true}}},
		{"note that set a status keeps its ticket",
			config.Filters{StatusChangesOnly: true},
			[]change.Change{tk(fields{"status_id": "9"}), nt(fields{"new_status": json.Number("9")})},
			[]Decision{{"", true}, {"", true}}},
		{"note that set no status does not",
			config.Filters{StatusChangesOnly: true},
			[]change.Change{tk(fields{"status_id": "9"}), nt(fields{"new_status": json.Number("0")})},
			[]Decision{{NotAStatusChange, false}, {NotAStatusChange, false}}},
		{"note without new_status does not keep its ticket",
			config.Filters{StatusChangesOnly: true},
			[]change.Change{tk(fields{"status_id": "9"}), nt(fields{"note": "x"})},
			[]Decision{{NotAStatusChange, false}, {"", true}}},
		{"status change does not rescue a denied ticket",
			config.Filters{StatusChangesOnly: true, Clients: ids(nil, list("3"))},
			[]change.Change{tk(fields{"client_id": "3"}), nt(fields{"new_status": 9.0})},
			[]Decision{{ClientDenied, false}, {ClientDenied, false}}},
		{"event rules are not propagated, the event is shared",
			config.Filters{Events: ids(nil, list("action added"))},
			[]change.Change{withEvent(tk(fields{}), "action added"), nt(fields{})},
			[]Decision{{EventDenied, false}, {EventDenied, false}}},
		{"empty rules",
			config.Filters{},
			[]change.Change{tk(fields{}), nt(fields{})},
			[]Decision{{"", true}, {"", true}}},
		{"no changes",
			denyClient3,
			nil,
			[]Decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.MatchAll(tt.cs); !slices.Equal(got, tt.want) {
				t.Errorf("MatchAll = %+v; want %+v", got, tt.want)
			}
		})
	}
}
