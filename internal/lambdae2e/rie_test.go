package lambdae2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Timeouts of the emulated functions.
const (
	functionTimeout = 30 * time.Second // AWS_LAMBDA_FUNCTION_TIMEOUT: the emulator's invoke limit
	startTimeout    = 15 * time.Second // until the emulator listens and the function has initialised
	stopTimeout     = 5 * time.Second  // SIGTERM to exit, before SIGKILL
)

// invokePath is the emulator's one invoke endpoint (Lambda's Invoke API path, for the
// one function it runs).
const invokePath = "/2015-03-31/functions/function/invocations"

// function is one Lambda function running under its own runtime interface emulator.
//
// The emulator starts the bootstrap lazily, on the first invoke, with the emulator's own
// environment; it restarts it on the next invoke after a crash. The function's stdout and
// stderr both arrive on the emulator's stdout (with START/END/REPORT lines around each
// invoke); the emulator's own log goes to its stderr.
type function struct {
	name   string
	url    string // the invoke URL
	addr   string // the emulator's listen address
	stdout string // file: the function's output (stdout and stderr) and START/END/REPORT
	stderr string // file: the emulator's own log
	cmd    *exec.Cmd
	exited chan struct{} // closed when the emulator process has exited
	client *http.Client
	seq    atomic.Int64
}

// startFunction runs bootstrap under a new emulator on free loopback ports, with exactly
// env as the environment (the emulator hands its environment to the function; nothing of
// the test's own environment leaks in, so a developer's AWS profile cannot be used).
// It returns once the function has answered a warm-up invoke of warmup, with that
// answer. The emulator,
// and the function process it started, are stopped when the test ends; on failure the
// tails of their output are logged.
func startFunction(t *testing.T, rie, name, bootstrap string, env []string, warmup any) (*function, []byte) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		f, out, err := launch(t, rie, name, bootstrap, env, warmup)
		if err == nil {
			return f, out
		}
		// The emulator starts its Runtime API server on a goroutine of its own when the
		// first invoke comes, beside the exec of the bootstrap, so on a loaded machine a
		// function that starts fast can ask for its first invoke before anything listens
		// (connection refused), and exits as aws-lambda-go does. Lambda itself listens
		// before it starts the runtime: that is the emulator's race, started again here.
		f.stop(t) // the emulator has written all the function's output once it exited
		if out := tail(f.stdout, 60); attempt < 3 && strings.Contains(out, "runtime/invocation/next") && strings.Contains(out, "connection refused") {
			t.Logf("%s: the emulator's Runtime API was not listening yet when the function asked for its first invoke; starting it again", name)
			continue
		}
		t.Fatalf("%s: the function did not initialise and answer a warm-up invoke within %v: %v", name, startTimeout, err)
	}
}

// launch starts one emulator running bootstrap and sends it the warm-up invoke; the
// error is the warm-up's.
func launch(t *testing.T, rie, name, bootstrap string, env []string, warmup any) (*function, []byte, error) {
	t.Helper()
	ports := freePorts(t, 2)
	dir := t.TempDir()
	f := &function{
		name:   name,
		addr:   net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		stdout: filepath.Join(dir, name+".stdout.log"),
		stderr: filepath.Join(dir, name+".emulator.log"),
		exited: make(chan struct{}),
		client: &http.Client{Timeout: functionTimeout + 10*time.Second, Transport: &http.Transport{}},
	}
	f.url = "http://" + f.addr + invokePath
	stdout, err := os.Create(f.stdout)
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(f.stderr)
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the tails are logged after the processes
	// have stopped and the files are complete.
	t.Cleanup(func() {
		_ = stdout.Close()
		_ = stderr.Close()
		if t.Failed() {
			t.Logf("%s: last lines of the function's output (%s):\n%s", name, f.stdout, tail(f.stdout, 60))
			t.Logf("%s: last lines of the emulator's log (%s):\n%s", name, f.stderr, tail(f.stderr, 30))
		}
	})

	f.cmd = exec.Command(rie,
		// The emulator also reads LOG_LEVEL, which is the function's setting here; the
		// flag keeps the emulator itself at info.
		"--log-level", "info",
		"--runtime-interface-emulator-address", f.addr,
		"--runtime-api-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		bootstrap)
	f.cmd.Dir = filepath.Dir(bootstrap) // the function's working directory, like /var/task
	f.cmd.Env = env
	f.cmd.Stdout, f.cmd.Stderr = stdout, stderr
	// Its own process group, so stopping it cannot signal the test. The emulator starts
	// the bootstrap in a process group of its own too (see stop).
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := f.cmd.Start(); err != nil {
		t.Fatalf("%s: start the emulator: %v", name, err)
	}
	go func() {
		_ = f.cmd.Wait()
		close(f.exited)
	}()
	t.Cleanup(func() { f.stop(t) })

	f.awaitListening(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	out, err := f.invoke(ctx, warmup)
	if err != nil {
		return f, nil, err
	}
	t.Logf("%s: running under the emulator on %s (warm-up invoke with cold start: %v)", name, f.addr, time.Since(start).Round(time.Millisecond))
	return f, out, nil
}

// awaitListening polls until the emulator accepts connections, bounded, failing at once
// if it exits (it panics when its address is taken, for one).
func (f *function) awaitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.DialTimeout("tcp", f.addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.Close()
			return
		}
		select {
		case <-f.exited:
			t.Fatalf("%s: the emulator exited before listening on %s (%v)", f.name, f.addr, f.cmd.ProcessState)
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the emulator is not listening on %s after %v: %v", f.name, f.addr, startTimeout, err)
		}
	}
}

// functionError is the body Lambda returns when the handler returns an error. The
// emulator answers it with HTTP 200 (and without Lambda's X-Amz-Function-Error header),
// so the body is the only sign.
type functionError struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorType    string `json:"errorType"`
}

// invoke sends payload (raw bytes, or anything else as JSON) as one synchronous invoke
// and returns the function's response payload. A function error, a crash or a timeout is
// an error.
func (f *function) invoke(ctx context.Context, payload any) ([]byte, error) {
	body, ok := payload.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(payload); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	// The request id the emulator gives the invoke (its START/END lines carry it).
	req.Header.Set("X-Amzn-RequestId", fmt.Sprintf("%s-%d-%d", f.name, time.Now().UnixNano(), f.seq.Add(1)))
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.name, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: read the response: %w", f.name, err)
	}
	// The emulator answers 502 (empty body) when the function failed to initialise or
	// crashed, and 200 with a timeout message when it ran out of time.
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("invoke %s: emulator answered %s: %q (the function failed to start or crashed: see its output)", f.name, resp.Status, out)
	}
	if bytes.HasPrefix(out, []byte("Task timed out")) {
		return nil, fmt.Errorf("invoke %s: %s", f.name, out)
	}
	var fe functionError
	if json.Unmarshal(out, &fe) == nil && fe.ErrorType != "" {
		return nil, fmt.Errorf("invoke %s: %w: %s: %s", f.name, errFunction, fe.ErrorType, fe.ErrorMessage)
	}
	return out, nil
}

// errFunction is an invoke the function answered with an error (its handler returned one).
var errFunction = errors.New("the function returned an error")

// invokeAs invokes f with payload and decodes the response into T, failing the test on
// any error.
func invokeAs[T any](t *testing.T, f *function, payload any) T {
	t.Helper()
	out, err := f.invoke(t.Context(), payload)
	if err != nil {
		t.Fatal(err)
	}
	return decodeAs[T](t, f, out)
}

// decodeAs decodes a function's response strictly into T, failing the test on error.
func decodeAs[T any](t *testing.T, f *function, out []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("invoke %s: response %s is not a %T: %v", f.name, out, v, err)
	}
	return v
}

// stop ends the emulator with SIGTERM, on which it kills the function's process group
// and exits; if it does not exit in time, its process group is killed. The function
// process runs in a group of its own, so any still alive afterwards is killed too, and
// the test fails if something is left behind.
func (f *function) stop(t *testing.T) {
	t.Helper()
	f.client.CloseIdleConnections()
	pid := f.cmd.Process.Pid
	children := childrenOf(pid)
	select {
	case <-f.exited:
	default:
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-f.exited:
		case <-time.After(stopTimeout):
			t.Errorf("%s: the emulator did not exit within %v of SIGTERM; killing it", f.name, stopTimeout)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-f.exited
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for _, c := range children {
		for c.alive() {
			if time.Now().After(deadline) {
				t.Errorf("%s: process %d (%s) is still running after the emulator stopped", f.name, c.pid, c.comm)
				break
			}
			_ = syscall.Kill(-c.pid, syscall.SIGKILL) // its own group (the emulator uses Setpgid)
			_ = syscall.Kill(c.pid, syscall.SIGKILL)
			time.Sleep(10 * time.Millisecond) // bounded by deadline: waiting for the kernel to reap
		}
	}
}

// proc identifies a process: its pid and start time, so that a recycled pid is never
// mistaken for it.
type proc struct {
	pid   int
	start string
	comm  string
}

// alive reports whether the process still runs (a zombie waiting to be reaped counts as
// gone).
func (p proc) alive() bool {
	q, ok := readProc(p.pid)
	return ok && q.start == p.start && q.state != "Z"
}

type procStat struct {
	ppid  int
	state string
	start string
	comm  string
}

func readProc(pid int) (procStat, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return procStat{}, false
	}
	fields := strings.Fields(s[closing+1:]) // from field 3 (state) on
	if len(fields) < 20 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(fields[1])
	return procStat{ppid: ppid, state: fields[0], start: fields[19], comm: s[open+1 : closing]}, true
}

// childrenOf lists the direct children of pid.
func childrenOf(pid int) []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readProc(n); ok && st.ppid == pid {
			out = append(out, proc{pid: n, start: st.start, comm: st.comm})
		}
	}
	return out
}

// freePorts reserves n distinct free loopback ports. They are released just before
// returning, for the emulator to bind; holding them all until then keeps them distinct.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d earlier lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// errNotJSON marks a line that is not a JSON object.
var errNotJSON = errors.New("not a JSON object")

// jsonLines decodes every complete line of path that is a JSON object (the function's
// slog and EMF output), skipping the rest (the emulator's START/END/REPORT lines). A
// last line without its newline may still be being written and is left out.
func jsonLines(path string) ([]map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []map[string]json.RawMessage
	for line := range bytes.Lines(data) {
		m, err := jsonObject(bytes.TrimSpace(line))
		if errors.Is(err, errNotJSON) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %s", path, err, line)
		}
		out = append(out, m)
	}
	return out, nil
}

func jsonObject(line []byte) (map[string]json.RawMessage, error) {
	if len(line) == 0 || line[0] != '{' {
		return nil, errNotJSON
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("a line starting with { is not valid JSON: %w", err)
	}
	return m, nil
}
