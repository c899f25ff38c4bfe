package poller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// StoredIDs lists every id the copy holds of a kind, page by page.
type StoredIDs interface {
	StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func(ids []change.StoredID) error) error
}

// maxDeleteShare is the largest share of a kind's stored objects one reconcile may
// delete: more looks like Halo answering wrongly (a permission or a filter ignored), not
// like deletes, and is refused and counted instead.
const maxDeleteShare = 0.5

// Reconcile compares Halo's id list of every kind with the ids the copy holds, both ways:
// an object Halo no longer has becomes a tombstone (the deletes no webhook reported: Halo
// sends no delete event for some kinds, and hard deletes leave no trace in its lists), and
// an object Halo has that the copy lacks is fetched (one a paged listing skipped while the
// list shifted under it). Each difference is confirmed by reading the object itself
// before anything is enqueued, because a paged id list read while Halo changes can both
// skip a live object and list one that the copy learnt of after the listing. Notes are not
// reconciled: that would cost a listing per ticket.
//
// known holds, per kind, ids the same run's poll already enqueued (Report.Queued): the copy
// does not show them yet, and they are neither fetched nor deleted twice.
func (p *Poller) Reconcile(ctx context.Context, stored StoredIDs, known map[change.Kind]map[string]bool) (map[change.Kind]int, error) {
	fixed := map[change.Kind]int{}
	var errs []error
	ctx = haloapi.WithBudget(ctx, p.opts.Share)
	for _, kind := range order {
		n, err := p.reconcileKind(ctx, stored, kind, known[kind])
		fixed[kind] = n
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile %s: %w", kind, err))
		}
	}
	return fixed, errors.Join(errs...)
}

func (p *Poller) reconcileKind(ctx context.Context, stored StoredIDs, kind change.Kind, known map[string]bool) (int, error) {
	// The copy first: an object the webhooks bring in while Halo's list is read is then
	// in neither set, rather than in the copy only.
	inCopy := map[string]change.StoredID{}
	live := 0
	err := stored.StoredIDs(ctx, p.conn, kind, func(ids []change.StoredID) error {
		for _, s := range ids {
			inCopy[s.ID] = s
			if !s.Deleted {
				live++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list the copy: %w", err)
	}
	inHalo := map[string]bool{}
	err = p.halo.List(ctx, kind, haloapi.ListQuery{IDOnly: true, IncludeInactive: true}, func(page []map[string]any) error {
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
	var gone, missing []string
	for id, s := range inCopy {
		if !s.Deleted && !inHalo[id] && !known[id] {
			gone = append(gone, id)
		}
	}
	for id := range inHalo {
		if _, ok := inCopy[id]; !ok && !known[id] {
			missing = append(missing, id)
		}
	}
	if len(gone) > 0 && float64(len(gone)) > maxDeleteShare*float64(live) {
		p.count.Count(metrics.Metric{Name: metrics.ReconcileRefused, Connection: p.conn, Kind: string(kind), Label: string(kind)}, 1)
		p.log.ErrorContext(ctx, "reconcile refused: Halo lists too few objects to believe", "connection", p.conn, "kind", kind,
			"stored", live, "listed", len(inHalo), "missing", len(gone))
		gone = nil
	}
	spec, _ := change.Lookup(kind)
	now := p.opts.Now()
	var msgs []message.Message
	repairs := 0 // of msgs: not a gap the webhooks left, a version they should not have brought
	for _, id := range append(gone, missing...) {
		obj, err := p.halo.Read(ctx, kind, id, inCopy[id].ParentID)
		var c change.Change
		switch {
		case errors.Is(err, haloapi.ErrNotFound):
			c = change.Change{Connection: p.conn, Kind: kind, ID: id, ParentID: inCopy[id].ParentID, Op: change.OpDelete,
				VersionFrom: "reconcile", OccurredAt: now.UTC(), Source: change.SourcePoll}
			c.Version = change.VersionOf(now)
			if o, ok, err := p.copy.Get(ctx, p.conn, kind, id, c.ParentID); err != nil {
				return 0, fmt.Errorf("read the copy: %w", err)
			} else if ok && o.Version >= c.Version {
				c.Version = o.Version + 1 // Halo's clock ahead of ours: the tombstone still wins
			}
			p.log.InfoContext(ctx, "reconcile: deleted in Halo", "connection", p.conn, "kind", kind, "id", id)
		case err != nil:
			return 0, fmt.Errorf("confirm %s %s: %w", kind, id, err)
		default:
			var cerr error
			if c, _, _, cerr = p.changeOf(ctx, spec, obj, now); cerr != nil {
				p.log.WarnContext(ctx, "reconcile: object skipped", "connection", p.conn, "kind", kind, "id", id, "error", cerr.Error())
				continue
			}
			if stored, ok, err := p.copy.Get(ctx, p.conn, kind, id, c.ParentID); err != nil {
				return 0, fmt.Errorf("read the copy: %w", err)
			} else if ok && stored.Version > c.Version {
				if !p.wanted(ctx, c) {
					continue
				}
				m, found, err := p.repair(ctx, kind, c, stored)
				if err != nil {
					return 0, err
				}
				if found {
					msgs, repairs = append(msgs, m), repairs+1
				}
				continue
			} else if ok && stored.Version == c.Version && !c.Deleted() {
				continue // listed by mistake, or already brought in: nothing to do
			}
			if !p.wanted(ctx, c) {
				continue
			}
			p.log.InfoContext(ctx, "reconcile: missing from the copy", "connection", p.conn, "kind", kind, "id", id)
		}
		m, err := message.Encode(message.Envelope{Change: p.opts.Fields.Apply(c), ReceivedAt: now.UTC()})
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		if err := p.queue.Send(ctx, msgs); err != nil {
			return 0, fmt.Errorf("enqueue %d changes: %w", len(msgs), err)
		}
		p.count.Count(metrics.Metric{Name: metrics.ChangesByKind, Connection: p.conn, Kind: string(kind)}, int64(len(msgs)))
		if gap := len(msgs) - repairs; gap > 0 {
			p.count.Count(metrics.Metric{Name: metrics.WebhookGap, Connection: p.conn, Kind: string(kind), Label: string(kind)}, int64(gap))
		}
	}
	return len(msgs), nil
}

// reconcileDue reports whether the daily reconcile is due.
func (pl Plan) reconcileDue(now time.Time, s State) bool {
	return !now.Before(s.LastReconcile.Add(pl.Reconcile))
}
