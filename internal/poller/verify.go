package poller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/verify"
)

// Written lists what the copy wrote of a kind, in write order (the store's by-change
// listing): verification draws the recently changed objects from it. The poller's Copy
// provides it where the store does (every store adapter); without it, only Halo's
// listings are drawn from.
type Written interface {
	Changed(ctx context.Context, conn string, kind change.Kind, after string, limit int) ([]change.Object, error)
}

// maxRecent caps how many of a kind's objects the copy wrote one pass lists to draw its
// recent sample from: one store query per kind, whatever the copy's size. A sampled pass
// lists from a point in the window the seed chooses, so that successive passes cover the
// whole window of a busy copy, the newest writes most often.
const maxRecent = 200

// verifiedKinds are the kinds verification reads: every stored kind. Notes have no
// listing of their own in every tenant, so they are drawn from the copy only.
var verifiedKinds = []change.Kind{change.Ticket, change.Client, change.Contact, change.Asset, change.Action}

// VerifyRun is what one verification pass does.
type VerifyRun struct {
	// Budget is the most Halo requests the pass spends, and the objects it plans to read.
	Budget int
	// All reads every object Halo lists of each kind instead, a full page per request,
	// and the copy's changes within the window, up to 200 per kind (the on-demand
	// command).
	All bool
	// Wait has the pass wait on the poller's share when it is spent and read what it
	// planned (the on-demand command), instead of stopping.
	Wait bool
	// Kinds limits the pass to these kinds (none: every kind).
	Kinds []change.Kind
	// Repair enqueues a change for every difference found (else it is only reported).
	Repair bool
	// Seed chooses the sample (verify.PlanSample).
	Seed uint64
	// Window is how far back the copy's writes count as recent changes.
	Window time.Duration
	// Populations are Halo's counts of the listed strata as last read; the pass updates
	// them as it reads.
	Populations map[string]int
	// InFlight holds, per kind, ids the same run enqueued (Report.Queued): the copy does
	// not show them yet, and they are not judged.
	InFlight map[change.Kind]map[string]bool
	// Found, when set, is told every verdict, equal ones included; Progress how many of
	// the planned reads are done.
	Found    func(Finding)
	Progress func(done, planned int)

	// queued holds the objects the pass already repairs: one drawn twice (open tickets
	// are listed with every ticket, a recent change may be listed too) is repaired once.
	queued map[string]bool
}

// Finding is one object's verdict, and whether its difference was sent for repair.
type Finding struct {
	Kind     change.Kind
	ID       string
	ParentID string
	Verdict  verify.Verdict
	At       time.Time
	Repaired bool
}

// VerifyResult is what a pass found.
type VerifyResult struct {
	Findings []Finding
	// Requests is the Halo requests the pass spent (of the poller's share, when set).
	Requests int
	// Planned is how many objects the plan read.
	Planned int
}

// errEnough stops a positional listing after its one page.
var errEnough = errors.New("page read")

// verifyMargin is the time a sampled pass leaves before its context's deadline: a run's
// time is shared among connections, and the pass's state must still be saved after it.
const verifyMargin = 3 * time.Second

// outOfTime reports whether ctx's deadline is nearer than verifyMargin.
func outOfTime(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < verifyMargin
}

// Verify checks a sample of the copy against Halo (docs/ARCHITECTURE.md, "Verification"):
// it plans the reads by verify.PlanSample over strata drawn from Halo's listings (open
// tickets, every object of a kind, read by position a page of one at a time) and from
// the copy's recent writes (read from Halo by id), judges each object with
// verify.Compare under the connection's stored-field rules and version rule, and for each
// difference, with run.Repair, enqueues the change Halo's object calls for, its reason in
// the delivery record (event "verify: <cause>"). It stops before it would wait on the
// poller's share or come within verifyMargin of ctx's deadline (unless run.Wait), and
// never spends more than run.Budget requests.
func (p *Poller) Verify(ctx context.Context, run VerifyRun) (VerifyResult, error) {
	var res VerifyResult
	ctx = haloapi.WithBudget(ctx, p.opts.Share)
	spentBefore := p.requests()
	now := p.opts.Now()
	if run.Populations == nil {
		run.Populations = map[string]int{}
	}
	run.queued = map[string]bool{}
	kinds := verifiedKinds
	if len(run.Kinds) > 0 {
		kinds = run.Kinds
	}
	recent := map[change.Kind][]change.Object{}
	var strata []verify.Stratum
	for i, kind := range kinds {
		if w, ok := p.copy.(Written); ok && run.Window > 0 {
			from := now.Add(-run.Window)
			if !run.All {
				from = now.Add(-time.Duration(rand.New(rand.NewPCG(run.Seed, uint64(i))).Int64N(int64(run.Window))))
			}
			objs, err := w.Changed(ctx, p.conn, kind, change.ChangedFrom(from), maxRecent)
			if err != nil {
				return res, fmt.Errorf("list the copy's recent %s: %w", kind, err)
			}
			recent[kind] = objs
			strata = append(strata, verify.Stratum{Kind: kind, Class: verify.Recent, Population: len(objs)})
		}
		for _, class := range listedClasses(kind) {
			strata = append(strata, verify.Stratum{Kind: kind, Class: class})
		}
	}
	var msgs []message.Message
	done := 0
	took := func(f *Finding, m *message.Message) {
		done++
		if run.Progress != nil {
			run.Progress(done, res.Planned)
		}
		if f != nil {
			res.Findings = append(res.Findings, *f)
			if run.Found != nil {
				run.Found(*f)
			}
		}
		if m != nil {
			msgs = append(msgs, *m)
		}
	}
	if run.All {
		err := p.verifyAll(ctx, kinds, recent, run, &res.Planned, took)
		res, eerr := p.endVerify(ctx, res, msgs, spentBefore)
		return res, errors.Join(err, eerr)
	}
	// A listing not counted yet is read at its first position first: the read counts it
	// (record_count), so that the plan weighs it by its size.
	budget := run.Budget
	for i, st := range strata {
		if st.Class == verify.Recent {
			continue
		}
		n, known := run.Populations[stratumKey(st.Kind, st.Class)]
		if !known && budget > 0 && (run.Wait || !(p.spentShare() || outOfTime(ctx))) {
			budget--
			res.Planned++
			f, m, err := p.verifyListed(ctx, verify.Draw{Stratum: st}, 0, run)
			if err != nil {
				res, _ = p.endVerify(ctx, res, msgs, spentBefore)
				return res, err
			}
			took(f, m)
			n = run.Populations[stratumKey(st.Kind, st.Class)]
		}
		strata[i].Population = n
	}
	plan := verify.PlanSample(strata, budget, run.Seed)
	for _, d := range plan {
		res.Planned += d.N
	}
	for _, d := range plan {
		for _, off := range d.Offsets {
			if !run.Wait && (p.spentShare() || p.requests()-spentBefore >= int64(run.Budget) || outOfTime(ctx)) {
				return p.endVerify(ctx, res, msgs, spentBefore)
			}
			var f *Finding
			var m *message.Message
			var err error
			if d.Class == verify.Recent {
				f, m, err = p.verifyStored(ctx, recent[d.Kind][off], run)
			} else {
				f, m, err = p.verifyListed(ctx, d, off, run)
			}
			if err != nil {
				res, _ = p.endVerify(ctx, res, msgs, spentBefore)
				return res, err
			}
			took(f, m)
		}
	}
	return p.endVerify(ctx, res, msgs, spentBefore)
}

// verifyAll judges every object Halo lists of each kind, a full page per request, then
// the copy's recent changes it did not list, read from Halo by id (what Halo deleted). It
// counts the listings first (a page of one each), so that planned is known from the
// start.
func (p *Poller) verifyAll(ctx context.Context, kinds []change.Kind, recent map[change.Kind][]change.Object, run VerifyRun,
	planned *int, took func(*Finding, *message.Message)) error {
	for _, kind := range kinds {
		*planned += len(recent[kind])
		if len(listedClasses(kind)) == 0 {
			continue
		}
		q := haloapi.ListQuery{IncludeInactive: true, PageSize: 1, MaxPages: 1, Total: func(n int) { *planned += max(n, 0) }}
		if err := p.halo.List(ctx, kind, q, func([]map[string]any) error { return errEnough }); err != nil && !errors.Is(err, errEnough) {
			return fmt.Errorf("verify: count %s: %w", kind, err)
		}
	}
	listed := map[string]bool{}
	for _, kind := range kinds {
		if len(listedClasses(kind)) == 0 {
			continue
		}
		spec, _ := change.Lookup(kind)
		err := p.halo.List(ctx, kind, haloapi.ListQuery{IncludeInactive: true}, func(page []map[string]any) error {
			for _, obj := range page {
				c, _, _, err := p.changeOf(ctx, spec, obj, p.opts.Now())
				if err != nil {
					took(nil, nil)
					continue
				}
				listed[key(kind, c.ID, c.ParentID)] = true
				stored, ok, err := p.copy.Get(ctx, p.conn, kind, c.ID, c.ParentID)
				if err != nil {
					return fmt.Errorf("verify: read the copy: %w", err)
				}
				var s *change.Object
				if ok {
					s = &stored
				}
				f, m, err := p.judge(ctx, kind, c.ID, c.ParentID, obj, s, run, true)
				if err != nil {
					return err
				}
				took(f, m)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("verify: list %s: %w", kind, err)
		}
	}
	for _, kind := range kinds {
		for _, o := range recent[kind] {
			if listed[key(kind, o.ID, o.ParentID)] {
				*planned--
				continue
			}
			f, m, err := p.verifyStored(ctx, o, run)
			if err != nil {
				return err
			}
			took(f, m)
		}
	}
	return nil
}

func key(kind change.Kind, id, parentID string) string {
	return string(kind) + "/" + parentID + "/" + id
}

// endVerify enqueues the pass's repairs and counts what it spent.
func (p *Poller) endVerify(ctx context.Context, res VerifyResult, msgs []message.Message, spentBefore int64) (VerifyResult, error) {
	res.Requests = int(p.requests() - spentBefore)
	if len(msgs) > 0 {
		if err := p.queue.Send(ctx, msgs); err != nil {
			for i := range res.Findings {
				res.Findings[i].Repaired = false
			}
			return res, fmt.Errorf("enqueue %d repairs: %w", len(msgs), err)
		}
	}
	return res, nil
}

// requests is the requests spent of the poller's share so far (0 without one).
func (p *Poller) requests() int64 { return p.opts.Share.Spent() }

// spentShare reports whether the poller's share has no request left now: verification
// never waits on it.
func (p *Poller) spentShare() bool { return p.opts.Share != nil && p.opts.Share.Remaining() == 0 }

// listedClasses are the strata of kind drawn from Halo's listings.
func listedClasses(kind change.Kind) []verify.Class {
	switch kind {
	case change.Action:
		return nil
	case change.Ticket:
		return []verify.Class{verify.Open, verify.Other}
	}
	return []verify.Class{verify.Other}
}

func stratumKey(kind change.Kind, class verify.Class) string {
	return string(kind) + "/" + string(class)
}

// verifyListed reads the object at position off of the stratum's Halo listing (by id, a
// page of one) and judges the copy's against it; the listing's record count becomes the
// stratum's population.
func (p *Poller) verifyListed(ctx context.Context, d verify.Draw, off int, run VerifyRun) (*Finding, *message.Message, error) {
	q := haloapi.ListQuery{PageSize: 1, StartPage: off + 1, MaxPages: 1, IncludeInactive: true,
		Total: func(n int) {
			if n >= 0 {
				run.Populations[stratumKey(d.Kind, d.Class)] = n
			}
		}}
	if d.Class == verify.Open {
		q.OpenOnly = true
	}
	var obj map[string]any
	err := p.halo.List(ctx, d.Kind, q, func(page []map[string]any) error {
		if len(page) > 0 {
			obj = page[0]
		}
		return errEnough
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, nil, fmt.Errorf("verify: list %s at %d: %w", d.Kind, off+1, err)
	}
	if obj == nil {
		return nil, nil, nil // the listing shrank under the plan
	}
	spec, _ := change.Lookup(d.Kind)
	c, _, _, err := p.changeOf(ctx, spec, obj, p.opts.Now())
	if err != nil {
		p.log.WarnContext(ctx, "verify: object skipped", "connection", p.conn, "kind", d.Kind, "error", err.Error())
		return nil, nil, nil
	}
	stored, ok, err := p.copy.Get(ctx, p.conn, d.Kind, c.ID, c.ParentID)
	if err != nil {
		return nil, nil, fmt.Errorf("verify: read the copy: %w", err)
	}
	var s *change.Object
	if ok {
		s = &stored
	}
	return p.judge(ctx, d.Kind, c.ID, c.ParentID, obj, s, run, true)
}

// verifyStored reads from Halo an object the copy wrote recently and judges the copy's
// against it: the side that finds what Halo deleted without an event.
func (p *Poller) verifyStored(ctx context.Context, stored change.Object, run VerifyRun) (*Finding, *message.Message, error) {
	obj, err := p.halo.Read(ctx, stored.Kind, stored.ID, stored.ParentID)
	switch {
	case errors.Is(err, haloapi.ErrNotFound):
		obj = nil
	case err != nil:
		return nil, nil, fmt.Errorf("verify: read %s %s: %w", stored.Kind, stored.ID, err)
	}
	return p.judge(ctx, stored.Kind, stored.ID, stored.ParentID, obj, &stored, run, false)
}

// judge compares the copy's object with Halo's and, for a difference, with run.Repair,
// makes the change that repairs it. Not judged: an object the connection's filters keep
// out of the copy, one the same run enqueued, and one Halo changed within the poll's
// overlap, whose change may still be on its way through the queue. haloFirst says Halo's
// object was read before the copy's: a copy at or above Halo's version is then judged on
// Halo's object read again, after the copy, since a change the webhooks brought in
// between would look like a version ahead of Halo's, and its repair would undo it.
func (p *Poller) judge(ctx context.Context, kind change.Kind, id, parentID string, halo map[string]any, stored *change.Object, run VerifyRun, haloFirst bool) (*Finding, *message.Message, error) {
	readAt := p.opts.Now()
	if run.InFlight[kind][id] {
		return nil, nil, nil
	}
	if halo != nil {
		spec, _ := change.Lookup(kind)
		c, marker, _, err := p.changeOf(ctx, spec, halo, readAt)
		if err != nil {
			p.log.WarnContext(ctx, "verify: object skipped", "connection", p.conn, "kind", kind, "id", id, "error", err.Error())
			return nil, nil, nil
		}
		if _, keep := p.opts.Filter.Match(c); !keep || marker.After(readAt.Add(-p.opts.Overlap)) {
			return nil, nil, nil
		}
	}
	repair := run.Repair
	v, err := verify.Compare(kind, halo, stored, verify.Rules{Fields: p.opts.Fields, Versions: p.opts.Versions}, readAt)
	if err != nil {
		p.log.WarnContext(ctx, "verify: object skipped", "connection", p.conn, "kind", kind, "id", id, "error", err.Error())
		return nil, nil, nil
	}
	if haloFirst && v.Cause != verify.Equal && halo != nil && stored != nil && stored.Version >= v.HaloVersion {
		fresh, err := p.halo.Read(ctx, kind, id, parentID)
		switch {
		case errors.Is(err, haloapi.ErrNotFound):
			fresh = nil
		case err != nil:
			return nil, nil, fmt.Errorf("verify: read %s %s again: %w", kind, id, err)
		}
		return p.judge(ctx, kind, id, parentID, fresh, stored, run, false)
	}
	f := &Finding{Kind: kind, ID: id, ParentID: parentID, Verdict: v, At: readAt}
	if v.Cause == verify.Equal {
		return f, nil, nil
	}
	p.log.WarnContext(ctx, "verify: the copy differs from Halo", "connection", p.conn, "kind", kind, "id", id,
		"cause", v.Cause, "stored_version", v.CopyVersion, "version", v.HaloVersion, "fields", fieldNames(v.Fields), "repair", repair)
	if !repair || run.queued[key(kind, id, parentID)] {
		return f, nil, nil
	}
	c, err := p.repairOf(ctx, kind, id, parentID, halo, stored, v, readAt)
	if err != nil {
		return f, nil, err
	}
	m, err := message.Encode(message.Envelope{Change: c, ReceivedAt: readAt.UTC()})
	if err != nil {
		p.log.WarnContext(ctx, "verify: repair too large to queue", "connection", p.conn, "kind", kind, "id", id, "error", err.Error())
		return f, nil, nil
	}
	f.Repaired = true
	run.queued[key(kind, id, parentID)] = true
	return f, &m, nil
}

// repairOf is the change that makes the copy equal Halo's object, through the normal
// path (the queue, the worker, the store's version rule), its reason in its delivery
// record: event "verify: <cause>", under a delivery id of its own.
//
//   - Halo has no object (extra): a delete, at the read time or just above the stored
//     version, as the reconcile makes one.
//   - The copy lacks it or is behind (missing, stale): Halo's object at its marker, which
//     the version rule applies like any newer change.
//   - The copy holds a version Halo's marker does not reach (ahead: a version from the
//     future), or wrong fields at Halo's version (fields), or a tombstone newer than a
//     live object: a repair (change.Change.Repairs set to the stored version), the one
//     write that replaces a stored version with Halo's own, whole, and only while that
//     version is still stored (docs/ARCHITECTURE.md, "Versions").
func (p *Poller) repairOf(ctx context.Context, kind change.Kind, id, parentID string, halo map[string]any, stored *change.Object, v verify.Verdict, readAt time.Time) (change.Change, error) {
	var c change.Change
	if halo == nil {
		c = change.Change{Connection: p.conn, Kind: kind, ID: id, ParentID: parentID, Op: change.OpDelete,
			Version: change.VersionOf(readAt), VersionFrom: "verify", OccurredAt: readAt.UTC()}
		if stored != nil && stored.Version >= c.Version {
			c.Version = stored.Version + 1
		}
	} else {
		spec, _ := change.Lookup(kind)
		var err error
		if c, _, _, err = p.changeOf(ctx, spec, halo, readAt); err != nil {
			return c, err
		}
		c = p.opts.Fields.Apply(c)
		if stored != nil && stored.Version >= c.Version && !c.Deleted() {
			c.Repairs = stored.Version
		}
	}
	c.Source = change.SourcePoll
	c.Event = "verify: " + string(v.Cause)
	c.DeliveryID = fmt.Sprintf("verify-%s-%s-%s-%d", kind, parentID, id, readAt.UnixNano())
	return c, nil
}

func fieldNames(fs []verify.FieldDiff) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}
