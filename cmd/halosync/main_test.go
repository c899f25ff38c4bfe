package main

// End-to-end tests of the real binary (docs/ARCHITECTURE.md, "Tests", item 6): `halosync
// serve` with webhooks in and state out, `halosync get`, kill -9 and restart with nothing
// acknowledged lost, configuration files and usage errors. TestMain builds the binary once.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/logtest"
	"github.com/halosync/halosync/internal/sqlite"
)

// binary is the halosync binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "halosync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "halosync")
	gocmd, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "go not found:", err)
		return 1
	}
	build := exec.Command(gocmd, "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build ./cmd/halosync:", err)
		return 1
	}
	return m.Run()
}

const (
	// startTimeout bounds how long a started `serve` may take to print its address.
	startTimeout = 15 * time.Second
	// applyTimeout bounds how long a delivery may take to show up in the store.
	applyTimeout = 5 * time.Second
	// pollInterval is the pause between two looks at something awaited.
	pollInterval = 10 * time.Millisecond
)

// proc is a running halosync process.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *logtest.Buffer
	done           chan struct{} // closed when the process has exited and been reaped
	waitErr        error         // valid once done is closed

	url      string // http://host:port, once ready
	password string // the generated password, when serve printed one
	token    string // the read token, from the file serve named, when it named one
}

// start starts halosync with args; the process is killed (if still running) when the test
// ends, and its output tails are logged if the test failed.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startProgram(t, env, nil, binary, args...)
}

// startProgram is start with another program (one that runs halosync), reading stdin.
func startProgram(t *testing.T, env []string, stdin *os.File, program string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{name: strings.Join(args, " "), stdout: &logtest.Buffer{}, stderr: &logtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, program, args...)
	p.cmd.Stdin = stdin
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.WaitDelay = 5 * time.Second
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start halosync %s: %v", p.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel() // kills the process if it still runs
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("halosync %s (pid %d) did not exit after it was killed", p.name, p.cmd.Process.Pid)
		}
		if t.Failed() {
			p.logTails(t)
		}
	})
	return p
}

func (p *proc) logTails(t *testing.T) {
	t.Helper()
	t.Logf("halosync %s (pid %d) stdout:\n%s", p.name, p.cmd.Process.Pid, logtest.Tail(p.stdout.String(), 2000))
	t.Logf("halosync %s (pid %d) stderr:\n%s", p.name, p.cmd.Process.Pid, logtest.Tail(p.stderr.String(), 6000))
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var (
	listeningRE = regexp.MustCompile(`halosync is listening on (http://\S+)\n`)
	// The password file serve names: with the password on a terminal, without elsewhere.
	passwordRE  = regexp.MustCompile(`Basic auth: user "halo", password (?:kept in (\S+) |"[^"]*" \(kept in ([^)]+)\))`)
	readRE      = regexp.MustCompile(`read a ticket: http://\S+\n`)
	dashboardRE = regexp.MustCompile(`dashboard: http://\S+/dashboard\?token=[^\n]*\n`)
	tokenRE     = regexp.MustCompile(`need "Authorization: Bearer TOKEN"; read token: ([^\n]+)\n`)
)

// waitReady waits until serve has printed everything it prints once listening. It returns
// false if the process exited first.
func (p *proc) waitReady(t *testing.T) bool {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		out := strings.ReplaceAll(p.stdout.String(), "\r", "") // a terminal's line ends
		if m := listeningRE.FindStringSubmatch(out); m != nil && readRE.MatchString(out) && dashboardRE.MatchString(out) {
			p.url = m[1]
			if pm := passwordRE.FindStringSubmatch(out); pm != nil {
				b, err := os.ReadFile(pm[1] + pm[2])
				if err != nil {
					t.Fatalf("halosync %s names its password file %s: %v", p.name, pm[1]+pm[2], err)
				}
				p.password = strings.TrimSpace(string(b))
			}
			tm := tokenRE.FindStringSubmatch(out)
			if tm == nil {
				t.Fatalf("halosync %s does not say where its read token is:\n%s", p.name, out)
			}
			if b, err := os.ReadFile(tm[1]); err == nil {
				p.token = strings.TrimSpace(string(b))
			}
			return true
		}
		if p.exited() {
			return false
		}
		if time.Now().After(deadline) {
			p.logTails(t)
			t.Fatalf("halosync %s printed no address within %v", p.name, startTimeout)
		}
		time.Sleep(pollInterval)
	}
}

// startServe starts `halosync serve` on a port of its own choosing and waits until it listens.
func startServe(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := start(t, env, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	if !p.waitReady(t) {
		p.logTails(t)
		t.Fatalf("halosync %s exited before listening: %v", p.name, p.waitErr)
	}
	return p
}

// serveOnFreePort starts serve on a port picked free beforehand, starting again on
// another port if someone took it meanwhile.
func serveOnFreePort(t *testing.T, args ...string) (*proc, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		p := start(t, nil, append([]string{"serve", "--addr", "127.0.0.1:" + strconv.Itoa(port)}, args...)...)
		if p.waitReady(t) {
			return p, port
		}
		if attempt < 5 && strings.Contains(p.stderr.String(), "address already in use") {
			t.Logf("port %d was taken meanwhile; trying another", port)
			continue
		}
		p.logTails(t)
		t.Fatalf("halosync %s exited before listening: %v", p.name, p.waitErr)
	}
}

// stop ends the process with sig and returns its exit code.
func (p *proc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		t.Fatalf("signal %v to halosync %s: %v", sig, p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.logTails(t)
		t.Fatalf("halosync %s did not exit within 15 s of %v", p.name, sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

// runCLI runs a short-lived halosync command and returns its output and exit code.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIIn(t, "", env, args...)
}

// runCLIIn is runCLI in the working directory dir ("": this one).
func runCLIIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = append(os.Environ(), env...)
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
	default:
		t.Fatalf("halosync %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, logtest.Tail(out.String(), 2000), logtest.Tail(errOut.String(), 2000))
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

var client = &http.Client{Timeout: 10 * time.Second}

// post delivers body to connection conn and returns the status (0 and the error if the
// request failed).
func post(url, conn, auth string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url+"/webhooks/halo/"+conn, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func mustPost(t *testing.T, url, conn, auth string, body []byte, want int) {
	t.Helper()
	status, b, err := post(url, conn, auth, body)
	if err != nil {
		t.Fatalf("POST %s: %v", conn, err)
	}
	if status != want {
		t.Fatalf("POST %s: %d %s, want %d", conn, status, b, want)
	}
}

// get reads path from the server with its read token.
func (p *proc) get(path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, p.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	return client.Do(req)
}

// getJSON reads path and decodes a 200 answer (numbers as json.Number).
func getJSON(p *proc, path string) (int, map[string]any, error) {
	resp, err := p.get(path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, err
	}
	m, err := decode(b)
	return resp.StatusCode, m, err
}

func decode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode %q: %w", logtest.Tail(string(b), 300), err)
	}
	return m, nil
}

// waitObject polls path until it answers 200 and accept (nil: anything) holds.
func waitObject(t *testing.T, p *proc, path string, accept func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(applyTimeout)
	for {
		status, m, err := getJSON(p, path)
		if err == nil && status == http.StatusOK && (accept == nil || accept(m)) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: not as expected within %v: status %d, %v, %v", path, applyTimeout, status, m, err)
		}
		time.Sleep(pollInterval)
	}
}

// waitLog waits until serve's log holds a line with every one of the given fragments.
func (p *proc) waitLog(t *testing.T, fragments ...string) {
	t.Helper()
	deadline := time.Now().Add(applyTimeout)
	for {
		for _, line := range strings.Split(p.stderr.String(), "\n") {
			all := true
			for _, f := range fragments {
				all = all && strings.Contains(line, f)
			}
			if all {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q within %v", fragments, applyTimeout)
		}
		time.Sleep(pollInterval)
	}
}

type statusDoc struct {
	Counters []struct {
		Name       string `json:"name"`
		Connection string `json:"connection"`
		Label      string `json:"label"`
		Value      int64  `json:"value"`
	} `json:"counters"`
	Queue struct {
		Visible  int `json:"visible"`
		InFlight int `json:"in_flight"`
	} `json:"queue"`
}

func (s statusDoc) count(name, label string) int64 {
	var n int64
	for _, c := range s.Counters {
		if c.Name == name && (label == "*" || c.Label == label) {
			n += c.Value
		}
	}
	return n
}

func status(t *testing.T, p *proc) statusDoc {
	t.Helper()
	resp, err := p.get("/status")
	if err != nil {
		t.Fatalf("GET /status: %v", err)
	}
	defer resp.Body.Close()
	var s statusDoc
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /status: %d, %v", resp.StatusCode, err)
	}
	return s
}

type sample struct {
	name string
	body []byte
	auth string // the sample's own Authorization header
}

// samples reads the Halo deliveries held in events/ingest-*.json.
func samples(t *testing.T) map[string]sample {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "events", "ingest-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in events/: %v", err)
	}
	out := map[string]sample{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Headers         map[string]string `json:"headers"`
			Body            string            `json:"body"`
			IsBase64Encoded bool              `json:"isBase64Encoded"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		body := []byte(e.Body)
		if e.IsBase64Encoded {
			if body, err = base64.StdEncoding.DecodeString(e.Body); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "ingest-"), ".json")
		out[name] = sample{name: name, body: body, auth: e.Headers["authorization"]}
	}
	return out
}

// ticketDelivery is the full-ticket sample made into ticket id's, with its own delivery id.
func ticketDelivery(t *testing.T, full []byte, id int) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(full))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["id"] = fmt.Sprintf("e2e00000-0000-4000-8000-%012d", id)
	m["object_id"] = id
	tk := m["ticket"].(map[string]any)
	tk["id"] = id
	tk["summary"] = fmt.Sprintf("burst ticket %d", id)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServeWithoutConfigGeneratesAndKeepsAPassword(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	first := startServe(t, nil, "--data", data)
	if first.password == "" {
		t.Fatalf("no generated password printed:\n%s", first.stdout.String())
	}
	if len(first.password) < 16 {
		t.Errorf("generated password %q is short", first.password)
	}
	if !strings.Contains(first.stdout.String(), fmt.Sprintf("webhook URL for connection %q: %s/webhooks/halo/default", "default", first.url)) {
		t.Errorf("no webhook URL for connection default in:\n%s", first.stdout.String())
	}
	pwFile := filepath.Join(data, "webhook-password")
	fi, err := os.Stat(pwFile)
	if err != nil {
		t.Fatalf("the generated password is not kept: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", pwFile, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(pwFile); strings.TrimSpace(string(b)) != first.password {
		t.Errorf("%s holds %q, serve printed %q", pwFile, b, first.password)
	}
	if fi, err := os.Stat(data); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Logf("note: data dir mode %v", fi.Mode().Perm())
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := client.Get(first.url + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	// The read token: generated, kept in the data dir for its owner only, and required.
	tokenFile := filepath.Join(data, "read-token")
	if !strings.Contains(first.stdout.String(), "read token: "+tokenFile+"\n") || len(first.token) < 16 {
		t.Fatalf("serve does not name its generated read token %s (token %q):\n%s", tokenFile, first.token, first.stdout.String())
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want 0600", tokenFile, err, fi.Mode().Perm())
	}
	mustPost(t, first.url, "default", authtest.Basic("halo", first.password), samples(t)["ticket-small"].body, http.StatusOK)
	waitObject(t, first, "/connections/default/tickets/4243", nil)
	for _, path := range []string{"/connections/default/tickets/4243", "/status"} {
		resp, err := client.Get(first.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("GET %s without the read token: %d (WWW-Authenticate %q), want 401 Bearer", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if code := first.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM, want 0 (graceful shutdown)", code)
	}

	// Restarted, on a port given by --addr: the same password, and what was stored before.
	second, port := serveOnFreePort(t, "--data", data)
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); second.url != want {
		t.Errorf("serve --addr 127.0.0.1:%d prints %s", port, second.url)
	}
	if second.password != first.password || second.token != first.token {
		t.Fatalf("second start: password %q and read token %q, first %q and %q", second.password, second.token, first.password, first.token)
	}
	waitObject(t, second, "/connections/default/tickets/4243", nil)
	mustPost(t, second.url, "default", authtest.Basic("halo", first.password), samples(t)["ticket-full"].body, http.StatusOK)
	mustPost(t, second.url, "default", authtest.Basic("halo", "not-the-password"), samples(t)["ticket-full"].body, http.StatusUnauthorized)
	waitObject(t, second, "/connections/default/tickets/4242", nil)
	if code := second.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("serve exited %d after SIGINT, want 0", code)
	}
}

func TestDeliveriesInStateOut(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, nil, "--data", data)
	auth := authtest.Basic("halo", p.password)
	s := samples(t)

	for _, name := range []string{"ticket-full", "ticket-small", "ticket-event-only", "ticket-batch", "ticket-base64"} {
		smp, ok := s[name]
		if !ok {
			t.Fatalf("no sample events/ingest-%s.json", name)
		}
		mustPost(t, p.url, "default", auth, smp.body, http.StatusOK)
	}
	// The wrong-password sample, with its own credentials, is refused.
	mustPost(t, p.url, "default", s["wrong-password"].auth, s["wrong-password"].body, http.StatusUnauthorized)

	full := waitObject(t, p, "/connections/default/tickets/4242", nil)
	fields := full["fields"].(map[string]any)
	if full["id"] != "4242" || full["kind"] != "ticket" || full["connection"] != "default" || full["client_id"] != "12" ||
		fields["summary"] != "Printer on the 3rd floor is jammed" || fields["status_id"] != json.Number("2") {
		t.Errorf("ticket 4242: %v", full)
	}
	small := waitObject(t, p, "/connections/default/tickets/4243", nil)
	if small["fields"].(map[string]any)["summary"] != "VPN drops every hour" {
		t.Errorf("ticket 4243: %v", small)
	}
	pending := waitObject(t, p, "/connections/default/tickets/4244", nil)
	if pending["version"] != json.Number("0") || pending["pending_version"] == nil {
		t.Errorf("event-only ticket 4244 is not pending: %v", pending)
	}
	// The batch's two events for 4250 are merged: the second adds agent and team.
	waitObject(t, p, "/connections/default/tickets/4250", func(m map[string]any) bool {
		f := m["fields"].(map[string]any)
		return f["agent_id"] == json.Number("11") && f["summary"] == "New starter laptop"
	})
	waitObject(t, p, "/connections/default/tickets/4251", nil)

	// `get` prints what the server serves, with flags before or after the arguments.
	for _, args := range [][]string{
		{"get", "--data", data, "ticket", "4242"},
		{"get", "--data", data, "ticket", "4242", "--connection", "default"},
		{"get", "ticket", "4242", "--data", data, "--connection", "default"},
	} {
		out, errOut, code := runCLI(t, nil, args...)
		if code != 0 {
			t.Errorf("halosync %s: exit %d, stderr %s", strings.Join(args, " "), code, errOut)
			continue
		}
		got, err := decode([]byte(out))
		if err != nil {
			t.Errorf("halosync %s: %v", strings.Join(args, " "), err)
			continue
		}
		if !reflect.DeepEqual(got, full) {
			t.Errorf("halosync %s printed\n%v\nthe server serves\n%v", strings.Join(args, " "), got, full)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "--data", data, "ticket", "99999"}, "no ticket 99999 in connection default"},
		{[]string{"get", "--data", data, "ticket", "4242", "--connection", "other"}, `no connection "other": the configuration has "default"`},
		{[]string{"get", "--data", data, "widget", "1"}, `unknown kind "widget"`},
		{[]string{"get", "--data", data, "action", "3"}, "--ticket"},
		{[]string{"get", "--data", data, "ticket"}, "KIND and ID"},
		{[]string{"get", "--data", data, "ticket", "4242", "extra"}, `unexpected ["extra"]`},
		{[]string{"get", "--data", data, "ticket", "4242", "--connection", "default", "extra"}, `unexpected ["extra"]`},
		{[]string{"get", "--data", filepath.Join(data, "elsewhere"), "ticket", "4242"}, "no halosync database at " + filepath.Join(data, "elsewhere", "halosync.db")},
	} {
		out, errOut, code := runCLI(t, nil, c.args...)
		if code == 0 {
			t.Errorf("halosync %s: exit 0, stdout %s; want an error", strings.Join(c.args, " "), out)
		}
		if !strings.Contains(errOut, c.want) {
			t.Errorf("halosync %s: stderr %q, want it to say %q", strings.Join(c.args, " "), errOut, c.want)
		}
		if out != "" {
			t.Errorf("halosync %s: printed %q on stdout besides the error", strings.Join(c.args, " "), out)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "elsewhere")); err == nil {
		t.Error("get with a --data where serve never ran created it")
	}
}

// TestKill9LosesNothingAcknowledged sends a burst of deliveries, kills serve with SIGKILL
// as soon as the last one is answered, and checks that a restart applies every delivery
// that was answered 200, including those still queued at the kill.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	const (
		n           = 300
		concurrency = 16
		attempts    = 3
	)
	// A short visibility timeout: the messages the killed process had received but not
	// finished come back after it, not after the default 30 s.
	cfg := filepath.Join(t.TempDir(), "halosync.yaml")
	writeFile(t, cfg, `
connections:
  - id: default
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["burst-password"]
queue:
  visibility_seconds: 2
  max_receive: 5
`)
	auth := authtest.Basic("halo", "burst-password")
	full := samples(t)["ticket-full"].body

	var (
		data     string
		accepted []int
		backlog  int
	)
	for attempt := 1; ; attempt++ {
		data = t.TempDir()
		p := startServe(t, nil, "--config", cfg, "--data", data)
		base := attempt * 100000
		accepted = burst(t, p.url, auth, full, base, n, concurrency)
		if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9: %v", err)
		}
		<-p.done
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("serve ended with %v, not by SIGKILL", p.cmd.ProcessState)
		}
		if len(accepted) != n {
			t.Errorf("attempt %d: %d of %d deliveries answered 200", attempt, len(accepted), n)
		}
		visible, inFlight, stored := inspect(t, filepath.Join(data, "halosync.db"), accepted)
		backlog = visible + inFlight
		t.Logf("attempt %d: %d deliveries answered 200; at the kill %d were stored, %d still queued (%d visible, %d in flight)",
			attempt, len(accepted), stored, backlog, visible, inFlight)
		if backlog > 0 {
			break
		}
		if attempt == attempts {
			t.Fatalf("after %d bursts the queue was always empty at the kill: the test never covered queued messages", attempts)
		}
	}

	p := startServe(t, nil, "--config", cfg, "--data", data)
	start := time.Now()
	missing := map[int]bool{}
	for _, id := range accepted {
		missing[id] = true
	}
	deadline := start.Add(30 * time.Second)
	for len(missing) > 0 {
		for id := range missing {
			status, m, err := getJSON(p, "/connections/default/tickets/"+strconv.Itoa(id))
			if err != nil {
				t.Fatalf("GET ticket %d: %v", id, err)
			}
			if status != http.StatusOK {
				continue
			}
			if f, _ := m["fields"].(map[string]any); f["summary"] != fmt.Sprintf("burst ticket %d", id) {
				t.Errorf("ticket %d: %v", id, m)
			}
			delete(missing, id)
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			ids := make([]int, 0, len(missing))
			for id := range missing {
				ids = append(ids, id)
			}
			sort.Ints(ids)
			t.Fatalf("%d tickets answered 200 before the kill are lost after the restart: %v", len(ids), ids)
		}
		time.Sleep(pollInterval)
	}
	readable := time.Since(start)

	// The restarted process processes exactly what was queued at the kill, once each.
	var st statusDoc
	for deadline := time.Now().Add(10 * time.Second); ; {
		st = status(t, p)
		if st.Queue.Visible+st.Queue.InFlight == 0 && st.count("ChangesApplied", "*") >= int64(backlog) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained after the restart: %+v", st)
		}
		time.Sleep(pollInterval)
	}
	t.Logf("after the restart: all %d tickets readable within %v; %d queued changes processed (%d applied, %d duplicate: applied before the kill but not yet deleted)",
		len(accepted), readable.Round(time.Millisecond), st.count("ChangesApplied", "*"), st.count("ChangesApplied", "applied"), st.count("ChangesApplied", "duplicate"))
	if got := st.count("ChangesApplied", "*"); got != int64(backlog) {
		t.Errorf("the restarted server processed %d changes, %d were queued at the kill", got, backlog)
	}
	if got := st.count("ChangesFailed", "*"); got != 0 {
		t.Errorf("ChangesFailed = %d after the restart", got)
	}
}

// burst posts n distinct ticket deliveries (ids base+1 … base+n), concurrency at a time,
// and returns the ids answered 200.
func burst(t *testing.T, url, auth string, full []byte, base, n, concurrency int) []int {
	t.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = ticketDelivery(t, full, base+i+1)
	}
	var (
		mu       sync.Mutex
		accepted []int
		failures []string
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				status, b, err := post(url, "default", auth, bodies[i])
				mu.Lock()
				if err == nil && status == http.StatusOK {
					accepted = append(accepted, base+i+1)
				} else if len(failures) < 5 {
					failures = append(failures, fmt.Sprintf("ticket %d: %d %s %v", base+i+1, status, b, err))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if len(failures) > 0 {
		t.Logf("some deliveries were not accepted: %v", failures)
	}
	return accepted
}

// inspect opens the database of a dead server and tells what its queue holds and how many
// of ids are stored.
func inspect(t *testing.T, path string, ids []int) (visible, inFlight, stored int) {
	t.Helper()
	// A copy, claimed: Claim puts what the killed server's hand-off log held into the
	// table, where Stats counts it, and the restart still finds the files as they were.
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Dir(path))); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(filepath.Join(dir, filepath.Base(path)))
	if err != nil {
		t.Fatalf("open the database after the kill: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	visible, inFlight, err = db.Queue("changes", sqlite.QueueOptions{}).Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, f, err := db.Queue("changes-dlq", sqlite.QueueOptions{}).Stats(ctx); err != nil || v+f != 0 {
		t.Errorf("dead-letter queue after the kill: %d visible, %d in flight, %v", v, f, err)
	}
	store := db.Store()
	for _, id := range ids {
		if _, ok, err := store.Get(ctx, "default", change.Ticket, strconv.Itoa(id), ""); err != nil {
			t.Fatal(err)
		} else if ok {
			stored++
		}
	}
	return visible, inFlight, stored
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.TrimLeft(content, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestServeWithConfigFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	secretFile := filepath.Join(dir, "third-password")
	writeFile(t, secretFile, "third-password-from-a-file\n")
	cfg := filepath.Join(dir, "halosync.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
connections:
  - id: acme
    webhook:
      auth:
        - scheme: basic
          username: hook-user
          passwords: ["first-password", "env:HALOSYNC_E2E_SECOND_PASSWORD", "file:%s"]
      max_body_bytes: 65536
queue:
  visibility_seconds: 10
  max_receive: 3
`, secretFile))
	env := []string{"HALOSYNC_E2E_SECOND_PASSWORD=second-password"}
	p := startServe(t, env, "--config", cfg, "--data", data)
	if p.password != "" || strings.Contains(p.stdout.String(), "Basic auth") {
		t.Errorf("serve --config printed a generated password:\n%s", p.stdout.String())
	}
	if !strings.Contains(p.stdout.String(), fmt.Sprintf("webhook URL for connection %q: %s/webhooks/halo/acme", "acme", p.url)) {
		t.Errorf("no webhook URL for connection acme in:\n%s", p.stdout.String())
	}
	if !strings.Contains(p.stdout.String(), "read a ticket: "+p.url+"/connections/acme/tickets/{id}") {
		t.Errorf("the read hint does not name connection acme:\n%s", p.stdout.String())
	}
	if !strings.Contains(p.stdout.String(), "dashboard: "+p.url+"/dashboard?token=TOKEN") {
		t.Errorf("no dashboard address in:\n%s", p.stdout.String())
	}
	if _, err := os.Stat(filepath.Join(data, "webhook-password")); err == nil {
		t.Error("serve --config generated a password file")
	}

	body := samples(t)["ticket-full"].body
	// Rotation: every listed password is accepted at once.
	for _, pw := range []string{"first-password", "second-password", "third-password-from-a-file"} {
		mustPost(t, p.url, "acme", authtest.Basic("hook-user", pw), body, http.StatusOK)
	}
	for _, a := range []string{authtest.Basic("hook-user", "wrong-password"), authtest.Basic("halo", "first-password"), ""} {
		mustPost(t, p.url, "acme", a, body, http.StatusUnauthorized)
	}
	mustPost(t, p.url, "default", authtest.Basic("hook-user", "first-password"), body, http.StatusNotFound)
	mustPost(t, p.url, "acme", authtest.Basic("hook-user", "first-password"), bytes.Repeat([]byte(" "), 65537), http.StatusRequestEntityTooLarge)
	waitObject(t, p, "/connections/acme/tickets/4242", nil)

	out, errOut, code := runCLI(t, env, "get", "--config", cfg, "--data", data, "--connection", "acme", "ticket", "4242")
	if code != 0 {
		t.Fatalf("get --config: exit %d: %s", code, errOut)
	}
	if m, err := decode([]byte(out)); err != nil || m["connection"] != "acme" || m["id"] != "4242" {
		t.Errorf("get --config printed %s (%v)", out, err)
	}
}

func TestBadConfigurations(t *testing.T) {
	dir := t.TempDir()
	good := `
connections:
  - id: default
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["long-enough-password"]
`
	for _, c := range []struct {
		name, config string
		env          []string
		want         []string
	}{
		{"unknown key", good + "bogus_key: 1\n", nil, []string{"bogus_key", "invalid configuration"}},
		{"unknown nested key", strings.Replace(good, "username: halo", "username: halo\n          pasword: x", 1), nil, []string{"pasword"}},
		{"short password", strings.Replace(good, "long-enough-password", "short", 1), nil, []string{"shorter than 8"}},
		{"no connections", "connections: []\n", nil, []string{"no connections"}},
		{"unknown scheme", strings.Replace(good, "scheme: basic", "scheme: digest", 1), nil, []string{`unknown scheme "digest"`}},
		{"unset environment variable", strings.Replace(good, "long-enough-password", "env:HALOSYNC_E2E_UNSET_VARIABLE", 1), nil, []string{"HALOSYNC_E2E_UNSET_VARIABLE"}},
		{"unknown store driver", good + "store:\n  driver: postgres\n", nil, []string{`unknown driver "postgres"`}},
		{"not YAML", "connections: [", nil, []string{"invalid configuration"}},
		{"SQS queue without its dead-letter queue", good + "queue:\n  sqs: {url: https://sqs.example/q}\n", nil, []string{"queue.sqs needs url and dead_letter_url"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".yaml")
			writeFile(t, path, c.config)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			out, errOut, code := runCLI(t, c.env, "serve", "--config", path, "--data", filepath.Join(dir, "data"), "--addr", addr)
			if code == 0 {
				t.Fatalf("serve with a bad config exited 0; stdout %s", out)
			}
			if strings.Contains(out, "listening") {
				t.Errorf("serve with a bad config started listening:\n%s", out)
			}
			for _, w := range append(c.want, path) {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}

	_, errOut, code := runCLI(t, nil, "serve", "--config", filepath.Join(dir, "missing.yaml"), "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("serve with a missing config: exit %d, stderr %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	data := t.TempDir()
	out, errOut, code := runCLI(t, nil)
	if code == 0 {
		t.Error("halosync without arguments exited 0")
	}
	if !strings.Contains(errOut, "Usage:") || !strings.Contains(errOut, "halosync serve") || !strings.Contains(errOut, "halosync get") {
		t.Errorf("halosync without arguments: stderr %q, want the usage", errOut)
	}
	if out != "" {
		t.Errorf("halosync without arguments printed %q on stdout", out)
	}

	_, errOut, code = runCLI(t, nil, "frobnicate")
	if code == 0 || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "Usage:") {
		t.Errorf("halosync frobnicate: exit %d, stderr %q", code, errOut)
	}
	for _, h := range []string{"help", "--help", "-h"} {
		out, _, code := runCLI(t, nil, h)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("halosync %s: exit %d, stdout %q", h, code, out)
		}
	}
	for _, c := range [][]string{{"serve", "--help"}, {"serve", "-h"}, {"status", "--help"}} {
		out, errOut, code := runCLI(t, nil, c...)
		if code != 0 || !strings.Contains(out, "Usage: halosync "+c[0]) || !strings.Contains(out, "Example:") || !strings.Contains(out, "-data") || errOut != "" {
			t.Errorf("halosync %s: exit %d, stdout %q, stderr %q; want 0 and the usage with an example on stdout", strings.Join(c, " "), code, out, errOut)
		}
	}
	_, errOut, code = runCLI(t, nil, "serve", "--no-such-flag", "--data", data)
	if code == 0 || !strings.Contains(errOut, "no-such-flag") || !strings.Contains(errOut, "halosync serve --help") {
		t.Errorf("halosync serve --no-such-flag: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCLI(t, nil, "serve", "--log-level", "loud", "--data", data, "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(errOut, "--log-level") {
		t.Errorf("halosync serve --log-level loud: exit %d, stderr %q", code, errOut)
	}
}

// TestServeRefusesADataDirectoryInUse: a second serve on the same data directory exits
// with an error instead of taking the first one's queue (its messages in flight would be
// made visible and applied twice at once).
func TestServeRefusesADataDirectoryInUse(t *testing.T) {
	data := t.TempDir()
	startServe(t, nil, "--data", data)
	second := start(t, nil, "serve", "--addr", "127.0.0.1:0", "--data", data)
	if second.waitReady(t) {
		t.Fatal("a second serve started on a data directory in use")
	}
	if second.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(second.stderr.String(), "another halosync serve running on") {
		t.Fatalf("second serve: exit %d, stderr %q", second.cmd.ProcessState.ExitCode(), second.stderr.String())
	}
}
