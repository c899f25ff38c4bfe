package verify

import (
	"hash/fnv"
	"math/rand/v2"
	"slices"

	"github.com/halosync/halosync/internal/change"
)

// Class says why a stratum's objects are read.
type Class string

const (
	// Open: open tickets, which change most and matter most while they are worked.
	Open Class = "open"
	// Recent: objects changed within the period, where a missed or late change shows.
	Recent Class = "recent"
	// Other: everything else of the kind.
	Other Class = "other"
)

// weights favour open tickets and recent changes over the rest: per object, an open ticket
// is read eight times as often as an object of Other, a recent change four times.
var weights = map[Class]int{Open: 8, Recent: 4, Other: 1}

// Stratum is a set of objects of one kind the plan draws from: Population of them, listed
// in an order the caller can read by position.
type Stratum struct {
	Kind       change.Kind
	Class      Class
	Population int
}

// Draw is how many of a stratum's objects to read in the period, and which: Offsets are
// distinct positions in [0, Population), sorted.
type Draw struct {
	Stratum
	N       int
	Offsets []int
}

// PlanSample chooses how many objects of each stratum to read with budget requests (one
// read per object) in a period, and which:
//
//  1. Every kind with objects gets one read, in its most favoured stratum, so each kind is
//     checked every period. When the budget is smaller than the kinds, the seed chooses
//     which kinds, so that successive seeds cover them all.
//  2. The rest of the budget goes one read at a time to the stratum with the largest
//     weight × population ÷ (reads so far + 1) (the highest-averages rule): reads end up
//     proportional to weight × population, no stratum is read more than it holds, and
//     ties go to the stratum listed first.
//  3. The seed chooses each stratum's offsets, uniformly without replacement.
//
// The plan is the same for the same strata, budget and seed; it never reads more than
// budget, and reads everything when the budget covers it. Strata without objects and
// classes without a weight are left out. The work is budget × strata steps: a budget is of
// Halo requests, which its rate limit keeps to about a million a day.
func PlanSample(strata []Stratum, budget int, seed uint64) []Draw {
	var draws []Draw
	for _, s := range strata {
		if s.Population > 0 && weights[s.Class] > 0 {
			draws = append(draws, Draw{Stratum: s})
		}
	}
	budget -= cover(draws, budget, seed)
	for ; budget > 0; budget-- {
		best := -1
		for i, d := range draws {
			if d.N < d.Population && (best < 0 || priority(d) > priority(draws[best])) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		draws[best].N++
	}
	for i := range draws {
		draws[i].Offsets = offsets(draws[i], seed)
	}
	return draws
}

// cover gives each kind one read in its most favoured stratum, as far as budget goes, and
// returns the reads given.
func cover(draws []Draw, budget int, seed uint64) int {
	var kinds []change.Kind
	first := map[change.Kind]int{} // kind → its most favoured stratum
	for i, d := range draws {
		j, ok := first[d.Kind]
		if !ok {
			kinds = append(kinds, d.Kind)
		}
		if !ok || weights[d.Class] > weights[draws[j].Class] {
			first[d.Kind] = i
		}
	}
	slices.Sort(kinds)
	if budget < len(kinds) {
		rng := rand.New(rand.NewPCG(seed, 0))
		rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		kinds = kinds[:max(budget, 0)]
	}
	for _, k := range kinds {
		draws[first[k]].N++
	}
	return len(kinds)
}

// priority is a stratum's claim to its next read: weight × population ÷ (reads + 1).
func priority(d Draw) float64 {
	return float64(weights[d.Class]) * float64(d.Population) / float64(d.N+1)
}

// offsets picks d.N distinct positions of d's population (Floyd's algorithm), from a
// stream of its own so that one stratum's picks do not move when another's count does.
func offsets(d Draw, seed uint64) []int {
	if d.N == 0 {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(string(d.Kind) + "/" + string(d.Class)))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	picked := make(map[int]bool, d.N)
	out := make([]int, 0, d.N)
	for j := d.Population - d.N; j < d.Population; j++ {
		t := rng.IntN(j + 1)
		if picked[t] {
			t = j
		}
		picked[t] = true
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
