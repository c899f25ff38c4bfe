package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// processBodies are 1,000 ticket messages of 20 fields over 100 tickets, rising versions.
func processBodies(b *testing.B) [][]byte {
	fields := map[string]any{}
	for i := range 20 {
		fields[fmt.Sprint("field_", i)] = strings.Repeat("x", 40)
	}
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = ticketMessage(b, fmt.Sprint(i%100), int64(i+1), fields)
	}
	return bodies
}

// BenchmarkProcess is the worker's own cost per change (decode, validate, count, log)
// over an in-memory store; the stores' costs are benchmarked in their packages.
func BenchmarkProcess(b *testing.B) {
	w := worker.New(storetest.NewMemory(), metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	bodies := processBodies(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := w.Process(context.Background(), "m", bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkProcessWithDeliveryRecord is BenchmarkProcess for webhook changes: each has a
// delivery id, so the worker also compares the fields with their previous values and
// writes a delivery record (two of the twenty fields change each time). The store starts
// afresh at each pass over the messages, so they apply (a tenth create, the rest update)
// rather than turn into duplicates.
func BenchmarkProcessWithDeliveryRecord(b *testing.B) {
	newWorker := func() *worker.Worker {
		return worker.New(storetest.NewMemory(), metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	}
	w := newWorker()
	bodies := make([][]byte, 1000)
	for i := range bodies {
		fields := map[string]any{}
		for f := range 18 {
			fields[fmt.Sprint("field_", f)] = strings.Repeat("x", 40)
		}
		fields["agent_id"], fields["team_id"] = i%7, i%3
		bodies[i] = webhook(b, change.Ticket, fmt.Sprint(i%100), fmt.Sprint("d-", i), "ticket updated", int64(i+1), fields)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i > 0 && i%len(bodies) == 0 {
			b.StopTimer()
			w = newWorker()
			b.StartTimer()
		}
		if _, err := w.Process(context.Background(), "m", bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkFloorProcess is the least work a change message needs, beside BenchmarkProcess
// with the same messages: one json.Unmarshal of the body into the envelope. It validates,
// stores, counts and logs nothing.
func BenchmarkFloorProcess(b *testing.B) {
	bodies := processBodies(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var env message.Envelope
		if err := json.Unmarshal(bodies[i%len(bodies)], &env); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
