package halo

import (
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

func TestResolve(t *testing.T) {
	extra := Events{Extra: map[string]EventRule{
		"ticket updated": {change.Client, change.OpUpsert}, // override a known name
		"sla breached":   {change.Ticket, change.OpUpsert}, // add a name
		"ticket deleted": {change.Ticket, change.OpUpsert}, // override the op
	}}
	tests := []struct {
		name   string
		events Events
		event  string
		nested change.Kind
		want   EventRule
		ok     bool
	}{
		// Known names, whatever their case and spacing.
		{"status changed", Events{}, "ticket status changed", "", EventRule{change.Ticket, change.OpUpsert}, true},
		{"case and spaces", Events{}, "  Ticket   Status\tChanged ", "", EventRule{change.Ticket, change.OpUpsert}, true},
		{"new ticket logged", Events{}, "New Ticket Logged", "", EventRule{change.Ticket, change.OpUpsert}, true},
		{"ticket deleted", Events{}, "ticket deleted", "", EventRule{change.Ticket, change.OpDelete}, true},
		{"action added", Events{}, "Action Added", "", EventRule{change.Action, change.OpUpsert}, true},
		{"action deleted", Events{}, "action deleted", "", EventRule{change.Action, change.OpDelete}, true},
		{"client deleted", Events{}, "client deleted", "", EventRule{change.Client, change.OpDelete}, true},
		{"user updated is a contact", Events{}, "user updated", "", EventRule{change.Contact, change.OpUpsert}, true},
		{"asset created", Events{}, "asset created", "", EventRule{change.Asset, change.OpUpsert}, true},
		{"known name wins over the nested object", Events{}, "action added", change.Ticket, EventRule{change.Action, change.OpUpsert}, true},
		// Extra adds and overrides.
		{"extra overrides a known name", extra, "Ticket Updated", "", EventRule{change.Client, change.OpUpsert}, true},
		{"extra overrides the op", extra, "ticket deleted", "", EventRule{change.Ticket, change.OpUpsert}, true},
		{"extra adds a name", extra, "SLA breached", "", EventRule{change.Ticket, change.OpUpsert}, true},
		{"extra leaves other known names", extra, "client updated", "", EventRule{change.Client, change.OpUpsert}, true},
		// Unknown names: the nested object decides, then the words.
		{"unknown name, nested ticket", Events{}, "sla breached", change.Ticket, EventRule{change.Ticket, change.OpUpsert}, true},
		{"unknown name, nested asset beats the words", Events{}, "ticket asset linked", change.Asset, EventRule{change.Asset, change.OpUpsert}, true},
		{"unknown deleted name, nested object", Events{}, "something deleted", change.Client, EventRule{change.Client, change.OpDelete}, true},
		{"unknown removed name, nested object", Events{}, "thing removed", change.Asset, EventRule{change.Asset, change.OpDelete}, true},
		{"unknown deleted name, word", Events{}, "Ticket Was Deleted", "", EventRule{change.Ticket, change.OpDelete}, true},
		{"removed, word", Events{}, "asset removed", "", EventRule{change.Asset, change.OpDelete}, true},
		{"note word is an action", Events{}, "ticket note edited", "", EventRule{change.Action, change.OpUpsert}, true},
		{"customer word is a client", Events{}, "customer merged", "", EventRule{change.Client, change.OpUpsert}, true},
		{"device word is an asset", Events{}, "device retired", "", EventRule{change.Asset, change.OpUpsert}, true},
		{"contact word", Events{}, "contact moved", "", EventRule{change.Contact, change.OpUpsert}, true},
		// Nothing to go on.
		{"unknown, no object, no word", Events{}, "sla breached", "", EventRule{}, false},
		{"empty name", Events{}, "", "", EventRule{}, false},
		{"deleted alone", Events{}, "deleted", "", EventRule{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.events.Resolve(tt.event, tt.nested)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("Resolve(%q, %q) = %+v, %v; want %+v, %v", tt.event, tt.nested, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// Every built-in rule names a kind the store knows and a valid operation, and names
// ending in "deleted" delete.
func TestKnownEventsAreConsistent(t *testing.T) {
	for name, r := range knownEvents {
		if _, ok := change.Lookup(r.Kind); !ok {
			t.Errorf("%q: unknown kind %q", name, r.Kind)
		}
		if r.Op != change.OpUpsert && r.Op != change.OpDelete {
			t.Errorf("%q: op %q", name, r.Op)
		}
		if got, ok := (Events{}).Resolve(name, ""); !ok || got != r {
			t.Errorf("Resolve(%q) = %+v, %v; want %+v", name, got, ok, r)
		}
		deletes := len(name) > len("deleted") && name[len(name)-len("deleted"):] == "deleted"
		if deletes != (r.Op == change.OpDelete) {
			t.Errorf("%q: op %q", name, r.Op)
		}
	}
}

// TestKindWordsAreWholeWords: a kind word counts only as a word of the name (or its
// plural), not inside another word.
func TestKindWordsAreWholeWords(t *testing.T) {
	for name, want := range map[string]bool{
		"invoice transaction posted": false, // "action" inside "transaction"
		"superuser promoted":         false, // "user" inside "superuser"
		"devices imported":           true,
		"note pinned":                true,
	} {
		if _, ok := (Events{}).Resolve(name, ""); ok != want {
			t.Errorf("Resolve(%q) known = %v, want %v", name, ok, want)
		}
	}
}

// TestNormalNameSkipsOnlyWhatIsAlreadyNormal: a name taken as it is reads as lower case,
// single spaces, would make it.
func TestNormalNameSkipsOnlyWhatIsAlreadyNormal(t *testing.T) {
	for _, name := range []string{"ticket status changed", "", " ", "a", "Ticket", "a  b", " a", "a ", "a\tb", "a\u00a0b",
		"caf\u00e9", "sla-breached (2)", "a\nb", "\u212a", "x y z"} {
		want := strings.ToLower(strings.Join(strings.Fields(name), " "))
		if got := normalName(name); got != want {
			t.Errorf("normalName(%q) = %q, want %q", name, got, want)
		}
	}
}
