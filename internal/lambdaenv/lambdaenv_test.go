package lambdaenv

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/metrics"
)

func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"QUEUE_URL", "TABLE_NAME", "EVENT_BUS_NAME", "HALOSYNC_CONFIG_PARAMETER", "HALOSYNC_CONFIG_FILE", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"} {
		t.Setenv(k, "")
	}
}

func TestRead(t *testing.T) {
	clearEnv(t)
	t.Setenv("QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/halosync")
	t.Setenv("TABLE_NAME", "halosync")
	t.Setenv("HALOSYNC_CONFIG_PARAMETER", "/halosync/config")
	t.Setenv("HALOSYNC_CONFIG_FILE", "/etc/halosync.yaml")
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
	want := Env{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/halosync", TableName: "halosync",
		ConfigParameter: "/halosync/config", ConfigFile: "/etc/halosync.yaml", LogLevel: "DEBUG", FilterLevel: "DEBUG"}
	if got := Read(); got != want {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}
	t.Setenv("LOG_LEVEL", "warn") // LOG_LEVEL wins over Lambda's
	if got := Read(); got.LogLevel != "warn" || got.FilterLevel != "DEBUG" {
		t.Fatalf("LogLevel, FilterLevel = %q, %q, want warn, DEBUG", got.LogLevel, got.FilterLevel)
	}
}

// TestMetricsPassTheLogFilter: metric lines wait for the invocation's end and carry a
// level that Lambda's application log level keeps.
func TestMetricsPassTheLogFilter(t *testing.T) {
	tests := []struct {
		env  Env
		want string
	}{
		{Env{}, "INFO"},
		{Env{LogLevel: "debug", FilterLevel: "DEBUG"}, "INFO"},
		{Env{LogLevel: "WARN", FilterLevel: "WARN"}, "WARN"},
		{Env{LogLevel: "debug", FilterLevel: "ERROR"}, "ERROR"},
		{Env{LogLevel: "error"}, "ERROR"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		m := tt.env.Metrics(&buf)
		m.Count(metrics.Metric{Name: metrics.ChangesEnqueued, Connection: "c"}, 1)
		if buf.Len() != 0 {
			t.Fatalf("%+v: written before the flush: %s", tt.env, buf.String())
		}
		m.Flush()
		var line struct {
			Level string `json:"level"`
		}
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line.Level != tt.want {
			t.Errorf("%+v: level %q (%v), want %q: %s", tt.env, line.Level, err, tt.want, buf.String())
		}
	}
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name    string
		env     Env
		names   []string
		missing []string
	}{
		{"all set", Env{QueueURL: "q", TableName: "t"}, []string{"QUEUE_URL", "TABLE_NAME"}, nil},
		{"nothing required", Env{}, nil, nil},
		{"both missing", Env{}, []string{"TABLE_NAME", "QUEUE_URL"}, []string{"TABLE_NAME", "QUEUE_URL"}},
		{"table missing", Env{QueueURL: "q"}, []string{"QUEUE_URL", "TABLE_NAME"}, []string{"TABLE_NAME"}},
		{"queue missing", Env{TableName: "t"}, []string{"QUEUE_URL"}, []string{"QUEUE_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.env.Require(tt.names...)
			if tt.missing == nil {
				if err != nil {
					t.Fatalf("Require = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Require = nil")
			}
			for _, n := range tt.missing {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
			for _, n := range tt.names {
				if !contains(tt.missing, n) && strings.Contains(err.Error(), n) {
					t.Errorf("error %q names %s, which is set", err, n)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestLoggerLevel(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		level string
		debug bool
		info  bool
	}{
		{"", false, true},
		{"debug", true, true},
		{"DEBUG", true, true},
		{"warn", false, false},
		{"nonsense", false, true},
	}
	for _, tt := range tests {
		l := Env{LogLevel: tt.level}.Logger()
		if got := l.Enabled(ctx, slog.LevelDebug); got != tt.debug {
			t.Errorf("level %q: debug enabled %v, want %v", tt.level, got, tt.debug)
		}
		if got := l.Enabled(ctx, slog.LevelInfo); got != tt.info {
			t.Errorf("level %q: info enabled %v, want %v", tt.level, got, tt.info)
		}
	}
}

// oneRegion clears the functions' variables and sets the region.
func oneRegion(t *testing.T) {
	t.Helper()
	clearEnv(t)
	t.Setenv("AWS_REGION", "eu-west-1")
}

// TestReaderNeedsTheTableOnly: the read function starts with TABLE_NAME alone (no queue, no
// configuration), with the settle window READ_SETTLE gives or ReadSettle.
func TestReaderNeedsTheTableOnly(t *testing.T) {
	oneRegion(t)
	log := slog.New(slog.DiscardHandler)
	if _, err := (Env{}).build(Reader, log); err == nil || !strings.Contains(err.Error(), "TABLE_NAME") {
		t.Fatalf("reader without a table: %v, want an error naming TABLE_NAME", err)
	}
	f, err := Env{TableName: "halosync"}.build(Reader, log)
	if err != nil || f.Settle != ReadSettle || f.AWS.Region != "eu-west-1" {
		t.Fatalf("reader: %+v, %v; want settle %v, the region", f, err, ReadSettle)
	}
	if f, err := (Env{TableName: "halosync", ReadSettle: "250ms"}).build(Reader, log); err != nil || f.Settle != 250*time.Millisecond {
		t.Fatalf("READ_SETTLE=250ms: %+v, %v", f, err)
	}
	for _, bad := range []string{"5", "-1s", "soon"} {
		if _, err := (Env{TableName: "halosync", ReadSettle: bad}).build(Reader, log); err == nil || !strings.Contains(err.Error(), "READ_SETTLE") {
			t.Errorf("READ_SETTLE=%s: %v, want an error naming it", bad, err)
		}
	}
}

// TestThePublisherNeedsItsBusOnly: the publisher starts with EVENT_BUS_NAME and nothing
// else (no queue, table or configuration), and not without it.
func TestThePublisherNeedsItsBusOnly(t *testing.T) {
	oneRegion(t)
	log := slog.New(slog.DiscardHandler)
	if _, err := (Env{}).build(Publisher, log); err == nil || !strings.Contains(err.Error(), "EVENT_BUS_NAME") {
		t.Fatalf("publisher without a bus: %v, want an error naming EVENT_BUS_NAME", err)
	}
	t.Setenv("EVENT_BUS_NAME", "halosync-changes")
	f, err := Read().build(Publisher, log)
	if err != nil || f.AWS.Region != "eu-west-1" {
		t.Fatalf("publisher: %+v, %v; want the region", f, err)
	}
}
