package halo

import (
	"errors"
	"testing"
)

// TestDecodeRefusesWhatReadersWouldDisagreeOn: keys equal but for case, ids spelled so that
// they name another id, numbers out of a float64's range and lone surrogates are refused
// with their reason, never read one way here and another downstream.
func TestDecodeRefusesWhatReadersWouldDisagreeOn(t *testing.T) {
	const ev = `{"event":"ticket updated","object_id":1}`
	tests := []struct{ name, body, reason string }{
		{"events in two cases", `{"events":[` + ev + `],"Events":[{"event":"ticket updated","object_id":2}]}`, ReasonDuplicateKey},
		{"event fields in two cases", `{"event":"ticket updated","object_id":1,"OBJECT_ID":2}`, ReasonDuplicateKey},
		{"nested keys in two cases", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"Summary":"a","summary":"b"}}`, ReasonDuplicateKey},
		{"nested kind in two cases", `{"event":"ticket updated","object_id":1,"ticket":{"id":1},"Ticket":{"id":2}}`, ReasonDuplicateKey},
		{"Kelvin sign folds to k", "{\"event\":\"ticket updated\",\"object_id\":1,\"ticket\":{\"id\":1,\"k\":1,\"\u212a\":2}}", ReasonDuplicateKey},
		{"an escaped case variant", `{"event":"ticket updated","object_id":1,"\u004fbject_id":2}`, ReasonDuplicateKey},
		{"1e400 in a field", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"cost":1e400}}`, ReasonNumberRange},
		{"-1e400 in an array", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"x":[1,-1e400]}}`, ReasonNumberRange},
		{"1e-400 underflows to zero", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"x":1e-400}}`, ReasonNumberRange},
		{"1e400 at the top of a batch", `[` + ev + `,1e400]`, ReasonNumberRange},
		{"a lone high surrogate", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"summary":"\ud800"}}`, ReasonInvalidUTF8},
		{"a high surrogate before a letter", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"summary":"\ud800\u0041"}}`, ReasonInvalidUTF8},
		{"a lone low surrogate", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"summary":"x\udc00"}}`, ReasonInvalidUTF8},
		{"a lone surrogate in a key", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"\udbff":1}}`, ReasonInvalidUTF8},
		{"a high surrogate at the end", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"s":"\udbff"}}`, ReasonInvalidUTF8},
		{"object_id -0", `{"event":"ticket updated","object_id":-0}`, ReasonNotAnEvent},
		{"object_id negative", `{"event":"ticket updated","object_id":-12}`, ReasonNotAnEvent},
		{"object_id with an exponent", `{"event":"ticket updated","object_id":1e3}`, ReasonNotAnEvent},
		{"object_id an exponent in a string", `{"event":"ticket updated","object_id":"1e3"}`, ReasonNotAnEvent},
		{"object_id a signed string", `{"event":"ticket updated","object_id":"+12"}`, ReasonNotAnEvent},
		{"object_id with blanks", `{"event":"ticket updated","object_id":" 12"}`, ReasonNotAnEvent},
		{"object_id beyond int64", `{"event":"ticket updated","object_id":9223372036854775808}`, ReasonNotAnEvent},
		{"notification_id -0", `{"event":"ticket updated","notification_id":"-0","object_id":1}`, ReasonNotAnEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decode([]byte(tt.body))
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != tt.reason || events != nil {
				t.Fatalf("Decode = %d events, %v; want reason %s", len(events), err, tt.reason)
			}
		})
	}
}

// TestDecodeStrictAcceptsPlainForms: what the strict checks must let through.
func TestDecodeStrictAcceptsPlainForms(t *testing.T) {
	tests := []struct{ name, body, id string }{
		{"a surrogate pair", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"s":"\ud83d\ude00"}}`, "1"},
		{"large and tiny numbers in range", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"a":1e308,"b":5e-324,"c":0e999,"d":-0.0}}`, "1"},
		{"different keys", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"a":1,"b":2,"ab":3}}`, "1"},
		{"a zero-padded id", `{"event":"ticket updated","object_id":"0004242"}`, "4242"},
		{"a whole decimal id", `{"event":"ticket updated","object_id":4242.0}`, "4242"},
		{"escaped backslash before u", `{"event":"ticket updated","object_id":1,"ticket":{"id":1,"s":"\\ud800"}}`, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decode([]byte(tt.body))
			if err != nil || len(events) != 1 || events[0].ObjectID != tt.id {
				t.Fatalf("Decode = %+v, %v; want one event about %s", events, err, tt.id)
			}
		})
	}
}
