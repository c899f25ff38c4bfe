package dynamo

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
)

// StreamFilterPrefix is what every object item's by-kind key (gsi2pk) begins with, and
// no other item carries that attribute: the publisher's event source mapping passes on
// only the stream records whose new image has it (template.yaml, PublisherFunction).
const StreamFilterPrefix = "C#"

// StreamEvent reads one record of the table's stream (view NEW_AND_OLD_IMAGES), its
// images as DynamoDB JSON (nil or "null" when absent), and returns the change event of
// the write: an object item whose version moved, created, updated, deleted or repaired.
// Every other record yields none: a removal, a delivery record, a cursor, an event-only
// notice that only raised the pending version. Duplicates and stale changes write
// nothing (Apply's conditions), so the stream holds no record of them.
//
// The event is the one the embedded store writes for the same change: the change is read
// back from the new image, and its previous values from the old one, so change.Diff
// compares the same fields (those the change carried differ; the others are equal in
// both images). A repair's fields removed from the object are not listed.
func StreamEvent(oldImage, newImage []byte) (changeevent.Event, bool, error) {
	var none changeevent.Event
	newItem, err := parseImage(newImage)
	if err != nil || newItem == nil {
		return none, false, err
	}
	if _, ok := newItem[AttrGSI2PK]; !ok {
		return none, false, nil
	}
	next, err := decodeItem(newItem)
	if err != nil {
		return none, false, fmt.Errorf("dynamo: stream new image: %w", err)
	}
	oldItem, err := parseImage(oldImage)
	if err != nil {
		return none, false, err
	}
	var before change.Object
	if oldItem != nil {
		if before, err = decodeItem(oldItem); err != nil {
			return none, false, fmt.Errorf("dynamo: stream old image: %w", err)
		}
	}
	// Only a repair of fields (Change.Repairs equal to its version) writes an object again
	// at its stored version: a write (a new synced_at) where a pending marker leaves it.
	if next.Version == 0 || (next.Version == before.Version && next.SyncedAt.Equal(before.SyncedAt)) {
		return none, false, nil
	}
	c := change.Change{
		Connection: next.Connection, Kind: next.Kind, ID: next.ID, ParentID: next.ParentID, Op: change.OpUpsert,
		Version: next.Version, Source: next.Source, DeliveryID: next.DeliveryID, Event: next.Event, Fields: next.Fields,
	}
	if next.Deleted {
		c.Op = change.OpDelete
	}
	if oldItem != nil && next.Version <= before.Version {
		c.Repairs = before.Version
	}
	r := change.Result{Outcome: change.Applied}
	if before.Version > 0 {
		r.Previous = before.Fields
	}
	ev, ok := changeevent.New(c, r, next.SyncedAt)
	return ev, ok, nil
}

// parseImage reads an item written as DynamoDB JSON ({"pk": {"S": "..."}, ...}); nil for
// none.
func parseImage(b []byte) (map[string]types.AttributeValue, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, []byte("null")) {
		return nil, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("dynamo: stream image: %w", err)
	}
	if len(raw) == 0 {
		return nil, nil
	}
	item := make(map[string]types.AttributeValue, len(raw))
	for k, v := range raw {
		av, err := parseValue(v)
		if err != nil {
			return nil, fmt.Errorf("dynamo: stream image: attribute %s: %w", k, err)
		}
		item[k] = av
	}
	return item, nil
}

// parseValue reads one attribute value written as DynamoDB JSON: {"S": "..."}, {"N":
// "1"}, {"BOOL": true}, {"NULL": true}, {"M": {...}}, {"L": [...]}, {"B": base64}, and
// the sets.
func parseValue(b json.RawMessage) (types.AttributeValue, error) {
	var typed map[string]json.RawMessage
	if err := json.Unmarshal(b, &typed); err != nil || len(typed) != 1 {
		return nil, fmt.Errorf("not one typed value: %s", b)
	}
	for t, v := range typed {
		switch t {
		case "S":
			var s string
			err := json.Unmarshal(v, &s)
			return &types.AttributeValueMemberS{Value: s}, err
		case "N":
			var s string
			err := json.Unmarshal(v, &s)
			return &types.AttributeValueMemberN{Value: s}, err
		case "BOOL":
			var x bool
			err := json.Unmarshal(v, &x)
			return &types.AttributeValueMemberBOOL{Value: x}, err
		case "NULL":
			return &types.AttributeValueMemberNULL{Value: true}, nil
		case "B":
			var x []byte
			err := json.Unmarshal(v, &x)
			return &types.AttributeValueMemberB{Value: x}, err
		case "SS":
			var x []string
			err := json.Unmarshal(v, &x)
			return &types.AttributeValueMemberSS{Value: x}, err
		case "NS":
			var x []string
			err := json.Unmarshal(v, &x)
			return &types.AttributeValueMemberNS{Value: x}, err
		case "BS":
			var x [][]byte
			err := json.Unmarshal(v, &x)
			return &types.AttributeValueMemberBS{Value: x}, err
		case "M":
			m, err := parseImage(v)
			if m == nil && err == nil {
				m = map[string]types.AttributeValue{}
			}
			return &types.AttributeValueMemberM{Value: m}, err
		case "L":
			var raw []json.RawMessage
			if err := json.Unmarshal(v, &raw); err != nil {
				return nil, err
			}
			l := make([]types.AttributeValue, len(raw))
			for i, e := range raw {
				av, err := parseValue(e)
				if err != nil {
					return nil, err
				}
				l[i] = av
			}
			return &types.AttributeValueMemberL{Value: l}, nil
		default:
			return nil, fmt.Errorf("unknown attribute type %q", t)
		}
	}
	return nil, nil // unreachable: typed has one entry
}
