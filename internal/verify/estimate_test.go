package verify

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

func TestWilson(t *testing.T) {
	tests := []struct {
		k, n      int
		low, high float64
	}{
		{100, 100, 0.9630, 1},
		{95, 100, 0.8883, 0.9785},
		{0, 10, 0, 0.2775},
		{10, 10, 0.7225, 1},
		{5, 10, 0.2366, 0.7634},
		{1000, 1000, 0.9962, 1},
		{0, 0, 0, 1},
	}
	for _, tt := range tests {
		low, high := Wilson(tt.k, tt.n)
		if math.Abs(low-tt.low) > 5e-4 || math.Abs(high-tt.high) > 5e-4 {
			t.Errorf("Wilson(%d, %d) = [%.4f, %.4f], want [%.4f, %.4f]", tt.k, tt.n, low, high, tt.low, tt.high)
		}
		if tt.n > 0 && tt.k == tt.n && low >= 1 {
			t.Errorf("Wilson(%d, %d): no differences still leaves the low bound below 1, got %v", tt.k, tt.n, low)
		}
	}
}

func TestTallyEstimate(t *testing.T) {
	var tl Tally
	for i := 0; i < 95; i++ {
		tl.Add(Verdict{Cause: Equal})
	}
	for _, c := range []Cause{Stale, Stale, Missing, Fields, Ahead} {
		tl.Add(Verdict{Cause: c})
	}
	e := tl.Estimate()
	if e.Checked != 100 || e.Equal != 95 || e.Share != 0.95 {
		t.Errorf("checked %d, equal %d, share %v; want 100, 95, 0.95", e.Checked, e.Equal, e.Share)
	}
	if want := map[Cause]int{Stale: 2, Missing: 1, Fields: 1, Ahead: 1}; !reflect.DeepEqual(e.ByCause, want) {
		t.Errorf("by cause %v, want %v", e.ByCause, want)
	}
	if math.Abs(e.Low-0.8883) > 5e-4 || math.Abs(e.High-0.9785) > 5e-4 {
		t.Errorf("interval [%v, %v], want [0.888, 0.978]", e.Low, e.High)
	}
	var empty Tally
	if e := empty.Estimate(); e.Checked != 0 || e.Share != 0 || e.Low != 0 || e.High != 1 {
		t.Errorf("empty tally: %+v", e)
	}
}

func TestWindow(t *testing.T) {
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	w := Window{From: from, To: from.Add(24 * time.Hour)}
	acmeTickets := Key{Connection: "acme", Kind: change.Ticket}
	acmeClients := Key{Connection: "acme", Kind: change.Client}
	beta := Key{Connection: "beta", Kind: change.Asset}
	for _, in := range []struct {
		k       Key
		at      time.Time
		v       Cause
		counted bool
	}{
		{acmeTickets, from, Equal, true},
		{acmeTickets, from.Add(time.Hour), Stale, true},
		{acmeClients, from.Add(2 * time.Hour), Equal, true},
		{beta, from.Add(23 * time.Hour), Extra, true},
		{acmeTickets, from.Add(-time.Second), Equal, false},
		{acmeTickets, from.Add(24 * time.Hour), Equal, false},
	} {
		if got := w.Add(in.k, in.at, Verdict{Cause: in.v}); got != in.counted {
			t.Errorf("%v at %v: counted %v, want %v", in.k, in.at, got, in.counted)
		}
	}
	got := w.Estimates()
	var keys []Key
	for _, e := range got {
		keys = append(keys, e.Key)
	}
	if want := []Key{acmeClients, acmeTickets, beta}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
	if e := got[1].Estimate; e.Checked != 2 || e.Equal != 1 || e.ByCause[Stale] != 1 {
		t.Errorf("acme tickets: %+v", e)
	}
}
