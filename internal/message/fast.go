package message

import (
	"errors"
	"strconv"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/strictjson"
)

// fastDepth bounds the nesting decodeFast reads; deeper messages go to decodeSlow.
const fastDepth = 128

// errSlow: a message decodeFast leaves to decodeSlow.
var errSlow = errors.New("not read by the fast path")

// decodeFast reads a message halosync wrote in one pass (strictjson), the fields from the
// raw event when they travel there. ok is false for anything it might not read exactly as
// encoding/json does (an unknown key, a key in another case, a null, a key twice, invalid
// UTF-8, data after the envelope, ...): decodeSlow reads those, valid or not.
func decodeFast(body []byte) (e Envelope, ok bool) {
	d := strictjson.NewDecoder(body, fastDepth)
	fieldsRead := false
	err := d.Object(func(key string) error {
		switch key {
		case "change":
			return decodeChange(d, &e.Change)
		case "unknown":
			return readBool(d, &e.Unknown)
		case "raw_omitted":
			return readBool(d, &e.RawOmitted)
		case "fields_in_raw":
			return readString(d, &e.FieldsInRaw)
		case "received_at":
			return readTime(d, &e.ReceivedAt)
		case "raw":
			if d.Peek() != '{' {
				return errSlow
			}
			start := d.Offset()
			var err error
			if e.FieldsInRaw == "" {
				_, err = d.Skip()
			} else {
				err, fieldsRead = rawFields(d, e.FieldsInRaw, &e.Change), true
			}
			e.Raw = d.Bytes(start)
			return err
		}
		return errSlow
	})
	if err != nil || d.End() != nil || e.FieldsInRaw != "" && !fieldsRead {
		return Envelope{}, false
	}
	return e, true
}

// rawFields reads the raw event, the object under key as the change's fields.
func rawFields(d *strictjson.Decoder, key string, c *change.Change) error {
	if c.Fields != nil {
		return errSlow // fields in both places
	}
	return d.Object(func(k string) error {
		if k != key {
			_, err := d.Skip()
			return err
		}
		if d.Peek() != '{' {
			return errSlow
		}
		v, err := d.Value()
		c.Fields, _ = v.(map[string]any)
		return err
	})
}

func decodeChange(d *strictjson.Decoder, c *change.Change) error {
	return d.Object(func(key string) error {
		switch key {
		case "connection":
			return readString(d, &c.Connection)
		case "kind":
			return readString(d, (*string)(&c.Kind))
		case "id":
			return readString(d, &c.ID)
		case "parent_id":
			return readString(d, &c.ParentID)
		case "op":
			return readString(d, (*string)(&c.Op))
		case "version":
			return readInt(d, &c.Version)
		case "version_from":
			return readString(d, &c.VersionFrom)
		case "occurred_at":
			return readTime(d, &c.OccurredAt)
		case "source":
			return readString(d, (*string)(&c.Source))
		case "delivery_id":
			return readString(d, &c.DeliveryID)
		case "event":
			return readString(d, &c.Event)
		case "endpoint":
			return readString(d, &c.Endpoint)
		case "fields":
			if d.Peek() != '{' || c.Fields != nil {
				return errSlow
			}
			v, err := d.Value()
			c.Fields, _ = v.(map[string]any)
			return err
		case "attributes":
			if d.Peek() != '{' {
				return errSlow
			}
			c.Attributes = map[string]string{}
			return d.Object(func(k string) error {
				var v string
				err := readString(d, &v)
				c.Attributes[k] = v
				return err
			})
		case "repairs":
			return readInt(d, &c.Repairs)
		case "backfill":
			return readBool(d, &c.Backfill)
		}
		return errSlow
	})
}

func readString(d *strictjson.Decoder, s *string) error {
	if d.Peek() != '"' {
		return errSlow
	}
	v, err := d.String()
	*s = v
	return err
}

func readBool(d *strictjson.Decoder, b *bool) error {
	switch d.Peek() {
	case 't', 'f':
		v, err := d.Value()
		*b, _ = v.(bool)
		return err
	}
	return errSlow
}

func readInt(d *strictjson.Decoder, n *int64) error {
	if c := d.Peek(); c != '-' && (c < '0' || c > '9') {
		return errSlow
	}
	text, err := d.Number()
	if err != nil {
		return err
	}
	*n, err = strconv.ParseInt(text, 10, 64)
	return err
}

// readTime reads a time as encoding/json does: the value's bytes, quotes included, to
// time.Time's UnmarshalJSON.
func readTime(d *strictjson.Decoder, t interface{ UnmarshalJSON([]byte) error }) error {
	if d.Peek() != '"' {
		return errSlow
	}
	b, err := d.Skip()
	if err != nil {
		return err
	}
	return t.UnmarshalJSON(b)
}
