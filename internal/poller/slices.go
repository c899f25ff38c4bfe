package poller

import (
	"context"
	"errors"
	"fmt"
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

// modeOf is how a kind's changes are found. A kind in Auto mode is asked once, before its
// first sync, for what changed after a time to come (lastupdatefromdate a day ahead,
// one object): a tenant that filters answers none, one that ignores the parameter lists
// its objects. The answer is kept in the cursor until the next full sync. Whether Halo
// filters clients, users and assets this way is unconfirmed (docs/HALO.md); a tenant
// holding none of the kind is read by scan.
func (p *Poller) modeOf(ctx context.Context, kind change.Kind, cur *Cursor) (Mode, error) {
	mode := p.mode(kind)
	if mode != Auto {
		return mode, nil
	}
	if cur.Filtered == "" {
		if ep, _ := haloapi.EndpointOf(kind); !ep.UpdatedFilter {
			cur.Filtered = "no"
		} else {
			count := -1
			q := haloapi.ListQuery{IncludeInactive: true, UpdatedFrom: p.opts.Now().Add(24 * time.Hour), PageSize: 1, MaxPages: 1,
				Total: func(n int) { count = n }}
			err := p.halo.List(ctx, kind, q, func([]map[string]any) error { return nil })
			if err != nil && !errors.Is(err, haloapi.ErrPageLimit) {
				return Scan, fmt.Errorf("probe the last-update filter: %w", err)
			}
			cur.Filtered = "no"
			if count == 0 && p.anyListed(ctx, kind) {
				cur.Filtered = "yes"
			}
			p.log.InfoContext(ctx, "last-update filter", "connection", p.conn, "kind", kind, "honoured", cur.Filtered)
		}
		if err := p.saveCursor(ctx, kind, *cur); err != nil {
			return Scan, err
		}
	}
	if cur.Filtered == "yes" {
		return Incremental, nil
	}
	return Scan, nil
}

// anyListed reports whether Halo lists at least one object of kind.
func (p *Poller) anyListed(ctx context.Context, kind change.Kind) bool {
	count := -1
	_ = p.halo.List(ctx, kind, haloapi.ListQuery{IncludeInactive: true, PageSize: 1, MaxPages: 1, Total: func(n int) { count = n }},
		func([]map[string]any) error { return nil })
	return count > 0
}
