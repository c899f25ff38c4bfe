package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkHandle/2KB-2    	     200	     80000 ns/op	  24.15 MB/s	         1.180 msg/delivery	   36000 B/op	     295 allocs/op
BenchmarkHandleByScheme/basic-2    	     200	     90000 ns/op	   36000 B/op	     295 allocs/op
BenchmarkFloorHandle/2KB-2         	     200	     16000 ns/op	 123.81 MB/s	    3000 B/op	       5 allocs/op
BenchmarkHandle/2KB-2    	     200	     100000 ns/op	  24.15 MB/s	   36000 B/op	     295 allocs/op
BenchmarkHandle/2KB-2    	     200	     90000 ns/op	  24.15 MB/s	   36000 B/op	     295 allocs/op
BenchmarkStoreApply/update-2     	     300	    900000 ns/op	   19522 B/op	     323 allocs/op
BenchmarkFloorStoreApply/update/one-per-tx-2      	     300	    450000 ns/op	     750 B/op	      20 allocs/op
BenchmarkFloorStoreApply/update/group-commit-2    	     300	     36000 ns/op	     438 B/op	      12 allocs/op
BenchmarkColdStart/read-2   	       5	  16913384 ns/op	        12.00 MB-amd64	        12.00 MB-arm64	        14.00 init-ms	   47491 B/op	     104 allocs/op
BenchmarkFloorColdStart-2   	       5	   3427084 ns/op	         6.000 MB-amd64	         4.000 MB-arm64	         2.000 init-ms	   41998 B/op	      99 allocs/op
BenchmarkServe-2        	       1	    200000 ns/op	         4.000 applied-s	       250.0 cpu-us/delivery
BenchmarkFloorServe-2   	       1	    100000 ns/op	         2.000 applied-s	       100.0 cpu-us/delivery
PASS
`

func TestParseTakesMedians(t *testing.T) {
	results, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if results[0].name != "Handle/2KB" || results[0].figures["ns/op"] != 90000 || results[0].figures["MB/s"] != 24.15 {
		t.Fatalf("first result = %+v", results[0])
	}
	if median([]float64{4, 1, 3, 2}) != 2.5 {
		t.Fatal("median of an even count is the mean of the middle two")
	}
}

func TestPairsAndRatios(t *testing.T) {
	results, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pairs(results) {
		names = append(names, p.real.name+" ~ "+p.floor.name)
	}
	want := "Handle/2KB ~ Handle/2KB, StoreApply/update ~ StoreApply/update/one-per-tx, StoreApply/update ~ StoreApply/update/group-commit, ColdStart/read ~ ColdStart, Serve ~ Serve"
	if got := strings.Join(names, ", "); got != want {
		t.Fatalf("pairs = %s\nwant  %s", got, want)
	}
	table := render(pairs(results))
	for _, line := range []string{
		"| Handle/2KB | Handle/2KB | 90.0 µs | 16.0 µs | 5.6× | 35.2 KB | 2.9 KB | 12.0× | 1.18 msg/delivery |",
		"| StoreApply/update | StoreApply/update/group-commit | 900.0 µs | 36.0 µs | 25.0× | 19.1 KB | 438 B | 44.6× | - |",
		"| Serve | 4.00 s | 2.00 s | 2.0× | 250.0 µs | 100.0 µs | 2.5× |",
		"| ColdStart/read | 14.0 ms | 2.0 ms | 7.0× | 12.0 MB | 4.0 MB | 3.0× | 12.0 MB | 6.0 MB | 2.0× |",
	} {
		if !strings.Contains(table, line) {
			t.Errorf("table lacks %q:\n%s", line, table)
		}
	}
}

func TestNoPairs(t *testing.T) {
	if got := render(nil); !strings.Contains(got, "no floor benchmarks") {
		t.Fatalf("render(nil) = %q", got)
	}
}
