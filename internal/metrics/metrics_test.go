package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestMemoryCounts(t *testing.T) {
	m := NewMemory()
	accepted := Metric{Name: DeliveriesAccepted, Connection: "a"}
	m.Count(accepted, 1)
	m.Count(accepted, 2)
	m.Count(Metric{Name: DeliveriesRejected, Connection: "a", Label: "credentials_wrong"}, 1)
	if got := m.Value(accepted); got != 3 {
		t.Fatalf("Value = %d, want 3", got)
	}
	if got := m.Value(Metric{Name: DeliveriesAccepted, Connection: "b"}); got != 0 {
		t.Fatalf("other connection = %d, want 0", got)
	}
	if got := m.Value(Metric{Name: DeliveriesRejected, Connection: "a"}); got != 0 {
		t.Fatalf("unlabelled rejected = %d, want 0 (labels are distinct counters)", got)
	}
}

func TestMemorySnapshotOrder(t *testing.T) {
	m := NewMemory()
	in := []Entry{
		{Metric{ChangesApplied, "b", "stale"}, 1},
		{Metric{ChangesApplied, "a", "pending"}, 2},
		{Metric{DeliveriesAccepted, "a", ""}, 3},
		{Metric{ChangesApplied, "a", "applied"}, 4},
		{Metric{ChangesEnqueued, "a", ""}, 5},
		{Metric{ChangesApplied, "a", ""}, 6},
	}
	for _, e := range in {
		m.Count(e.Metric, e.Value)
	}
	want := []Entry{
		{Metric{ChangesApplied, "a", ""}, 6},
		{Metric{ChangesApplied, "a", "applied"}, 4},
		{Metric{ChangesApplied, "a", "pending"}, 2},
		{Metric{ChangesEnqueued, "a", ""}, 5},
		{Metric{DeliveriesAccepted, "a", ""}, 3},
		{Metric{ChangesApplied, "b", "stale"}, 1},
	}
	if got := m.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot =\n %+v\nwant\n %+v", got, want)
	}
	if got := NewMemory().Snapshot(); got == nil || len(got) != 0 {
		t.Fatalf("empty Snapshot = %#v, want an empty non-nil slice", got)
	}
	// The snapshot's JSON flattens the metric.
	b, err := json.Marshal(want[1])
	if err != nil || string(b) != `{"name":"ChangesApplied","connection":"a","label":"applied","value":4}` {
		t.Fatalf("entry JSON %s, %v", b, err)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := NewMemory()
	metric := Metric{Name: ChangesEnqueued, Connection: "a"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				m.Count(metric, 1)
				_ = m.Snapshot()
			}
		}()
	}
	wg.Wait()
	if got := m.Value(metric); got != 8000 {
		t.Fatalf("Value = %d, want 8000", got)
	}
}

type emfLine struct {
	AWS struct {
		Timestamp         int64 `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

func TestEMF(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf)
	at := time.Date(2026, 9, 25, 6, 41, 8, 789_000_000, time.UTC)
	e.now = func() time.Time { return at }

	e.Count(Metric{Name: DeliveriesRejected, Connection: "default", Label: "credentials_wrong"}, 2)
	e.Count(Metric{Name: DeliveriesAccepted, Connection: "default"}, 1)

	sc := bufio.NewScanner(&buf)
	var lines [][]byte
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	tests := []struct {
		name  string
		value float64
		label string
		dims  [][]string
	}{
		{DeliveriesRejected, 2, "credentials_wrong", [][]string{{"Connection"}, {"Connection", "Label"}}},
		{DeliveriesAccepted, 1, "", [][]string{{"Connection"}}},
	}
	for i, tt := range tests {
		line := lines[i]
		if !json.Valid(line) {
			t.Fatalf("line %d is not JSON: %s", i, line)
		}
		var doc map[string]any
		if err := json.Unmarshal(line, &doc); err != nil {
			t.Fatal(err)
		}
		var emf emfLine
		if err := json.Unmarshal(line, &emf); err != nil {
			t.Fatal(err)
		}
		if len(emf.AWS.CloudWatchMetrics) != 1 {
			t.Fatalf("line %d: %d CloudWatchMetrics", i, len(emf.AWS.CloudWatchMetrics))
		}
		cw := emf.AWS.CloudWatchMetrics[0]
		if cw.Namespace != "halosync" {
			t.Errorf("line %d: Namespace %q", i, cw.Namespace)
		}
		if emf.AWS.Timestamp != at.UnixMilli() {
			t.Errorf("line %d: Timestamp %d, want %d", i, emf.AWS.Timestamp, at.UnixMilli())
		}
		if !reflect.DeepEqual(cw.Dimensions, tt.dims) {
			t.Errorf("line %d: Dimensions %v, want %v", i, cw.Dimensions, tt.dims)
		}
		if len(cw.Metrics) != 1 || cw.Metrics[0].Name != tt.name || cw.Metrics[0].Unit != "Count" {
			t.Errorf("line %d: Metrics %+v", i, cw.Metrics)
		}
		if doc[tt.name] != tt.value {
			t.Errorf("line %d: value %v, want %v", i, doc[tt.name], tt.value)
		}
		if doc["Connection"] != "default" {
			t.Errorf("line %d: Connection %v", i, doc["Connection"])
		}
		label, hasLabel := doc["Label"]
		if (tt.label != "") != hasLabel || (hasLabel && label != tt.label) {
			t.Errorf("line %d: Label %v (present %v), want %q", i, label, hasLabel, tt.label)
		}
		// Every dimension named is a top-level member, as EMF requires.
		for _, set := range cw.Dimensions {
			for _, d := range set {
				if _, ok := doc[d]; !ok {
					t.Errorf("line %d: dimension %q has no value", i, d)
				}
			}
		}
	}
	if !bytes.HasSuffix(lines[0], []byte("}")) {
		t.Errorf("line not a single JSON object: %s", lines[0])
	}
}

func TestEMFConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				e.Count(Metric{Name: ChangesApplied, Connection: "c", Label: "applied"}, 1)
			}
		}()
	}
	wg.Wait()
	n := 0
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("interleaved line: %s", sc.Bytes())
		}
		n++
	}
	if n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
}
