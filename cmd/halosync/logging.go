package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/halosync/halosync/internal/change"
)

// newLogger logs to w at level (debug, info, warn, error) in format: text for people,
// json for machines, or auto: text when w is a terminal, else json.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w (debug, info, warn or error)", err)
	}
	f, ok := w.(*os.File)
	text, err := textFormat(format, ok && terminal(f))
	if err != nil {
		return nil, err
	}
	if text {
		return slog.New(&textHandler{w: w, level: lvl, mu: &sync.Mutex{}}), nil
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// textFormat says whether --log-format asks for text, given whether the log goes to a
// terminal.
func textFormat(format string, onTerminal bool) (bool, error) {
	switch format {
	case "text":
		return true, nil
	case "json":
		return false, nil
	case "auto", "":
		return onTerminal, nil
	}
	return false, fmt.Errorf("--log-format %q: text, json or auto (text on a terminal, else json)", format)
}

// terminal says whether f is a terminal: a character device other than the null device.
func terminal(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}

// textKeys are the fields the text format shows, in this order; the JSON format has all.
// Besides what names a change, a long read's progress: objects done of the total, the
// rate and the time left.
var textKeys = []string{"connection", "kind", "phase", "id", "event", "source", "outcome", "summary", "changes",
	"read", "enqueued", "done", "total", "per_second", "left", "reason", "status", "error"}

// quiet reports whether the text format leaves a record out below debug: the worker's
// line for each polled change, hundreds a second during a backfill, whose progress lines
// stand for them. A webhook's changes keep theirs; the JSON format keeps every line (an
// AWS dashboard counts them).
func quiet(msg string, fields map[string]string) bool {
	return msg == "change processed" && fields["source"] == string(change.SourcePoll)
}

// textHandler writes one short line a record: level, time, message, and the textKeys
// the record has with a value, as key=value.
type textHandler struct {
	w     io.Writer
	level slog.Level
	mu    *sync.Mutex
	attrs []slog.Attr
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup keeps the fields of a group under their own names: the text is for reading.
func (h *textHandler) WithGroup(string) slog.Handler { return h }

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	fields := map[string]string{}
	add := func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Resolve().String()
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if h.level > slog.LevelDebug && quiet(r.Message, fields) {
		return nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%-5s %s %s", r.Level, r.Time.Format("15:04:05"), r.Message)
	for _, k := range textKeys {
		v, ok := fields[k]
		if !ok || v == "" {
			continue
		}
		if strings.ContainsAny(v, " \"=\t\n") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b.Bytes())
	return err
}
