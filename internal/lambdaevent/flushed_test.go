package lambdaevent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/halosync/halosync/internal/lambdaevent"
	"github.com/halosync/halosync/internal/metrics"
)

// TestFlushedWritesTheInvocationsMetricsAtItsEnd: counts made during an invocation are
// written when it returns, with an error too, and not before.
func TestFlushedWritesTheInvocationsMetricsAtItsEnd(t *testing.T) {
	var buf bytes.Buffer
	emf := metrics.NewEMF(&buf, metrics.EMFOptions{Buffered: true})
	h := lambdaevent.Flushed(emf, func(_ context.Context, n int) (int, error) {
		emf.Count(metrics.Metric{Name: metrics.ChangesEnqueued, Connection: "c"}, int64(n))
		emf.Count(metrics.Metric{Name: metrics.ChangesEnqueued, Connection: "c"}, int64(n))
		if buf.Len() != 0 {
			t.Errorf("written during the invocation: %s", buf.String())
		}
		if n < 0 {
			return 0, errors.New("failed")
		}
		return n, nil
	})
	for _, n := range []int{2, -1} {
		buf.Reset()
		if _, err := h(t.Context(), n); (err != nil) != (n < 0) {
			t.Fatalf("invoke %d: %v", n, err)
		}
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line[metrics.ChangesEnqueued] != float64(2*n) {
			t.Fatalf("invoke %d: one line with the sum %d expected, got %q (%v)", n, 2*n, buf.String(), err)
		}
	}
}
