package ingest_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

func TestStoredFieldsNeverReachTheQueue(t *testing.T) {
	cfg := testConfig()
	cfg.Connections[0].StoredFields = map[string]config.FieldList{"ticket": {Exclude: []string{"details_html"}}}
	q := &recorder{}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := ingest.New(conns, q, metrics.Discard{}, slog.New(slog.DiscardHandler))
	body := strings.Replace(ticketBody, `"summary":"Printer"`, `"summary":"Printer","details_html":"<p>home address</p>"`, 1)
	resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST", Body: []byte(body),
		Header: map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}})
	if resp.Status != 200 || len(q.msgs) != 1 {
		t.Fatalf("status %d, %d messages", resp.Status, len(q.msgs))
	}
	if strings.Contains(string(q.msgs[0].Body), "home address") {
		t.Fatalf("an excluded field reached the queue: %s", q.msgs[0].Body)
	}
	env, err := message.Decode(q.msgs[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if !env.RawOmitted || env.Change.Fields["summary"] != "Printer" {
		t.Fatalf("raw omitted %v, fields %v", env.RawOmitted, env.Change.Fields)
	}
}

func TestConfiguredEventNames(t *testing.T) {
	cfg := testConfig()
	cfg.Connections[0].Events = map[string]config.EventMapping{"Invoice Paid": {Kind: "client", Op: "upsert"}}
	q := &recorder{}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := ingest.New(conns, q, metrics.Discard{}, slog.New(slog.DiscardHandler))
	resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST",
		Body:   []byte(`{"id":"d","event":"invoice paid","object_id":12,"timestamp":"2026-01-01T00:00:00Z"}`),
		Header: map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}})
	if resp.Status != 200 || len(q.msgs) != 1 {
		t.Fatalf("status %d %s, %d messages", resp.Status, resp.Body, len(q.msgs))
	}
	env, _ := message.Decode(q.msgs[0].Body)
	if env.Change.Kind != change.Client || env.Change.ID != "12" {
		t.Fatalf("change %+v", env.Change)
	}
}
