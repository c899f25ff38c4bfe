package message

import (
	"encoding/json"
	"os"
	"testing"
)

// decodeBodies are one webhook change as a message in each format: the earlier one
// (testdata/v1: the fields in the change beside the whole raw event) and the current one
// (the fields read from the raw event).
func decodeBodies(b *testing.B) map[string][]byte {
	earlier, err := os.ReadFile("testdata/v1/webhook.json")
	if err != nil {
		b.Fatal(err)
	}
	e, err := Decode(earlier)
	if err != nil {
		b.Fatal(err)
	}
	e.FieldsInRaw = "ticket"
	m, err := Encode(e)
	if err != nil {
		b.Fatal(err)
	}
	return map[string][]byte{"earlier-format": earlier, "fields-in-raw": m.Body}
}

// BenchmarkDecode is the worker's decode of one webhook change, with its checks.
func BenchmarkDecode(b *testing.B) {
	for name, body := range decodeBodies(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFloorDecode is the least a message's decode needs, beside BenchmarkDecode with
// the same bodies: one json.Unmarshal into the envelope, numbers as floats, nothing checked
// and, for the current format, the fields not read from the raw event.
func BenchmarkFloorDecode(b *testing.B) {
	for name, body := range decodeBodies(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var e Envelope
				if err := json.Unmarshal(body, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
