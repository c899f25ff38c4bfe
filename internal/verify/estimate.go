package verify

import (
	"math"
	"sort"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// z95 is the standard normal quantile of a two-sided 95% interval.
const z95 = 1.959963984540054

// Wilson is the Wilson score interval at 95% for k successes in n trials:
//
//	p = k/n, d = 1 + z²/n
//	centre = (p + z²/2n) / d
//	half   = z/d · √(p(1−p)/n + z²/4n²)
//	[centre − half, centre + half]
//
// Unlike p ± z√(p(1−p)/n), it stays inside [0, 1] and does not collapse to a point at
// k = n: 100 equal in 100 checks gives a low bound of about 0.963, not 1, since a hundred
// checks cannot rule out a rare difference. With n = 0 nothing is known: [0, 1].
func Wilson(k, n int) (low, high float64) {
	if n <= 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z95 * z95
	d := 1 + z2/nf
	centre := (p + z2/(2*nf)) / d
	half := z95 / d * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	if k >= n {
		return math.Max(0, centre-half), 1 // exactly: the sum rounds a hair below 1
	}
	return math.Max(0, centre-half), math.Min(1, centre+half)
}

// Estimate is what a tally says: how many objects were checked, how many were equal, how
// many differed by each cause, and the share of the copy equal to Halo with its 95% Wilson
// interval [Low, High]. With nothing checked Share is 0 and the interval [0, 1].
type Estimate struct {
	Checked int
	Equal   int
	ByCause map[Cause]int // differences only; Equal is not among them
	Share   float64
	Low     float64
	High    float64
}

// Tally accumulates the verdicts of one connection and kind.
type Tally struct {
	checked int
	byCause map[Cause]int
}

// Add counts one verdict.
func (t *Tally) Add(v Verdict) {
	t.checked++
	if t.byCause == nil {
		t.byCause = map[Cause]int{}
	}
	t.byCause[v.Cause]++
}

// Estimate reports what the tally holds.
func (t *Tally) Estimate() Estimate {
	e := Estimate{Checked: t.checked, Equal: t.byCause[Equal], ByCause: map[Cause]int{}}
	for c, n := range t.byCause {
		if c != Equal {
			e.ByCause[c] = n
		}
	}
	if e.Checked > 0 {
		e.Share = float64(e.Equal) / float64(e.Checked)
	}
	e.Low, e.High = Wilson(e.Equal, e.Checked)
	return e
}

// Key names a tally: one connection's kind.
type Key struct {
	Connection string
	Kind       change.Kind
}

// Window tallies verdicts per connection and kind over [From, To): a verdict checked
// outside it is not counted, so one window's estimate is of one period's checks.
type Window struct {
	From, To time.Time
	tallies  map[Key]*Tally
}

// Add counts a verdict checked at at; it reports whether the window counted it.
func (w *Window) Add(k Key, at time.Time, v Verdict) bool {
	if at.Before(w.From) || !at.Before(w.To) {
		return false
	}
	if w.tallies == nil {
		w.tallies = map[Key]*Tally{}
	}
	t := w.tallies[k]
	if t == nil {
		t = &Tally{}
		w.tallies[k] = t
	}
	t.Add(v)
	return true
}

// KeyedEstimate is one connection's kind's estimate.
type KeyedEstimate struct {
	Key
	Estimate
}

// Estimates lists the window's estimates by connection, then kind.
func (w *Window) Estimates() []KeyedEstimate {
	out := make([]KeyedEstimate, 0, len(w.tallies))
	for k, t := range w.tallies {
		out = append(out, KeyedEstimate{Key: k, Estimate: t.Estimate()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Connection != out[j].Connection {
			return out[i].Connection < out[j].Connection
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}
