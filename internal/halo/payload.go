// Package halo decodes what Halo PSA sends and serves: webhook deliveries in each payload
// shape (full object, small object, event only, batched arrays) and their conversion into
// change envelopes.
package halo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/strictjson"
)

// ErrUnreadable marks a delivery body that is not a Halo webhook payload.
var ErrUnreadable = errors.New("unreadable delivery")

// ErrUnknownEvent marks an event whose kind cannot be told.
var ErrUnknownEvent = errors.New("unknown event")

// Event is one webhook event as Halo sends it. A delivery holds one, or an array of them
// when batching is on.
type Event struct {
	ID             string // the message id: the delivery's de-duplication key
	WebhookID      string
	NotificationID string
	Name           string // "ticket status changed"
	ObjectID       string
	Timestamp      time.Time // zero when absent
	// Objects holds the nested objects by kind ("ticket" → its fields).
	Objects map[change.Kind]map[string]any
	Raw     json.RawMessage
}

// Decode reads a delivery body: one event object, a JSON array of events (Halo's batching),
// or {"events": [...]} as some relays wrap batches. One walk over the body checks it
// (strictjson: UTF-8, keys, numbers, depth; and the batch's size) and decodes it; each
// event's Raw is its bytes in the body.
func Decode(body []byte) ([]Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, unreadable(ReasonEmpty, "")
	}
	d := strictjson.NewDecoder(trimmed, MaxDepth)
	var batch eventBatch
	var top map[string]any
	var err error
	switch trimmed[0] {
	case '[':
		err = batch.read(d, true)
	case '{':
		top = map[string]any{}
		err = d.Object(func(key string) error {
			if key == "events" && d.Peek() == '[' {
				// Perhaps a relay's wrapper: its events' bytes are kept as they are read.
				err := batch.read(d, false)
				top[key] = batch.values
				return err
			}
			v, err := d.Value()
			top[key] = v
			return err
		})
	default:
		_, err = d.Value()
	}
	if err == nil {
		err = d.End()
	}
	if err != nil {
		return nil, strictError(trimmed, err)
	}
	switch trimmed[0] {
	case '[':
	case '{':
		// The common case, one event. A relay's {"events": [...]} wrapper is recognised
		// by its keys (exactly: the strict checks refused a key in two cases).
		_, hasEvent := top["event"]
		if _, wrapped := top["events"].([]any); !wrapped || hasEvent {
			e, err := eventFrom(top, trimmed)
			if err != nil {
				return nil, err
			}
			return []Event{e}, nil
		}
	default:
		return nil, unreadable(ReasonNotAnEvent, "the body is not a JSON object or array")
	}
	events := make([]Event, 0, len(batch.raws))
	for i, raw := range batch.raws {
		e, err := decodeEvent(batch.values[i], raw)
		if err != nil {
			if len(batch.raws) > 1 {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

// eventBatch is an array of events as read: each element decoded, and its bytes.
type eventBatch struct {
	values []any
	raws   [][]byte
}

// read reads the array at the decoder. limited: the body's own array, at most MaxEvents
// long.
func (b *eventBatch) read(d *strictjson.Decoder, limited bool) error {
	b.values = []any{}
	return d.Array(func(i int) error {
		if limited && i == MaxEvents {
			return unreadable(ReasonTooManyEvents, "more than %d events in one delivery", MaxEvents)
		}
		d.Peek()
		start := d.Offset()
		v, err := d.Value()
		b.values = append(b.values, v)
		b.raws = append(b.raws, d.Bytes(start))
		return err
	})
}

func decodeEvent(v any, raw []byte) (Event, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Event{}, unreadable(ReasonNotAnEvent, "an event is not a JSON object")
	}
	return eventFrom(m, raw)
}

func eventFrom(m map[string]any, raw json.RawMessage) (Event, error) {
	e := Event{Raw: raw, Objects: map[change.Kind]map[string]any{}}
	var err error
	if e.ID, err = stringField(m, "id"); err != nil {
		return Event{}, err
	}
	if e.WebhookID, err = stringField(m, "webhook_id"); err != nil {
		return Event{}, err
	}
	if e.NotificationID, err = stringField(m, "notification_id"); err != nil {
		return Event{}, err
	}
	if e.ObjectID, err = stringField(m, "object_id"); err != nil {
		return Event{}, err
	}
	name, ok := m["event"].(string)
	if !ok {
		return Event{}, unreadable(ReasonNotAnEvent, "\"event\" must be a string naming the event")
	}
	e.Name = name
	switch ts := m["timestamp"].(type) {
	case nil:
	case string:
		t, ok, err := change.ParseHaloTime(ts)
		if err != nil {
			return Event{}, unreadable(ReasonNotAnEvent, "timestamp: %v", err)
		}
		if ok {
			e.Timestamp = t
		}
	default:
		return Event{}, unreadable(ReasonNotAnEvent, "\"timestamp\" must be a string")
	}
	for _, spec := range kindSpecs {
		switch obj := m[spec.PayloadKey].(type) {
		case nil:
		case map[string]any:
			e.Objects[spec.Kind] = obj
		default:
			return Event{}, unreadable(ReasonNotAnEvent, "%q must be an object", spec.PayloadKey)
		}
	}
	return e, nil
}

// kindSpecs are the kinds, listed once: change.Kinds builds its list at each call.
var kindSpecs = change.Kinds()

// stringField reads an id-like field given as a string or a number, by its exact key, as
// change.ParseID allows ids to be written.
func stringField(m map[string]any, key string) (string, error) {
	id, err := change.ParseID(m[key])
	if err != nil {
		return "", unreadable(ReasonNotAnEvent, "%q: %v", key, err)
	}
	return id, nil
}

// nestedOrder is the order in which nested objects name the event's kind when its name is
// not known: the ticket an action belongs to comes first.
var nestedOrder = []change.Kind{change.Ticket, change.Client, change.Contact, change.Asset, change.Action}

// Changes turns the event into the changes it announces: one for the object the event is
// about (with its snapshot, or none for an event-only payload) and one for every other
// object it nests (a ticket event carrying its new note). received stands in for the
// version when the event carries neither a change marker nor a timestamp. A change's Fields
// is the event's object under its kind's PayloadKey, that very map, or nil.
func (e Event) Changes(conn string, events Events, received time.Time) ([]change.Change, error) {
	var nested change.Kind
	for _, k := range nestedOrder {
		if _, ok := e.Objects[k]; ok {
			nested = k
			break
		}
	}
	rule, ok := events.Resolve(e.Name, nested)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, e.Name)
	}
	var out []change.Change
	primaryDone := false
	for _, k := range nestedOrder {
		obj, ok := e.Objects[k]
		if !ok {
			continue
		}
		op := change.OpUpsert
		if k == rule.Kind {
			op, primaryDone = rule.Op, true
		}
		c, err := e.change(conn, k, op, obj, received)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if !primaryDone {
		c, err := e.change(conn, rule.Kind, rule.Op, nil, received)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func (e Event) change(conn string, kind change.Kind, op change.Operation, obj map[string]any, received time.Time) (change.Change, error) {
	spec, _ := change.Lookup(kind)
	c := change.Change{
		Connection: conn, Kind: kind, Op: op, Source: change.SourceWebhook,
		DeliveryID: e.ID, Event: e.Name, OccurredAt: e.Timestamp, Fields: obj,
	}
	if c.OccurredAt.IsZero() {
		c.OccurredAt = received.UTC()
	}
	var err error
	if obj != nil {
		if c.ID, err = stringField(obj, "id"); err != nil {
			return change.Change{}, fmt.Errorf("%s: %w", spec.PayloadKey, err)
		}
	}
	if c.ID == "" && (obj == nil || kind != change.Action) {
		c.ID = e.ObjectID
	}
	if c.ID == "" {
		return change.Change{}, unreadable(ReasonNotAnEvent, "%s event %q names no object id", kind, e.Name)
	}
	if spec.Parent != "" {
		if obj != nil {
			if c.ParentID, err = stringField(obj, spec.ParentField); err != nil {
				return change.Change{}, fmt.Errorf("%s: %w", spec.PayloadKey, err)
			}
		}
		if c.ParentID == "" {
			if parent, ok := e.Objects[spec.Parent]; ok {
				c.ParentID, _ = stringField(parent, "id")
			}
		}
		if c.ParentID == "" && (obj != nil || op == change.OpDelete) {
			return change.Change{}, unreadable(ReasonNotAnEvent, "%s %s: no %s id to store it under", kind, c.ID, spec.Parent)
		}
	}
	c.Version, c.VersionFrom = version(spec, obj, e.Timestamp, received)
	if op == change.OpDelete && !e.Timestamp.IsZero() && change.VersionOf(e.Timestamp) > c.Version {
		// A delete may nest the object as it was, its marker unmoved since the last update:
		// the deletion happened at the event's time, so the tombstone wins over that update.
		c.Version, c.VersionFrom = change.VersionOf(e.Timestamp), "timestamp"
	}
	return c, nil
}

// version picks the change marker: the object's own, else the delivery timestamp, else the
// time we received it.
func version(spec change.KindSpec, obj map[string]any, ts, received time.Time) (int64, string) {
	if s, ok := obj[spec.VersionField].(string); ok {
		if t, ok, err := change.ParseHaloTime(s); err == nil && ok {
			return change.VersionOf(t), spec.VersionField
		}
	}
	if !ts.IsZero() {
		return change.VersionOf(ts), "timestamp"
	}
	return change.VersionOf(received), "received"
}
