package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// BenchmarkProcess is the worker's own cost per change (decode, validate, count, log)
// over an in-memory store; the stores' costs are benchmarked in their packages.
func BenchmarkProcess(b *testing.B) {
	w := worker.New(storetest.NewMemory(), metrics.Discard{}, slog.New(slog.DiscardHandler), nil)
	fields := map[string]any{}
	for i := range 20 {
		fields[fmt.Sprint("field_", i)] = strings.Repeat("x", 40)
	}
	bodies := make([][]byte, 1000)
	for i := range bodies {
		bodies[i] = message(b, fmt.Sprint(i%100), int64(i+1), fields)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := w.Process(context.Background(), "m", bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
