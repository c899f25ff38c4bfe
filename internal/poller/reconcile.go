package poller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/queue"
)

// StoredIDs lists every id the copy holds of a kind, page by page.
type StoredIDs interface {
	StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func(ids []change.StoredID) error) error
}

// maxDeleteShare is the largest share of a kind's stored objects one reconcile may
// delete: more looks like Halo answering wrongly (a permission or a filter ignored), not
// like deletes, and is refused and counted instead.
const maxDeleteShare = 0.5

// Reconcile compares Halo's id list of every kind with the ids the copy holds and leaves a
// tombstone for each object Halo no longer has: the deletes no webhook reported (Halo
// sends no delete event for some kinds, and hard deletes leave no trace in its lists).
// Notes are not reconciled: that would cost a listing per ticket.
//
// known holds, per kind, ids already enqueued as deleted in this run (Report.Deleted):
// the copy does not show them yet, and they are not deleted twice.
func (p *Poller) Reconcile(ctx context.Context, stored StoredIDs, known map[change.Kind]map[string]bool) (map[change.Kind]int, error) {
	deleted := map[change.Kind]int{}
	var errs []error
	for _, kind := range order {
		n, err := p.reconcileKind(ctx, stored, kind, known[kind])
		deleted[kind] = n
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", kind, err))
		}
	}
	return deleted, errors.Join(errs...)
}

func (p *Poller) reconcileKind(ctx context.Context, stored StoredIDs, kind change.Kind, known map[string]bool) (int, error) {
	inHalo := map[string]bool{}
	err := p.halo.List(ctx, kind, halo.ListQuery{IDOnly: true, IncludeInactive: true}, func(page []map[string]any) error {
		for _, o := range page {
			if id, err := change.CanonicalID(o["id"]); err == nil && id != "" {
				inHalo[id] = true
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	live := 0
	var gone []change.StoredID
	err = stored.StoredIDs(ctx, p.conn, kind, func(ids []change.StoredID) error {
		for _, s := range ids {
			if s.Deleted {
				continue
			}
			live++
			if !inHalo[s.ID] && !known[s.ID] {
				gone = append(gone, s)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list the copy: %w", err)
	}
	if len(gone) > 0 && float64(len(gone)) > maxDeleteShare*float64(live) {
		p.count.Count(metrics.Metric{Name: metrics.ReconcileRefused, Connection: p.conn, Label: string(kind)}, 1)
		p.log.ErrorContext(ctx, "reconcile refused: Halo lists too few objects to believe", "connection", p.conn, "kind", kind,
			"stored", live, "listed", len(inHalo), "missing", len(gone))
		return 0, nil
	}
	now := p.opts.Now()
	var msgs []queue.Message
	for _, s := range gone {
		obj, ok, err := p.copy.Get(ctx, p.conn, kind, s.ID, s.ParentID)
		if err != nil {
			return 0, fmt.Errorf("read the copy: %w", err)
		}
		version := change.VersionOf(now)
		if ok && obj.Version >= version {
			version = obj.Version + 1 // Halo's clock ahead of ours: the tombstone still wins
		}
		c := change.Change{Connection: p.conn, Kind: kind, ID: s.ID, ParentID: s.ParentID, Op: change.OpDelete,
			Version: version, VersionFrom: "reconcile", OccurredAt: now.UTC(), Source: change.SourcePoll}
		m, err := queue.Encode(queue.Envelope{Change: c, ReceivedAt: now.UTC()})
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, m)
		p.log.InfoContext(ctx, "reconcile: deleted in Halo", "connection", p.conn, "kind", kind, "id", s.ID)
	}
	if len(msgs) > 0 {
		if err := p.queue.Send(ctx, msgs); err != nil {
			return 0, fmt.Errorf("enqueue %d deletes: %w", len(msgs), err)
		}
		p.count.Count(metrics.Metric{Name: metrics.WebhookGap, Connection: p.conn, Label: string(kind)}, int64(len(msgs)))
	}
	return len(msgs), nil
}

// reconcileDue reports whether the daily reconcile is due.
func (pl Plan) reconcileDue(now time.Time, s State) bool {
	return !now.Before(s.LastReconcile.Add(pl.Reconcile))
}
