package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/verify"
)

// verifyName is the verification state's document among the connection's cursors.
const verifyName = "_verify"

// VerifyState is a connection's verification memory, kept beside the cursors: in AWS
// every run is a new process, so the rolling window's tally, what the budget window's
// runs spent and Halo's counts live here.
type VerifyState struct {
	Ledger verify.Ledger `json:"ledger"`
	// Runs are the requests of the runs within the last budget window, the poll's and
	// verification's: what the window has already spent of the poller's share.
	Runs []RunSpend `json:"runs,omitempty"`
	// Populations is Halo's count of each listed stratum ("ticket/open"), as last read.
	Populations map[string]int `json:"populations,omitempty"`
}

// RunSpend is the requests one run spent of the poller's share.
type RunSpend struct {
	At     time.Time `json:"at"`
	Poll   int       `json:"poll"`
	Verify int       `json:"verify"`
}

// ReadVerifyState reads a connection's verification state (empty before its first pass).
func ReadVerifyState(ctx context.Context, c Cursors, conn string) (VerifyState, error) {
	var s VerifyState
	doc, ok, err := c.LoadCursor(ctx, conn, verifyName)
	if err != nil || !ok {
		return s, err
	}
	if err := json.Unmarshal(doc, &s); err != nil {
		return VerifyState{}, fmt.Errorf("verification state: %w", err)
	}
	return s, nil
}

func saveVerifyState(ctx context.Context, c Cursors, conn string, s VerifyState) error {
	doc, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return c.SaveCursor(ctx, conn, verifyName, doc)
}

// ReadVerification is a connection's verification over the window ending at now, for
// status; nil before anything was checked.
func ReadVerification(ctx context.Context, c Cursors, conn string, window time.Duration, now time.Time) (*verify.Report, error) {
	s, err := ReadVerifyState(ctx, c, conn)
	if err != nil || len(s.Ledger.Buckets) == 0 {
		return nil, err
	}
	r := s.Ledger.Report(now, window)
	return &r, nil
}

// verifyAfter is a run's verification: it spends the part of the poller's share the
// connection's verify settings give it in this budget window, what the window's earlier
// runs (kept in the state, as a run may be a new process) have not spent, counts what it
// found and repaired, and keeps the rolling window's tally. pollSpent is what the run's
// own work spent of the share, inFlight what it enqueued.
func (r Runner) verifyAfter(ctx context.Context, pollSpent int, inFlight map[change.Kind]map[string]bool) error {
	p := r.Poller
	cfg := p.opts.Verify
	if !cfg.Enabled || p.opts.Share == nil {
		return nil
	}
	for _, kind := range order {
		c, err := p.cursor(ctx, kind)
		if err != nil {
			return err
		}
		if !c.Backfilled {
			return nil // nothing to compare before the first sync ends
		}
	}
	now := p.opts.Now()
	st, err := ReadVerifyState(ctx, p.cursors, p.conn)
	if err != nil {
		return err
	}
	limit, budgetWindow := p.opts.Share.Limit()
	runs := st.Runs[:0]
	for _, s := range st.Runs {
		if s.At.After(now.Add(-budgetWindow)) {
			runs = append(runs, s)
		}
	}
	st.Runs = append(runs, RunSpend{At: now, Poll: pollSpent})
	allowance := verifyAllowance(cfg.Fraction, limit, st.Runs, p.opts.Share.Remaining())
	for _, ids := range inFlight {
		if len(ids) > 0 {
			// The run's own changes are still on their way to the copy: what it read would
			// mostly be judged by a copy about to change. The next run verifies.
			allowance = 0
		}
	}
	if r.Budget != nil {
		// The client's budget binds too where it is smaller (in AWS, this instance's part
		// of the connection's): verification does not wait on it either.
		allowance = min(allowance, r.Budget.Remaining())
	}
	var res VerifyResult
	var verr error
	if allowance > 0 {
		if st.Populations == nil {
			st.Populations = map[string]int{}
		}
		res, verr = p.Verify(ctx, VerifyRun{Budget: allowance, Repair: true, Seed: uint64(now.UnixNano()),
			Window: cfg.Window, Populations: st.Populations, InFlight: inFlight})
		st.Runs[len(st.Runs)-1].Verify = res.Requests
	}
	st.Ledger.Roll(now, cfg.Window)
	for _, f := range res.Findings {
		st.Ledger.Add(f.Kind, f.At, cfg.Window, f.Verdict.Cause, f.Repaired)
		p.count.Count(metrics.Metric{Name: metrics.VerifyChecked, Connection: p.conn, Kind: string(f.Kind), Label: string(f.Kind)}, 1)
		if f.Verdict.Cause == verify.Equal {
			continue
		}
		p.count.Count(metrics.Metric{Name: metrics.VerifyDiffering, Connection: p.conn, Kind: string(f.Kind), Label: string(f.Verdict.Cause)}, 1)
		if f.Repaired {
			p.count.Count(metrics.Metric{Name: metrics.VerifyRepaired, Connection: p.conn, Kind: string(f.Kind), Label: string(f.Verdict.Cause)}, 1)
		}
	}
	report := st.Ledger.Report(now, cfg.Window)
	p.gauges(report)
	if all := report.All; len(res.Findings) > 0 && all.Checked > 0 && 100*all.Estimate < cfg.AlarmBelow {
		// The alarm where no CloudWatch alarm watches VerifyEqualShare (halosync serve).
		p.log.WarnContext(ctx, "verification: the share of the copy equal to Halo is below verify.alarm_below", "connection", p.conn,
			"equal_percent", 100*all.Estimate, "low_percent", 100*all.Low, "high_percent", 100*all.High, "checked", all.Checked,
			"alarm_below", cfg.AlarmBelow, "window", cfg.Window.String())
	}
	// Saved even when the run's time ran out: the requests spent must count in the next
	// run's allowance.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyMargin)
	defer cancel()
	if err := saveVerifyState(sctx, p.cursors, p.conn, st); err != nil {
		return errors.Join(verr, err)
	}
	return verr
}

// verifyAllowance is how many requests verification may spend now: its slice of the
// poller's share per budget window (fraction of it; 0: what the poll leaves unused,
// the share less the poll's requests over the window and room for one more poll like
// its largest), less what verification already spent in the window, and never more than
// the share has left now.
func verifyAllowance(fraction float64, limit int, runs []RunSpend, remaining int) int {
	poll, verified, largest := 0, 0, 0
	for _, s := range runs {
		poll += s.Poll
		verified += s.Verify
		largest = max(largest, s.Poll)
	}
	slice := limit - poll - largest
	if fraction > 0 {
		slice = int(fraction * float64(limit))
	}
	return max(min(slice-verified, remaining), 0)
}

// gauges counts the window's estimate: per kind and for the connection (label "all"),
// in percent, for each scope with a check in the window.
func (p *Poller) gauges(r verify.Report) {
	emit := func(kind, label string, k verify.KindReport) {
		if k.Checked == 0 {
			return
		}
		p.count.Count(metrics.Metric{Name: metrics.VerifyEqualShare, Connection: p.conn, Kind: kind, Label: label}, percent(k.Estimate))
		p.count.Count(metrics.Metric{Name: metrics.VerifyEqualShareLow, Connection: p.conn, Kind: kind, Label: label}, percent(k.Low))
	}
	for kind, k := range r.Kinds {
		emit(kind, kind, k)
	}
	emit("", "all", r.All)
}

// percent is a share as a whole percent, rounded down: a gauge holds whole numbers, and
// an alarm below a threshold should not be kept quiet by rounding up.
func percent(share float64) int64 { return int64(share*100 + 1e-9) }
