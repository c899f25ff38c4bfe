package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
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
