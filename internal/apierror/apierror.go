// Package apierror is the HTTP error contract of halosync's endpoints: the stable error
// codes, the one table of their statuses, and the body every refusal has,
// {"error": "<code>", "message": "<safe text>"} (docs/ARCHITECTURE.md, "Error contract").
package apierror

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// Code is a stable error code: senders and scripts match on it, so it never changes.
type Code string

// The codes of the webhook endpoint and of the read routes (internal/readapi).
const (
	MethodNotAllowed     Code = "method_not_allowed"
	UnknownConnection    Code = "unknown_connection"
	BodyTooLarge         Code = "body_too_large"
	Unauthorized         Code = "unauthorized"
	UnreadableBody       Code = "unreadable_body"
	Unavailable          Code = "unavailable"
	Forbidden            Code = "forbidden"
	UnknownHost          Code = "unknown_host"
	UnsupportedMediaType Code = "unsupported_media_type"
	TooManyFailures      Code = "too_many_failures"
	NotFound             Code = "not_found"
	UnknownKind          Code = "unknown_kind"
	InvalidQuery         Code = "invalid_query"
	Internal             Code = "internal"
)

// statuses is the one place a code becomes an HTTP status.
var statuses = map[Code]int{
	UnreadableBody:       http.StatusBadRequest,
	InvalidQuery:         http.StatusBadRequest,
	Unauthorized:         http.StatusUnauthorized,
	Forbidden:            http.StatusForbidden,
	UnknownHost:          http.StatusMisdirectedRequest,
	UnknownConnection:    http.StatusNotFound,
	NotFound:             http.StatusNotFound,
	UnknownKind:          http.StatusNotFound,
	MethodNotAllowed:     http.StatusMethodNotAllowed,
	BodyTooLarge:         http.StatusRequestEntityTooLarge,
	UnsupportedMediaType: http.StatusUnsupportedMediaType,
	TooManyFailures:      http.StatusTooManyRequests,
	Internal:             http.StatusInternalServerError,
	Unavailable:          http.StatusServiceUnavailable,
}

// Status is the code's HTTP status; a code missing from the table is an internal error.
func (c Code) Status() int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is a refusal: a stable code, a message safe to show the caller, the reason it is
// logged and counted by (finer than the code), and the error behind it, if any, which is
// logged but never shown.
type Error struct {
	Code    Code
	Message string
	Reason  string
	Err     error
	// RetryAfter, when set, is sent as the Retry-After header (whole seconds): when the
	// sender may try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Err.Error()
	}
	return string(e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of the refusal, from the table.
func (e *Error) Status() int { return e.Code.Status() }

// Body is the refusal's JSON body in one line, as the webhook endpoint answers.
func (e *Error) Body() []byte { return encode(e.Code, e.Message, "") }

// Write answers with the JSON body of code and message, indented as the local server's
// other JSON answers are.
func Write(w http.ResponseWriter, code Code, message string) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(code.Status())
	_, _ = w.Write(encode(code, message, "  "))
}

// encode never escapes HTML: the body is JSON for programs, not a page, and a message keeps
// its characters as written.
func encode(code Code, message, indent string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", indent)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Error   Code   `json:"error"`
		Message string `json:"message"`
	}{code, message}) // two strings always encode
	if indent == "" {
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	return buf.Bytes()
}
