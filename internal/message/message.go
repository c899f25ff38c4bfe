// Package message encodes and decodes the change messages that travel between ingest, the
// poller and the worker, whichever queue carries them (SQS in AWS, the embedded queue
// locally).
package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// MaxMessageBytes is the largest message body halosync sends: SQS's classic limit, which
// every SQS-compatible queue accepts.
const MaxMessageBytes = 256 * 1024

// Message is one message to send.
type Message struct {
	Body       []byte
	Attributes map[string]string
	// Envelope is the envelope Encode wrote into Body, as the sender had it; nil when
	// Encode did not make the message. Handed gives it as Decode reads it back, for a
	// consumer in the sending process (the embedded queue's hand-off). It never leaves
	// the process.
	Envelope *Envelope
}

// Received is one message as a consumer receives it.
type Received struct {
	ID            string
	Body          []byte
	Attributes    map[string]string
	ReceiptHandle string
	ReceiveCount  int
	SentAt        time.Time
	// Envelope is the sent message's envelope (Message.Handed) when it was handed over
	// in this process; nil when the message was read from the queue (Decode reads Body).
	Envelope *Envelope
}

// Envelope is the body of a change message: the normalized change and, when it fits, the
// raw event it was decoded from.
type Envelope struct {
	Change change.Change `json:"change"`
	// Unknown marks an event whose kind halosync could not tell: Change carries only the
	// connection, event name and delivery id, and Raw the event, so that the worker can
	// resolve it with names configured since, or keep it in the dead-letter queue.
	Unknown    bool            `json:"unknown,omitempty"`
	Raw        json.RawMessage `json:"raw,omitempty"`
	RawOmitted bool            `json:"raw_omitted,omitempty"`
	// FieldsInRaw names the key of Raw's object that holds Change.Fields, as it is when
	// the fields are the raw event's object uncut: the message then carries them once, in
	// the raw event, and Decode reads them from there (docs/ARCHITECTURE.md, "The change
	// message"). Without Raw, the fields travel in the change.
	FieldsInRaw string    `json:"fields_in_raw,omitempty"`
	ReceivedAt  time.Time `json:"received_at"`
}

// Attribute names set on every change message, for routing and filtering downstream.
const (
	AttrConnection = "connection"
	AttrKind       = "kind"
	AttrSource     = "source"
	// AttrFailureReason is set on a message the worker moved to the dead-letter queue:
	// why it can never apply (undecodable, unknown_connection, unknown_event, invalid).
	AttrFailureReason = "failure_reason"
)

// MaxAttributes is SQS's limit of message attributes.
const MaxAttributes = 10

// Encode turns an envelope into a message, leaving the raw event out when the whole would
// exceed MaxMessageBytes; a change too large even then is an error. SQS counts attribute
// names and values in a message's size, so they are counted here too.
//
// The raw event is appended as it is, never encoded again: Raw must be valid JSON (ingest
// hands over the bytes its decoding walk checked).
func Encode(e Envelope) (Message, error) {
	attrs := map[string]string{
		AttrConnection: e.Change.Connection,
		AttrKind:       string(e.Change.Kind),
		AttrSource:     string(e.Change.Source),
	}
	for k, v := range e.Change.Attributes {
		if _, taken := attrs[k]; !taken && k != "" && v != "" && len(attrs) < MaxAttributes {
			attrs[k] = v
		}
	}
	limit := MaxMessageBytes
	for k, v := range attrs {
		limit -= len(k) + len(v) + len("String")
	}
	if len(e.Raw) == 0 {
		e.FieldsInRaw = ""
	}
	body, err := encode(e)
	if err != nil {
		return Message{}, err
	}
	if len(body) > limit && len(e.Raw) > 0 {
		e.Raw, e.RawOmitted, e.FieldsInRaw = nil, true, ""
		if body, err = encode(e); err != nil {
			return Message{}, err
		}
	}
	if len(body) > limit {
		return Message{}, fmt.Errorf("encode change: %s %s is %d bytes, over the %d byte message limit: %w",
			e.Change.Kind, e.Change.ID, len(body), limit, ErrTooLarge)
	}
	return Message{Body: body, Attributes: attrs, Envelope: &e}, nil
}

// Handed is what m's body decodes to, without decoding it: its Envelope with the times as
// JSON carries them, everything else as it is. nil when m has no Envelope, or when the
// body escaped noncharacters in the raw event, whose bytes then differ. Only a consumer
// in the sending process pays for it, not every Encode.
func (m Message) Handed() *Envelope {
	if m.Envelope == nil || len(m.Envelope.Raw) > 0 && noncharacters(m.Envelope.Raw) > 0 {
		return nil
	}
	e := *m.Envelope
	e.ReceivedAt = viaJSON(e.ReceivedAt)
	e.Change.OccurredAt = viaJSON(e.Change.OccurredAt)
	return &e
}

// viaJSON is t as it reads back from its JSON encoding.
func viaJSON(t time.Time) time.Time {
	b, err := t.MarshalJSON()
	if err != nil {
		return t // out of JSON's range: the encoding fails first
	}
	var back time.Time
	if err := back.UnmarshalJSON(b); err != nil {
		return t
	}
	return back
}

// rawKey opens the raw event, the last member of a message that carries it.
const rawKey = `,"raw":`

// encode writes the envelope as JSON that SQS accepts: everything but the raw event as
// encoding/json writes it (appendHead, or encoding/json itself), then the raw event as it
// is. SQS refuses the noncharacters U+FFFE and
// U+FFFF in a body, which JSON may carry escaped: they are escaped as they are copied.
func encode(e Envelope) ([]byte, error) {
	raw := e.Raw
	e.Raw = nil
	if e.FieldsInRaw != "" {
		e.Change.Fields = nil
	}
	if len(raw) == 0 {
		body, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode change: %w", err)
		}
		if n := noncharacters(body); n > 0 {
			body = appendEscaped(make([]byte, 0, len(body)+3*n), body)
		}
		return body, nil
	}
	// The envelope before the raw event is written in a buffer kept for the next message:
	// the body is allocated once, at its size.
	kept := headPool.Get().(*[]byte)
	head, ok := appendHead((*kept)[:0], e)
	defer func() { *kept = head[:0]; headPool.Put(kept) }()
	if !ok {
		var err error
		if head, err = json.Marshal(e); err != nil {
			return nil, fmt.Errorf("encode change: %w", err)
		}
		head = head[:len(head)-1] // the envelope's closing brace
	}
	body := make([]byte, 0, len(head)+3*noncharacters(head)+len(rawKey)+len(raw)+3*noncharacters(raw)+1)
	body = appendEscaped(body, head)
	body = append(body, rawKey...)
	body = appendEscaped(body, raw)
	return append(body, '}'), nil
}

var headPool = sync.Pool{New: func() any { return new([]byte) }}

// The UTF-8 encodings of U+FFFE and U+FFFF share their first two bytes.
var nonchar = []byte("\xef\xbf")

// noncharacters counts U+FFFE and U+FFFF in b.
func noncharacters(b []byte) int {
	n := 0
	for {
		i := bytes.Index(b, nonchar)
		if i < 0 || i+2 >= len(b) {
			return n
		}
		if c := b[i+2]; c == 0xbe || c == 0xbf {
			n++
		}
		b = b[i+2:]
	}
}

// appendEscaped appends JSON src to dst with U+FFFE and U+FFFF escaped: outside JSON
// strings these bytes cannot occur, so escaping them keeps the JSON valid.
func appendEscaped(dst, src []byte) []byte {
	for {
		i := bytes.Index(src, nonchar)
		if i < 0 || i+2 >= len(src) {
			return append(dst, src...)
		}
		switch src[i+2] {
		case 0xbe:
			dst = append(append(dst, src[:i]...), `\ufffe`...)
			src = src[i+3:]
		case 0xbf:
			dst = append(append(dst, src[:i]...), `\uffff`...)
			src = src[i+3:]
		default:
			dst = append(dst, src[:i+2]...)
			src = src[i+2:]
		}
	}
}

// Decode reads a change message body: as encoding/json reads it, faster for the messages
// halosync writes (decodeFast). Messages written before the fields travelled in the raw
// event (FieldsInRaw) read as they always have.
func Decode(body []byte) (Envelope, error) {
	e, ok := decodeFast(body)
	if !ok {
		var err error
		if e, err = decodeSlow(body); err != nil {
			return Envelope{}, err
		}
	}
	return Check(e)
}

// Check checks a decoded envelope as Decode does: an unknown event names its connection
// and carries its raw event; a change is one the queue may carry (ValidateQueued).
func Check(e Envelope) (Envelope, error) {
	if e.Unknown {
		if e.Change.Connection == "" || len(e.Raw) == 0 {
			return Envelope{}, fmt.Errorf("decode change message: %w: an unknown event without its connection or raw event", change.ErrInvalid)
		}
		return e, nil
	}
	if err := e.Change.ValidateQueued(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// decodeSlow reads a message with encoding/json, exact numbers kept.
func decodeSlow(body []byte) (Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep Halo's numbers exactly as sent
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, fmt.Errorf("decode change message: %w: %w", change.ErrInvalid, err)
	}
	if e.FieldsInRaw == "" {
		return e, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(e.Raw, &raw); err != nil {
		return Envelope{}, fmt.Errorf("decode change message: %w: the raw event: %w", change.ErrInvalid, err)
	}
	if obj, ok := raw[e.FieldsInRaw]; ok {
		dec := json.NewDecoder(bytes.NewReader(obj))
		dec.UseNumber()
		if err := dec.Decode(&e.Change.Fields); err != nil {
			return Envelope{}, fmt.Errorf("decode change message: %w: the fields in the raw event: %w", change.ErrInvalid, err)
		}
	}
	return e, nil
}

// ErrTooLarge marks a change that cannot fit in one message.
var ErrTooLarge = fmt.Errorf("change too large")

// ErrBacklogFull marks a send a queue refused because it already holds as many messages
// as it may: the worker is behind, and the sender should try again later. Only the
// embedded queue refuses so (its queue.max_backlog); SQS absorbs any backlog.
var ErrBacklogFull = fmt.Errorf("queue backlog full")
