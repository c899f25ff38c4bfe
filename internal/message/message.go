// Package message encodes and decodes the change messages that travel between ingest, the
// poller and the worker, whichever queue carries them (SQS in AWS, the embedded queue
// locally).
package message

import (
	"bytes"
	"encoding/json"
	"fmt"
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
}

// Received is one message as a consumer receives it.
type Received struct {
	ID            string
	Body          []byte
	Attributes    map[string]string
	ReceiptHandle string
	ReceiveCount  int
	SentAt        time.Time
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
	ReceivedAt time.Time       `json:"received_at"`
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
	body, err := marshal(e)
	if err != nil {
		return Message{}, err
	}
	if len(body) > limit && len(e.Raw) > 0 {
		e.Raw, e.RawOmitted = nil, true
		if body, err = marshal(e); err != nil {
			return Message{}, err
		}
	}
	if len(body) > limit {
		return Message{}, fmt.Errorf("encode change: %s %s is %d bytes, over the %d byte message limit: %w",
			e.Change.Kind, e.Change.ID, len(body), limit, ErrTooLarge)
	}
	return Message{Body: body, Attributes: attrs}, nil
}

// marshal encodes the envelope as JSON that SQS accepts: it refuses the noncharacters
// U+FFFE and U+FFFF in a body, which JSON may carry escaped.
func marshal(e Envelope) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode change: %w", err)
	}
	// Outside JSON strings these bytes cannot occur, so escaping them keeps the JSON valid.
	body = bytes.ReplaceAll(body, []byte("\uFFFE"), []byte(`\ufffe`))
	body = bytes.ReplaceAll(body, []byte("\uFFFF"), []byte(`\uffff`))
	return body, nil
}

// Decode reads a change message body.
func Decode(body []byte) (Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep Halo's numbers exactly as sent
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, fmt.Errorf("decode change message: %w: %w", change.ErrInvalid, err)
	}
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

// ErrTooLarge marks a change that cannot fit in one message.
var ErrTooLarge = fmt.Errorf("change too large")

// ErrBacklogFull marks a send a queue refused because it already holds as many messages
// as it may: the worker is behind, and the sender should try again later. Only the
// embedded queue refuses so (its queue.max_backlog); SQS absorbs any backlog.
var ErrBacklogFull = fmt.Errorf("queue backlog full")
