package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/metrics"
)

// Credentials of the load configuration's Basic authentication, and the read token it
// configures for the generator's reads (/status, the copy, delivery records); loopback
// only.
const (
	User      = "halo"
	Password  = "load-password"
	ReadToken = "halosync-load-read-token"
)

// ServeConfig is the configuration `halosync serve` runs under load: one connection,
// Basic authentication, no Halo API (so no polling), ReadToken for reads, the queue
// settings given.
// A maxBacklog of 0 leaves the key out: the default applies.
func ServeConfig(visibilitySeconds, maxBacklog int) string {
	cfg := fmt.Sprintf(`connections:
  - id: default
    webhook:
      auth:
        - scheme: basic
          username: %s
          passwords: [%q]
server:
  read_tokens: [%q]
queue:
  visibility_seconds: %d
`, User, Password, ReadToken, visibilitySeconds)
	if maxBacklog != 0 {
		cfg += fmt.Sprintf("  max_backlog: %d\n", maxBacklog)
	}
	return cfg
}

// Serve is a `halosync serve` process started by the load run.
type Serve struct {
	cmd  *exec.Cmd
	URL  string
	done chan struct{}
	Log  string // its stderr
}

// StartServe runs bin as `halosync serve` on a free loopback port with the data directory
// and configuration given, and returns once it listens.
func StartServe(ctx context.Context, bin, dataDir, cfgPath string) (*Serve, error) {
	logPath := filepath.Join(dataDir, "serve.log")
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", dataDir, "--config", cfgPath, "--log-level", "error")
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("loadgen: start %s serve: %w", bin, err)
	}
	s := &Serve{cmd: cmd, done: make(chan struct{}), Log: logPath}
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(s.done)
	}()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "halosync is listening on "); ok {
				found <- strings.TrimSpace(rest)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s.URL = <-found:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("loadgen: serve exited at start (log: %s)", logPath)
	case <-time.After(30 * time.Second):
		s.Kill()
		return nil, fmt.Errorf("loadgen: serve did not listen within 30 s (log: %s)", logPath)
	case <-ctx.Done():
		s.Kill()
		return nil, ctx.Err()
	}
}

// Kill ends the process with SIGKILL, as kill -9 does, and waits for it.
func (s *Serve) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Stop ends the process with SIGINT (a graceful shutdown) and waits for it; SIGKILL after
// 15 s.
func (s *Serve) Stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.Kill()
	}
}

// RSS is the process's resident set now and at its peak (Linux; zero elsewhere).
func (s *Serve) RSS() (now, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			now = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	return now, peak
}

// HTTP is a Target over a running `halosync serve`.
type HTTP struct {
	URL    string
	Client *http.Client
}

// NewHTTP returns a target for the server at url, with a client keeping enough idle
// connections for conns concurrent senders.
func NewHTTP(url string, conns int) *HTTP {
	tr := &http.Transport{MaxIdleConns: conns + 16, MaxIdleConnsPerHost: conns + 16}
	return &HTTP{URL: url, Client: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// Deliver POSTs body to the connection's webhook route.
func (h *HTTP) Deliver(ctx context.Context, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL+"/webhooks/halo/default", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.SetBasicAuth(User, Password)
	req.Header.Set("content-type", "application/json")
	resp, err := h.Client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Version reads the ticket through the server's read route.
func (h *HTTP) Version(ctx context.Context, id string) (int64, bool, error) {
	var o struct {
		Version int64 `json:"version"`
	}
	status, err := h.get(ctx, "/connections/default/tickets/"+id, &o)
	if err != nil || status == http.StatusNotFound {
		return 0, false, err
	}
	return o.Version, true, nil
}

// Processed sums the worker's outcome counters on /status.
func (h *HTTP) Processed(ctx context.Context) (int64, error) {
	var st struct {
		Counters []metrics.Entry `json:"counters"`
	}
	if _, err := h.get(ctx, "/status", &st); err != nil {
		return 0, err
	}
	var n int64
	for _, c := range st.Counters {
		if c.Name == metrics.ChangesApplied {
			n += c.Value
		}
	}
	return n, nil
}

// Recorded reports whether the server keeps a delivery record of the delivery: the
// worker has processed its change.
func (h *HTTP) Recorded(ctx context.Context, deliveryID string) (bool, error) {
	status, err := h.get(ctx, "/connections/default/deliveries/"+deliveryID, nil)
	return err == nil && status == http.StatusOK, err
}

// get reads a JSON answer into v (unless nil); 404 is returned as a status, not an error.
func (h *HTTP) get(ctx context.Context, path string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("authorization", "Bearer "+ReadToken)
	resp, err := h.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	case resp.StatusCode != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.StatusCode, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	case v == nil:
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", path, err)
	}
	return resp.StatusCode, nil
}
