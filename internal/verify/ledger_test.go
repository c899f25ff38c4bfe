package verify

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

func TestLedgerReportsTheWindowPerKindAndInAll(t *testing.T) {
	const window = 24 * time.Hour
	start := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	var l Ledger
	for i := range 98 {
		l.Add(change.Ticket, start.Add(time.Duration(i)*time.Minute), window, Equal, false)
	}
	l.Add(change.Ticket, start.Add(2*time.Hour), window, Stale, true)
	l.Add(change.Client, start.Add(3*time.Hour), window, Extra, true)

	// Kept as JSON between runs, it reads back the same.
	doc, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	var back Ledger
	if err := json.Unmarshal(doc, &back); err != nil {
		t.Fatal(err)
	}
	r := back.Report(start.Add(4*time.Hour), window)
	if r.WindowHours != 24 || r.All.Checked != 100 || r.All.Equal != 98 || r.All.Repaired != 2 ||
		r.All.Differing["stale"] != 1 || r.All.Differing["extra"] != 1 || r.All.Estimate != 0.98 {
		t.Fatalf("all = %+v", r.All)
	}
	if low, high := Wilson(98, 100); r.All.Low != low || r.All.High != high {
		t.Errorf("interval [%v, %v], want Wilson's [%v, %v]", r.All.Low, r.All.High, low, high)
	}
	tk, cl := r.Kinds["ticket"], r.Kinds["client"]
	if tk.Checked != 99 || tk.Equal != 98 || tk.Repaired != 1 || !tk.LastCheckedAt.Equal(start.Add(2*time.Hour)) {
		t.Errorf("tickets = %+v", tk)
	}
	if cl.Checked != 1 || cl.Equal != 0 || cl.Estimate != 0 || cl.Differing["extra"] != 1 {
		t.Errorf("clients = %+v", cl)
	}

	// A day and an hour and a half on, the buckets of 09:00 and 10:00 have left the
	// window; the one of 11:00 (eight equal, the stale one) and the client's remain.
	l.Roll(start.Add(window+90*time.Minute), window)
	r = l.Report(start.Add(window+90*time.Minute), window)
	if r.All.Checked != 10 || r.Kinds["ticket"].Checked != 9 || len(l.Buckets) != 2 {
		t.Fatalf("after a day: %+v", r.All)
	}
	l.Roll(start.Add(2*window), window)
	if len(l.Buckets) != 0 || l.Report(start.Add(2*window), window).All.Checked != 0 {
		t.Fatalf("after two days: %d buckets", len(l.Buckets))
	}
}

func TestLedgerWithNothingCheckedKnowsNothing(t *testing.T) {
	var l Ledger
	r := l.Report(time.Now(), time.Hour)
	if r.All.Checked != 0 || r.All.Low != 0 || r.All.High != 1 || len(r.Kinds) != 0 {
		t.Fatalf("empty = %+v", r)
	}
}
