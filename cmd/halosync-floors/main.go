// Command halosync-floors reads `go test -bench` output and prints each hot path beside its
// floor: the least work the job needs (docs/PERFORMANCE.md, "Floors"). A floor benchmark is
// named BenchmarkFloor<Real>[/...] and measured in the same package, so in the same run, as
// the real benchmark it pairs with. Figures repeated with -count are reduced to medians.
//
// Usage: halosync-floors [file] (standard input without one).
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

func main() {
	in := io.Reader(os.Stdin)
	if len(os.Args) > 1 {
		f, err := os.Open(os.Args[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "halosync-floors:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	results, err := parse(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "halosync-floors:", err)
		os.Exit(1)
	}
	fmt.Print(render(pairs(results)))
}

// result is one benchmark's figures by unit (ns/op, B/op, init-ms, ...), the median of
// its runs.
type result struct {
	name    string // without "Benchmark" and the -GOMAXPROCS suffix
	figures map[string]float64
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parse reads benchmark lines ("BenchmarkX-2  200  84817 ns/op  36007 B/op ...") in the
// order they first appear.
func parse(r io.Reader) ([]result, error) {
	var order []string
	runs := map[string]map[string][]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		if runs[name] == nil {
			runs[name] = map[string][]float64{}
			order = append(order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: figure %q: %w", f[0], f[i], err)
			}
			runs[name][f[i+1]] = append(runs[name][f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := make([]result, 0, len(order))
	for _, name := range order {
		res := result{name: name, figures: map[string]float64{}}
		for unit, vs := range runs[name] {
			res.figures[unit] = median(vs)
		}
		out = append(out, res)
	}
	return out, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pair is a real benchmark and a floor of it.
type pair struct{ real, floor result }

// pairs matches each floor with the real benchmarks it stands beside: Floor<X> pairs with
// <X>, with <X>'s sub-benchmarks (one floor for several functions) and, if it is itself a
// variant <Y>/<variant>, with <Y> (several floors for one path).
func pairs(results []result) []pair {
	var floors, reals []result
	for _, r := range results {
		if f, ok := strings.CutPrefix(r.name, "Floor"); ok {
			floors = append(floors, result{name: f, figures: r.figures})
		} else {
			reals = append(reals, r)
		}
	}
	var out []pair
	for _, r := range reals {
		for _, f := range floors {
			if r.name == f.name || strings.HasPrefix(f.name, r.name+"/") || strings.HasPrefix(r.name, f.name+"/") {
				out = append(out, pair{real: r, floor: f})
			}
		}
	}
	return out
}

// render prints the hot paths (time and memory per operation), the whole pipelines (time
// until every delivery is applied, server CPU per delivery), then the cold starts (init
// time and bootstrap sizes), as Markdown tables.
func render(ps []pair) string {
	var hot, whole, cold strings.Builder
	for _, p := range ps {
		if _, ok := p.real.figures["applied-s"]; ok {
			fmt.Fprintf(&whole, "| %s | %s | %s |\n", p.real.name,
				compare(p, "applied-s", func(v float64) string { return fmt.Sprintf("%.2f s", v) }),
				compare(p, "cpu-us/delivery", func(v float64) string { return duration(v * 1e3) }))
			continue
		}
		if _, ok := p.real.figures["init-ms"]; ok {
			fmt.Fprintf(&cold, "| %s | %s | %s | %s |\n", p.real.name,
				compare(p, "init-ms", func(v float64) string { return fmt.Sprintf("%.1f ms", v) }),
				compare(p, "MB-arm64", megabytes), compare(p, "MB-amd64", megabytes))
			continue
		}
		fmt.Fprintf(&hot, "| %s | %s | %s | %s | %s |\n", p.real.name, p.floor.name,
			compare(p, "ns/op", duration), compare(p, "B/op", bytes), others(p.real))
	}
	var out strings.Builder
	if hot.Len() > 0 {
		out.WriteString("| hot path | floor | real time/op | floor | ratio | real memory/op | floor | ratio | real, also |\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
		out.WriteString(hot.String())
	}
	if whole.Len() > 0 {
		if out.Len() > 0 {
			out.WriteString("\n")
		}
		out.WriteString("| pipeline | real: all applied | floor | ratio | real server CPU/delivery | floor | ratio |\n|---|--:|--:|--:|--:|--:|--:|\n")
		out.WriteString(whole.String())
	}
	if cold.Len() > 0 {
		if out.Len() > 0 {
			out.WriteString("\n")
		}
		out.WriteString("| cold start | real init | hello-world | ratio | real arm64 size | hello-world | ratio | real amd64 size | hello-world | ratio |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		out.WriteString(cold.String())
	}
	if out.Len() == 0 {
		return "no floor benchmarks with a real benchmark beside them in the input\n"
	}
	return out.String()
}

// standardUnits are the figures go test reports itself (with -benchmem and SetBytes).
var standardUnits = []string{"ns/op", "B/op", "allocs/op", "MB/s"}

// others lists a real benchmark's own figures (b.ReportMetric: ingest's msg/delivery, the
// queue message's size beside the delivery's), "-" when it reports none.
func others(r result) string {
	var units []string
	for unit := range r.figures {
		if !slices.Contains(standardUnits, unit) {
			units = append(units, unit)
		}
	}
	if len(units) == 0 {
		return "-"
	}
	slices.Sort(units)
	cells := make([]string, len(units))
	for i, unit := range units {
		cells[i] = fmt.Sprintf("%.2f %s", r.figures[unit], unit)
	}
	return strings.Join(cells, ", ")
}

// compare is the cells real, floor and ratio for unit, dashes when either lacks it.
func compare(p pair, unit string, format func(float64) string) string {
	r, okR := p.real.figures[unit]
	f, okF := p.floor.figures[unit]
	if !okR || !okF {
		return "- | - | -"
	}
	ratio := "-"
	if f > 0 {
		ratio = fmt.Sprintf("%.1f×", r/f)
	}
	return fmt.Sprintf("%s | %s | %s", format(r), format(f), ratio)
}

func duration(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func bytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func megabytes(v float64) string { return fmt.Sprintf("%.1f MB", v) }
