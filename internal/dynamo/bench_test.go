package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// BenchmarkApply measures one change applied to DynamoDB Local (skipped without it):
// latency per change and DynamoDB requests per change. Local figures show the store's
// request pattern, not AWS latency.
func BenchmarkApply(b *testing.B) {
	ticketFields := func(v int) map[string]any {
		return map[string]any{"summary": fmt.Sprint("summary ", v), "status_id": json.Number("2"), "client_id": json.Number("12"),
			"agent_id": json.Number("7"), "last_update": "2026-05-01T12:00:00Z", "details": "Printer on fire"}
	}
	many := func(v int) map[string]any {
		f := map[string]any{}
		for i := range 300 {
			f[fmt.Sprintf("custom_field_%03d", i)] = fmt.Sprint(v)
		}
		return f
	}
	cases := []struct {
		name string
		next func(conn string, i int) change.Change
	}{
		{"update", func(conn string, i int) change.Change {
			return change.Change{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: int64(i + 1), Source: change.SourceWebhook, Fields: ticketFields(i)}
		}},
		{"new-object", func(conn string, i int) change.Change {
			return change.Change{Connection: conn, Kind: change.Ticket, ID: fmt.Sprint(i), Op: change.OpUpsert, Version: 1, Source: change.SourcePoll, Fields: ticketFields(i)}
		}},
		{"duplicate", func(conn string, i int) change.Change {
			return change.Change{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 1, Source: change.SourceWebhook, Fields: ticketFields(0)}
		}},
		{"event-only", func(conn string, i int) change.Change {
			return change.Change{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: int64(i + 1), Source: change.SourceWebhook}
		}},
		{"update-300-fields", func(conn string, i int) change.Change {
			return change.Change{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: int64(i + 1), Source: change.SourcePoll, Fields: many(i)}
		}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			client, name := testTable(b)
			api := &counting{API: client}
			s, conn := New(api, name), newConn()
			ctx := context.Background()
			if _, err := s.Apply(ctx, bc.next(conn, 0)); err != nil { // the object exists before timing
				b.Fatal(err)
			}
			api.gets.Store(0)
			api.updates.Store(0)
			i := 1
			for b.Loop() {
				if _, err := s.Apply(ctx, bc.next(conn, i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(api.gets.Load()+api.updates.Load())/float64(i-1), "requests/op")
		})
	}
}

// BenchmarkRecordDelivery measures the worker's second write per webhook change, a
// delivery record, against DynamoDB Local (skipped without it).
func BenchmarkRecordDelivery(b *testing.B) {
	client, name := testTable(b)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		d := change.Delivery{Connection: conn, DeliveryID: fmt.Sprint("d-", i), Kind: change.Ticket, ID: fmt.Sprint(i % 1000),
			Op: change.OpUpsert, Event: "ticket reassigned", Source: change.SourceWebhook, Outcome: change.Applied, Version: int64(i),
			Changed: map[string]change.FieldChange{
				"agent_id": {From: json.Number("7"), To: json.Number("11")}, "team_id": {From: json.Number("2"), To: json.Number("3")},
				"last_update": {From: "2025-01-02T10:11:12.123", To: "2025-01-02T10:12:12.123"},
			},
			Summary: "reassigned: agent_id 7 → 11, team_id 2 → 3", ReceivedAt: time.Now(), ProcessedAt: time.Now()}
		if err := s.RecordDelivery(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(api.puts.Load())/float64(i), "requests/op")
}
