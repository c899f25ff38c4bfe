// Package change defines the one envelope that every source of truth about a Halo object
// becomes (a webhook delivery or a poll result), the kinds of object halosync mirrors, and
// the rule by which a change is applied to what is stored: newest version wins, a partial
// snapshot never erases, an event without a snapshot only marks the object pending.
package change

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Source says where a change came from.
type Source string

const (
	SourceWebhook Source = "webhook"
	SourcePoll    Source = "poll"
)

// The endpoints a webhook delivery arrives through: halosync has two that fail
// independently, and Halo delivers to both (docs/ARCHITECTURE.md, "Two endpoints").
const (
	// EndpointPrimary is the API Gateway HTTP API in AWS, the webhook route locally.
	EndpointPrimary = "primary"
	// EndpointBackup is the ingest function's URL in AWS, the backup route locally.
	EndpointBackup = "backup"
)

// Operation is what happened to the object.
type Operation string

const (
	OpUpsert Operation = "upsert"
	OpDelete Operation = "delete"
)

// Change is the normalized envelope the worker applies. It is what travels on the queue.
type Change struct {
	Connection string    `json:"connection"`
	Kind       Kind      `json:"kind"`
	ID         string    `json:"id"`
	ParentID   string    `json:"parent_id,omitempty"` // the ticket of an action
	Op         Operation `json:"op"`
	// Version orders changes of one object: Unix nanoseconds of Halo's own change marker
	// (ticket last_update, ...) or, where the object carries none, of the delivery timestamp.
	Version     int64     `json:"version"`
	VersionFrom string    `json:"version_from"` // the field Version was read from
	OccurredAt  time.Time `json:"occurred_at"`
	Source      Source    `json:"source"`
	DeliveryID  string    `json:"delivery_id,omitempty"`
	Event       string    `json:"event,omitempty"`
	// Endpoint is the endpoint a webhook's change arrived through (EndpointPrimary or
	// EndpointBackup); "" for a poll result.
	Endpoint string `json:"endpoint,omitempty"`
	// Fields is the object's snapshot as Halo sent it, merged field by field into what is
	// stored. Nil means the delivery carried no object (event only).
	Fields map[string]any `json:"fields,omitempty"`
	// Attributes are routing values carried from the delivery for downstream consumers.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Repairs makes the change a repair of a version that should never have been stored:
	// the stored version the poller saw, above this change's. The change's snapshot (Halo's
	// object as read) then replaces the stored state whole, at the lower version, but only
	// while Repairs is still the stored version (docs/ARCHITECTURE.md, "Versions"). Equal
	// to Version, it repairs fields the copy holds wrongly at Halo's own version (found by
	// verification): the snapshot replaces them at that version, on the same condition.
	Repairs int64 `json:"repairs,omitempty"`
	// Backfill marks a change read by a backfill (the first sync, or `sync --full`): its
	// marker says when the object last changed, not when halosync could first have
	// learned of it, so it has no sync latency (SyncLatency would read months).
	Backfill bool `json:"backfill,omitempty"`
}

// HasSnapshot reports whether the change carries object fields.
func (c Change) HasSnapshot() bool { return c.Fields != nil }

// ClientID is the id of the client the object belongs to, when the snapshot tells.
func (c Change) ClientID() string {
	spec, ok := Lookup(c.Kind)
	if !ok {
		return ""
	}
	if spec.ClientIsSelf {
		return c.ID
	}
	if spec.ClientField == "" || c.Fields == nil {
		return ""
	}
	id, err := CanonicalID(c.Fields[spec.ClientField])
	if err != nil || id == "" || id == "0" {
		return ""
	}
	return id
}

// Validate checks the envelope carries everything the store needs.
func (c Change) Validate() error { return c.validate(false) }

// ValidateQueued checks a change as it may travel on the queue: an event-only change of a
// kind stored under a parent may lack the parent's id, which the worker learns by fetching
// the object.
func (c Change) ValidateQueued() error { return c.validate(true) }

func (c Change) validate(queued bool) error {
	if c.Connection == "" {
		return fmt.Errorf("change: %w: connection is empty", ErrInvalid)
	}
	spec, ok := Lookup(c.Kind)
	if !ok {
		return fmt.Errorf("change: %w: unknown kind %q", ErrInvalid, c.Kind)
	}
	if c.ID == "" {
		return fmt.Errorf("change: %w: %s id is empty", ErrInvalid, c.Kind)
	}
	if spec.Parent != "" && c.ParentID == "" && !(queued && c.Op == OpUpsert && !c.HasSnapshot()) {
		return fmt.Errorf("change: %w: %s %s has no %s id", ErrInvalid, c.Kind, c.ID, spec.Parent)
	}
	if c.Op != OpUpsert && c.Op != OpDelete {
		return fmt.Errorf("change: %w: unknown operation %q", ErrInvalid, c.Op)
	}
	if c.Version <= 0 {
		return fmt.Errorf("change: %w: version must be positive", ErrInvalid)
	}
	if c.Repairs != 0 && (c.Repairs < c.Version || !c.HasSnapshot()) {
		return fmt.Errorf("change: %w: a repair replaces a stored version with a snapshot at or below it", ErrInvalid)
	}
	return nil
}

// Outcome is what applying a change did.
type Outcome string

const (
	Applied   Outcome = "applied"   // the change is now the stored state
	Pending   Outcome = "pending"   // an event without a snapshot was recorded as pending
	Duplicate Outcome = "duplicate" // the stored state already has this version
	Stale     Outcome = "stale"     // the stored state is newer
	// Filtered is the worker's outcome for a change the connection's filters do not want;
	// no store returns it.
	Filtered Outcome = "filtered"
)

// Object is the stored state of one Halo object.
type Object struct {
	Connection string `json:"connection"`
	Kind       Kind   `json:"kind"`
	ID         string `json:"id"`
	ParentID   string `json:"parent_id,omitempty"`
	// Version of the stored fields; 0 when only a pending event has been seen.
	Version int64 `json:"version"`
	// PendingVersion is the newest event-only notification seen. The object is pending,
	// its fields behind Halo, while PendingVersion > Version.
	PendingVersion int64          `json:"pending_version,omitempty"`
	Deleted        bool           `json:"deleted"`
	Fields         map[string]any `json:"fields"`
	ClientID       string         `json:"client_id,omitempty"`
	SyncedAt       time.Time      `json:"synced_at"`
	Source         Source         `json:"source,omitempty"`
	DeliveryID     string         `json:"delivery_id,omitempty"`
	Event          string         `json:"event,omitempty"`
}

// IsPending reports whether Halo announced a version newer than the stored fields.
func (o Object) IsPending() bool { return o.PendingVersion > o.Version }

// Result is what applying a change did, as a store reports it.
type Result struct {
	Outcome Outcome
	// Previous holds, for an Applied change to an object that had stored state, the value
	// each field the change carries had before it: a missing key means the field was not
	// stored, a nil value that it was null. It is empty (not nil) for an applied change
	// that carries no fields, and nil when the object had no stored state (nothing, or only
	// the pending marker an event without a snapshot leaves) or the outcome is not Applied.
	Previous map[string]any
}

// Created reports whether an applied change gave the object its first stored state.
func (r Result) Created() bool { return r.Outcome == Applied && r.Previous == nil }

// Apply is the reference rule for applying c to stored (nil when nothing is stored yet).
// It returns the new state and what the change did; when the outcome is Duplicate or
// Stale the returned object equals the stored one. Every store adapter must behave
// exactly like this, Result.Previous included (the store contract suite checks it);
// adapters that can express it as one conditional write do so instead of calling Apply.
func Apply(stored *Object, c Change, now time.Time) (Object, Result) {
	var next Object
	if stored != nil {
		next = *stored
		next.Fields = copyFields(stored.Fields)
	} else {
		next = Object{Connection: c.Connection, Kind: c.Kind, ID: c.ID, ParentID: c.ParentID, Fields: make(map[string]any, len(c.Fields))}
	}
	if c.Repairs != 0 {
		return repair(stored, next, c, now)
	}
	if o := Compare(c.Version, next.Version); o != Applied {
		return orEmpty(stored, next), Result{Outcome: o}
	}
	if c.Op == OpUpsert && !c.HasSnapshot() {
		if o := Compare(c.Version, next.PendingVersion); o != Applied {
			return orEmpty(stored, next), Result{Outcome: o}
		}
		next.PendingVersion = c.Version
		return next, Result{Outcome: Pending}
	}
	var previous map[string]any
	if stored != nil && stored.Version > 0 { // a pending marker (version 0) holds no state
		previous = make(map[string]any, len(c.Fields))
		for k := range c.Fields {
			if v, ok := stored.Fields[k]; ok {
				previous[k] = v
			}
		}
	}
	for k, v := range c.Fields {
		next.Fields[k] = v
	}
	return written(next, c, now), Result{Outcome: Applied, Previous: previous}
}

// repair applies a change flagged as a repair (Change.Repairs): only while the stored
// version is still the one the poller saw does Halo's object replace the stored state,
// fields whole, at its version (lower, or the same for a repair of fields); the pending
// marker goes, since Halo's object as read includes every change announced before the
// read.
func repair(stored *Object, next Object, c Change, now time.Time) (Object, Result) {
	switch {
	case stored != nil && stored.Version == c.Version && c.Repairs != c.Version:
		return *stored, Result{Outcome: Duplicate}
	case stored == nil || stored.Version != c.Repairs:
		return orEmpty(stored, next), Result{Outcome: Stale}
	}
	previous := make(map[string]any, len(c.Fields))
	for k := range c.Fields {
		if v, ok := stored.Fields[k]; ok {
			previous[k] = v
		}
	}
	next.Fields = copyFields(c.Fields)
	next.PendingVersion = 0
	return written(next, c, now), Result{Outcome: Applied, Previous: previous}
}

// written is next with c's version, tombstone flag and metadata: what every applied
// change writes beside the fields.
func written(next Object, c Change, now time.Time) Object {
	next.Version = c.Version
	next.Deleted = c.Op == OpDelete
	if id := c.ClientID(); id != "" {
		next.ClientID = id
	}
	next.SyncedAt = now.UTC()
	next.Source = c.Source
	next.DeliveryID = c.DeliveryID
	next.Event = c.Event
	return next
}

// Compare says what a change of version v does against a stored version.
func Compare(v, stored int64) Outcome {
	switch {
	case v > stored:
		return Applied
	case v == stored:
		return Duplicate
	default:
		return Stale
	}
}

func orEmpty(stored *Object, next Object) Object {
	if stored != nil {
		return *stored
	}
	return next
}

func copyFields(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Deleted reads Halo's deleted flag on an object's fields (tickets keep it when deleted):
// true, "true" in any case, or 1.
func (c Change) Deleted() bool {
	switch x := c.Fields["deleted"].(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	case json.Number:
		return x.String() == "1"
	}
	return false
}
