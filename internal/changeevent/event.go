// Package changeevent is the event consumers receive for every change that altered the
// copy: one per applied change (not for a duplicate, a stale change, a filtered one or an
// event-only notice that only marks an object pending). Its detail carries what the
// delivery records compute (change.NewDelivery: the changed fields with their old and
// new values, and the summary), so both say the same. In AWS the publisher function puts
// these events on the stack's EventBridge bus from the table's stream; `halosync serve`
// writes them to an outbox in the transaction that applies the change and streams them
// per connection.
package changeevent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Source is every event's source.
const Source = "halosync"

// The operations a detail-type names.
const (
	Created = "created" // the change gave the object its first stored state
	Updated = "updated" // the change altered a stored object
	Deleted = "deleted" // the change deleted the object (a tombstone)
)

// Event is one change event, shaped as EventBridge delivers events to its targets
// (id, source, detail-type, time, detail), without the account and region.
type Event struct {
	// ID is the event's stable id (Detail.EventID): the same for every publication of
	// the same change, so a consumer can drop a repeat.
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	DetailType string    `json:"detail-type"`
	Time       time.Time `json:"time"` // when the change was applied (the object's synced-at)
	Detail     Detail    `json:"detail"`
}

// Detail is what a change event tells.
type Detail struct {
	EventID    string      `json:"event_id"`
	Connection string      `json:"connection"`
	Kind       change.Kind `json:"kind"`
	ID         string      `json:"id"`
	ParentID   string      `json:"parent_id,omitempty"` // a note's ticket
	Operation  string      `json:"operation"`           // created, updated or deleted
	Version    int64       `json:"version"`
	// Repairs is, for a repair (docs/ARCHITECTURE.md, "Versions"), the stored version the
	// change replaced with Halo's lower one.
	Repairs    int64         `json:"repairs,omitempty"`
	Source     change.Source `json:"source,omitempty"` // webhook or poll
	DeliveryID string        `json:"delivery_id,omitempty"`
	HaloEvent  string        `json:"halo_event,omitempty"` // Halo's event name, when a webhook told it
	// Changed holds the fields whose value the change altered, each with its old and new
	// value (change.Diff); empty for a created object.
	Changed map[string]change.FieldChange `json:"changed,omitempty"`
	Summary string                        `json:"summary"` // as the delivery record says it
}

// New is the event of change c, which a store applied with result r at syncedAt; false
// when the change did not alter the copy (any outcome but change.Applied).
func New(c change.Change, r change.Result, syncedAt time.Time) (Event, bool) {
	if r.Outcome != change.Applied {
		return Event{}, false
	}
	d := change.NewDelivery(c, r, syncedAt, syncedAt)
	op := Updated
	switch {
	case c.Op == change.OpDelete:
		op = Deleted
	case r.Created():
		op = Created
	}
	id := ID(c.Connection, c.Kind, c.ID, c.ParentID, c.Version, c.Repairs)
	return Event{
		ID: id, Source: Source, DetailType: DetailType(c.Kind, op), Time: syncedAt.UTC(),
		Detail: Detail{
			EventID: id, Connection: c.Connection, Kind: c.Kind, ID: c.ID, ParentID: c.ParentID,
			Operation: op, Version: c.Version, Repairs: c.Repairs, Source: c.Source,
			DeliveryID: c.DeliveryID, HaloEvent: c.Event, Changed: d.Changed, Summary: d.Summary,
		},
	}, true
}

// ID is an event's stable id: 32 hex digits of a hash of the object's connection, kind,
// id, parent id and version (and, for a repair, the version it replaced). Every
// publication of one applied change has the same id; no other change has it.
func ID(conn string, kind change.Kind, id, parentID string, version, repairs int64) string {
	parts := []string{conn, string(kind), id, parentID, strconv.FormatInt(version, 10)}
	if repairs != 0 {
		parts = append(parts, strconv.FormatInt(repairs, 10))
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// DetailType is the detail-type of an operation on a kind: "ticket updated".
func DetailType(kind change.Kind, op string) string { return string(kind) + " " + op }

// DetailTypes lists every detail-type an event may carry, by kind then operation.
func DetailTypes() []string {
	var out []string
	for _, k := range change.Kinds() {
		for _, op := range []string{Created, Updated, Deleted} {
			out = append(out, DetailType(k.Kind, op))
		}
	}
	return out
}

// Encode is the event as JSON on one line, numbers as they were stored and HTML
// characters unescaped.
func (e Event) Encode() ([]byte, error) { return change.EncodeJSON(e) }

// EncodeDetail is the event's detail as JSON, as PutEvents takes it.
func (e Event) EncodeDetail() ([]byte, error) { return change.EncodeJSON(e.Detail) }

// Decode reads an event written by Encode, numbers as json.Number.
func Decode(b []byte) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var e Event
	err := dec.Decode(&e)
	return e, err
}
