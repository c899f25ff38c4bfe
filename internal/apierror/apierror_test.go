package apierror

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestStatuses pins the table to docs/ARCHITECTURE.md, "Error contract".
func TestStatuses(t *testing.T) {
	want := map[Code]int{
		UnreadableBody: 400, InvalidQuery: 400, Unauthorized: 401, Forbidden: 403, UnknownHost: 421, UnknownConnection: 404, NotFound: 404,
		UnknownKind: 404, MethodNotAllowed: 405, BodyTooLarge: 413, UnsupportedMediaType: 415,
		TooManyFailures: 429, Internal: 500, Unavailable: 503,
	}
	if len(want) != len(statuses) {
		t.Errorf("the table has %d codes, want %d", len(statuses), len(want))
	}
	for c, s := range want {
		if got := c.Status(); got != s {
			t.Errorf("%s: status %d, want %d", c, got, s)
		}
		if got := (&Error{Code: c}).Status(); got != s {
			t.Errorf("Error{%s}.Status() = %d, want %d", c, got, s)
		}
	}
	if got := Code("no_such_code").Status(); got != http.StatusInternalServerError {
		t.Errorf("a code outside the table: %d, want 500", got)
	}
}

func TestErrorWraps(t *testing.T) {
	cause := io.ErrUnexpectedEOF
	err := fmt.Errorf("read: %w", &Error{Code: UnreadableBody, Message: "unreadable", Reason: "bad_gzip", Err: cause})
	var e *Error
	if !errors.As(err, &e) || e.Reason != "bad_gzip" || e.Status() != http.StatusBadRequest {
		t.Fatalf("errors.As: %v %+v", err, e)
	}
	if !errors.Is(err, cause) {
		t.Error("the cause does not unwrap")
	}
	if got := e.Error(); got != "unreadable_body: unexpected EOF" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&Error{Code: Forbidden}).Error(); got != "forbidden" {
		t.Errorf("Error() without a cause = %q", got)
	}
}

// TestBodies: the webhook endpoint's body is one line, as encoding/json writes it; the local
// server's is indented like its other answers. Tests elsewhere compare these bytes.
func TestBodies(t *testing.T) {
	for _, msg := range []string{"no such route", "the body exceeds 1048576 bytes", "no ticket <42> & more"} {
		e := &Error{Code: NotFound, Message: msg}
		var compact bytes.Buffer
		if err := json.Compact(&compact, indented(t, map[string]string{"error": "not_found", "message": msg})); err != nil {
			t.Fatal(err)
		}
		if got := e.Body(); !bytes.Equal(got, compact.Bytes()) {
			t.Errorf("Body() = %s, want %s", got, compact.Bytes())
		}

		rec := httptest.NewRecorder()
		Write(rec, NotFound, msg)
		if rec.Code != http.StatusNotFound || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("Write: status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
		if want := indented(t, map[string]string{"error": "not_found", "message": msg}); !bytes.Equal(rec.Body.Bytes(), want) {
			t.Errorf("Write wrote %q, want %q", rec.Body.Bytes(), want)
		}
	}
}

// indented is how the local server writes JSON answers: two spaces, no HTML escaping.
func indented(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
