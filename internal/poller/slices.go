package poller

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
)

// scanSlice reads the next slice of a scanned kind (one Halo cannot list by change time:
// clients, contacts and assets by default) instead of the whole list: the pages due at the
// pace that reads every page once per Options.ScanEvery, at least one, so that a full
// scan completes once per ScanEvery while the webhooks and event-only fetches keep the
// kind current between slices. With a share, a slice takes at most half of what is left
// of it, keeping the rest for the changed tickets. The round's place is saved after every
// page; what shifts between pages while a round runs is found by the next round, and
// deletes by the reconcile.
func (p *Poller) scanSlice(ctx context.Context, kind change.Kind, cur Cursor, r *Report) error {
	now := p.opts.Now()
	cur.ScanPage = max(cur.ScanPage, 1)
	since := cur.SliceAt
	if since.IsZero() {
		since = cur.LastRun
	}
	pages := 1
	if cur.ScanPages > 0 && now.After(since) {
		due := float64(cur.ScanPages) * float64(now.Sub(since)) / float64(p.opts.ScanEvery)
		pages = max(1, int(math.Ceil(due)))
	}
	if p.opts.Share != nil {
		if pages = min(pages, p.opts.Share.Remaining()/2); pages < 1 {
			p.log.DebugContext(ctx, "scan slice put off: the poller's share is spent", "connection", p.conn, "kind", kind)
			return nil
		}
	}
	pr := p.progress(kind, "scan", false, cur.ScanPage)
	total := func(n int) {
		pr.setTotal(n)
		if n >= 0 {
			cur.ScanPages = max(1, (n+haloapi.DefaultPageSize-1)/haloapi.DefaultPageSize)
		}
	}
	q := haloapi.ListQuery{IncludeInactive: true, StartPage: cur.ScanPage, MaxPages: pages, Total: total}
	err := p.halo.List(ctx, kind, q, func(page []map[string]any) error {
		if _, err := p.consider(ctx, kind, page, pass{gap: true}, r); err != nil {
			return err
		}
		cur.ScanPage++
		pr.page(ctx, len(page))
		return nil
	})
	cur.SliceAt = now
	switch {
	case errors.Is(err, haloapi.ErrPageLimit):
		// The slice is read; the round goes on at the next poll.
	case err != nil:
		return err
	default:
		pr.end(ctx)
		p.log.InfoContext(ctx, "scan round done", "connection", p.conn, "kind", kind, "pages", cur.ScanPage-1,
			"round", now.Sub(cur.LastRun).Round(time.Second).String())
		cur.ScanPage, cur.LastRun = 0, now
	}
	return p.saveCursor(ctx, kind, cur)
}
