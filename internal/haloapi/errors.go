package haloapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/halosync/halosync/internal/change"
)

// Classes of failure. Every error the client returns is an *Error (or wraps the caller's
// own error from a List callback); errors.Is tells the class.
var (
	// ErrNotFound: Halo answered 404 for the object.
	ErrNotFound = errors.New("not found")
	// ErrAuth: the token endpoint refused the credentials or the scope, or the API refused
	// a freshly issued token. Retrying does not help; the configuration must change.
	ErrAuth = errors.New("authentication failed")
	// ErrPermanent: Halo refused the request (4xx other than 401, 404, 408 and 429), or
	// the request could not be built. Retrying does not help.
	ErrPermanent = errors.New("request refused")
	// ErrRateLimited: Halo still answered 429 when the retries ran out. Try again later.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: 5xx answers, timeouts or network errors outlasted the retries. Try
	// again later.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadResponse: a 2xx answer that is not the JSON expected.
	ErrBadResponse = errors.New("unreadable response")
	// ErrPageLimit: a list ran past its page limit.
	ErrPageLimit = errors.New("page limit reached")
	// ErrTruncated: an unpaged list answered fewer objects than its record_count (also
	// ErrBadResponse). A caller that can narrow its query (a shorter date window) does.
	ErrTruncated = errors.New("answer cut short")
)

// Retryable reports whether a later attempt may succeed: rate limiting, or Halo being
// unreachable or failing, after the client's own retries ran out.
func Retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable)
}

// Error is a failed Halo request. It never holds the client secret or a token.
type Error struct {
	Op       string // what was attempted: "get ticket 42", "list tickets page 3", "token"
	Status   int    // the last HTTP status; 0 when no answer came
	Code     string // the OAuth error code of a refused token request ("invalid_scope")
	Attempts int    // HTTP requests made for the operation
	Detail   string // what to fix, or Halo's own words
	class    error
	cause    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("halo: ")
	b.WriteString(e.Op)
	if e.class != nil {
		b.WriteString(": ")
		b.WriteString(e.class.Error())
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Unwrap returns the class (ErrNotFound, ErrAuth, ...) and the cause (a network error,
// the context's error).
func (e *Error) Unwrap() []error {
	var out []error
	if e.class != nil {
		out = append(out, e.class)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// apiStatus turns a final API answer into nil (2xx) or the error it means.
func apiStatus(op string, kind change.Kind, r *response) error {
	return answerError(op, r, " and may read "+string(kind)+"s",
		ErrPermanent, "forbidden: the application's scopes or its agent's permissions do not allow this")
}

// answerError turns a final answer into nil (2xx) or the error it means. Reading objects
// and managing webhooks differ only in what a 401 and a 403 tell the operator to check:
// unauthorized is added to the 401's detail, forbidden and forbiddenDetail make the 403.
func answerError(op string, r *response, unauthorized string, forbidden error, forbiddenDetail string) error {
	e := &Error{Op: op, Status: r.status, Attempts: r.attempts}
	switch {
	case r.status >= 200 && r.status < 300:
		return nil
	case r.status == http.StatusNotFound:
		e.class = ErrNotFound
	case r.status == http.StatusUnauthorized:
		e.class = ErrAuth
		e.Detail = "Halo refused a freshly issued token: check that the API application's login agent is active" + unauthorized
	case r.status == http.StatusForbidden:
		e.class, e.Detail = forbidden, forbiddenDetail+haloSays(r.body)
	default:
		e.class, e.Detail = ErrPermanent, strings.TrimPrefix(haloSays(r.body), "; ")
	}
	return e
}
