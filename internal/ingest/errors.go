package ingest

import (
	"errors"
	"time"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/auth"
	"github.com/halosync/halosync/internal/halo"
)

// The webhook endpoint's codes, as strings, for the tests and transports that name them;
// apierror holds the codes and their statuses (docs/ARCHITECTURE.md, "Error contract").
const (
	CodeMethodNotAllowed  = string(apierror.MethodNotAllowed)
	CodeUnknownConnection = string(apierror.UnknownConnection)
	CodeTooLarge          = string(apierror.BodyTooLarge)
	CodeUnauthorized      = string(apierror.Unauthorized)
	CodeUnreadable        = string(apierror.UnreadableBody)
	CodeUnavailable       = string(apierror.Unavailable)
	CodeForbidden         = string(apierror.Forbidden)
	CodeUnsupportedMedia  = string(apierror.UnsupportedMediaType)
	CodeTooManyFailures   = string(apierror.TooManyFailures)
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
	// ReasonAuthThrottled: the source failed to authenticate auth_throttle.failures times
	// within a window and is refused until it has passed.
	ReasonAuthThrottled = "auth_throttled"
	ReasonBacklogFull   = "backlog_full"
)

// BacklogRetryAfter is the Retry-After of a delivery refused because the queue's backlog
// is full (the embedded queue's queue.max_backlog): about the time the worker takes to
// make room for it.
const BacklogRetryAfter = 10 * time.Second

// refusal is a refusal with its code; the status comes from apierror's table.
func refusal(code apierror.Code, message, reason string, err error) *apierror.Error {
	return &apierror.Error{Code: code, Message: message, Reason: reason, Err: err}
}

// classify maps any error of the ingest path to its refusal's code: failed authentication,
// an unreadable body, or else a queue that did not accept the changes.
func classify(err error) *apierror.Error {
	var e *apierror.Error
	if errors.As(err, &e) {
		return e
	}
	var ae *auth.Error
	var de *halo.DecodeError
	switch {
	case errors.As(err, &ae):
		return refusal(apierror.Unauthorized, "missing or wrong credentials", ae.Reason, err)
	case errors.As(err, &de):
		return refusal(apierror.UnreadableBody, "the body is not a Halo webhook payload", de.Reason, err)
	case errors.Is(err, halo.ErrUnreadable):
		return refusal(apierror.UnreadableBody, "the body is not a Halo webhook payload", CodeUnreadable, err)
	default:
		return refusal(apierror.Unavailable, "the delivery could not be queued; send it again", CodeUnavailable, err)
	}
}
