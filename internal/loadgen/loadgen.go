// Package loadgen drives halosync's webhook path with synthetic Halo ticket deliveries and
// measures what comes out: deliveries accepted per second, changes applied per second, and
// the time from sending a delivery to reading its change back (webhook to readable). The
// same core drives `halosync serve` (cmd/halosync-load, `make load`) and the Lambda
// functions under the runtime interface emulator (internal/lambdae2e's load benchmark);
// docs/PERFORMANCE.md records the figures.
package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Target is one deployment of halosync under load.
type Target interface {
	// Deliver sends one webhook delivery (a JSON body, Basic-authenticated as the target
	// is configured) and returns the status the endpoint answered.
	Deliver(ctx context.Context, body []byte) (status int, err error)
	// Version reads the stored version of ticket id; found is false when none is stored.
	Version(ctx context.Context, id string) (version int64, found bool, err error)
	// Processed is how many queued changes the worker has finished so far, whatever their
	// outcome.
	Processed(ctx context.Context) (int64, error)
}

// Delivery is one synthetic webhook delivery: a full-object "ticket updated" event.
type Delivery struct {
	ID      string // the delivery id (Halo's event id)
	Ticket  string
	Version int64 // the change's version: last_update in Unix nanoseconds
	Body    []byte
}

// Gen makes deliveries: each has its own id and a last_update one millisecond after the
// previous one's, spread over a pool of tickets, so every delivery is a newer version of
// its ticket and is applied (or found stale behind an even newer one).
type Gen struct {
	run     uint32
	tickets int
	base    time.Time
	seq     atomic.Int64
}

// NewGen returns a generator over tickets tickets; run tells apart the delivery ids of
// generators writing to the same store.
func NewGen(run uint32, tickets int) *Gen {
	return &Gen{run: run, tickets: max(1, tickets), base: time.Now().UTC().Truncate(time.Millisecond)}
}

// Next makes the next delivery; safe for concurrent use.
func (g *Gen) Next() Delivery {
	n := g.seq.Add(1)
	at := g.base.Add(time.Duration(n) * time.Millisecond)
	ticket := fmt.Sprint(int(n)%g.tickets + 1)
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", g.run, n)
	body := fmt.Sprintf(`{"id": %q, "event": "ticket updated", "object_id": %s, "timestamp": %q, `+
		`"ticket": {"id": %s, "summary": "Load test ticket %s", "details": "Change %d of a load run.", "status_id": %d, `+
		`"priority_id": 3, "tickettype_id": 1, "client_id": 12, "agent_id": 7, "team_id": 2, `+
		`"dateoccurred": "2026-09-25T06:30:00", "last_update": %q, "deleted": false}}`,
		id, ticket, at.Format("2006-01-02T15:04:05.0000000Z"), ticket, ticket, n, n%5+1, at.Format("2006-01-02T15:04:05.000"))
	return Delivery{ID: id, Ticket: ticket, Version: at.UnixNano(), Body: []byte(body)}
}

// Result is what one phase of load measured.
type Result struct {
	Name      string
	Window    time.Duration // how long deliveries were sent
	Sent      int64         // deliveries sent (answered or not)
	Accepted  int64         // answered 200
	Refused   int64         // answered 503 (the backlog is full, or the queue failed)
	Other     int64         // any other answer, or no answer
	Missed    int64         // fixed rate only: sends skipped because every sender was busy
	Processed int64         // changes the worker finished during the window
	Backlog   int64         // accepted but not yet processed when the window closed
	Drain     time.Duration // from the window's end until every accepted change was processed
	Drained   bool          // false: the drain timeout passed first
	Latency   Latencies
}

// AcceptedPerSec is the rate of 200 answers over the window.
func (r Result) AcceptedPerSec() float64 { return float64(r.Accepted) / r.Window.Seconds() }

// ProcessedPerSec is the rate at which the worker finished changes over the window.
func (r Result) ProcessedPerSec() float64 { return float64(r.Processed) / r.Window.Seconds() }

// minDrainBacklog is the smallest backlog whose drain rate means something: a few
// messages drain within the polling of the processed count.
const minDrainBacklog = 100

// DrainPerSec is the rate at which the backlog left at the window's end was processed;
// 0 when it was too small to tell, or not drained.
func (r Result) DrainPerSec() float64 {
	if !r.Drained || r.Drain <= 0 || r.Backlog < minDrainBacklog {
		return 0
	}
	return float64(r.Backlog) / r.Drain.Seconds()
}

// Latencies are the webhook-to-readable times of the sampled deliveries.
type Latencies struct {
	Samples    int
	P50, P99   time.Duration
	Max        time.Duration
	Unreadable int // sampled deliveries never read back before the drain ended
}

// Options tune a phase.
type Options struct {
	// SampleEvery samples one accepted delivery in this many for latency; 0: about 50
	// per second at a fixed rate, one in 20 at saturation.
	SampleEvery int
	// Drain bounds the wait for the backlog after the window (default 2 minutes).
	Drain time.Duration
	// RefusedPause is how long a saturating client waits after a 503 before sending
	// again (default 100 ms, as a sender honouring a short Retry-After would).
	RefusedPause time.Duration
}

func (o Options) drain() time.Duration {
	if o.Drain > 0 {
		return o.Drain
	}
	return 2 * time.Minute
}

// Rate sends deliveries at a fixed rate (per second) for window, open loop: a send is
// started on schedule whatever the previous ones are doing, by at most senders at once;
// a send due while all of them are busy is counted as missed.
func Rate(ctx context.Context, t Target, g *Gen, rate int, window time.Duration, senders int, o Options) (Result, error) {
	every := o.SampleEvery
	if every <= 0 {
		every = max(1, rate/50)
	}
	ph := newPhase(t, every)
	if err := ph.begin(ctx); err != nil {
		return Result{}, err
	}
	slots := make(chan struct{}, senders)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(rate))
		if due.Sub(start) >= window || ctx.Err() != nil {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		select {
		case slots <- struct{}{}:
		default:
			ph.missed.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			ph.send(ctx, g.Next())
		}()
	}
	wg.Wait()
	return ph.end(ctx, fmt.Sprintf("%d/s", rate), time.Since(start), o.drain())
}

// Saturate has clients senders each send one delivery after another for window, closed
// loop: as fast as the target answers.
func Saturate(ctx context.Context, t Target, g *Gen, clients int, window time.Duration, o Options) (Result, error) {
	every := o.SampleEvery
	if every <= 0 {
		every = 20
	}
	pause := o.RefusedPause
	if pause <= 0 {
		pause = 100 * time.Millisecond
	}
	ph := newPhase(t, every)
	if err := ph.begin(ctx); err != nil {
		return Result{}, err
	}
	stop := time.Now().Add(window)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				if status := ph.send(ctx, g.Next()); status == http.StatusServiceUnavailable {
					time.Sleep(pause)
				}
			}
		}()
	}
	wg.Wait()
	return ph.end(ctx, fmt.Sprintf("saturate, %d clients", clients), time.Since(start), o.drain())
}

// phase counts one phase's sends and samples their latency.
type phase struct {
	t                                      Target
	every                                  int64
	sent, accepted, refused, other, missed atomic.Int64
	processedAtStart                       int64

	mu      sync.Mutex
	pending []sample
	done    []time.Duration
	stop    chan struct{}
	watched sync.WaitGroup
}

type sample struct {
	ticket  string
	version int64
	sentAt  time.Time
}

// maxPending bounds the samples being watched; beyond it a sample is not taken (only at
// saturation, where the backlog's age dominates the latency anyway).
const maxPending = 400

func newPhase(t Target, every int) *phase {
	return &phase{t: t, every: int64(every), stop: make(chan struct{})}
}

func (p *phase) begin(ctx context.Context) error {
	n, err := p.t.Processed(ctx)
	if err != nil {
		return fmt.Errorf("loadgen: processed count: %w", err)
	}
	p.processedAtStart = n
	p.watched.Add(1)
	go p.watch(ctx)
	return nil
}

func (p *phase) send(ctx context.Context, d Delivery) int {
	sentAt := time.Now()
	p.sent.Add(1)
	status, err := p.t.Deliver(ctx, d.Body)
	switch {
	case err != nil:
		p.other.Add(1)
		return 0
	case status == http.StatusOK:
		if p.accepted.Add(1)%p.every == 0 {
			p.mu.Lock()
			if len(p.pending) < maxPending {
				p.pending = append(p.pending, sample{d.Ticket, d.Version, sentAt})
			}
			p.mu.Unlock()
		}
	case status == http.StatusServiceUnavailable:
		p.refused.Add(1)
	default:
		p.other.Add(1)
	}
	return status
}

// watch reads the sampled tickets back until each shows its version (or a newer one),
// about every 10 ms. The queue is about first in, first out, so each sweep reads the
// samples oldest first and stops after a few that are not readable yet: the reads stay
// few however large the backlog, and do not load the server they measure.
func (p *phase) watch(ctx context.Context) {
	defer p.watched.Done()
	const unreadPerSweep = 3
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p.mu.Lock()
		batch := slices.Clone(p.pending)
		p.mu.Unlock()
		readable := map[sample]bool{}
		unread := 0
		for _, s := range batch {
			v, ok, err := p.t.Version(ctx, s.ticket)
			if err != nil || !ok || v < s.version {
				if unread++; unread == unreadPerSweep {
					break
				}
				continue
			}
			readable[s] = true
			p.mu.Lock()
			p.done = append(p.done, time.Since(s.sentAt))
			p.mu.Unlock()
		}
		p.mu.Lock()
		p.pending = slices.DeleteFunc(p.pending, func(s sample) bool { return readable[s] })
		p.mu.Unlock()
	}
}

// end closes the window, waits for the backlog to be processed (bounded by drain) and
// for the samples to be read back, and computes the result.
func (p *phase) end(ctx context.Context, name string, window time.Duration, drain time.Duration) (Result, error) {
	r := Result{Name: name, Window: window, Sent: p.sent.Load(), Accepted: p.accepted.Load(), Refused: p.refused.Load(),
		Other: p.other.Load(), Missed: p.missed.Load()}
	n, err := p.t.Processed(ctx)
	if err != nil {
		return r, fmt.Errorf("loadgen: processed count: %w", err)
	}
	r.Processed = n - p.processedAtStart
	r.Backlog = max(0, r.Accepted-r.Processed)
	end := time.Now()
	deadline := end.Add(drain)
	for {
		n, err := p.t.Processed(ctx)
		if err != nil {
			return r, fmt.Errorf("loadgen: processed count: %w", err)
		}
		if n-p.processedAtStart >= r.Accepted {
			r.Drained, r.Drain = true, time.Since(end)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			r.Drain = time.Since(end)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The samples' last changes are processed; give the watcher a few sweeps to read them.
	for i := 0; i < 100; i++ {
		p.mu.Lock()
		left := len(p.pending)
		p.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(p.stop)
	p.watched.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	r.Latency = latencies(p.done)
	r.Latency.Unreadable = len(p.pending)
	return r, nil
}

func latencies(ds []time.Duration) Latencies {
	if len(ds) == 0 {
		return Latencies{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Latencies{Samples: len(s), P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}

// Header is the report's column heading for Row, with more columns after.
func Header(more ...string) string {
	cols := append([]string{"phase", "window", "accepted/s", "processed/s", "refused (503)", "other", "missed",
		"backlog at end", "drain", "drain/s", "p50", "p99", "samples"}, more...)
	return "| " + strings.Join(cols, " | ") + " |\n" + strings.Repeat("|---", len(cols)) + "|"
}

// Row is the result as a line of a Markdown table.
func (r Result) Row() string {
	drain := fmt.Sprintf("%.1f s", r.Drain.Seconds())
	if !r.Drained {
		drain = "not drained in " + drain
	}
	lat := func(d time.Duration) string {
		if r.Latency.Samples == 0 {
			return "-"
		}
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	samples := fmt.Sprint(r.Latency.Samples)
	if r.Latency.Unreadable > 0 {
		samples += fmt.Sprintf(" (%d unread)", r.Latency.Unreadable)
	}
	drainRate := "-"
	if d := r.DrainPerSec(); d > 0 {
		drainRate = fmt.Sprintf("%.0f", d)
	}
	return fmt.Sprintf("| %s | %.0f s | %.0f | %.0f | %d | %d | %d | %d | %s | %s | %s | %s | %s |",
		r.Name, r.Window.Seconds(), r.AcceptedPerSec(), r.ProcessedPerSec(), r.Refused, r.Other, r.Missed,
		r.Backlog, drain, drainRate, lat(r.Latency.P50), lat(r.Latency.P99), samples)
}
