package ingest_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// A change marker far in the future is not queued as the version: it would pin the
// object, every later real update stale. The receipt time stands in, counted and logged.
func TestFutureVersionsAreClampedAtIngest(t *testing.T) {
	q := &recorder{}
	count := metrics.NewMemory()
	var logs bytes.Buffer
	h := ingest.New(connection.MustCompileAll(testConfig()), q, count, slog.New(slog.NewJSONHandler(&logs, nil)))
	send := func(body string) message.Envelope {
		t.Helper()
		q.msgs = nil
		resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST", Body: []byte(body),
			Header: map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}})
		if resp.Status != 200 || len(q.msgs) != 1 {
			t.Fatalf("status %d %s, %d messages", resp.Status, resp.Body, len(q.msgs))
		}
		env, err := message.Decode(q.msgs[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}

	before := time.Now()
	env := send(strings.Replace(ticketBody, `"last_update":"2026-09-25T06:41:07.523"`, `"last_update":"2261-01-01T00:00:00"`, 1))
	after := time.Now()
	c := env.Change
	if c.Version < change.VersionOf(before) || c.Version > change.VersionOf(after) || c.Version != change.VersionOf(env.ReceivedAt) {
		t.Fatalf("version %d is not the receipt time %v", c.Version, env.ReceivedAt)
	}
	if c.VersionFrom != change.VersionFromClamped {
		t.Fatalf("version_from %q, want %q", c.VersionFrom, change.VersionFromClamped)
	}
	if n := count.Value(metrics.Metric{Name: metrics.VersionsClamped, Connection: "default", Label: "ticket"}); n != 1 {
		t.Fatalf("VersionsClamped = %d, want 1", n)
	}
	for _, want := range []string{`"msg":"version too far ahead: clamped to the receipt time"`, `"connection":"default"`,
		`"kind":"ticket"`, `"id":"42"`, `"marker":"2261-01-01T00:00:00"`} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %s:\n%s", want, logs.String())
		}
	}

	// A marker in the past is believed; a missing one is counted, the timestamp standing in.
	if c := send(ticketBody).Change; c.VersionFrom != "last_update" {
		t.Fatalf("a past marker: version_from %q", c.VersionFrom)
	}
	c = send(strings.Replace(ticketBody, `,"last_update":"2026-09-25T06:41:07.523"`, ``, 1)).Change
	if c.VersionFrom != "timestamp" {
		t.Fatalf("no marker: version_from %q, want timestamp", c.VersionFrom)
	}
	if n := count.Value(metrics.Metric{Name: metrics.VersionsMissing, Connection: "default", Label: "ticket"}); n != 1 {
		t.Fatalf("VersionsMissing = %d, want 1", n)
	}
	if n := count.Value(metrics.Metric{Name: metrics.VersionsClamped, Connection: "default", Label: "ticket"}); n != 1 {
		t.Fatalf("VersionsClamped = %d after believable versions, want still 1", n)
	}
}
