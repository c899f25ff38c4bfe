// Package filter decides which changes halosync mirrors: pure rules on a change's kind,
// operation, event name and snapshot, never the store or Halo. A change is judged once,
// where it enters halosync (docs/ARCHITECTURE.md, "Filters and stored fields", which
// lists the rules, their order and the labels dropped changes are counted by).
package filter

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

// Rule names: why a change was dropped. They label the ChangesFiltered metric and appear
// in logs; they never change.
const (
	ClientDenied         = "client_denied"
	ClientNotAllowed     = "client_not_allowed"
	TicketTypeDenied     = "ticket_type_denied"
	TicketTypeNotAllowed = "ticket_type_not_allowed"
	PriorityDenied       = "priority_denied"
	PriorityNotAllowed   = "priority_not_allowed"
	StatusDenied         = "status_denied"
	StatusNotAllowed     = "status_not_allowed"
	EventDenied          = "event_denied"
	EventNotAllowed      = "event_not_allowed"
	NotAStatusChange     = "not_a_status_change"
	Inactive             = "inactive"
)

// Names lists every rule name, in the order the rules are applied.
func Names() []string {
	return []string{
		EventDenied, EventNotAllowed,
		ClientDenied, ClientNotAllowed,
		TicketTypeDenied, TicketTypeNotAllowed,
		PriorityDenied, PriorityNotAllowed,
		StatusDenied, StatusNotAllowed,
		NotAStatusChange, Inactive,
	}
}

// Ticket and note fields the rules read.
const (
	fieldTicketType = "tickettype_id"
	fieldPriority   = "priority_id"
	fieldStatus     = "status_id"
	fieldNewStatus  = "new_status"
	fieldInactive   = "inactive"
)

// idList is one allow and deny pair of Halo ids.
type idList struct {
	allow, deny        map[int64]struct{}
	denied, notAllowed string // rule names
	field              string // the ticket field read; "" for clients
	configured         bool   // either list is set
}

// nameList is the allow and deny pair of event names, normalised.
type nameList struct {
	allow, deny map[string]struct{}
}

// Rules is a compiled, validated set of filters. Its methods are safe for concurrent use;
// a nil *Rules keeps everything.
type Rules struct {
	empty             bool
	events            nameList
	clients           idList
	ticket            []idList // ticket types, priorities, statuses: the configured ones
	statusChangesOnly bool
	skipInactive      bool
}

// New compiles filters. It rejects an id that is not a whole number (Halo ids are: "12",
// "12.0" and " 12 " are accepted as 12), an empty event name, and a value both allowed
// and denied. Errors wrap config.ErrInvalid and name the offending list entry.
func New(f config.Filters) (*Rules, error) {
	r := &Rules{statusChangesOnly: f.StatusChangesOnly, skipInactive: f.SkipInactive}
	var err error
	if r.events, err = compileNames("events", f.Events); err != nil {
		return nil, err
	}
	if r.clients, err = compileIDs("clients", f.Clients, "", ClientDenied, ClientNotAllowed); err != nil {
		return nil, err
	}
	for _, t := range []struct {
		key, field, denied, notAllowed string
		list                           config.IDFilter
	}{
		{"ticket_types", fieldTicketType, TicketTypeDenied, TicketTypeNotAllowed, f.TicketTypes},
		{"priorities", fieldPriority, PriorityDenied, PriorityNotAllowed, f.Priorities},
		{"statuses", fieldStatus, StatusDenied, StatusNotAllowed, f.Statuses},
	} {
		l, err := compileIDs(t.key, t.list, t.field, t.denied, t.notAllowed)
		if err != nil {
			return nil, err
		}
		if l.configured {
			r.ticket = append(r.ticket, l)
		}
	}
	r.empty = r.events.allow == nil && r.events.deny == nil && !r.clients.configured &&
		len(r.ticket) == 0 && !r.statusChangesOnly && !r.skipInactive
	return r, nil
}

// Empty reports whether the rules keep every change: no list is set and neither option
// is on. A nil *Rules is empty.
func (r *Rules) Empty() bool { return r == nil || r.empty }

func compileIDs(key string, f config.IDFilter, field, denied, notAllowed string) (idList, error) {
	l := idList{field: field, denied: denied, notAllowed: notAllowed}
	var err error
	if l.allow, err = idSet(key+".allow", f.Allow); err != nil {
		return idList{}, err
	}
	if l.deny, err = idSet(key+".deny", f.Deny); err != nil {
		return idList{}, err
	}
	if err := overlap(key, l.allow, l.deny); err != nil {
		return idList{}, err
	}
	l.configured = l.allow != nil || l.deny != nil
	return l, nil
}

// idSet parses a list of ids; nil when the list is empty.
func idSet(where string, list []string) (map[int64]struct{}, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[int64]struct{}, len(list))
	for i, s := range list {
		id, err := parseConfigID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: filters: %s[%d]: %w", config.ErrInvalid, where, i, err)
		}
		out[id] = struct{}{}
	}
	return out, nil
}

// parseConfigID reads one configured id through change.CanonicalID, as ids in payloads
// are read, and insists on a whole number.
func parseConfigID(s string) (int64, error) {
	c, err := change.CanonicalID(s)
	if err != nil || c == "" {
		return 0, fmt.Errorf("%q is not a Halo id (a whole number)", s)
	}
	id, err := strconv.ParseInt(c, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a Halo id (a whole number)", s)
	}
	return id, nil
}

func overlap[K int64 | string](key string, allow, deny map[K]struct{}) error {
	var both []string
	for k := range allow {
		if _, ok := deny[k]; ok {
			both = append(both, fmt.Sprint(k))
		}
	}
	if len(both) == 0 {
		return nil
	}
	sort.Strings(both)
	return fmt.Errorf("%w: filters: %s: %s both allowed and denied", config.ErrInvalid, key, strings.Join(both, ", "))
}

func compileNames(key string, f config.IDFilter) (nameList, error) {
	var l nameList
	var err error
	if l.allow, err = nameSet(key+".allow", f.Allow); err != nil {
		return nameList{}, err
	}
	if l.deny, err = nameSet(key+".deny", f.Deny); err != nil {
		return nameList{}, err
	}
	if err := overlap(key, l.allow, l.deny); err != nil {
		return nameList{}, err
	}
	return l, nil
}

func nameSet(where string, list []string) (map[string]struct{}, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := make(map[string]struct{}, len(list))
	for i, s := range list {
		n := normalizeEvent(s)
		if n == "" {
			return nil, fmt.Errorf("%w: filters: %s[%d]: the event name is empty", config.ErrInvalid, where, i)
		}
		out[n] = struct{}{}
	}
	return out, nil
}

// normalizeEvent lower-cases a name and folds runs of white space into one space, as
// halo.Events.Resolve does. Names already in that form, as Halo sends them, are returned
// without allocating.
func normalizeEvent(s string) string {
	space := true // at the start, a space would be leading
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b >= 0x80, b >= 'A' && b <= 'Z', b == '\t', b == '\n', b == '\v', b == '\f', b == '\r':
			return strings.ToLower(strings.Join(strings.Fields(s), " "))
		case b == ' ':
			if space {
				return strings.ToLower(strings.Join(strings.Fields(s), " "))
			}
			space = true
		default:
			space = false
		}
	}
	if space && s != "" {
		return strings.ToLower(strings.Join(strings.Fields(s), " ")) // trailing space
	}
	return s
}

// Match decides one change: keep is false when a rule drops it, and rule then names the
// rule (one of Names); rule is empty when the change is kept. See the package
// documentation for each rule.
func (r *Rules) Match(c change.Change) (rule string, keep bool) {
	if r == nil || r.empty {
		return "", true
	}
	if c.Event != "" && (r.events.allow != nil || r.events.deny != nil) {
		if n := normalizeEvent(c.Event); n != "" {
			if _, ok := r.events.deny[n]; ok {
				return EventDenied, false
			}
			if r.events.allow != nil {
				if _, ok := r.events.allow[n]; !ok {
					return EventNotAllowed, false
				}
			}
		}
	}
	if c.Op == change.OpDelete {
		return "", true
	}
	if r.clients.configured {
		if rule, keep := r.matchClient(c); !keep {
			return rule, false
		}
	}
	if c.Kind == change.Ticket && c.Fields != nil {
		for i := range r.ticket {
			if rule, keep := r.ticket[i].match(c.Fields); !keep {
				return rule, false
			}
		}
	}
	if r.statusChangesOnly && !r.isStatusChange(c) {
		return NotAStatusChange, false
	}
	if r.skipInactive && c.Fields != nil && c.Kind != change.Ticket && c.Kind != change.Action &&
		isTrue(c.Fields[fieldInactive]) {
		return Inactive, false
	}
	return "", true
}

func (r *Rules) matchClient(c change.Change) (string, bool) {
	spec, ok := change.Lookup(c.Kind)
	switch {
	case !ok:
		return "", true
	case spec.ClientIsSelf:
		id, err := strconv.ParseInt(c.ID, 10, 64) // canonical, as halo and the poller write it
		if err != nil {
			var ok bool
			id, ok = idOf(c.ID)
			return r.clients.judge(id, ok)
		}
		return r.clients.judge(id, true)
	case spec.ClientField == "" || c.Fields == nil:
		return "", true // a note, or no snapshot
	}
	v, present := c.Fields[spec.ClientField]
	if !present {
		return "", true
	}
	id, ok := idOf(v)
	return r.clients.judge(id, ok)
}

// match judges a ticket snapshot on l's field.
func (l *idList) match(fields map[string]any) (string, bool) {
	v, present := fields[l.field]
	if !present {
		return "", true
	}
	id, ok := idOf(v)
	return l.judge(id, ok)
}

// judge applies the lists to an id; ok false means the value names no id.
func (l *idList) judge(id int64, ok bool) (string, bool) {
	if ok {
		if _, denied := l.deny[id]; denied {
			return l.denied, false
		}
	}
	if l.allow != nil {
		if !ok {
			return l.notAllowed, false
		}
		if _, allowed := l.allow[id]; !allowed {
			return l.notAllowed, false
		}
	}
	return "", true
}

// isStatusChange applies status_changes_only to one change on its own.
func (r *Rules) isStatusChange(c change.Change) bool {
	if c.Event == "" || (c.Kind != change.Ticket && c.Kind != change.Action) {
		return true
	}
	if eventNamesStatusChange(c.Event) {
		return true
	}
	if c.Kind == change.Ticket {
		return false
	}
	return changesStatus(c)
}

// changesStatus reports whether a note changed its ticket's status, or cannot be told
// (no snapshot, or no new_status field).
func changesStatus(c change.Change) bool {
	if c.Fields == nil {
		return true
	}
	v, present := c.Fields[fieldNewStatus]
	if !present {
		return true
	}
	id, ok := idOf(v)
	return ok && id != 0
}

// statusWords are the words of an event name that make it a status change.
var statusWords = []string{"status", "closed", "reopened", "re-opened"}

// eventNamesStatusChange reports whether an event's name announces a status change.
func eventNamesStatusChange(name string) bool {
	for w := range strings.FieldsSeq(name) {
		for _, s := range statusWords {
			if strings.EqualFold(w, s) {
				return true
			}
		}
	}
	return false
}

// Decision is the verdict on one change, as Match returns it.
type Decision struct {
	Rule string // why it was dropped; empty when kept
	Keep bool
}

// MatchAll decides the changes of one delivery (one webhook event) together. Each is
// first decided by Match; then, for every note whose ticket (its ParentID, on the same
// connection) is among the changes:
//
//   - when the ticket is dropped by the client, ticket type, priority or status rules,
//     the note is dropped too, under the ticket's rule (a note delete is still kept);
//   - with status_changes_only, when the note changed the ticket's status (new_status
//     set) and the ticket was dropped as not a status change, the ticket is kept: the
//     note's status change is the ticket's.
//
// The result has one Decision per change, in order.
func (r *Rules) MatchAll(cs []change.Change) []Decision {
	out := make([]Decision, len(cs))
	if r == nil || r.empty {
		for i := range out {
			out[i].Keep = true
		}
		return out
	}
	hasNote := false
	for i, c := range cs {
		out[i].Rule, out[i].Keep = r.Match(c)
		hasNote = hasNote || c.Kind == change.Action
	}
	if !hasNote {
		return out
	}
	for i, note := range cs {
		if note.Kind != change.Action || note.ParentID == "" || !out[i].Keep || note.Op == change.OpDelete {
			continue
		}
		for j, t := range cs {
			if t.Kind != change.Ticket || t.ID != note.ParentID || t.Connection != note.Connection {
				continue
			}
			switch {
			case !out[j].Keep && notesFollow(out[j].Rule):
				out[i] = out[j]
			case out[j].Rule == NotAStatusChange && hasNewStatus(note.Fields):
				out[j] = Decision{Keep: true}
			}
			break
		}
	}
	return out
}

// notesFollow reports whether a ticket dropped by rule takes its notes with it: the rules
// on what the ticket is, not on the event.
func notesFollow(rule string) bool {
	switch rule {
	case ClientDenied, ClientNotAllowed, TicketTypeDenied, TicketTypeNotAllowed,
		PriorityDenied, PriorityNotAllowed, StatusDenied, StatusNotAllowed:
		return true
	}
	return false
}

// hasNewStatus reports whether a note's snapshot names a status it set.
func hasNewStatus(fields map[string]any) bool {
	id, ok := idOf(fields[fieldNewStatus])
	return ok && id != 0
}

// idOf reads a Halo id from a snapshot value as change.CanonicalID does, without
// allocating for the common forms (a JSON number or string holding a whole number, a
// whole float). ok is false when the value names no id: null, empty, or not a whole
// number.
func idOf(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, true
		}
	case string:
		if i, err := strconv.ParseInt(x, 10, 64); err == nil {
			return i, true
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return int64(x), true
		}
		return 0, false
	case int:
		return int64(x), true
	case int64:
		return x, true
	}
	s, err := change.CanonicalID(v)
	if err != nil || s == "" {
		return 0, false
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil
}

// isTrue reads Halo's inactive flag: true, "true" (any case), or the number 1.
func isTrue(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		s := strings.TrimSpace(x)
		if strings.EqualFold(s, "true") {
			return true
		}
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && f == 1
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 1
	case float64:
		return x == 1
	case int:
		return x == 1
	case int64:
		return x == 1
	}
	return false
}
