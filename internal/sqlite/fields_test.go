package sqlite

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// Fields written by the plain path read back as the same JSON encodeJSON writes.
func TestPlainFieldsAreWrittenAsEncodingJSONWritesThem(t *testing.T) {
	cases := []map[string]any{
		{},
		{"a": "b"},
		{"summary": "Printer <b>down</b> & out", "status_id": json.Number("3"), "deleted": false, "agent": nil},
		{"z": json.Number("-0.5e+10"), "a": json.Number("0"), "m": true, "é": "accented key"},
		{"quote": `say "hi"`},
		{"back": `a\b`},
		{"nl": "two\nlines"},
		{"utf8": "café"},
		{"sep": "a\u2028b"},
		{"nested": map[string]any{"x": json.Number("1")}},
		{"list": []any{"a", json.Number("2")}},
		{"float": 1.5},
		{"bad": json.Number("01")},
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("abcXYZ019 <>&-_.:/\"\\\n\x7f")
	for range 500 {
		m := map[string]any{}
		for range r.IntN(6) {
			var k strings.Builder
			for range 1 + r.IntN(4) {
				k.WriteByte(alphabet[r.IntN(len(alphabet))])
			}
			var v any
			switch r.IntN(5) {
			case 0:
				var s strings.Builder
				for range r.IntN(8) {
					s.WriteByte(alphabet[r.IntN(len(alphabet))])
				}
				v = s.String()
			case 1:
				v = json.Number([]string{"1", "-2", "3.25", "4e5", "0", "1.", "-", "7E-3"}[r.IntN(8)])
			case 2:
				v = r.IntN(2) == 0
			case 3:
				v = nil
			}
			m[k.String()] = v
		}
		cases = append(cases, m)
	}
	for _, m := range cases {
		want, wantErr := encodeJSON(m)
		got, gotErr := encodeFields(m)
		if (wantErr != nil) != (gotErr != nil) || got != want {
			t.Errorf("fields %#v: written %q (%v), want %q (%v)", m, got, gotErr, want, wantErr)
		}
	}
}

func BenchmarkEncodeFields(b *testing.B) {
	fields := map[string]any{"id": json.Number("1234"), "summary": "Pipeline benchmark ticket 1234", "status_id": json.Number("2"),
		"priority_id": json.Number("3"), "client_id": json.Number("12"), "agent_id": json.Number("7"), "team_id": json.Number("2"),
		"dateoccurred": "2026-09-25T06:30:00", "last_update": "2026-09-25T06:30:00.123", "deleted": false,
		"details": strings.Repeat("x", 1700)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeFields(fields); err != nil {
			b.Fatal(err)
		}
	}
}
