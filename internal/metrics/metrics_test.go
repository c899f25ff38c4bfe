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
		{Metric: Metric{Name: ChangesApplied, Connection: "b", Label: "stale"}, Value: 1},
		{Metric: Metric{Name: ChangesApplied, Connection: "a", Label: "pending"}, Value: 2},
		{Metric: Metric{Name: DeliveriesAccepted, Connection: "a", Label: ""}, Value: 3},
		{Metric: Metric{Name: ChangesApplied, Connection: "a", Label: "applied"}, Value: 4},
		{Metric: Metric{Name: ChangesEnqueued, Connection: "a", Label: ""}, Value: 5},
		{Metric: Metric{Name: ChangesApplied, Connection: "a", Label: ""}, Value: 6},
	}
	for _, e := range in {
		m.Count(e.Metric, e.Value)
	}
	want := []Entry{
		{Metric: Metric{Name: ChangesApplied, Connection: "a", Label: ""}, Value: 6},
		{Metric: Metric{Name: ChangesApplied, Connection: "a", Label: "applied"}, Value: 4},
		{Metric: Metric{Name: ChangesApplied, Connection: "a", Label: "pending"}, Value: 2},
		{Metric: Metric{Name: ChangesEnqueued, Connection: "a", Label: ""}, Value: 5},
		{Metric: Metric{Name: DeliveriesAccepted, Connection: "a", Label: ""}, Value: 3},
		{Metric: Metric{Name: ChangesApplied, Connection: "b", Label: "stale"}, Value: 1},
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

func TestMemoryKindAndGauges(t *testing.T) {
	m := NewMemory()
	m.Count(Metric{Name: ChangesApplied, Connection: "a", Kind: "ticket", Label: "applied"}, 2)
	m.Count(Metric{Name: ChangesApplied, Connection: "a", Kind: "client", Label: "applied"}, 3)
	m.Count(Metric{Name: HaloBudgetLeft, Connection: "a"}, 40)
	m.Count(Metric{Name: HaloBudgetLeft, Connection: "a"}, 37)
	m.Count(Metric{Name: ApplyDuration, Connection: "a", Kind: "ticket"}, 4)
	m.Count(Metric{Name: ApplyDuration, Connection: "a", Kind: "ticket"}, 6)
	want := []Entry{
		{Metric: Metric{Name: ApplyDuration, Connection: "a"}, Value: 10, Observations: 2, AvgMS: 5},
		{Metric: Metric{Name: ChangesApplied, Connection: "a", Label: "applied"}, Value: 5},
		{Metric: Metric{Name: HaloBudgetLeft, Connection: "a"}, Value: 37},
	}
	if got := m.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot =\n %+v\nwant\n %+v", got, want)
	}
	if got := m.Value(Metric{Name: ChangesApplied, Connection: "a", Kind: "asset", Label: "applied"}); got != 5 {
		t.Fatalf("Value whatever the kind = %d, want 5", got)
	}
}

func TestUnits(t *testing.T) {
	for _, name := range []string{SyncLatency, IngestDuration, ApplyDuration} {
		if UnitOf(name) != "Milliseconds" || !Observed(name) {
			t.Errorf("%s: unit %q, observed %v", name, UnitOf(name), Observed(name))
		}
	}
	for _, name := range []string{HaloBudgetLeft, FallbackActive} {
		if UnitOf(name) != "Count" || !Observed(name) {
			t.Errorf("gauge %s: unit %q, observed %v", name, UnitOf(name), Observed(name))
		}
	}
	for _, name := range []string{ChangesApplied, ChangesByKind, HaloRequests, ColdStarts, ChangesRetried, EventsByName} {
		if UnitOf(name) != "Count" || Observed(name) {
			t.Errorf("count %s: unit %q, observed %v", name, UnitOf(name), Observed(name))
		}
	}
	if Millis(-time.Second) != 0 || Millis(1500*time.Microsecond) != 1 {
		t.Errorf("Millis: %d, %d", Millis(-time.Second), Millis(1500*time.Microsecond))
	}
}

func TestLineLevel(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, "INFO"},
		{[]string{""}, "INFO"},
		{[]string{"debug"}, "INFO"},
		{[]string{"debug", "WARN"}, "WARN"},
		{[]string{"warning", ""}, "WARN"},
		{[]string{"error", "warn"}, "ERROR"},
		{[]string{"FATAL"}, "FATAL"},
		{[]string{"verbose"}, "INFO"},
	}
	for _, tt := range tests {
		if got := LineLevel(tt.in...); got != tt.want {
			t.Errorf("LineLevel(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// emfRecord is one EMF line as CloudWatch reads it.
type emfRecord struct {
	doc  map[string]any
	aws  emfAWS
	line []byte
}

type emfAWS struct {
	Timestamp         int64 `json:"Timestamp"`
	CloudWatchMetrics []struct {
		Namespace  string     `json:"Namespace"`
		Dimensions [][]string `json:"Dimensions"`
		Metrics    []struct {
			Name string `json:"Name"`
			Unit string `json:"Unit"`
		} `json:"Metrics"`
	} `json:"CloudWatchMetrics"`
}

func readRecords(t *testing.T, buf *bytes.Buffer) []emfRecord {
	t.Helper()
	var out []emfRecord
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		r := emfRecord{line: line}
		if err := json.Unmarshal(line, &r.doc); err != nil {
			t.Fatalf("not a JSON object: %s", line)
		}
		var wrap struct {
			AWS emfAWS `json:"_aws"`
		}
		if err := json.Unmarshal(line, &wrap); err != nil {
			t.Fatal(err)
		}
		r.aws = wrap.AWS
		if len(r.aws.CloudWatchMetrics) != 1 || r.aws.CloudWatchMetrics[0].Namespace != "halosync" {
			t.Fatalf("CloudWatchMetrics: %s", line)
		}
		// Every dimension named is a top-level string member, as EMF requires.
		for _, set := range r.aws.CloudWatchMetrics[0].Dimensions {
			for _, d := range set {
				if _, ok := r.doc[d].(string); !ok {
					t.Fatalf("dimension %q has no value: %s", d, line)
				}
			}
		}
		// And every metric defined has its value.
		for _, m := range r.aws.CloudWatchMetrics[0].Metrics {
			if _, ok := r.doc[m.Name]; !ok {
				t.Fatalf("metric %q has no value: %s", m.Name, line)
			}
		}
		out = append(out, r)
	}
	return out
}

func TestEMFRecordShape(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, EMFOptions{Level: "WARN"})
	at := time.Date(2026, 9, 25, 6, 41, 8, 789_000_000, time.UTC)
	e.now = func() time.Time { return at }

	e.Count(Metric{Name: ChangesApplied, Connection: "default", Kind: "ticket", Label: "applied"}, 2)
	e.Count(Metric{Name: DeliveriesAccepted, Connection: "default"}, 1)
	e.Count(Metric{Name: SyncLatency, Connection: "default", Kind: "action"}, 1234)
	e.Count(Metric{Name: DeliveriesRejected, Connection: "_unknown", Label: "unknown_connection"}, 1)

	recs := readRecords(t, &buf)
	tests := []struct {
		name, unit        string
		value             float64
		conn, kind, label string
		dims              [][]string
	}{
		{ChangesApplied, "Count", 2, "default", "ticket", "applied",
			[][]string{{}, {"Connection"}, {"Connection", "Kind"}, {"Label"}, {"Connection", "Label"}}},
		{DeliveriesAccepted, "Count", 1, "default", "", "", [][]string{{}, {"Connection"}}},
		{SyncLatency, "Milliseconds", 1234, "default", "action", "", [][]string{{}, {"Connection"}, {"Connection", "Kind"}}},
		{DeliveriesRejected, "Count", 1, "_unknown", "", "unknown_connection", [][]string{{}, {"Connection"}, {"Label"}, {"Connection", "Label"}}},
	}
	if len(recs) != len(tests) {
		t.Fatalf("%d lines, want %d (one per Count, unbuffered)", len(recs), len(tests))
	}
	for i, tt := range tests {
		r := recs[i]
		cw := r.aws.CloudWatchMetrics[0]
		if r.aws.Timestamp != at.UnixMilli() {
			t.Errorf("%s: Timestamp %d, want %d", tt.name, r.aws.Timestamp, at.UnixMilli())
		}
		if !reflect.DeepEqual(cw.Dimensions, tt.dims) {
			t.Errorf("%s: Dimensions %v, want %v", tt.name, cw.Dimensions, tt.dims)
		}
		if len(cw.Metrics) != 1 || cw.Metrics[0].Name != tt.name || cw.Metrics[0].Unit != tt.unit {
			t.Errorf("%s: Metrics %+v, want unit %s", tt.name, cw.Metrics, tt.unit)
		}
		if r.doc[tt.name] != tt.value {
			t.Errorf("%s: value %v, want %v", tt.name, r.doc[tt.name], tt.value)
		}
		if r.doc["level"] != "WARN" {
			t.Errorf("%s: level %v, want WARN", tt.name, r.doc["level"])
		}
		for key, want := range map[string]string{"Connection": tt.conn, "Kind": tt.kind, "Label": tt.label} {
			got, has := r.doc[key]
			if (want != "") != has || (has && got != want) {
				t.Errorf("%s: %s %v (present %v), want %q", tt.name, key, got, has, want)
			}
		}
	}
}

func TestEMFBufferedFlush(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, EMFOptions{Buffered: true})
	ticket := Metric{Connection: "c", Kind: "ticket"}
	at := func(name string, m Metric) Metric { m.Name = name; return m }
	e.Count(at(ChangesByKind, ticket), 2)
	e.Count(at(ApplyDuration, ticket), 7)
	e.Count(at(ChangesByKind, ticket), 3)
	e.Count(at(ApplyDuration, ticket), 9)
	e.Count(Metric{Name: HaloBudgetLeft, Connection: "c"}, 40)
	for range 150 {
		e.Count(at(SyncLatency, ticket), 5)
	}
	if buf.Len() != 0 {
		t.Fatalf("buffered counts written before Flush: %s", buf.String())
	}
	e.Flush()
	recs := readRecords(t, &buf)
	if len(recs) != 3 {
		t.Fatalf("%d lines, want 3 (the ticket's, its remaining latencies, the gauge's):\n%s", len(recs), buf.String())
	}
	first := recs[0]
	if first.doc[ChangesByKind] != 5.0 {
		t.Errorf("ChangesByKind = %v, want the sum 5", first.doc[ChangesByKind])
	}
	if !reflect.DeepEqual(first.doc[ApplyDuration], []any{7.0, 9.0}) {
		t.Errorf("ApplyDuration = %v, want both observations [7 9]", first.doc[ApplyDuration])
	}
	if l, ok := first.doc[SyncLatency].([]any); !ok || len(l) != 100 {
		t.Errorf("SyncLatency in the first line: %d values, want EMF's limit of 100", len(l))
	}
	units := map[string]string{}
	for _, m := range first.aws.CloudWatchMetrics[0].Metrics {
		units[m.Name] = m.Unit
	}
	if want := map[string]string{ChangesByKind: "Count", ApplyDuration: "Milliseconds", SyncLatency: "Milliseconds"}; !reflect.DeepEqual(units, want) {
		t.Errorf("metrics of the first line %v, want %v", units, want)
	}
	second := recs[1]
	if l, ok := second.doc[SyncLatency].([]any); !ok || len(l) != 50 {
		t.Errorf("SyncLatency in the second line: %v, want the other 50 values", second.doc[SyncLatency])
	}
	if _, ok := second.doc[ChangesByKind]; ok || len(second.aws.CloudWatchMetrics[0].Metrics) != 1 {
		t.Errorf("the second line repeats a count: %s", second.line)
	}
	if second.doc["Kind"] != "ticket" || second.doc["level"] != "INFO" {
		t.Errorf("second line: %s", second.line)
	}
	if recs[2].doc[HaloBudgetLeft] != 40.0 {
		t.Errorf("gauge line: %s", recs[2].line)
	}
	e.Flush()
	if buf.Len() != 0 {
		t.Fatalf("a second Flush wrote again: %s", buf.String())
	}
}

func TestEMFConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	e := NewEMF(&buf, EMFOptions{})
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

// A timing's entry carries its observations and their mean, so people read milliseconds
// per change, not a growing sum; a restored timing averages on from what was saved.
func TestMemoryTimingAverage(t *testing.T) {
	m := NewMemory()
	lat := Metric{Name: SyncLatency, Connection: "a", Kind: "ticket"}
	for _, ms := range []int64{10, 20, 45} {
		m.Count(lat, ms)
	}
	got := m.Snapshot()
	if len(got) != 1 || got[0].Value != 75 || got[0].Observations != 3 || got[0].AvgMS != 25 {
		t.Fatalf("Snapshot = %+v, want sum 75 over 3 observations, avg 25", got)
	}
	r := NewMemory()
	r.Restore(got[0])
	r.Count(lat, 5)
	if e := r.Snapshot()[0]; e.Value != 80 || e.Observations != 4 || e.AvgMS != 20 {
		t.Errorf("restored and counted on: %+v, want 80 over 4, avg 20", e)
	}
	if Average(10, 3) != 3.3 || Average(5, 0) != 0 {
		t.Errorf("Average(10, 3) = %v, Average(5, 0) = %v", Average(10, 3), Average(5, 0))
	}
}
