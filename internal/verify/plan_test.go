package verify

import (
	"reflect"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

// tenant is a tenant's strata: many closed tickets and assets, few open tickets and recent
// changes, and a kind (client) of a handful of objects.
var tenant = []Stratum{
	{Kind: change.Ticket, Class: Open, Population: 400},
	{Kind: change.Ticket, Class: Recent, Population: 300},
	{Kind: change.Ticket, Class: Other, Population: 50000},
	{Kind: change.Action, Class: Recent, Population: 900},
	{Kind: change.Asset, Class: Other, Population: 20000},
	{Kind: change.Contact, Class: Other, Population: 3000},
	{Kind: change.Client, Class: Other, Population: 3},
	{Kind: change.Client, Class: Recent, Population: 0},
}

func total(ds []Draw) int {
	n := 0
	for _, d := range ds {
		n += d.N
	}
	return n
}

func byKind(ds []Draw) map[change.Kind]int {
	out := map[change.Kind]int{}
	for _, d := range ds {
		if d.N > 0 {
			out[d.Kind] += d.N
		}
	}
	return out
}

func TestPlanSampleBudgetAndCoverage(t *testing.T) {
	for _, budget := range []int{5, 6, 7, 50, 500, 5000, 100000} {
		ds := PlanSample(tenant, budget, 1)
		want := min(budget, 400+300+50000+900+20000+3000+3)
		if got := total(ds); got != want {
			t.Errorf("budget %d: %d reads, want %d", budget, got, want)
		}
		kinds := byKind(ds)
		if budget >= 6 {
			for _, k := range change.KindNames() {
				if kinds[change.Kind(k)] == 0 {
					t.Errorf("budget %d: kind %s not read", budget, k)
				}
			}
		}
		for _, d := range ds {
			if d.N > d.Population || len(d.Offsets) != d.N {
				t.Errorf("budget %d: %+v reads %d of %d with %d offsets", budget, d.Stratum, d.N, d.Population, len(d.Offsets))
			}
			if d.Population == 0 {
				t.Errorf("budget %d: an empty stratum is planned: %+v", budget, d.Stratum)
			}
		}
	}
	if ds := PlanSample(tenant, 0, 1); total(ds) != 0 {
		t.Errorf("no budget: %d reads", total(ds))
	}
}

func TestPlanSampleFavoursOpenAndRecent(t *testing.T) {
	ds := PlanSample(tenant, 5000, 1)
	rate := map[Class]float64{}
	for _, d := range ds {
		if d.Kind == change.Ticket {
			rate[d.Class] = float64(d.N) / float64(d.Population)
		}
	}
	if !(rate[Open] > rate[Recent] && rate[Recent] > rate[Other]) {
		t.Errorf("ticket read rates %v: want open > recent > other", rate)
	}
	// Reads follow weight × population: open (8 × 400) against other (1 × 50000).
	var open, other int
	for _, d := range ds {
		if d.Kind == change.Ticket && d.Class == Open {
			open = d.N
		}
		if d.Kind == change.Ticket && d.Class == Other {
			other = d.N
		}
	}
	if want := float64(other) * 3200 / 50000; float64(open) < want-2 || float64(open) > want+2 {
		t.Errorf("open tickets %d reads, other %d: want about %.0f", open, other, want)
	}
}

// TestPlanSampleSmallBudgetRotates: a budget below the kinds reads one object of as many
// kinds, chosen by the seed, so that successive periods cover every kind.
func TestPlanSampleSmallBudgetRotates(t *testing.T) {
	seen := map[change.Kind]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		ds := PlanSample(tenant, 2, seed)
		kinds := byKind(ds)
		if total(ds) != 2 || len(kinds) != 2 {
			t.Fatalf("seed %d: %v, want one read of two kinds", seed, kinds)
		}
		for k := range kinds {
			seen[k] = true
		}
	}
	if len(seen) != len(change.KindNames()) {
		t.Errorf("20 periods covered %v, want every kind", seen)
	}
}

func TestPlanSampleDeterministicOffsets(t *testing.T) {
	a, b := PlanSample(tenant, 300, 42), PlanSample(tenant, 300, 42)
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave two plans")
	}
	c := PlanSample(tenant, 300, 43)
	if reflect.DeepEqual(a, c) {
		t.Error("another seed gave the same offsets")
	}
	for _, d := range a {
		for i, o := range d.Offsets {
			if o < 0 || o >= d.Population || i > 0 && o <= d.Offsets[i-1] {
				t.Fatalf("%+v: offsets %v are not distinct, sorted and in range", d.Stratum, d.Offsets)
			}
		}
	}
	all := PlanSample([]Stratum{{Kind: change.Client, Class: Other, Population: 3}}, 10, 7)
	if len(all) != 1 || !reflect.DeepEqual(all[0].Offsets, []int{0, 1, 2}) {
		t.Errorf("a budget beyond the population reads all of it: %+v", all)
	}
}
