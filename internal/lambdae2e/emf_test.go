package lambdae2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/metrics"
)

// counts are metric values summed from EMF lines, by metric name, connection and label.
type counts map[metrics.Metric]int64

func (c counts) String() string {
	keys := slices.SortedFunc(maps.Keys(c), func(a, b metrics.Metric) int {
		return strings.Compare(a.Name+"\x00"+a.Connection+"\x00"+a.Label, b.Name+"\x00"+b.Connection+"\x00"+b.Label)
	})
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %s{connection=%s label=%s} = %d", k.Name, k.Connection, k.Label, c[k])
	}
	return b.String()
}

// only keeps the counts of one metric name.
func (c counts) only(name string) counts {
	out := counts{}
	for k, v := range c {
		if k.Name == name {
			out[k] = v
		}
	}
	return out
}

// emfDoc is the part of a CloudWatch embedded-metric-format document the tests read.
type emfDoc struct {
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

// emfCounts reads every EMF document in a function's output and sums its metrics by name,
// connection and label (a timing's or a gauge's observations are summed too; emfRecords
// keeps them apart, with their kind). Lines that are JSON but not EMF (the slog lines) are
// skipped; an EMF document that is malformed is an error.
func emfCounts(path string) (counts, error) {
	recs, err := emfRecords(path)
	if err != nil {
		return nil, err
	}
	out := counts{}
	for _, r := range recs {
		for name, vs := range r.values {
			m := metrics.Metric{Name: name, Connection: r.metric.Connection, Label: r.metric.Label}
			for _, v := range vs {
				out[m] += v
			}
		}
	}
	return out, nil
}

// emfRecord is one EMF document: its dimension values (in metric, without a name), its
// level, its dimension sets, and each metric's unit and values.
type emfRecord struct {
	metric metrics.Metric
	level  string
	sets   [][]string
	units  map[string]string
	values map[string][]int64
}

// emfRecords reads every EMF document in a function's output, checking what CloudWatch
// requires of it: a timestamp, the namespace, a value for every dimension named and for
// every metric defined (a number, or a list of numbers).
func emfRecords(path string) ([]emfRecord, error) {
	lines, err := jsonLines(path)
	if err != nil {
		return nil, err
	}
	var out []emfRecord
	for _, line := range lines {
		raw, ok := line["_aws"]
		if !ok {
			continue
		}
		var doc emfDoc
		if err := json.Unmarshal(fmt.Appendf(nil, `{"_aws":%s}`, raw), &doc); err != nil {
			return nil, fmt.Errorf("EMF document %s: %w", raw, err)
		}
		if doc.AWS.Timestamp <= 0 || len(doc.AWS.CloudWatchMetrics) == 0 {
			return nil, fmt.Errorf("EMF document without Timestamp or CloudWatchMetrics: %s", raw)
		}
		dim := func(name string) (string, error) {
			v, ok := line[name]
			if !ok {
				return "", fmt.Errorf("EMF dimension %s has no value in %s", name, raw)
			}
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return "", fmt.Errorf("EMF dimension %s is not a string: %s", name, v)
			}
			return s, nil
		}
		r := emfRecord{units: map[string]string{}, values: map[string][]int64{}}
		_ = json.Unmarshal(line["level"], &r.level)
		for _, cw := range doc.AWS.CloudWatchMetrics {
			if cw.Namespace != metrics.Namespace {
				return nil, fmt.Errorf("EMF namespace %q, want %q", cw.Namespace, metrics.Namespace)
			}
			r.sets = append(r.sets, cw.Dimensions...)
			for _, set := range cw.Dimensions {
				for _, d := range set {
					v, err := dim(d)
					if err != nil {
						return nil, err
					}
					switch d {
					case "Connection":
						r.metric.Connection = v
					case "Kind":
						r.metric.Kind = v
					case "Label":
						r.metric.Label = v
					default:
						return nil, fmt.Errorf("unexpected EMF dimension %q", d)
					}
				}
			}
			for _, metric := range cw.Metrics {
				var n int64
				var list []int64
				switch {
				case json.Unmarshal(line[metric.Name], &n) == nil:
					list = []int64{n}
				case json.Unmarshal(line[metric.Name], &list) == nil && len(list) > 0:
				default:
					return nil, fmt.Errorf("EMF metric %s has no integer value, nor a list of them, in the line: %s", metric.Name, raw)
				}
				r.units[metric.Name] = metric.Unit
				r.values[metric.Name] = append(r.values[metric.Name], list...)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// awaitCounts polls a function's output until the counts of metric name equal want,
// bounded: a function's output reaches the file through the emulator, possibly just
// after the invoke has returned.
func awaitCounts(t *testing.T, f *function, name string, want counts) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := emfCounts(f.stdout)
		if err != nil {
			t.Fatalf("%s output: %v", f.name, err)
		}
		got = got.only(name)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the %s metrics in its EMF output are%s\nwant%s", f.name, name, got, want)
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
}

// logRecords returns the function's slog records at level (a JSON line with "level").
func logRecords(t *testing.T, f *function, level string) []map[string]json.RawMessage {
	t.Helper()
	lines, err := jsonLines(f.stdout)
	if err != nil {
		t.Fatalf("%s output: %v", f.name, err)
	}
	var out []map[string]json.RawMessage
	for _, l := range lines {
		var lv string
		if json.Unmarshal(l["level"], &lv) == nil && lv == level {
			out = append(out, l)
		}
	}
	return out
}

// TestEMFPassesAWarnLogLevel runs ingest and the worker with the application log level at
// WARN, as template.yaml's LogLevel parameter may set it: Lambda then drops every JSON line
// whose level is below WARN, and reads a line without one as INFO. The metric lines must
// survive it: each carries the level WARN, is valid EMF, and together they hold the
// delivery's counts, its kinds and SyncLatency (docs/ARCHITECTURE.md, "Observability").
func TestEMFPassesAWarnLogLevel(t *testing.T) {
	t.Parallel()
	s := newStack(t, "emf")
	bins := build(t)
	warn := func(fn string) []string {
		return append(s.env(t, fn, s.config, "WARN"), "AWS_LAMBDA_LOG_LEVEL=WARN")
	}
	in, out := startFunction(t, bins.rie, "ingest-warn", bins.bootstrap["ingest"], warn("ingest"), warmupIngest)
	if r := decodeAs[events.APIGatewayV2HTTPResponse](t, in, out); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("ingest answered the warm-up GET with %d %s, want 405", r.StatusCode, r.Body)
	}
	wk, out := startFunction(t, bins.rie, "worker-warn", bins.bootstrap["worker"], warn("worker"), events.SQSEvent{Records: []events.SQSMessage{}})
	if r := decodeAs[events.SQSEventResponse](t, wk, out); len(r.BatchItemFailures) != 0 {
		t.Fatalf("worker answered an empty batch with failures %v", r.BatchItemFailures)
	}
	s.ingest = in
	s.post(t, "ingest-ticket-full.json", sampleEvent(t, "ingest-ticket-full.json"), http.StatusOK, 1)
	p := newPlayer(t, s.queue, wk, "arn:aws:sqs:"+"eu-west-1:000000000000:emf")
	p.runUntil(30*time.Second, "the delivery's change applied", func() bool { return len(p.deleted) == 1 })

	ticket := metrics.Metric{Connection: conn, Kind: "ticket"}
	named := func(name string, m metrics.Metric) metrics.Metric { m.Name = name; return m }
	awaitCounts(t, wk, metrics.ChangesApplied, counts{{Name: metrics.ChangesApplied, Connection: conn, Label: "applied"}: 1})
	awaitCounts(t, in, metrics.DeliveriesAccepted, counts{{Name: metrics.DeliveriesAccepted, Connection: conn}: 1})
	for _, f := range []*function{in, wk} {
		recs, err := emfRecords(f.stdout)
		if err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		seen := map[metrics.Metric]emfRecord{}
		for _, r := range recs {
			if r.level != "WARN" {
				t.Errorf("%s: an EMF line at level %q, which a WARN filter drops or misreads", f.name, r.level)
			}
			if !slices.ContainsFunc(r.sets, func(set []string) bool { return len(set) == 0 }) ||
				!slices.ContainsFunc(r.sets, func(set []string) bool { return slices.Equal(set, []string{"Connection"}) }) {
				t.Errorf("%s: a record without the [] and [Connection] dimension sets: %v", f.name, r.sets)
			}
			for name := range r.values {
				m := r.metric
				m.Name = name
				seen[m] = r
			}
		}
		if infos := logRecords(t, f, "INFO"); len(infos) > 0 {
			t.Errorf("%s logged at INFO with its level at WARN: %s", f.name, mustJSON(infos[0]))
		}
		want := map[metrics.Metric]string{ // what the function counted, and its unit
			{Name: metrics.ColdStarts, Connection: metrics.FunctionConnection, Label: strings.TrimSuffix(f.name, "-warn")}: "Count",
		}
		if f == in {
			want[metrics.Metric{Name: metrics.IngestDuration, Connection: conn}] = "Milliseconds"
			want[named(metrics.ChangesByKind, ticket)] = "Count"
			want[metrics.Metric{Name: metrics.EventsByName, Connection: conn, Label: "ticket status changed"}] = "Count"
		} else {
			want[named(metrics.SyncLatency, ticket)] = "Milliseconds"
			want[named(metrics.ApplyDuration, ticket)] = "Milliseconds"
			applied := named(metrics.ChangesApplied, ticket)
			applied.Label = "applied"
			want[applied] = "Count"
		}
		for m, unit := range want {
			r, ok := seen[m]
			if !ok {
				t.Errorf("%s: no EMF record of %+v", f.name, m)
				continue
			}
			if r.units[m.Name] != unit || len(r.values[m.Name]) == 0 || r.values[m.Name][0] < 0 {
				t.Errorf("%s: %s in unit %q with values %v, want %s", f.name, m.Name, r.units[m.Name], r.values[m.Name], unit)
			}
			if m.Kind != "" && !slices.ContainsFunc(r.sets, func(set []string) bool { return slices.Equal(set, []string{"Connection", "Kind"}) }) {
				t.Errorf("%s: %s without the [Connection, Kind] dimension set: %v", f.name, m.Name, r.sets)
			}
		}
	}
}

// TestEMFPassesAWarnLogLevelInThePoller: the poller function at WARN, its first run a
// backfill of a simulated tenant: its metric lines carry WARN, hold the budget spent and
// left, the fallback state and the changes it read per kind, and no INFO line is written.
func TestEMFPassesAWarnLogLevelInThePoller(t *testing.T) {
	t.Parallel()
	s := newStack(t, "emf-poller")
	tenant := halotest.Start(t, halosim.Options{})
	tenant.Seed(rand.New(rand.NewPCG(7, 11)), 1)
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	doc := `connections:
  - id: ` + conn + `
    halo:
      base_url: ` + tenant.URL() + `
      client_id: ` + tenant.Options().ClientID + `
      client_secret: ` + tenant.Options().ClientSecret + `
      budget: {requests: 100000, window_seconds: 300}
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["emf-poller-basic-secret"]
`
	if err := os.WriteFile(cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	pf, out := startPollerFunction(t, s, cfgFile, "WARN", json.RawMessage(sampleEvent(t, "poller-schedule.json")), "AWS_LAMBDA_LOG_LEVEL=WARN")
	var res awslambda.PollResult
	if err := json.Unmarshal(out, &res); err != nil || len(res.Connections) != 1 || !res.Connections[0].Polled {
		t.Fatalf("the first run: %s, %v; want the connection polled", out, err)
	}
	recs, err := emfRecords(pf.stdout)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]emfRecord{}
	for _, r := range recs {
		if r.level != "WARN" {
			t.Errorf("an EMF line at level %q, which a WARN filter drops or misreads", r.level)
		}
		for name := range r.values {
			key := name
			if r.metric.Kind != "" {
				key += "/" + r.metric.Kind
			}
			seen[key] = r
		}
	}
	for key, unit := range map[string]string{
		metrics.HaloRequests: "Count", metrics.HaloBudgetLeft: "Count", metrics.FallbackActive: "Count",
		metrics.ColdStarts: "Count", metrics.ChangesByKind + "/ticket": "Count",
	} {
		name, _, _ := strings.Cut(key, "/")
		r, ok := seen[key]
		if !ok {
			t.Errorf("no EMF record of %s", key)
			continue
		}
		if r.units[name] != unit || len(r.values[name]) == 0 {
			t.Errorf("%s in unit %q with values %v, want %s", key, r.units[name], r.values[name], unit)
		}
	}
	if v := seen[metrics.HaloRequests].values[metrics.HaloRequests]; len(v) == 0 || v[0] <= 0 {
		t.Errorf("HaloRequests %v: a backfill spends requests", v)
	}
	if infos := logRecords(t, pf, "INFO"); len(infos) > 0 {
		t.Errorf("the poller logged at INFO with its level at WARN: %s", mustJSON(infos[0]))
	}
}
