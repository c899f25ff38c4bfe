package message

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// TestDecodeReadsTheEarlierFormat: messages written before the fields travelled in the raw
// event (testdata/v1, written by that release's Encode) may still wait in a queue when a
// new worker starts: they read as they always did, the fast path agreeing with encoding/json.
func TestDecodeReadsTheEarlierFormat(t *testing.T) {
	files, err := filepath.Glob("testdata/v1/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden messages: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			fast, ok := decodeFast(body)
			if !ok {
				t.Fatal("the fast path leaves a message halosync wrote to encoding/json")
			}
			slow, err := decodeSlow(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast %+v\nslow %+v", fast, slow)
			}
			if _, err := Decode(body); err != nil {
				t.Fatal(err)
			}
		})
	}
	body, _ := os.ReadFile("testdata/v1/webhook.json")
	e, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	c := e.Change
	if c.Kind != change.Ticket || c.ID != "4242" || c.Endpoint != "primary" || c.Attributes["x-team"] != "noc" || c.Version != 1796117398123000000 {
		t.Fatalf("change %+v", c)
	}
	if c.Fields["summary"] != "Printer <jammed> & \uFFFE stuck é" || c.Fields["big"] != json.Number("12345678901234567890") || c.Fields["cost"] != json.Number("12.50") {
		t.Fatalf("fields %v", c.Fields)
	}
	if !e.ReceivedAt.Equal(time.Date(2026, 12, 1, 9, 30, 0, 123456789, time.UTC)) || !json.Valid(e.Raw) || e.FieldsInRaw != "" {
		t.Fatalf("received %v, raw %s", e.ReceivedAt, e.Raw)
	}
}

// TestFieldsTravelOnceInTheRawEvent: a change whose fields are the raw event's object is
// written with the raw event as it came, the fields not repeated, and reads back whole.
func TestFieldsTravelOnceInTheRawEvent(t *testing.T) {
	raw := []byte(`{"event":"ticket updated","object_id":42,"ticket":{"id":42,"summary":"a` + "\uFFFE" + `b\uffff <p>","n":12.50,"deep":[{"x":null}]},"action":{"id":7}}`)
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		t.Fatal(err)
	}
	c := change.Change{Connection: "default", Kind: change.Ticket, ID: "42", Op: change.OpUpsert, Version: 1,
		Source: change.SourceWebhook, Fields: ev["ticket"].(map[string]any)}
	m, err := Encode(Envelope{Change: c, Raw: raw, FieldsInRaw: "ticket"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.Body), "\uFFFE") || strings.Contains(string(m.Body), "\uFFFF") || !json.Valid(m.Body) {
		t.Fatalf("body %s", m.Body)
	}
	if n := strings.Count(string(m.Body), `"summary"`); n != 1 {
		t.Fatalf("the fields travel %d times: %s", n, m.Body)
	}
	e, err := Decode(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Change.Fields, c.Fields) || e.FieldsInRaw != "ticket" {
		t.Fatalf("fields %v, want %v", e.Change.Fields, c.Fields)
	}
	var back, want any
	if json.Unmarshal(e.Raw, &back) != nil || json.Unmarshal(raw, &want) != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("raw %s", e.Raw)
	}
	slow, err := decodeSlow(m.Body)
	if err != nil || !reflect.DeepEqual(slow.Change.Fields, c.Fields) {
		t.Fatalf("encoding/json reads fields %v, %v", slow.Change.Fields, err)
	}
}

// TestFieldsLeaveTheRawEventWhenTooLarge: when the raw event does not fit, the fields travel
// in the change, as they did before.
func TestFieldsLeaveTheRawEventWhenTooLarge(t *testing.T) {
	big := strings.Repeat("x", MaxMessageBytes)
	raw, _ := json.Marshal(map[string]any{"event": "ticket updated", "ticket": map[string]any{"id": 1, "d": big[:200]}, "other": big})
	c := change.Change{Connection: "default", Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 1,
		Source: change.SourceWebhook, Fields: map[string]any{"id": json.Number("1"), "d": big[:200]}}
	m, err := Encode(Envelope{Change: c, Raw: raw, FieldsInRaw: "ticket"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Decode(m.Body)
	if err != nil || !e.RawOmitted || e.Raw != nil || e.FieldsInRaw != "" || !reflect.DeepEqual(e.Change.Fields, c.Fields) {
		t.Fatalf("envelope %+v, %v", e, err)
	}
}

// FuzzDecode: whatever the fast path reads, it reads as encoding/json does.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/v1/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	raw := `{"event":"ticket updated","object_id":42,"ticket":{"id":42,"n":1.5}}`
	for _, s := range []string{
		`{"change":{"connection":"c","kind":"ticket","id":"42","op":"upsert","version":1},"fields_in_raw":"ticket","raw":` + raw + `}`,
		`{"change":{"connection":"c","kind":"ticket","id":"42","op":"upsert","version":1},"raw":` + raw + `,"fields_in_raw":"ticket"}`,
		`{"change":{"connection":"c","kind":"ticket","id":"42","op":"upsert","version":1,"fields":{"a":1}},"fields_in_raw":"ticket","raw":` + raw + `}`,
		`{"change":{"connection":"c","Kind":"ticket","id":"42","op":"upsert","version":1.0}}`,
		`{"change":{"connection":"c","kind":"ticket","id":"42","op":"upsert","version":1,"attributes":{"a":"b","a":"c"}}} x`,
		`{"change":null,"raw":null,"received_at":null}`, `{"fields_in_raw":"ticket","raw":{"ticket":[1]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeFast(body)
		if !ok {
			return
		}
		slow, err := decodeSlow(body)
		if err != nil {
			t.Fatalf("the fast path reads what encoding/json refuses (%v): %+v", err, fast)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast %+v\nslow %+v", fast, slow)
		}
	})
}

// FuzzAppendHead: the envelope a webhook's message begins with is written as
// encoding/json writes it.
func FuzzAppendHead(f *testing.F) {
	f.Add("default", "6f1c2a4e-3b7d", "ticket status changed", "x-team", "noc <&> \u2028\xff\x01\b", int64(1796117398123000000), int64(0), true, "ticket", int64(1764581400123456789))
	f.Add("", "", "", "", "", int64(-1), int64(5), false, "", int64(0))
	f.Fuzz(func(t *testing.T, conn, id, event, attrKey, attrValue string, version, repairs int64, flag bool, key string, at int64) {
		when := time.Unix(0, at).UTC()
		e := Envelope{Unknown: flag, RawOmitted: !flag, FieldsInRaw: key, ReceivedAt: when, Change: change.Change{
			Connection: conn, Kind: change.Kind(event), ID: id, ParentID: attrValue, Op: change.Operation(key), Version: version,
			VersionFrom: attrKey, OccurredAt: when.Add(-time.Second), Source: change.Source(conn), DeliveryID: id, Event: event,
			Endpoint: attrValue, Attributes: map[string]string{attrKey: attrValue, attrValue: attrKey}, Repairs: repairs, Backfill: flag}}
		if flag {
			e.Change.Attributes = nil
		}
		head, ok := appendHead(nil, e)
		want, err := json.Marshal(e)
		if !ok || err != nil {
			t.Fatalf("appendHead %v, json.Marshal %v", ok, err)
		}
		if got := string(head) + "}"; got != string(want) {
			t.Fatalf("appendHead\n%s\njson.Marshal\n%s", got, want)
		}
	})
}
