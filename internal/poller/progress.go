package poller

import (
	"context"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
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
	what   string // "backfill" or "poll"
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
	if now := pr.p.opts.Now(); now.Sub(pr.last) >= pr.p.opts.ProgressEvery {
		pr.last = now
		pr.log(ctx, pr.what+" progress", now)
	}
}

// end logs the kind's end: always for a backfill, for a poll only when it was long.
func (pr *progress) end(ctx context.Context) {
	if pr.always || pr.logged {
		pr.log(ctx, pr.what+" done", pr.p.opts.Now())
	}
}

func (pr *progress) log(ctx context.Context, msg string, now time.Time) {
	pr.logged = true
	elapsed := now.Sub(pr.start)
	args := []any{"connection", pr.p.conn, "kind", pr.kind, "pages", pr.pages, "read", pr.read,
		"elapsed", elapsed.Round(time.Second).String()}
	if pr.total >= 0 {
		done := min(pr.before+pr.read, pr.total)
		args = append(args, "done", done, "total", pr.total)
		if secs := elapsed.Seconds(); secs > 0 {
			rate := float64(pr.read) / secs
			args = append(args, "per_second", float64(int(rate*10+0.5))/10)
			if rate > 0 {
				left := time.Duration(float64(pr.total-done) / rate * float64(time.Second))
				args = append(args, "left", left.Round(time.Second).String())
			}
		}
	}
	pr.p.log.InfoContext(ctx, msg, args...)
}
