package change

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DeliveryRetention is how long a delivery record is kept: it expires (DynamoDB's time
// to live, attribute expires_at) at ProcessedAt plus this, and is not returned after.
const DeliveryRetention = 7 * 24 * time.Hour

// Limits on what a delivery record copies of the values it shows, so a record stays a
// small item (DynamoDB charges writes per KB): a value pair (old and new, as JSON) over
// maxShownValue bytes, or any beyond maxShownTotal bytes in one record, is elided.
const (
	maxShownValue = 1024
	maxShownTotal = 16 * 1024
)

// Delivery records what one delivery did to one object: the delivery record of the data
// model (C#<conn>#DELIVERY#<deliveryId>, one item per object the delivery carried). The
// worker writes one for every change that came with a delivery id (webhooks; poll
// results have none), whatever its outcome.
type Delivery struct {
	Connection string    `json:"connection"`
	DeliveryID string    `json:"delivery_id"`
	Kind       Kind      `json:"kind"`
	ID         string    `json:"id"`
	ParentID   string    `json:"parent_id,omitempty"`
	Op         Operation `json:"op"`
	Event      string    `json:"event,omitempty"`
	Source     Source    `json:"source"`
	// Endpoint is the endpoint the delivery came through: EndpointPrimary or EndpointBackup.
	Endpoint string  `json:"endpoint,omitempty"`
	Outcome  Outcome `json:"outcome"`
	// Reason says why, where the outcome alone does not: the rule of a filtered change.
	Reason  string `json:"reason,omitempty"`
	Version int64  `json:"version"`
	// Created: the change gave the object its first stored state, so nothing is compared.
	Created bool `json:"created,omitempty"`
	// Changed holds the fields the change carried whose value differs from what was stored
	// before it (applied changes to objects that had stored state only).
	Changed map[string]FieldChange `json:"changed,omitempty"`
	// ChangesUnknown: the delivery applied this version, but the write's answer was lost
	// (a retry found the object holding this delivery's own version), so what it changed
	// is not known. Such a record never replaces one that knows (Conditional).
	ChangesUnknown bool      `json:"changes_unknown,omitempty"`
	Summary        string    `json:"summary"`
	ReceivedAt     time.Time `json:"received_at"`
	ProcessedAt    time.Time `json:"processed_at"`
}

// FieldChange is one field's old and new value.
type FieldChange struct {
	From any `json:"from"`
	To   any `json:"to"`
	// Added: the field was not stored before (From is nil).
	Added bool `json:"added,omitempty"`
	// Elided: the values were too large to copy into the record (From and To are nil);
	// the stored object holds the new one.
	Elided bool `json:"elided,omitempty"`
}

// NewDelivery is the record of change c, which the store applied with result r.
func NewDelivery(c Change, r Result, receivedAt, processedAt time.Time) Delivery {
	d := Delivery{
		Connection: c.Connection, DeliveryID: c.DeliveryID, Kind: c.Kind, ID: c.ID, ParentID: c.ParentID,
		Op: c.Op, Event: c.Event, Source: c.Source, Endpoint: c.Endpoint, Outcome: r.Outcome, Version: c.Version,
		Created: r.Created(), ReceivedAt: utc(receivedAt), ProcessedAt: utc(processedAt),
	}
	if r.Outcome == Applied {
		d.Changed = Diff(r.Previous, c.Fields)
	}
	d.Summary = d.Summarize()
	return d
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// Validate checks a record carries its keys.
func (d Delivery) Validate() error {
	switch {
	case d.Connection == "":
		return fmt.Errorf("delivery record: %w: connection is empty", ErrInvalid)
	case d.DeliveryID == "":
		return fmt.Errorf("delivery record: %w: delivery id is empty", ErrInvalid)
	case d.Kind == "" || d.ID == "":
		return fmt.Errorf("delivery record: %w: object kind or id is empty", ErrInvalid)
	case d.ProcessedAt.IsZero():
		return fmt.Errorf("delivery record: %w: processed-at time is missing", ErrInvalid)
	}
	return nil
}

// ExpiresAt is when the record is no longer kept.
func (d Delivery) ExpiresAt() time.Time { return d.ProcessedAt.Add(DeliveryRetention) }

// Expired reports whether the record has expired at now. Expiry is compared in whole
// Unix seconds, as DynamoDB's time to live reads expires_at.
func (d Delivery) Expired(now time.Time) bool { return d.ExpiresAt().Unix() <= now.Unix() }

// Replaces reports whether d may replace old, the record already stored for the same
// delivery and object. A message can be processed more than once (SQS delivers at least
// once, Halo may retry with the same id); the second time it finds its own change stored
// and is a duplicate, or stale when a newer change came in between. Such a record does
// not replace one saying the delivery applied that same version (or marked it pending),
// so the record keeps saying what the delivery did. Every other record replaces the old
// one, and anything replaces an expired record. Every store's RecordDelivery follows this.
func (d Delivery) Replaces(old Delivery) bool {
	if old.Expired(d.ProcessedAt) || !d.Conditional() {
		return true
	}
	return !(old.Version == d.Version && (old.Outcome == Applied || old.Outcome == Pending))
}

// Conditional reports whether the record is written only where Replaces allows: a
// duplicate, a stale change, or an applied one whose changes are not known.
func (d Delivery) Conditional() bool {
	return d.Outcome == Duplicate || d.Outcome == Stale || d.ChangesUnknown
}

// Recovered turns the record of a duplicate into the applied record it stands for when
// the stored object holds this delivery's own version: the first write of the change
// was applied but its answer lost, and the retry found it (docs/ARCHITECTURE.md,
// "Delivery records").
func (d Delivery) Recovered(stored Object) Delivery {
	if d.Outcome != Duplicate || stored.DeliveryID != d.DeliveryID || stored.Version != d.Version {
		return d
	}
	d.Outcome, d.ChangesUnknown = Applied, true
	d.Summary = d.Summarize()
	return d
}

// Diff compares the fields a change carries with their previous values (Result.Previous)
// and returns those whose value differs, by their JSON value: json.Number("7") equals 7,
// and "12.50" equals 12.5. A field absent before is Added. previous nil (no earlier
// state) yields nil. Large values are elided (FieldChange.Elided).
func Diff(previous, fields map[string]any) map[string]FieldChange {
	if previous == nil {
		return nil
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	var out map[string]FieldChange
	budget := maxShownTotal
	for _, k := range names {
		to := fields[k]
		from, had := previous[k]
		if had && sameValue(from, to) {
			continue
		}
		fc := FieldChange{From: from, To: to, Added: !had}
		toJSON, errTo := EncodeJSON(to)
		n := len(toJSON)
		if had {
			fromJSON, errFrom := EncodeJSON(from)
			n, errTo = n+len(fromJSON), errors.Join(errTo, errFrom)
		}
		if errTo != nil || n > maxShownValue || n > budget {
			fc = FieldChange{Added: !had, Elided: true}
		} else {
			budget -= n
		}
		if out == nil {
			out = map[string]FieldChange{}
		}
		out[k] = fc
	}
	return out
}

// sameValue reports whether two field values are the same JSON value: directly for
// strings, booleans, nulls and numbers (most fields of most changes), else by their JSON
// encodings.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return true
		}
	case string:
		if y, ok := b.(string); ok {
			return x == y
		}
	case bool:
		if y, ok := b.(bool); ok {
			return x == y
		}
	}
	if x, ok := numberText(a); ok {
		if y, ok := numberText(b); ok {
			return x == y || exactValue(x) == exactValue(y)
		}
	}
	ja, errA := EncodeJSON(a)
	jb, errB := EncodeJSON(b)
	return errA == nil && errB == nil && sameJSON(ja, jb)
}

// sameJSON reports whether two JSON encodings hold the same value, numbers compared by
// value.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	va, errA := decodeJSON(a)
	vb, errB := decodeJSON(b)
	return errA == nil && errB == nil && reflect.DeepEqual(canonical(va), canonical(vb))
}

// exactNumber is a JSON number as an exact fraction, distinct from any string.
type exactNumber string

// canonical replaces every number in a decoded JSON value by its exact value as a
// fraction, so that 12.5, 12.50 and 1.25e1 compare equal (and none equals "12.5").
func canonical(v any) any {
	switch x := v.(type) {
	case json.Number:
		return exactValue(x.String())
	case map[string]any:
		for k, e := range x {
			x[k] = canonical(e)
		}
	case []any:
		for i, e := range x {
			x[i] = canonical(e)
		}
	}
	return v
}

// numberText is the JSON text of a number held as json.Number or a Go number.
func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return x.String(), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// exactValue is a number's exact value. An exponent beyond ±1000 (no Halo value has one)
// is compared as written, since the exact value would take unbounded work.
func exactValue(s string) exactNumber {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		if e, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+")); err != nil || e > 1000 || e < -1000 {
			return exactNumber(s)
		}
	}
	if r, ok := new(big.Rat).SetString(s); ok {
		return exactNumber(r.RatString())
	}
	return exactNumber(s)
}

// EncodeJSON is v as JSON on one line, HTML characters unescaped, numbers held as
// json.Number as written.
func EncodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// summaryGroup is one rule of Delivery.Summarize: when any of fields changed on an
// object of one of kinds (any kind when none are named), the summary says label and
// shows those fields' old and new values. A group of one field shows only the values.
type summaryGroup struct {
	label  string
	kinds  []Kind
	fields []string
}

// summaryGroups are the changes a summary names, in the order it names them; other
// changed fields are listed by name.
var summaryGroups = []summaryGroup{
	{label: "reassigned", kinds: []Kind{Ticket}, fields: []string{"agent_id", "team_id", "team"}},
	{label: "assigned", kinds: []Kind{Asset}, fields: []string{"user_id", "site_id", "client_id"}},
	{label: "status", fields: []string{"status_id"}},
}

// maxShownRunes bounds one value in a summary.
const maxShownRunes = 40

// Summarize describes the record for people: what the outcome means, or for an applied
// change what it changed, e.g. "reassigned: agent_id 7 → 11, team_id 2 → 3",
// "assigned: user_id 5 → 9, site_id 1 → 2", "status: 1 → 2", "changed: a, b, c". The
// object's change marker (last_update, ...), which every update moves, is left out of the
// list of other changed fields unless nothing else changed.
func (d Delivery) Summarize() string {
	switch d.Outcome {
	case Applied:
		if d.ChangesUnknown {
			return "applied; its answer was lost, so the fields it changed are not known"
		}
	case Pending:
		return "pending: an event without the object; the fields wait for a fetch or a snapshot"
	case Duplicate:
		return "duplicate: this version is already stored; nothing changed"
	case Stale:
		return "stale: a newer version is stored; nothing changed"
	case Filtered:
		if d.Reason != "" {
			return "filtered: " + d.Reason
		}
		return "filtered"
	default:
		return string(d.Outcome)
	}
	if d.Created {
		if d.Op == OpDelete {
			return "deleted (never seen before)"
		}
		return "created"
	}
	var parts []string
	if d.Op == OpDelete {
		parts = append(parts, "deleted")
	}
	shown := map[string]bool{}
	for _, g := range summaryGroups {
		if len(g.kinds) > 0 && !slices.Contains(g.kinds, d.Kind) {
			continue
		}
		var items []string
		for _, f := range g.fields {
			fc, ok := d.Changed[f]
			if !ok {
				continue
			}
			shown[f] = true
			values := showChange(fc)
			if len(g.fields) > 1 {
				values = f + " " + values
			}
			items = append(items, values)
		}
		if len(items) > 0 {
			parts = append(parts, g.label+": "+strings.Join(items, ", "))
		}
	}
	var rest []string
	marker := ""
	if spec, ok := Lookup(d.Kind); ok {
		marker = spec.VersionField
	}
	for f := range d.Changed {
		if !shown[f] && f != marker {
			rest = append(rest, f)
		}
	}
	if _, ok := d.Changed[marker]; ok && len(rest) == 0 && len(parts) == 0 {
		rest = append(rest, marker)
	}
	if len(rest) > 0 {
		sort.Strings(rest)
		parts = append(parts, "changed: "+strings.Join(rest, ", "))
	}
	if len(parts) == 0 {
		return "no field changed"
	}
	return strings.Join(parts, "; ")
}

// showChange renders "old → new" for a summary.
func showChange(fc FieldChange) string {
	if fc.Elided {
		return "(too large to show)"
	}
	from := "(none)"
	if !fc.Added {
		from = showValue(fc.From)
	}
	return from + " → " + showValue(fc.To)
}

func showValue(v any) string {
	b, err := EncodeJSON(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if utf8.RuneCountInString(s) > maxShownRunes {
		r := []rune(s)
		s = string(r[:maxShownRunes-1]) + "…"
	}
	return s
}
