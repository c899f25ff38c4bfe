package ingest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

type recorder struct {
	msgs []message.Message
	err  error
}

func (r *recorder) Send(_ context.Context, m []message.Message) error {
	if r.err != nil {
		return r.err
	}
	for _, msg := range m {
		checkHandedEnvelope(msg)
	}
	r.msgs = append(r.msgs, m...)
	return nil
}

// handedMismatches lists the messages, of every ingest test, whose handed envelope
// (message.Message.Handed, which the local pipeline's worker reads instead of the body)
// is not what the body decodes to; TestMain fails the package on any.
var (
	handedMu         sync.Mutex
	handedMismatches []string
)

func checkHandedEnvelope(m message.Message) {
	handed := m.Handed()
	if handed == nil {
		return
	}
	want, err := message.Decode(m.Body)
	got, gotErr := message.Check(*handed)
	if (err != nil) != (gotErr != nil) || !reflect.DeepEqual(got, want) {
		handedMu.Lock()
		defer handedMu.Unlock()
		handedMismatches = append(handedMismatches, fmt.Sprintf("handed %+v (%v)\ndecoded %+v (%v)", got, gotErr, want, err))
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(handedMismatches) > 0 {
		fmt.Fprintf(os.Stderr, "%d message(s) hand over an envelope their body does not decode to; the first:\n%s\n",
			len(handedMismatches), handedMismatches[0])
		code = 1
	}
	os.Exit(code)
}

const (
	user    = "halo"
	oldPass = "first-secret"
	newPass = "next-secret"
)

func testConfig() *config.Config {
	return &config.Config{Connections: []config.Connection{{
		ID: "default",
		Webhook: config.Webhook{
			MaxBodyBytes: 4096,
			Auth:         []config.AuthScheme{{Scheme: "basic", Username: user, Passwords: []string{oldPass, newPass}}},
		},
	}}}
}

const ticketBody = `{"id":"d-1","event":"ticket updated","object_id":42,"timestamp":"2026-09-25T06:41:08.7895915Z",
 "ticket":{"id":42,"summary":"Printer","client_id":12,"last_update":"2026-09-25T06:41:07.523"}}`

func TestHandle(t *testing.T) {
	good := map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}
	cases := []struct {
		name     string
		req      ingest.Request
		sendErr  error
		status   int
		code     string
		reason   string
		enqueued int
	}{
		{name: "accepted with the old password", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte(ticketBody)}, status: 200, enqueued: 1},
		{name: "accepted with the new password", req: ingest.Request{Connection: "default", Method: "POST", Header: map[string]string{"authorization": authtest.Basic(user, newPass), "content-type": "application/json"}, Body: []byte(ticketBody)}, status: 200, enqueued: 1},
		{name: "batched array", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte("[" + ticketBody + "," + strings.Replace(ticketBody, `"id":42`, `"id":43`, 1) + "]")}, status: 200, enqueued: 2},
		{name: "base64 body", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte(base64.StdEncoding.EncodeToString([]byte(ticketBody))), Base64: true}, status: 200, enqueued: 1},
		{name: "no credentials", req: ingest.Request{Connection: "default", Method: "POST", Header: map[string]string{"content-type": "application/json"}, Body: []byte(ticketBody)}, status: 401, code: ingest.CodeUnauthorized, reason: "credentials_missing"},
		{name: "wrong password", req: ingest.Request{Connection: "default", Method: "POST", Header: map[string]string{"authorization": authtest.Basic(user, "guess-guess"), "content-type": "application/json"}, Body: []byte(ticketBody)}, status: 401, code: ingest.CodeUnauthorized, reason: "credentials_wrong"},
		{name: "wrong user", req: ingest.Request{Connection: "default", Method: "POST", Header: map[string]string{"authorization": authtest.Basic("admin", oldPass), "content-type": "application/json"}, Body: []byte(ticketBody)}, status: 401, code: ingest.CodeUnauthorized, reason: "credentials_wrong"},
		{name: "malformed credentials", req: ingest.Request{Connection: "default", Method: "POST", Header: map[string]string{"authorization": "Basic !!!", "content-type": "application/json"}, Body: []byte(ticketBody)}, status: 401, code: ingest.CodeUnauthorized, reason: "credentials_malformed"},
		{name: "unknown connection", req: ingest.Request{Connection: "other", Method: "POST", Header: good, Body: []byte(ticketBody)}, status: 404, code: ingest.CodeUnknownConnection, reason: ingest.CodeUnknownConnection},
		{name: "GET", req: ingest.Request{Connection: "default", Method: "GET", Header: good}, status: 405, code: ingest.CodeMethodNotAllowed, reason: ingest.CodeMethodNotAllowed},
		{name: "too large", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: bytes.Repeat([]byte(" "), 4097)}, status: 413, code: ingest.CodeTooLarge, reason: ingest.CodeTooLarge},
		{name: "too large is refused before authentication", req: ingest.Request{Connection: "default", Method: "POST", Header: map[string]string{"content-type": "application/json"}, Body: bytes.Repeat([]byte(" "), 4097)}, status: 413, code: ingest.CodeTooLarge, reason: ingest.CodeTooLarge},
		{name: "not JSON", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte("hello")}, status: 400, code: ingest.CodeUnreadable, reason: "invalid_json"},
		{name: "empty body", req: ingest.Request{Connection: "default", Method: "POST", Header: good}, status: 400, code: ingest.CodeUnreadable, reason: "empty_body"},
		{name: "bad base64", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte("%%%"), Base64: true}, status: 400, code: ingest.CodeUnreadable, reason: ingest.ReasonBadBase64},
		{name: "unreadable authenticated only after auth", req: ingest.Request{Connection: "default", Method: "POST", Header: map[string]string{"content-type": "application/json"}, Body: []byte("hello")}, status: 401, code: ingest.CodeUnauthorized, reason: "credentials_missing"},
		{name: "unknown event is kept", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte(`{"id":"x","event":"invoice paid","object_id":1}`)}, status: 200, enqueued: 1},
		{name: "queue down", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte(ticketBody)}, sendErr: errors.New("connection refused"), status: 503, code: ingest.CodeUnavailable, reason: ingest.CodeUnavailable},
		{name: "backlog full", req: ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte(ticketBody)}, sendErr: fmt.Errorf("send: 20000 queued: %w", message.ErrBacklogFull), status: 503, code: ingest.CodeUnavailable, reason: ingest.ReasonBacklogFull},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &recorder{err: tc.sendErr}
			counts := metrics.NewMemory()
			var logs bytes.Buffer
			conns, err := connection.CompileAll(testConfig())
			if err != nil {
				t.Fatal(err)
			}
			h := ingest.New(conns, q, counts, slog.New(slog.NewJSONHandler(&logs, nil)))
			resp := h.Handle(context.Background(), tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d body %s, want %d", resp.Status, resp.Body, tc.status)
			}
			if len(q.msgs) != tc.enqueued {
				t.Fatalf("enqueued %d, want %d", len(q.msgs), tc.enqueued)
			}
			var body map[string]any
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatalf("body %q is not JSON: %v", resp.Body, err)
			}
			if tc.status == 200 {
				if body["status"] != "accepted" || body["changes"] != float64(tc.enqueued) || resp.Reason != "" {
					t.Fatalf("body %s, reason %q", resp.Body, resp.Reason)
				}
				if got := counts.Value(metrics.Metric{Name: metrics.DeliveriesAccepted, Connection: "default"}); got != 1 {
					t.Fatalf("accepted count %d", got)
				}
				return
			}
			if body["error"] != tc.code || body["message"] == "" {
				t.Fatalf("error body %s, want code %s", resp.Body, tc.code)
			}
			if resp.Reason != tc.reason {
				t.Fatalf("the response's reason %q, want %q", resp.Reason, tc.reason)
			}
			conn := tc.req.Connection
			if tc.code == ingest.CodeUnknownConnection {
				conn = "_unknown"
			}
			if got := counts.Value(metrics.Metric{Name: metrics.DeliveriesRejected, Connection: conn, Label: tc.reason}); got != 1 {
				t.Fatalf("rejection count for %s = %d; counters %+v", tc.reason, got, counts.Snapshot())
			}
			line := logs.String()
			if strings.Count(line, "\n") != 1 || !strings.Contains(line, `"reason":"`+tc.reason+`"`) {
				t.Fatalf("want one log line with the reason, got %q", line)
			}
			for _, secret := range []string{oldPass, newPass, "guess-guess", "Printer", authtest.Basic(user, oldPass)} {
				if strings.Contains(line, secret) {
					t.Fatalf("log line leaks %q: %s", secret, line)
				}
			}
		})
	}
}

func TestEnqueuedMessageCarriesTheChangeAndTheRawEvent(t *testing.T) {
	q := &recorder{}
	h := ingest.New(connection.MustCompileAll(testConfig()), q, metrics.Discard{}, slog.New(slog.DiscardHandler))
	resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST",
		Header: map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}, Body: []byte(ticketBody)})
	if resp.Status != 200 || len(q.msgs) != 1 {
		t.Fatalf("status %d, %d messages", resp.Status, len(q.msgs))
	}
	m := q.msgs[0]
	env, err := message.Decode(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	c := env.Change
	if c.Connection != "default" || c.Kind != change.Ticket || c.ID != "42" || c.DeliveryID != "d-1" || c.Source != change.SourceWebhook {
		t.Fatalf("change %+v", c)
	}
	if c.VersionFrom != "last_update" || c.Fields["summary"] != "Printer" {
		t.Fatalf("version from %q fields %v", c.VersionFrom, c.Fields)
	}
	var raw map[string]any
	if err := json.Unmarshal(env.Raw, &raw); err != nil || raw["event"] != "ticket updated" {
		t.Fatalf("raw event %s: %v", env.Raw, err)
	}
	// The fields travel once, in the raw event as it came.
	if n := strings.Count(string(m.Body), `"summary"`); n != 1 || env.FieldsInRaw != "ticket" || !bytes.Contains(m.Body, []byte(ticketBody)) {
		t.Fatalf("the fields travel %d times: %s", n, m.Body)
	}
	if m.Attributes["connection"] != "default" || m.Attributes["kind"] != "ticket" || m.Attributes["source"] != "webhook" {
		t.Fatalf("attributes %v", m.Attributes)
	}
}

// TestBacklogFullAsksToRetryLater: a queue refusing a send because its backlog is full
// makes a 503 that says when to send again; any other queue failure says nothing.
func TestBacklogFullAsksToRetryLater(t *testing.T) {
	good := map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}
	for _, tc := range []struct {
		err        error
		retryAfter string
	}{
		{fmt.Errorf("send: %w", message.ErrBacklogFull), "10"},
		{errors.New("disk I/O error"), ""},
	} {
		conns, err := connection.CompileAll(testConfig())
		if err != nil {
			t.Fatal(err)
		}
		h := ingest.New(conns, &recorder{err: tc.err}, metrics.NewMemory(), slog.New(slog.DiscardHandler))
		resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte(ticketBody)})
		if resp.Status != 503 || resp.Header["retry-after"] != tc.retryAfter {
			t.Errorf("%v: status %d, headers %v; want 503 with retry-after %q", tc.err, resp.Status, resp.Header, tc.retryAfter)
		}
	}
}

// A delivery whose changes the filters drop answers with their records, each naming its
// rule, so that a transport can list them with the worker's records.
func TestFilteredChangesAreAnsweredAsRecords(t *testing.T) {
	cfg := testConfig()
	cfg.Connections[0].Webhook.Filters.Clients.Deny = []string{"12"}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	q := &recorder{}
	h := ingest.New(conns, q, metrics.NewMemory(), slog.New(slog.DiscardHandler))
	resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST", Body: []byte(ticketBody),
		Header: map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}})
	if resp.Status != 200 || len(q.msgs) != 0 || len(resp.Filtered) != 1 {
		t.Fatalf("status %d, %d queued, filtered %+v; want 200, none queued, one record", resp.Status, len(q.msgs), resp.Filtered)
	}
	d := resp.Filtered[0]
	if d.Connection != "default" || d.DeliveryID != "d-1" || d.Kind != change.Ticket || d.ID != "42" || d.Event != "ticket updated" ||
		d.Outcome != change.Filtered || d.Reason == "" || d.Summary != "filtered: "+d.Reason || d.ReceivedAt.IsZero() {
		t.Errorf("record %+v, want ticket 42 of d-1 filtered with its rule", d)
	}
}

// TestEachChangeReadsItsOwnObjectFromTheRawEvent: a ticket event nesting its note makes two
// messages, each carrying the event once; each reads back its own object as its fields.
func TestEachChangeReadsItsOwnObjectFromTheRawEvent(t *testing.T) {
	q := &recorder{}
	h := ingest.New(connection.MustCompileAll(testConfig()), q, metrics.Discard{}, slog.New(slog.DiscardHandler))
	body := `{"id":"d-2","event":"ticket updated","object_id":42,"ticket":{"id":42,"summary":"Printer","last_update":"2026-09-25T06:41:07.523"},
		"action":{"id":7,"ticket_id":42,"note":"<p>Fixed \ufffe</p>","last_updated":"2026-09-25T06:41:07.600"}}`
	resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST",
		Header: map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}, Body: []byte(body)})
	if resp.Status != 200 || len(q.msgs) != 2 {
		t.Fatalf("status %d, %d messages", resp.Status, len(q.msgs))
	}
	want := map[change.Kind]string{change.Ticket: "Printer", change.Action: "<p>Fixed \ufffe</p>"}
	for _, m := range q.msgs {
		env, err := message.Decode(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		c := env.Change
		got := c.Fields["summary"]
		if c.Kind == change.Action {
			got = c.Fields["note"]
		}
		if got != want[c.Kind] || env.FieldsInRaw != string(c.Kind) || len(m.Body) > len(body)+512 {
			t.Fatalf("%s: fields %v from %q, %d bytes", c.Kind, c.Fields, env.FieldsInRaw, len(m.Body))
		}
	}
}
