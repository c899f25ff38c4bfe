package halo

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

// EventRule maps one Halo event name to the kind of object it concerns and what happened.
type EventRule struct {
	Kind change.Kind
	Op   change.Operation
}

// knownEvents maps Halo's event names (lower case, as deliveries carry them) to kinds and
// operations. Halo's catalogue is only partly documented (docs/ARCHITECTURE.md, "Events"):
// names not listed here are resolved by Events.Resolve from the nested object and the
// words of the name.
var knownEvents = map[string]EventRule{
	"new ticket logged":       {change.Ticket, change.OpUpsert},
	"ticket logged":           {change.Ticket, change.OpUpsert},
	"ticket created":          {change.Ticket, change.OpUpsert},
	"ticket updated":          {change.Ticket, change.OpUpsert},
	"ticket status changed":   {change.Ticket, change.OpUpsert},
	"ticket reassigned":       {change.Ticket, change.OpUpsert},
	"ticket priority changed": {change.Ticket, change.OpUpsert},
	"ticket closed":           {change.Ticket, change.OpUpsert},
	"ticket re-opened":        {change.Ticket, change.OpUpsert},
	"ticket reopened":         {change.Ticket, change.OpUpsert},
	"ticket deleted":          {change.Ticket, change.OpDelete},
	"action added":            {change.Action, change.OpUpsert},
	"new action":              {change.Action, change.OpUpsert},
	"note added":              {change.Action, change.OpUpsert},
	"action updated":          {change.Action, change.OpUpsert},
	"action deleted":          {change.Action, change.OpDelete},
	"client created":          {change.Client, change.OpUpsert},
	"new client":              {change.Client, change.OpUpsert},
	"client updated":          {change.Client, change.OpUpsert},
	"client deleted":          {change.Client, change.OpDelete},
	"user created":            {change.Contact, change.OpUpsert},
	"new user":                {change.Contact, change.OpUpsert},
	"user updated":            {change.Contact, change.OpUpsert},
	"user deleted":            {change.Contact, change.OpDelete},
	"contact created":         {change.Contact, change.OpUpsert},
	"contact updated":         {change.Contact, change.OpUpsert},
	"contact deleted":         {change.Contact, change.OpDelete},
	"asset created":           {change.Asset, change.OpUpsert},
	"new asset":               {change.Asset, change.OpUpsert},
	"asset updated":           {change.Asset, change.OpUpsert},
	"asset deleted":           {change.Asset, change.OpDelete},
}

// Events resolves event names. The zero value knows Halo's names listed above; Extra adds
// or overrides names (from configuration) without code changes.
type Events struct {
	Extra map[string]EventRule
}

// kindWords are the words of an event name that name a kind, in the order tried.
var kindWords = []struct {
	word string
	kind change.Kind
}{
	{"action", change.Action}, {"note", change.Action},
	{"ticket", change.Ticket},
	{"client", change.Client}, {"customer", change.Client},
	{"user", change.Contact}, {"contact", change.Contact},
	{"asset", change.Asset}, {"device", change.Asset},
}

// Resolve tells the kind and operation of an event. nestedKind is the kind whose object the
// delivery nests, if any ("" otherwise); for names it does not know, the nested object
// decides the kind, then the words of the name, and "deleted"/"removed" in the name makes
// the operation a delete. ok is false when the kind cannot be told.
func (e Events) Resolve(name string, nestedKind change.Kind) (EventRule, bool) {
	n := normalName(name)
	if r, ok := e.Extra[n]; ok {
		return r, true
	}
	if r, ok := knownEvents[n]; ok {
		return r, true
	}
	rule := EventRule{Op: change.OpUpsert}
	for _, w := range strings.Fields(n) {
		if w == "deleted" || w == "delete" || w == "removed" {
			rule.Op = change.OpDelete
		}
	}
	if nestedKind != "" {
		rule.Kind = nestedKind
		return rule, true
	}
	words := strings.Fields(n)
	for _, kw := range kindWords {
		for _, w := range words {
			if w == kw.word || w == kw.word+"s" {
				rule.Kind = kw.kind
				return rule, true
			}
		}
	}
	return EventRule{}, false
}

// normalName is an event name as the table holds it: lower case, single spaces.
func normalName(name string) string {
	if isNormal(name) {
		return name // as Halo sends its names: nothing to build
	}
	return strings.ToLower(strings.Join(strings.Fields(name), " "))
}

// isNormal reports whether a name is already lower-case ASCII words between single spaces.
func isNormal(name string) bool {
	if name == "" || name[0] == ' ' || name[len(name)-1] == ' ' {
		return name == ""
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' || c >= utf8.RuneSelf || c != ' ' && c <= ' ' || c == ' ' && name[i+1] == ' ' {
			return false
		}
	}
	return true
}

// Known returns an event's name as the table holds it (lower case, single spaces) when it
// is one of Halo's known names or a configured one; ok is false for any other name.
func (e Events) Known(name string) (string, bool) {
	n := normalName(name)
	if _, ok := e.Extra[n]; ok {
		return n, true
	}
	_, ok := knownEvents[n]
	return n, ok
}

// KnownEvents lists Halo's event names halosync knows, sorted, with their rules.
func KnownEvents() []NamedRule {
	out := make([]NamedRule, 0, len(knownEvents))
	for name, r := range knownEvents {
		out = append(out, NamedRule{Name: name, EventRule: r})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NamedRule is an event name and its rule.
type NamedRule struct {
	Name string
	EventRule
}

// EventsFromConfig adds a connection's configured event names to Halo's known ones.
func EventsFromConfig(m map[string]config.EventMapping) (Events, error) {
	if len(m) == 0 {
		return Events{}, nil
	}
	extra := make(map[string]EventRule, len(m))
	for name, em := range m {
		kind, err := change.ParseKind(em.Kind)
		if err != nil {
			return Events{}, fmt.Errorf("events[%q]: %w", name, err)
		}
		op := change.OpUpsert
		switch em.Op {
		case "", "upsert":
		case "delete":
			op = change.OpDelete
		default:
			return Events{}, fmt.Errorf("events[%q]: op %q (upsert or delete)", name, em.Op)
		}
		extra[normalName(name)] = EventRule{Kind: kind, Op: op}
	}
	return Events{Extra: extra}, nil
}
