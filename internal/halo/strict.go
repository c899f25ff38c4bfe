package halo

import (
	"encoding/json"
	"fmt"
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
// (silently replaced), duplicate keys (the last silently wins), nesting deeper than
// MaxDepth, and batches larger than MaxEvents. One pass over the bytes, after json.Valid.
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
		keys      map[string]struct{}
		items     int // commas seen in the top-level array
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
		case '"':
			start := i
			escaped := false
			for i++; body[i] != '"'; i++ {
				if body[i] == '\\' {
					escaped = true
					i++
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
				top.keys = make(map[string]struct{}, 8)
			}
			if _, dup := top.keys[key]; dup {
				return unreadable(ReasonDuplicateKey, "key %q appears twice in one object", truncate(key, 40))
			}
			top.keys[key] = struct{}{}
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
