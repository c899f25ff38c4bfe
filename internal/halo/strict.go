package halo

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Limits on a delivery's JSON, beyond its size: Halo's payloads are a few levels deep and a
// batch holds at most a few hundred events.
const (
	// MaxDepth is the deepest nesting accepted; DynamoDB stores at most 32 levels.
	MaxDepth = 32
	// MaxEvents is the most events one batched delivery may hold.
	MaxEvents = 1000
)

// Reasons a body is unreadable, stable for logs and metrics.
const (
	ReasonEmpty         = "empty_body"
	ReasonInvalidJSON   = "invalid_json"
	ReasonInvalidUTF8   = "invalid_utf8"
	ReasonTooDeep       = "too_deep"
	ReasonDuplicateKey  = "duplicate_key"
	ReasonTooManyEvents = "too_many_events"
	ReasonNotAnEvent    = "not_an_event"
	// ReasonNumberRange: a number a float64 cannot hold (beyond ±1.8e308, or not zero but
	// below 4.9e-324), which a reader would turn into infinity or zero.
	ReasonNumberRange = "number_out_of_range"
)

// DecodeError says why a body is not a readable delivery. It matches ErrUnreadable.
type DecodeError struct {
	Reason string
	Detail string
}

func (e *DecodeError) Error() string {
	if e.Detail == "" {
		return "unreadable delivery: " + e.Reason
	}
	return "unreadable delivery: " + e.Reason + ": " + e.Detail
}

// Is makes errors.Is(err, ErrUnreadable) hold.
func (e *DecodeError) Is(target error) bool { return target == ErrUnreadable }

func unreadable(reason, format string, args ...any) error {
	return &DecodeError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// check refuses bodies that encoding/json would read but not faithfully: invalid UTF-8
// and \u escapes naming a lone surrogate (both silently replaced by U+FFFD), duplicate keys
// (the last silently wins), keys equal but for case (encoding/json matches struct fields
// without regard to case, so readers may disagree on which one counts), numbers out of a
// float64's range, nesting deeper than MaxDepth, and batches larger than MaxEvents. One
// pass over the bytes, after json.Valid.
func check(body []byte) error {
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
			for end < len(body) && isNumberByte(body[end]) {
				end++
			}
			if err := checkNumber(body[i:end]); err != nil {
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
						n, err := surrogates(body, i)
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
			folded := foldKey(key)
			if first, dup := top.keys[folded]; dup {
				if first == key {
					return unreadable(ReasonDuplicateKey, "key %q appears twice in one object", truncate(key, 40))
				}
				return unreadable(ReasonDuplicateKey, "keys %q and %q differ only in case", truncate(first, 40), truncate(key, 40))
			}
			top.keys[folded] = key
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func isNumberByte(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// checkNumber refuses a number a float64 cannot hold: readers would see infinity (1e400),
// or zero for a number that is not (1e-400). Numbers are kept as written (json.Number),
// but every reader downstream, the stores included, must be able to read them.
func checkNumber(n []byte) error {
	f, err := strconv.ParseFloat(string(n), 64)
	if errors.Is(err, strconv.ErrRange) || (err == nil && f == 0 && nonZeroMantissa(n)) {
		return unreadable(ReasonNumberRange, "the number %s is out of range", truncate(string(n), 40))
	}
	if err != nil {
		return unreadable(ReasonInvalidJSON, "unreadable number")
	}
	return nil
}

func nonZeroMantissa(n []byte) bool {
	for _, c := range n {
		switch {
		case c == 'e' || c == 'E':
			return false
		case '1' <= c && c <= '9':
			return true
		}
	}
	return false
}

// surrogates checks the \u escape at body[i] ('u'): a high surrogate must be followed by
// an escaped low one, and a low one must not stand alone. It returns how many bytes the
// escape (or pair) holds past the 'u'. json.Valid has checked every escape has four hex
// digits.
func surrogates(body []byte, i int) (int, error) {
	r := hex4(body[i+1 : i+5])
	switch {
	case r >= 0xD800 && r <= 0xDBFF:
		if i+10 < len(body) && body[i+5] == '\\' && body[i+6] == 'u' {
			if lo := hex4(body[i+7 : i+11]); lo >= 0xDC00 && lo <= 0xDFFF {
				return 10, nil
			}
		}
	case r >= 0xDC00 && r <= 0xDFFF:
	default:
		return 4, nil
	}
	return 0, unreadable(ReasonInvalidUTF8, "a \\u escape names a lone surrogate, which UTF-8 cannot hold")
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// foldKey folds a key as encoding/json does when it matches a key to a struct field: ASCII
// letters to upper case, other runes through unicode.ToUpper(unicode.ToLower(r)), so "K"
// and the Kelvin sign meet too.
func foldKey(key string) string {
	out := make([]byte, 0, len(key))
	for _, r := range key {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			continue
		}
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
	}
	return string(out)
}
