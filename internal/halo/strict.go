package halo

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/halosync/halosync/internal/strictjson"
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

// strictError is the reason a body is refused, as one check after another over the whole
// body would tell it: invalid UTF-8 anywhere first, then invalid JSON anywhere, then the
// first other fault in the order of the bytes (docs/ARCHITECTURE.md, "Ingest", step 9).
// The decoding walk stops at its first fault; only then are the other two checked, over the
// whole body.
func strictError(body []byte, err error) error {
	if !utf8.Valid(body) {
		return unreadable(ReasonInvalidUTF8, "the body is not valid UTF-8")
	}
	var se *strictjson.Error
	isErr := errors.As(err, &se)
	if isErr && se.Kind == strictjson.Syntax || !json.Valid(body) {
		return unreadable(ReasonInvalidJSON, "the body is not valid JSON")
	}
	if !isErr {
		return err
	}
	return &DecodeError{Reason: strictReasons[se.Kind], Detail: se.Detail}
}

// strictReasons names each fault the decoding walk finds.
var strictReasons = map[strictjson.Kind]string{
	strictjson.Syntax:       ReasonInvalidJSON,
	strictjson.InvalidUTF8:  ReasonInvalidUTF8,
	strictjson.TooDeep:      ReasonTooDeep,
	strictjson.DuplicateKey: ReasonDuplicateKey,
	strictjson.NumberRange:  ReasonNumberRange,
}
