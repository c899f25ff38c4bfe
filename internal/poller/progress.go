package poller

import (
	"context"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/metrics"
)

// DefaultProgressEvery is how often a long read logs its progress.
const DefaultProgressEvery = 5 * time.Second

// progress reports a long read of one kind at a readable cadence: pages done and objects
// read and, when Halo's answers carry record_count, done/total, the rate and the time
// left; logged at info at most every Options.ProgressEvery. A backfill also logs its end;
// a poll logs its end only when it logged progress before, so a quick poll stays quiet.
type progress struct {
	p      *Poller
	kind   change.Kind
	what   string // "backfill", "poll" or "scan"
	phase  string // the backfill's phase: "open tickets", "closed tickets", "notes"
	always bool   // log the end even when the read was quick
	start  time.Time
	last   time.Time
	pages  int
	read   int // objects read by this run
	before int // objects read before a resumed backfill's first page (estimated)
	total  int // the latest record_count; -1 when Halo gave none
	logged bool
}

func (p *Poller) progress(kind change.Kind, what string, always bool, fromPage int) *progress {
	now := p.opts.Now()
	pr := &progress{p: p, kind: kind, what: what, always: always, start: now, last: now, total: -1}
	if fromPage > 1 {
		pr.before = (fromPage - 1) * haloapi.DefaultPageSize
	}
	return pr
}

// setTotal is a ListQuery's Total.
func (pr *progress) setTotal(n int) { pr.total = n }

// page counts one page of n objects and logs when the last report is old enough.
func (pr *progress) page(ctx context.Context, n int) {
	pr.pages++
	pr.read += n
	now := pr.p.opts.Now()
	pr.report(now, false)
	if now.Sub(pr.last) >= pr.p.opts.ProgressEvery {
		pr.last = now
		pr.log(ctx, pr.what+" progress", now)
	}
}

// end logs the kind's end: always for a backfill, for a poll only when it was long.
func (pr *progress) end(ctx context.Context) {
	pr.report(pr.p.opts.Now(), true)
	pr.gauge(pr.p.opts.Now())
	if pr.always || pr.logged {
		pr.log(ctx, pr.what+" done", pr.p.opts.Now())
	}
}

// Progress is where a long read of one kind stands, the figures its log lines carry.
type Progress struct {
	Connection string
	Kind       change.Kind
	What       string // "backfill", "poll" or "scan" (a slice of a scanned kind)
	// Phase is a ticket backfill's phase: "open tickets", "closed tickets", then "notes"
	// (Kind action) when notes are listed across tickets.
	Phase string
	Pages int
	Read  int // objects read by this run
	// Done and Total are objects read of Halo's record_count; Total is -1 when Halo gave
	// none, and then Done, PerSecond and Left are unknown (0).
	Done      int
	Total     int
	PerSecond float64       // objects read per second by this run, to 0.1
	Left      time.Duration // the time left at that rate, to the second; 0 when unknown
	Elapsed   time.Duration
	Finished  bool
	At        time.Time
}

// ProgressReporter is told where each long read stands after every page and at its
// end (Options.Progress): what a status page shows of a backfill.
type ProgressReporter interface {
	Progress(p Progress)
}

// figures are the read's numbers at now.
func (pr *progress) figures(now time.Time, finished bool) Progress {
	f := Progress{Connection: pr.p.conn, Kind: pr.kind, What: pr.what, Phase: pr.phase, Pages: pr.pages, Read: pr.read, Total: pr.total,
		Elapsed: now.Sub(pr.start), Finished: finished, At: now}
	if pr.total >= 0 {
		f.Done = min(pr.before+pr.read, pr.total)
		if secs := f.Elapsed.Seconds(); secs > 0 {
			rate := float64(pr.read) / secs
			f.PerSecond = float64(int(rate*10+0.5)) / 10
			if rate > 0 {
				f.Left = time.Duration(float64(pr.total-f.Done) / rate * float64(time.Second)).Round(time.Second)
			}
		}
	}
	return f
}

// report tells Options.Progress, when set, where the read stands.
func (pr *progress) report(now time.Time, finished bool) {
	if pr.p.opts.Progress != nil {
		pr.p.opts.Progress.Progress(pr.figures(now, finished))
	}
}

// gauge counts what a backfill has left (BackfillLeft), at the pace of its log lines.
func (pr *progress) gauge(now time.Time) {
	if pr.what != "backfill" || pr.total < 0 {
		return
	}
	f := pr.figures(now, false)
	pr.p.count.Count(metrics.Metric{Name: metrics.BackfillLeft, Connection: pr.p.conn, Kind: string(pr.kind), Label: string(pr.kind)},
		int64(f.Total-f.Done))
}

func (pr *progress) log(ctx context.Context, msg string, now time.Time) {
	pr.logged = true
	pr.gauge(now)
	f := pr.figures(now, false)
	args := []any{"connection", pr.p.conn, "kind", pr.kind, "pages", pr.pages, "read", pr.read,
		"elapsed", f.Elapsed.Round(time.Second).String()}
	if pr.phase != "" {
		args = append(args, "phase", pr.phase)
	}
	if pr.total >= 0 {
		args = append(args, "done", f.Done, "total", pr.total)
		if f.Elapsed > 0 {
			args = append(args, "per_second", f.PerSecond)
			if pr.read > 0 {
				args = append(args, "left", f.Left.String())
			}
		}
	}
	pr.p.log.InfoContext(ctx, msg, args...)
}
