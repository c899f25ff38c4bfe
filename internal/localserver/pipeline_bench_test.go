package localserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/loadgen"
	"github.com/halosync/halosync/internal/metrics"
)

// The pipeline benchmarks' load: distinct 2 KB ticket deliveries (each a new ticket, so
// every one is applied), posted by closed-loop senders. HALOSYNC_BENCH_DELIVERIES scales
// the count for a quick look.
const (
	pipelineDeliveries  = 20000
	pipelineConcurrency = 32
	pipelineBodyBytes   = 2048
)

// BenchmarkServe is `halosync serve`'s whole local pipeline, run as its own process (the
// real binary, built here): 20,000 distinct 2 KB ticket deliveries POSTed to the webhook
// route by 32 senders at once, each answered 200 once queued durably, until the worker has
// applied every one. It reports applied-s (from the first POST until /status counts every
// change applied), answered-s (until the last POST was answered), cpu-us/delivery (the
// server process's user and system CPU over that time, from /proc, divided by the
// deliveries), peak-RSS-MiB (the server's), written-KiB/delivery (what the server wrote to
// its files and sockets, from /proc) and ns/op as the wall time per delivery; the
// load generator's own CPU is not counted. docs/PERFORMANCE.md, "The local pipeline with
// group commit", records it beside BenchmarkFloorServe.
func BenchmarkServe(b *testing.B) {
	bin := buildProgram(b, "./cmd/halosync")
	benchPipeline(b, func(b *testing.B, dir string) *pipelineServer {
		cfg := filepath.Join(dir, "halosync.yaml")
		if err := os.WriteFile(cfg, []byte(loadgen.ServeConfig(30, 0)), 0o600); err != nil {
			b.Fatal(err)
		}
		return startPipelineServer(b, exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"),
			"--config", cfg, "--log-level", "error"), "halosync is listening on ", servePipelineApplied)
	})
}

// BenchmarkFloorServe is BenchmarkServe's load against its floor
// (internal/localserver/testdata/servefloor): an HTTP server doing one durable newest-wins
// SQLite upsert per request, committed in groups; a delivery is applied when answered.
func BenchmarkFloorServe(b *testing.B) {
	bin := buildProgram(b, "./internal/localserver/testdata/servefloor")
	benchPipeline(b, func(b *testing.B, dir string) *pipelineServer {
		return startPipelineServer(b, exec.Command(bin, filepath.Join(dir, "floor.db")), "listening on ", nil)
	})
}

// pipelineServer is a server process under the benchmark's load.
type pipelineServer struct {
	cmd *exec.Cmd
	url string
	// applied reports how many deliveries the server has applied; nil: each is applied
	// when answered.
	applied func(ctx context.Context, client *http.Client, url string) (int64, error)
}

func benchPipeline(b *testing.B, start func(b *testing.B, dir string) *pipelineServer) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		b.Skip("reading a process's CPU time needs /proc")
	}
	n := pipelineDeliveries
	if v, err := strconv.Atoi(os.Getenv("HALOSYNC_BENCH_DELIVERIES")); err == nil && v > 0 {
		n = v
	}
	bodies := make([][]byte, n)
	base := time.Now().UTC().Truncate(time.Millisecond)
	for i := range bodies {
		bodies[i] = pipelineBody(i, base)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: pipelineConcurrency * 2}, Timeout: time.Minute}
	var wall, posting, cpu time.Duration
	var peak, written int64
	var refused int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		srv := start(b, b.TempDir())
		cpu0 := processCPU(b, srv.cmd.Process.Pid)
		written0 := processWritten(b, srv.cmd.Process.Pid)
		b.StartTimer()
		began := time.Now()
		refused += postAll(b, client, srv.url, bodies)
		posting += time.Since(began)
		if srv.applied != nil {
			waitApplied(b, client, srv, int64(n))
		}
		wall += time.Since(began)
		cpu += processCPU(b, srv.cmd.Process.Pid) - cpu0
		written += processWritten(b, srv.cmd.Process.Pid) - written0
		peak = max(peak, peakRSS(b, srv.cmd.Process.Pid))
		b.StopTimer()
		_ = srv.cmd.Process.Kill()
		_ = srv.cmd.Wait()
		client.CloseIdleConnections()
	}
	per := float64(b.N * n)
	b.ReportMetric(wall.Seconds()/float64(b.N), "applied-s")
	b.ReportMetric(posting.Seconds()/float64(b.N), "answered-s")
	b.ReportMetric(float64(cpu.Microseconds())/per, "cpu-us/delivery")
	b.ReportMetric(float64(wall.Nanoseconds())/per, "ns/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(written)/per/1024, "written-KiB/delivery")
	if refused > 0 {
		b.ReportMetric(float64(refused)/float64(b.N), "refused")
	}
}

// pipelineBody is delivery i: a full-object "ticket updated" event for ticket i+1, padded
// to pipelineBodyBytes with its details.
func pipelineBody(i int, base time.Time) []byte {
	at := base.Add(time.Duration(i) * time.Millisecond)
	id := i + 1
	head := fmt.Sprintf(`{"id": "00000001-0000-4000-8000-%012x", "event": "ticket updated", "object_id": %d, "timestamp": %q, `+
		`"ticket": {"id": %d, "summary": "Pipeline benchmark ticket %d", "status_id": %d, "priority_id": 3, "tickettype_id": 1, `+
		`"client_id": 12, "agent_id": 7, "team_id": 2, "dateoccurred": "2026-09-25T06:30:00", "last_update": %q, "deleted": false, `+
		`"details": "`, id, id, at.Format("2006-01-02T15:04:05.0000000Z"), id, id, i%5+1, at.Format("2006-01-02T15:04:05.000"))
	tail := `"}}`
	pad := max(0, pipelineBodyBytes-len(head)-len(tail))
	return []byte(head + strings.Repeat("x", pad) + tail)
}

// postAll POSTs every body from pipelineConcurrency senders, each sending its next as soon
// as its last is answered; a 503 (the backlog is full) is sent again after a pause, and
// counted. Any other answer but 200 fails the benchmark.
func postAll(b *testing.B, client *http.Client, url string, bodies [][]byte) (refused int64) {
	target := &loadgen.HTTP{URL: url, Client: client}
	var next, refusals atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, pipelineConcurrency)
	for range pipelineConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) {
					return
				}
				for {
					status, err := target.Deliver(context.Background(), bodies[i])
					if err != nil {
						errs <- err
						return
					}
					if status == http.StatusOK {
						break
					}
					if status != http.StatusServiceUnavailable {
						errs <- fmt.Errorf("delivery %d answered %d", i, status)
						return
					}
					refusals.Add(1)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return refusals.Load()
}

// waitApplied polls the server until it has applied n deliveries (every 20 ms: a poll
// costs the server far less than the changes it waits for).
func waitApplied(b *testing.B, client *http.Client, srv *pipelineServer, n int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for {
		got, err := srv.applied(ctx, client, srv.url)
		if err != nil {
			b.Fatal(err)
		}
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("%d of %d deliveries applied after 5 minutes", got, n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// servePipelineApplied sums the worker's outcomes on serve's /status.
func servePipelineApplied(ctx context.Context, client *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/status", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("authorization", "Bearer "+loadgen.ReadToken)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /status: %d", resp.StatusCode)
	}
	var st struct {
		Counters []metrics.Entry `json:"counters"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("GET /status: %w", err)
	}
	var applied int64
	for _, c := range st.Counters {
		if c.Name == metrics.ChangesApplied {
			applied += c.Value
		}
	}
	return applied, nil
}

// startPipelineServer starts cmd and returns once it prints prefix followed by its URL.
func startPipelineServer(b *testing.B, cmd *exec.Cmd, prefix string,
	applied func(context.Context, *http.Client, string) (int64, error)) *pipelineServer {
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	found := make(chan string, 1)
	go func() {
		buf := make([]byte, 0, 4096)
		chunk := make([]byte, 4096)
		for {
			k, err := stdout.Read(chunk)
			buf = append(buf, chunk[:k]...)
			for {
				line, rest, ok := bytes.Cut(buf, []byte("\n"))
				if !ok {
					break
				}
				if u, ok := strings.CutPrefix(string(line), prefix); ok {
					found <- strings.TrimSpace(u)
				}
				buf = rest
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case u := <-found:
		return &pipelineServer{cmd: cmd, url: u, applied: applied}
	case <-time.After(30 * time.Second):
		b.Fatalf("%s did not listen within 30 s: %s", cmd.Path, stderr.String())
	}
	return nil
}

// processCPU is the user and system CPU time process pid (all its threads) has used.
func processCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (in parentheses, which may hold blanks): utime and
	// stime are the 14th and 15th of the line, in clock ticks.
	_, rest, ok := bytes.Cut(stat, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		b.Fatalf("unexpected /proc/%d/stat: %q", pid, stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("unexpected /proc/%d/stat: %q", pid, stat)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// processWritten is how many bytes process pid has written through write system calls
// (wchar: its files, the WAL among them, and its sockets).
func processWritten(b *testing.B, pid int) int64 {
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(io)) {
		if rest, ok := strings.CutPrefix(line, "wchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				b.Fatalf("wchar %q: %v", rest, err)
			}
			return n
		}
	}
	b.Fatalf("no wchar in /proc/%d/io", pid)
	return 0
}

// peakRSS is the most memory process pid has held resident (VmHWM).
func peakRSS(b *testing.B, pid int) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// buildProgram builds the main package pkg (a path relative to the module root) into the
// benchmark's temporary directory.
func buildProgram(b *testing.B, pkg string) string {
	root, err := filepath.Abs("../..")
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(b.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	return out
}
