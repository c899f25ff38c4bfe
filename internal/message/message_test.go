package message_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/message"
)

func ticket(fields map[string]any) change.Change {
	return change.Change{Connection: "default", Kind: change.Ticket, ID: "42", Op: change.OpUpsert,
		Version: 1, Source: change.SourceWebhook, Fields: fields}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	c := ticket(map[string]any{"summary": "a\uFFFEb\uFFFF", "n": json.Number("12.50")})
	c.Attributes = map[string]string{"team": "noc", "empty": "", "connection": "spoofed"}
	m, err := message.Encode(message.Envelope{Change: c, Raw: json.RawMessage(`{"event":"x"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Body), "\uFFFE") || strings.Contains(string(m.Body), "\uFFFF") || !utf8.Valid(m.Body) {
		t.Fatalf("body carries characters SQS refuses: %q", m.Body)
	}
	if m.Attributes["connection"] != "default" || m.Attributes["team"] != "noc" || m.Attributes["kind"] != "ticket" {
		t.Fatalf("attributes %v", m.Attributes)
	}
	if _, ok := m.Attributes["empty"]; ok {
		t.Fatal("empty attribute kept; SQS refuses empty values")
	}
	e, err := message.Decode(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	if e.Change.Fields["summary"] != "a\uFFFEb\uFFFF" || e.Change.Fields["n"] != json.Number("12.50") || string(e.Raw) != `{"event":"x"}` {
		t.Fatalf("decoded %+v raw %s", e.Change.Fields, e.Raw)
	}
}

func TestEncodeLeavesOutTheRawEventWhenTooLarge(t *testing.T) {
	big := strings.Repeat("x", message.MaxMessageBytes/2+1000)
	raw, _ := json.Marshal(map[string]string{"details": big})
	m, err := message.Encode(message.Envelope{Change: ticket(map[string]any{"details": big}), Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := message.Decode(m.Body)
	if !e.RawOmitted || e.Raw != nil || e.Change.Fields["details"] != big {
		t.Fatalf("raw omitted %v, raw %d bytes", e.RawOmitted, len(e.Raw))
	}
	size := len(m.Body)
	for k, v := range m.Attributes {
		size += len(k) + len(v) + len("String")
	}
	if size > message.MaxMessageBytes {
		t.Fatalf("message with attributes is %d bytes", size)
	}
}

func TestEncodeRefusesAChangeTooLargeForOneMessage(t *testing.T) {
	_, err := message.Encode(message.Envelope{Change: ticket(map[string]any{"details": strings.Repeat("x", message.MaxMessageBytes)})})
	if !errors.Is(err, message.ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
}

func TestDecodeRefusesInvalidMessages(t *testing.T) {
	for _, body := range []string{"", "{", `{"change":{}}`, `{"change":{"connection":"c","kind":"ticket","id":"1","op":"upsert","version":0}}`} {
		if _, err := message.Decode([]byte(body)); !errors.Is(err, change.ErrInvalid) {
			t.Errorf("Decode(%q) = %v, want ErrInvalid", body, err)
		}
	}
}

// The envelope a message carries for a consumer in the sending process is what its body
// decodes to, exactly: the worker reads one or the other.
func TestTheHandedEnvelopeIsWhatTheBodyDecodesTo(t *testing.T) {
	local := time.FixedZone("local", 2*3600)
	raw := json.RawMessage(`{"event":"ticket updated","ticket":{"id":42,"summary":"s","n":12.50,"deep":[{"x":null}]}}`)
	fields := map[string]any{"id": json.Number("42"), "summary": "s", "n": json.Number("12.50"), "deep": []any{map[string]any{"x": nil}}}
	c := ticket(fields)
	c.OccurredAt = time.Date(2026, 9, 25, 6, 30, 0, 123456789, local)
	c.Attributes = map[string]string{"team": "noc"}
	for name, e := range map[string]message.Envelope{
		"fields in the raw event": {Change: c, Raw: raw, FieldsInRaw: "ticket", ReceivedAt: time.Now()},
		"fields in the change":    {Change: c, Raw: raw, ReceivedAt: time.Now().UTC()},
		"no raw event":            {Change: c, RawOmitted: true, ReceivedAt: time.Now().In(local)},
		"unknown event": {Unknown: true, Raw: raw, ReceivedAt: time.Now(),
			Change: change.Change{Connection: "default", Event: "odd", DeliveryID: "d", Source: change.SourceWebhook}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := message.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			handed := m.Handed()
			if handed == nil {
				t.Fatal("no envelope handed with the message")
			}
			want, err := message.Decode(m.Body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := message.Check(*handed)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("handed %+v\ndecoded %+v", got, want)
			}
		})
	}
	// A raw event whose noncharacters the body escapes is read from the body.
	m, err := message.Encode(message.Envelope{Change: c, Raw: json.RawMessage(`{"event":"a` + "\uFFFE" + `"}`)})
	if err != nil || m.Handed() != nil {
		t.Fatalf("an envelope handed (%v) for a raw event the body escapes", err)
	}
}
