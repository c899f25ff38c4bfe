package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
)

// TestLogFormatChoice: auto is text on a terminal and JSON elsewhere; text and json are
// as asked; anything else is refused.
func TestLogFormatChoice(t *testing.T) {
	for _, c := range []struct {
		format   string
		terminal bool
		text     bool
	}{
		{"auto", true, true}, {"auto", false, false}, {"", true, true},
		{"text", false, true}, {"json", true, false},
	} {
		text, err := textFormat(c.format, c.terminal)
		if err != nil || text != c.text {
			t.Errorf("textFormat(%q, terminal %v) = %v, %v; want %v", c.format, c.terminal, text, err, c.text)
		}
	}
	if _, err := textFormat("yaml", true); err == nil || !strings.Contains(err.Error(), "text, json or auto") {
		t.Errorf("textFormat(yaml) = %v, want the choices", err)
	}

	var b bytes.Buffer // not a terminal: auto is JSON
	log, err := newLogger(&b, "auto", "debug")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("looked", "connection", "acme")
	var line map[string]any
	if err := json.Unmarshal(b.Bytes(), &line); err != nil || line["msg"] != "looked" || line["level"] != "DEBUG" {
		t.Errorf("auto off a terminal at debug: %q (%v), want a JSON debug line", b.String(), err)
	}
	b.Reset()
	if log, err = newLogger(&b, "text", "info"); err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown")
	if got := b.String(); strings.Contains(got, "hidden") || !strings.HasPrefix(got, "INFO ") || !strings.Contains(got, " shown\n") {
		t.Errorf("text at info: %q", got)
	}
	if _, err := newLogger(&b, "text", "loud"); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("--log-level loud: %v", err)
	}
}

// TestTextLogLine: level, time and message, then only the fields that matter, in order,
// quoted when they hold spaces.
func TestTextLogLine(t *testing.T) {
	var b bytes.Buffer
	log, err := newLogger(&b, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	h := log.With("connection", "acme").Handler()
	r := slog.NewRecord(time.Date(2025, 3, 4, 9, 8, 7, 0, time.UTC), slog.LevelWarn, "change failed", 0)
	r.AddAttrs(slog.String("delivery_id", "d-1"), slog.String("id", "4242"), slog.String("kind", "ticket"),
		slog.String("outcome", "retry"), slog.Any("error", errors.New("halo said 503")), slog.Int("version", 7))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	const want = "WARN  09:08:07 change failed connection=acme kind=ticket id=4242 outcome=retry error=\"halo said 503\"\n"
	if b.String() != want {
		t.Errorf("text line\n got %q\nwant %q", b.String(), want)
	}
}

// TestTextLeavesPolledChangesToDebug: on the text format at info, the worker's line for a
// polled change is left out (a backfill's progress lines stand for them) while a
// webhook's stays; at debug, and in JSON, every line is kept. A progress line shows the
// objects done of the total, the rate and the time left.
func TestTextLeavesPolledChangesToDebug(t *testing.T) {
	polled := []any{"connection", "acme", "kind", "ticket", "id", "1", "outcome", "applied", "source", "poll"}
	hooked := []any{"connection", "acme", "kind", "ticket", "id", "2", "outcome", "applied", "source", "webhook", "event", "ticket updated"}
	for _, c := range []struct {
		format, level string
		polled        bool
	}{
		{"text", "info", false}, {"text", "debug", true}, {"json", "info", true},
	} {
		var b bytes.Buffer
		log, err := newLogger(&b, c.format, c.level)
		if err != nil {
			t.Fatal(err)
		}
		log.Info("change processed", polled...)
		log.Info("change processed", hooked...)
		out := b.String()
		if got := strings.Contains(out, `"id":"1"`) || strings.Contains(out, " id=1 "); got != c.polled {
			t.Errorf("%s at %s: the polled change's line shown %v, want %v:\n%s", c.format, c.level, got, c.polled, out)
		}
		if !strings.Contains(out, `"id":"2"`) && !strings.Contains(out, " id=2 ") {
			t.Errorf("%s at %s: the webhook's change has no line:\n%s", c.format, c.level, out)
		}
	}

	var b bytes.Buffer
	log, err := newLogger(&b, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("backfill progress", "connection", "acme", "kind", "ticket", "pages", 12, "read", 1200, "elapsed", "10s",
		"done", 1200, "total", 4800, "per_second", 120.0, "left", "30s")
	if want := " backfill progress connection=acme kind=ticket read=1200 done=1200 total=4800 per_second=120 left=30s\n"; !strings.HasSuffix(b.String(), want) {
		t.Errorf("progress line %q, want it to end %q", b.String(), want)
	}
}

// TestServeLogLevels: serve's --log-level debug shows debug lines; the text format for
// people leaves out the polled changes' lines at info and shows the backfill's progress.
func TestServeLogLevels(t *testing.T) {
	debug := startServe(t, nil, "--data", t.TempDir(), "--demo", "--poll-every", "50ms", "--log-level", "debug", "--log-format", "json")
	debug.waitLog(t, `"level":"DEBUG"`, `"msg":"poll not due"`, `"connection":"default"`)
	debug.waitLog(t, `"msg":"change processed"`, `"source":"poll"`)

	// No simulated changes: only the backfill's, then one webhook's.
	text := startServe(t, nil, "--data", t.TempDir(), "--demo", "--demo-every", "1h", "--log-format", "text")
	text.waitLog(t, "INFO ", " backfill done connection=default kind=ticket", " done=", " total=")
	deadline := time.Now().Add(applyTimeout)
	for st := status(t, text); st.Queue.Visible+st.Queue.InFlight > 0 || st.count("ChangesApplied", "*") == 0; st = status(t, text) {
		if time.Now().After(deadline) {
			t.Fatalf("the backfill's changes are not applied: %+v", st)
		}
		time.Sleep(pollInterval)
	}
	mustPost(t, text.url, "default", authtest.Basic("halo", text.password), []byte(sampleTicket), http.StatusOK)
	text.waitLog(t, "INFO ", " change processed connection=default kind=ticket id=1 event=\"ticket updated\" source=webhook outcome=applied")
	for _, line := range strings.Split(text.stderr.String(), "\n") {
		if strings.Contains(line, "DEBUG") || strings.Contains(line, "source=poll") {
			t.Errorf("serve --log-format text at info logged %q", line)
		}
	}
}
