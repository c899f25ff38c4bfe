package poller_test

import (
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
)

// Verification's cost in Halo requests: an hour of the run loop (a run a minute, as the
// poller function's schedule makes them) over a simulated tenant on a virtual clock, each
// run a new process as in AWS (a new client and a full budget: only the store remembers
// what the budget window spent). The poller's share is a third of Halo's 300 requests per
// five minutes: 100.

// shareLimit is the poller's share of the tenant's limit per five minutes by default.
const shareLimit = 100

// hourCost is what an hour of runs asked of Halo: verification's requests (positional
// reads, a page of one, and reads of one object), the rest (the poll's), and the most
// requests in any five minutes.
type hourCost struct {
	verify, other, maxWindow int
	checks                   int64 // objects compared
}

func (w *verifyWorld) hour(t testing.TB) hourCost {
	t.Helper()
	w.tenant.ResetRequests()
	before := w.checked()
	for range 60 {
		w.build(t)
		w.tick(t)
	}
	c := hourCost{checks: w.checked() - before}
	reqs := w.tenant.Requests()
	for i, r := range reqs {
		parts := strings.Split(strings.Trim(r.Path, "/"), "/")
		if r.Query.Get("page_size") == "1" || (len(parts) == 3 && parts[0] == "api") {
			c.verify++
		} else {
			c.other++
		}
		n := 0
		for _, e := range reqs[:i+1] {
			if e.Time.After(r.Time.Add(-5 * time.Minute)) {
				n++
			}
		}
		c.maxWindow = max(c.maxWindow, n)
	}
	return c
}

// checked is the objects verification compared so far.
func (w *verifyWorld) checked() int64 {
	var n int64
	for _, kind := range change.KindNames() {
		n += w.counts.Value(metrics.Metric{Name: metrics.VerifyChecked, Connection: verifyConn, Label: kind})
	}
	return n
}

func TestVerificationStaysInsideTheShareAcrossNewProcesses(t *testing.T) {
	for name, tt := range map[string]struct {
		section string
		slice   int // the most verification may spend in five minutes
	}{
		"what the poll leaves":  {"    poll: {mode: hybrid}\n", shareLimit},
		"a fifth of the share":  {"    poll: {mode: hybrid}\n    verify: {share: 0.2}\n", shareLimit / 5},
		"webhook mode, unused":  {"", shareLimit},
		"webhook mode, a tenth": {"    verify: {share: \"0.1\"}\n", shareLimit / 10},
	} {
		t.Run(name, func(t *testing.T) {
			w := newVerifyWorld(t, 4, tt.section)
			c := w.hour(t)
			if c.maxWindow > shareLimit {
				t.Errorf("%d requests in five minutes; the share is %d", c.maxWindow, shareLimit)
			}
			if c.verify == 0 || c.verify > tt.slice*12 {
				t.Errorf("verification spent %d requests in the hour; want some, at most %d", c.verify, tt.slice*12)
			}
			t.Logf("an hour: verification %d requests, the rest %d, at most %d in five minutes", c.verify, c.other, c.maxWindow)
		})
	}
}

// BenchmarkVerifyHour reports what verification spends per simulated hour in the
// default slice (what the poll leaves of its share) beside the slice: verify-req/hour,
// poll-req/hour, max-req/5min against the share (share-req/5min), and checks/hour.
func BenchmarkVerifyHour(b *testing.B) {
	w := newVerifyWorld(b, 20, "    poll: {mode: hybrid}\n")
	b.ResetTimer()
	var total hourCost
	for range b.N {
		c := w.hour(b)
		total.verify += c.verify
		total.other += c.other
		total.maxWindow = max(total.maxWindow, c.maxWindow)
		total.checks += c.checks
	}
	b.StopTimer()
	if total.maxWindow > shareLimit {
		b.Fatalf("%d requests in five minutes; the share is %d", total.maxWindow, shareLimit)
	}
	b.ReportMetric(float64(total.verify)/float64(b.N), "verify-req/hour")
	b.ReportMetric(float64(total.other)/float64(b.N), "poll-req/hour")
	b.ReportMetric(float64(total.maxWindow), "max-req/5min")
	b.ReportMetric(shareLimit, "share-req/5min")
	b.ReportMetric(float64(total.checks)/float64(b.N), "checks/hour")
}
