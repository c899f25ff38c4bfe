package change

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Keys are the storage keys of the data model (docs/ARCHITECTURE.md, "Data model"). Every
// store adapter uses them, so the local and the DynamoDB copies are laid out alike.

// PartitionKey of an object: C#<conn>#<kind>#<id>, or its parent's for kinds stored
// under a parent (a ticket's actions live in the ticket's partition).
func PartitionKey(conn string, kind Kind, id, parentID string) string {
	if spec, ok := Lookup(kind); ok && spec.Parent != "" {
		return "C#" + conn + "#" + string(spec.Parent) + "#" + parentID
	}
	return "C#" + conn + "#" + string(kind) + "#" + id
}

// SortKey of an object: STATE, or <KIND>#<id> under a parent (ACTION#<id>).
func SortKey(kind Kind, id string) string {
	if spec, ok := Lookup(kind); ok && spec.Parent != "" {
		return strings.ToUpper(string(kind)) + "#" + id
	}
	return "STATE"
}

// ClientIndexKey is the by-client index partition: C#<conn>#CLIENT#<clientId>.
func ClientIndexKey(conn, clientID string) string { return "C#" + conn + "#CLIENT#" + clientID }

// ClientIndexSort is the by-client index sort key: <kind>#<id>.
func ClientIndexSort(kind Kind, id string) string { return string(kind) + "#" + id }

// DeliveryPartitionKey is a delivery record's partition: C#<conn>#DELIVERY#<deliveryId>.
// One query on it lists what the delivery did to each object it carried.
func DeliveryPartitionKey(conn, deliveryID string) string {
	return "C#" + conn + "#DELIVERY#" + deliveryID
}

// DeliverySortKey is a delivery record's sort key: <kind>#<id>. A delivery carries one
// event, so at most one object of a kind (a ticket and its note), and the note's id is
// unique under that ticket.
func DeliverySortKey(kind Kind, id string) string { return string(kind) + "#" + id }

// KindIndexKey is the by-kind index partition (DynamoDB GSI2's gsi2pk):
// C#<conn>#KIND#<kind>. Every object item of a kind (tombstones and pending markers too)
// carries it, so one query lists the ids a connection stores of that kind.
func KindIndexKey(conn string, kind Kind) string { return "C#" + conn + "#KIND#" + string(kind) }

// KindIndexSort is the by-kind index sort key (gsi2sk): the id, or <parentId>#<id> for
// kinds stored under a parent (a note: <ticketId>#<actionId>), so a note's id is unique
// within the kind and a ticket's notes sort together.
func KindIndexSort(kind Kind, id, parentID string) string {
	if spec, ok := Lookup(kind); ok && spec.Parent != "" {
		return parentID + "#" + id
	}
	return id
}

// CursorPartitionKey is the partition of a connection's poller state: C#<conn>#CURSOR.
// Its items are the poller's documents, one per name (CursorSortKey).
func CursorPartitionKey(conn string) string { return "C#" + conn + "#CURSOR" }

// CursorSortKey is a poller document's sort key: its name (a kind, or the schedule's
// state), as the poller chose it.
func CursorSortKey(name string) string { return name }

// StoredID names one object a store holds: what the poller's reconcile compares with
// Halo's id list to find deletes the webhooks missed. ParentID is set for kinds stored
// under a parent (a note's ticket). Deleted marks a tombstone: the object is known deleted,
// so a reconcile has nothing to do for it. A pending marker (an event seen, no state
// yet) is listed as a live object.
type StoredID struct {
	ID       string `json:"id"`
	ParentID string `json:"parent_id,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
}

// ValidateCursorKey is the check every store makes of a poller document's key: a
// connection and a name, both non-empty (DynamoDB refuses empty key strings). Its error
// wraps ErrInvalid.
func ValidateCursorKey(conn, name string) error {
	if conn == "" || name == "" {
		return fmt.Errorf("cursor %q of connection %q: %w: connection and name must not be empty", name, conn, ErrInvalid)
	}
	return nil
}

// ValidateCursor is the check every store makes before saving a poller document: its key
// (ValidateCursorKey), and one valid JSON value, so that it is UTF-8 text every store
// keeps byte for byte (a DynamoDB string, an SQLite TEXT). Its error wraps ErrInvalid.
func ValidateCursor(conn, name string, doc []byte) error {
	if err := ValidateCursorKey(conn, name); err != nil {
		return err
	}
	// json.Valid lets invalid UTF-8 inside strings pass; neither store could keep it.
	if !json.Valid(doc) || !utf8.Valid(doc) {
		return fmt.Errorf("cursor %q of connection %q: %w: the document is not valid JSON in UTF-8", name, conn, ErrInvalid)
	}
	return nil
}

// ValidateKindListing is the check every store makes before listing the ids of a kind:
// a connection, and a kind Lookup knows. Its error wraps ErrInvalid.
func ValidateKindListing(conn string, kind Kind) error {
	if conn == "" {
		return fmt.Errorf("stored ids: %w: connection is empty", ErrInvalid)
	}
	if _, ok := Lookup(kind); !ok {
		return fmt.Errorf("stored ids of connection %q: %w: unknown kind %q", conn, ErrInvalid, kind)
	}
	return nil
}

// ChangedIndexKey is the by-change index partition (DynamoDB GSI3's gsi3pk):
// C#<conn>#CHANGED#<kind>. Every object item of a kind that has been written (tombstones
// too, pending markers not: they hold no state yet) carries it, so one query lists what a
// connection's copy of a kind took on since a time, in the order halosync wrote it.
func ChangedIndexKey(conn string, kind Kind) string { return "C#" + conn + "#CHANGED#" + string(kind) }

// changedTimeLayout is the time part of ChangedIndexSort: UTC with nine fractional
// digits, so that keys sort as their times do.
const changedTimeLayout = "2006-01-02T15:04:05.000000000Z"

// ChangedIndexSort is the by-change index sort key (gsi3sk): when halosync last wrote the
// object (Object.SyncedAt, to the nanosecond), then its by-kind key (KindIndexSort), as
// <2006-01-02T15:04:05.000000000Z>#<id>: keys sort by write time, objects written in the
// same nanosecond by id, and no two objects share one.
func ChangedIndexSort(synced time.Time, kind Kind, id, parentID string) string {
	return ChangedFrom(synced) + "#" + KindIndexSort(kind, id, parentID)
}

// ChangedFrom is the key that sorts before every ChangedIndexSort of an object written at
// or after t and after every one written before it: listing the keys above it lists what
// changed since t.
func ChangedFrom(t time.Time) string { return t.UTC().Format(changedTimeLayout) }

// ParseChangedSort checks that s is a ChangedIndexSort or a ChangedFrom, as a listing's
// position may be either, and returns the write time it holds. Its error wraps ErrInvalid.
func ParseChangedSort(s string) (time.Time, error) {
	at, rest, _ := strings.Cut(s, "#")
	t, err := time.Parse(changedTimeLayout, at)
	if err != nil || t.Format(changedTimeLayout) != at || strings.HasPrefix(rest, "#") {
		return time.Time{}, fmt.Errorf("changed-since position %q: %w", s, ErrInvalid)
	}
	return t, nil
}

// MaxChangedPage is the most objects one listing of changes may ask a store for.
const MaxChangedPage = 1000

// ValidateChangedListing is the check every store makes before listing what changed of a
// kind: a connection, a kind Lookup knows, a position ParseChangedSort accepts (or none:
// from the start) and a page size from 1 to MaxChangedPage. Its error wraps ErrInvalid.
func ValidateChangedListing(conn string, kind Kind, after string, limit int) error {
	if err := ValidateKindListing(conn, kind); err != nil {
		return err
	}
	if after != "" {
		if _, err := ParseChangedSort(after); err != nil {
			return err
		}
	}
	if limit < 1 || limit > MaxChangedPage {
		return fmt.Errorf("changed %s of connection %q: %w: page size %d is not 1 to %d", kind, conn, ErrInvalid, limit, MaxChangedPage)
	}
	return nil
}
