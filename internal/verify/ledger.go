package verify

import (
	"sort"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// buckets is how many parts a window's tally is kept in: the window rolls a
// twenty-fourth at a time (an hour of the default day), and the document that keeps it
// stays small whatever the number of checks.
const buckets = 24

// Ledger is a connection's verdicts over a rolling window, kept between runs (the poller
// stores it with its state: in AWS each run is a fresh process). Verdicts are counted per
// kind in buckets of a twenty-fourth of the window; a bucket leaves the window whole.
type Ledger struct {
	Buckets []Bucket `json:"buckets,omitempty"`
}

// Bucket is the verdicts of one part of the window, from From on.
type Bucket struct {
	From  time.Time         `json:"from"`
	Kinds map[string]Counts `json:"kinds"`
}

// Counts is one kind's verdicts in a bucket: by cause (equal included), the differences
// sent for repair, and when the last one was checked.
type Counts struct {
	ByCause  map[Cause]int `json:"by_cause"`
	Repaired int           `json:"repaired,omitempty"`
	Last     time.Time     `json:"last"`
}

// Add counts one verdict of kind checked at at, and whether its difference was sent for
// repair.
func (l *Ledger) Add(kind change.Kind, at time.Time, window time.Duration, cause Cause, repaired bool) {
	span := bucketSpan(window)
	from := at.UTC().Truncate(span)
	var b *Bucket
	for i := range l.Buckets {
		if l.Buckets[i].From.Equal(from) {
			b = &l.Buckets[i]
		}
	}
	if b == nil {
		l.Buckets = append(l.Buckets, Bucket{From: from, Kinds: map[string]Counts{}})
		sort.Slice(l.Buckets, func(i, j int) bool { return l.Buckets[i].From.Before(l.Buckets[j].From) })
		l.Add(kind, at, window, cause, repaired)
		return
	}
	c := b.Kinds[string(kind)]
	if c.ByCause == nil {
		c.ByCause = map[Cause]int{}
	}
	c.ByCause[cause]++
	if repaired {
		c.Repaired++
	}
	if at.After(c.Last) {
		c.Last = at.UTC()
	}
	b.Kinds[string(kind)] = c
}

// Roll drops the buckets that ended before now less window.
func (l *Ledger) Roll(now time.Time, window time.Duration) {
	span := bucketSpan(window)
	keep := l.Buckets[:0]
	for _, b := range l.Buckets {
		if b.From.Add(span).After(now.Add(-window)) {
			keep = append(keep, b)
		}
	}
	l.Buckets = keep
}

// Report sums the buckets within the window ending at now: per kind and for the
// connection as a whole, the checks, the differences by cause, the repairs, and the share
// equal with its 95% Wilson interval.
func (l *Ledger) Report(now time.Time, window time.Duration) Report {
	r := Report{WindowHours: window.Hours(), Kinds: map[string]KindReport{}}
	span := bucketSpan(window)
	allReport := KindReport{}
	for _, b := range l.Buckets {
		if !b.From.Add(span).After(now.Add(-window)) {
			continue
		}
		for kind, c := range b.Kinds {
			k := r.Kinds[kind]
			add(&k, c)
			r.Kinds[kind] = k
			add(&allReport, c)
		}
	}
	for kind, k := range r.Kinds {
		r.Kinds[kind] = estimated(k)
	}
	r.All = estimated(allReport)
	return r
}

func add(k *KindReport, c Counts) {
	for cause, n := range c.ByCause {
		k.Checked += n
		if cause == Equal {
			k.Equal += n
			continue
		}
		if k.Differing == nil {
			k.Differing = map[string]int{}
		}
		k.Differing[string(cause)] += n
	}
	k.Repaired += c.Repaired
	if c.Last.After(k.LastCheckedAt) {
		k.LastCheckedAt = c.Last
	}
}

// estimated is k with its share equal and interval.
func estimated(k KindReport) KindReport {
	if k.Checked > 0 {
		k.Estimate = float64(k.Equal) / float64(k.Checked)
	}
	k.Low, k.High = Wilson(k.Equal, k.Checked)
	return k
}

// bucketSpan is the length of one bucket of window, at least a minute.
func bucketSpan(window time.Duration) time.Duration {
	return max(window/buckets, time.Minute)
}
