package halo

// The decoder as it was before the strict checks and the decoding became one walk
// (docs/PERFORMANCE.md, "Ingest in one pass"): FuzzDecodeAgreesWithTwoPasses holds Decode
// to the same answers.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// check refuses bodies that encoding/json would read but not faithfully: invalid UTF-8
// and \u escapes naming a lone surrogate (both silently replaced by U+FFFD), duplicate keys
// (the last silently wins), keys equal but for case (encoding/json matches struct fields
// without regard to case, so readers may disagree on which one counts), numbers out of a
// float64's range, nesting deeper than MaxDepth, and batches larger than MaxEvents. One
// pass over the bytes, after json.Valid.
func refCheck(body []byte) error {
	if !utf8.Valid(body) {
		return unreadable(ReasonInvalidUTF8, "the body is not valid UTF-8")
	}
	if !json.Valid(body) {
		return unreadable(ReasonInvalidJSON, "the body is not valid JSON")
	}
	type frame struct {
		object    bool
		expectKey bool
		keys      map[string]string // folded key → the key as written
		items     int               // commas seen in the top-level array
	}
	var stack []frame
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			if len(stack) == MaxDepth {
				return unreadable(ReasonTooDeep, "nested deeper than %d levels", MaxDepth)
			}
			stack = append(stack, frame{object: c == '{', expectKey: c == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			top := &stack[len(stack)-1]
			if top.object {
				top.expectKey = true
			} else if len(stack) == 1 {
				if top.items++; top.items >= MaxEvents {
					return unreadable(ReasonTooManyEvents, "more than %d events in one delivery", MaxEvents)
				}
			}
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			// Outside a string (strings are skipped whole below): a number.
			end := i + 1
			for end < len(body) && refIsNumberByte(body[end]) {
				end++
			}
			if err := refCheckNumber(body[i:end]); err != nil {
				return err
			}
			i = end - 1
		case '"':
			start := i
			escaped := false
			for i++; body[i] != '"'; i++ {
				if body[i] == '\\' {
					escaped = true
					i++
					if body[i] == 'u' {
						n, err := refSurrogates(body, i)
						if err != nil {
							return err
						}
						i += n
					}
				}
			}
			if len(stack) == 0 {
				continue
			}
			top := &stack[len(stack)-1]
			if !top.object || !top.expectKey {
				continue
			}
			top.expectKey = false
			key := string(body[start+1 : i])
			if escaped {
				if err := json.Unmarshal(body[start:i+1], &key); err != nil {
					return unreadable(ReasonInvalidJSON, "unreadable key")
				}
			}
			if top.keys == nil {
				top.keys = make(map[string]string, 8)
			}
			folded := refFoldKey(key)
			if first, dup := top.keys[folded]; dup {
				if first == key {
					return unreadable(ReasonDuplicateKey, "key %q appears twice in one object", refTruncate(key, 40))
				}
				return unreadable(ReasonDuplicateKey, "keys %q and %q differ only in case", refTruncate(first, 40), refTruncate(key, 40))
			}
			top.keys[folded] = key
		}
	}
	return nil
}

func refTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func refIsNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// checkNumber refuses a number a float64 cannot hold: readers would see infinity (1e400),
// or zero for a number that is not (1e-400). Numbers are kept as written (json.Number),
// but every reader downstream, the stores included, must be able to read them.
func refCheckNumber(n []byte) error {
	f, err := strconv.ParseFloat(string(n), 64)
	if errors.Is(err, strconv.ErrRange) || (err == nil && f == 0 && refNonZeroMantissa(n)) {
		return unreadable(ReasonNumberRange, "the number %s is out of range", refTruncate(string(n), 40))
	}
	if err != nil {
		return unreadable(ReasonInvalidJSON, "unreadable number")
	}
	return nil
}

func refNonZeroMantissa(n []byte) bool {
	mantissa, _, _ := bytes.Cut(bytes.ToLower(n), []byte("e"))
	return bytes.ContainsAny(mantissa, "123456789")
}

// surrogates checks the \u escape at body[i] ('u'): a high surrogate must be followed by
// an escaped low one, and a low one must not stand alone. It returns how many bytes the
// escape (or pair) holds past the 'u'. json.Valid has checked every escape has four hex
// digits.
func refSurrogates(body []byte, i int) (int, error) {
	r := refHex4(body[i+1 : i+5])
	switch {
	case r >= 0xD800 && r <= 0xDBFF:
		if i+10 < len(body) && body[i+5] == '\\' && body[i+6] == 'u' {
			if lo := refHex4(body[i+7 : i+11]); lo >= 0xDC00 && lo <= 0xDFFF {
				return 10, nil
			}
		}
	case r >= 0xDC00 && r <= 0xDFFF:
	default:
		return 4, nil
	}
	return 0, unreadable(ReasonInvalidUTF8, "a \\u escape names a lone surrogate, which UTF-8 cannot hold")
}

func refHex4(b []byte) rune {
	r, _ := strconv.ParseUint(string(b), 16, 32) // json.Valid has checked the digits
	return rune(r)
}

// foldKey folds a key as encoding/json does when it matches a key to a struct field: ASCII
// letters to upper case, other runes through unicode.ToUpper(unicode.ToLower(r)), so "K"
// and the Kelvin sign meet too.
func refFoldKey(key string) string {
	return strings.Map(func(r rune) rune { return unicode.ToUpper(unicode.ToLower(r)) }, key)
}

// Decode reads a delivery body: one event object, a JSON array of events (Halo's batching),
// or {"events": [...]} as some relays wrap batches.
func refDecode(body []byte) ([]Event, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, unreadable(ReasonEmpty, "")
	}
	if err := refCheck(trimmed); err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, unreadable(ReasonInvalidJSON, "%v", err)
		}
	case '{':
		// The common case, one event: decoded once. A relay's {"events": [...]} wrapper
		// is recognised by its keys and decoded as a batch.
		m, err := refDecodeObject(trimmed)
		if err != nil {
			return nil, err
		}
		_, hasEvent := m["event"]
		if _, wrapped := m["events"].([]any); !wrapped || hasEvent {
			e, err := eventFrom(m, trimmed)
			if err != nil {
				return nil, err
			}
			return []Event{e}, nil
		}
		// A map, not a struct: encoding/json matches struct fields without regard to case,
		// and only "events" itself is the wrapper's key.
		var wrapper map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &wrapper); err != nil {
			return nil, unreadable(ReasonInvalidJSON, "%v", err)
		}
		if err := json.Unmarshal(wrapper["events"], &raws); err != nil {
			return nil, unreadable(ReasonInvalidJSON, "%v", err)
		}
	default:
		return nil, unreadable(ReasonNotAnEvent, "the body is not a JSON object or array")
	}
	events := make([]Event, 0, len(raws))
	for i, raw := range raws {
		e, err := refDecodeEvent(raw)
		if err != nil {
			if len(raws) > 1 {
				return nil, fmt.Errorf("event %d: %w", i, err)
			}
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

func refDecodeEvent(raw json.RawMessage) (Event, error) {
	m, err := refDecodeObject(raw)
	if err != nil {
		return Event{}, err
	}
	return eventFrom(m, raw)
}

// decodeObject decodes one JSON object, keeping numbers exactly as written.
func refDecodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, unreadable(ReasonNotAnEvent, "%v", err) // the syntax was checked: a wrong type
	}
	if m == nil {
		return nil, unreadable(ReasonNotAnEvent, "an event is not a JSON object")
	}
	if dec.More() {
		return nil, unreadable(ReasonInvalidJSON, "data after the JSON object")
	}
	return m, nil
}

// FuzzDecodeAgreesWithTwoPasses: the one walk refuses what the checks and the decoding
// done one after the other refused, for the same reason, and decodes the same events
// from what they accepted.
func FuzzDecodeAgreesWithTwoPasses(f *testing.F) {
	addTestdata(f)
	const ev = `{"event":"ticket updated","object_id":1}`
	for _, s := range []string{
		`[` + ev + `,1e400]`, `{"events":[` + ev + `],"Events":[]}`, `{"events":[` + ev + `,` + ev + `]}`,
		`{"event":"x","object_id":1,"ticket":{"id":1,"k":1,"` + "\u212a" + `":2}}`, `{"a":"\ud800\u0041"}`, `{"a":"\ud83d\ude00"}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `{"a":1,"a":1e400}`, `{"a":1e400,"a":1}`,
		"{\"a\":\"\xff\",\"a\":1}", `{"a":0e999,"b":-0.0,"c":5e-324,"d":1e-400}`, `"x"`, `12`, `[]`, `{}`, `[null]`, `[1,2]`,
		" \u00a0{\"event\":\"x\",\"object_id\":1}\u3000", `{"event":"x","object_id":1} x`, `{"\u004fbject_id":2,"object_id":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Decode(body)
		want, wantErr := refDecode(body)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Decode = %v; two passes = %v", err, wantErr)
		}
		if err != nil {
			var de, wantDE *DecodeError
			if !errors.As(err, &de) || !errors.As(wantErr, &wantDE) || de.Reason != wantDE.Reason {
				t.Fatalf("Decode = %v; two passes = %v", err, wantErr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Decode = %+v\ntwo passes = %+v", got, want)
		}
	})
}
