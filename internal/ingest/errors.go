package ingest

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/halosync/halosync/internal/auth"
	"github.com/halosync/halosync/internal/halo"
)

// Stable error codes of the webhook endpoint (docs/ARCHITECTURE.md, "Error contract").
const (
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeUnknownConnection = "unknown_connection"
	CodeTooLarge          = "body_too_large"
	CodeUnauthorized      = "unauthorized"
	CodeUnreadable        = "unreadable_body"
	CodeUnavailable       = "unavailable"
	CodeForbidden         = "forbidden"
	CodeUnsupportedMedia  = "unsupported_media_type"
)

// Reasons a refusal is logged and counted by, where finer than its code.
const (
	ReasonIPNotAllowed         = "ip_not_allowed"
	ReasonBadBase64            = "bad_base64"
	ReasonNoContentType        = "content_type_missing"
	ReasonNotJSONType          = "content_type_not_json"
	ReasonEncoding             = "content_encoding_unsupported"
	ReasonBadGzip              = "bad_gzip"
	ReasonDecompressedTooLarge = "decompressed_too_large"
)

// Error is a refusal: the status, a stable code, a message safe to show the sender, and
// the reason it is logged and counted by.
type Error struct {
	Status  int
	Code    string
	Message string
	Reason  string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Code + ": " + e.Err.Error()
	}
	return e.Code
}

func (e *Error) Unwrap() error { return e.Err }

// classify maps any error of the ingest path to its refusal: the one place where errors
// become status codes.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ae *auth.Error
	var de *halo.DecodeError
	switch {
	case errors.As(err, &ae):
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "missing or wrong credentials", Reason: ae.Reason, Err: err}
	case errors.As(err, &de):
		return &Error{Status: http.StatusBadRequest, Code: CodeUnreadable, Message: "the body is not a Halo webhook payload", Reason: de.Reason, Err: err}
	case errors.Is(err, halo.ErrUnreadable):
		return &Error{Status: http.StatusBadRequest, Code: CodeUnreadable, Message: "the body is not a Halo webhook payload", Reason: CodeUnreadable, Err: err}
	default:
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the delivery could not be queued; send it again", Reason: CodeUnavailable, Err: err}
	}
}

func errorBody(e *Error) []byte {
	b, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	return b
}
