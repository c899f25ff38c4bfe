package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/logtest"
	"github.com/halosync/halosync/internal/metrics"
)

// throttled is a handler over edgeConfig, each connection throttled after failures
// failed authentications per window, on a clock the test moves.
type throttled struct {
	h      *ingest.Handler
	q      *recorder
	counts *metrics.Memory
	logs   *logtest.Buffer
	now    time.Time
}

func newThrottled(t *testing.T, failures, windowSeconds int) *throttled {
	t.Helper()
	cfg := edgeConfig()
	for i := range cfg.Connections {
		cfg.Connections[i].Webhook.AuthThrottle = config.AuthThrottle{Failures: failures, WindowSeconds: windowSeconds}
	}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	th := &throttled{q: &recorder{}, counts: metrics.NewMemory(), logs: &logtest.Buffer{}, now: time.Date(2026, 9, 25, 12, 0, 0, 0, time.UTC)}
	th.h = ingest.New(conns, th.q, th.counts, slog.New(slog.NewJSONHandler(th.logs, nil)))
	th.h.SetClock(func() time.Time { return th.now })
	return th
}

func (th *throttled) post(conn, ip, password string) ingest.Response {
	return th.h.Handle(context.Background(), ingest.Request{Connection: conn, Method: "POST", SourceIP: ip, Body: []byte(ticketBody),
		Header: map[string]string{"content-type": "application/json", "authorization": authtest.Basic(user, password)}})
}

func (th *throttled) rejected(conn, reason string) int64 {
	return th.counts.Value(metrics.Metric{Name: metrics.DeliveriesRejected, Connection: conn, Label: reason})
}

func (th *throttled) lines(msg string) int {
	return strings.Count(th.logs.String(), `"msg":"`+msg+`"`)
}

func wantThrottled(t *testing.T, r ingest.Response, retryAfter string) {
	t.Helper()
	var body struct{ Error string }
	_ = json.Unmarshal(r.Body, &body)
	if r.Status != 429 || body.Error != ingest.CodeTooManyFailures || r.Header["retry-after"] != retryAfter {
		t.Fatalf("answer %d %v %s, want 429 %s with Retry-After %s", r.Status, r.Header, r.Body, ingest.CodeTooManyFailures, retryAfter)
	}
}

// TestFailedAuthenticationsThrottleTheSource: after the limit of failures in a window, the
// source is refused (429, Retry-After) whatever it sends, right credentials too, for a
// window; other sources are not, and the source is served again once the window has
// passed.
func TestFailedAuthenticationsThrottleTheSource(t *testing.T) {
	th := newThrottled(t, 3, 60)
	const ip = "2001:db8::7"
	for i := range 3 {
		if r := th.post("basic", ip, "guess"); r.Status != 401 {
			t.Fatalf("guess %d: %d %s, want 401", i, r.Status, r.Body)
		}
		th.now = th.now.Add(time.Second)
	}
	blockedAt := th.now.Add(-time.Second)
	wantThrottled(t, th.post("basic", ip, oldPass), "59")
	if resp, ok := th.h.Admit(context.Background(), ingest.Request{Connection: "basic", Method: "POST", SourceIP: ip,
		Header: map[string]string{"content-type": "application/json"}}); ok {
		t.Fatal("Admit let a throttled source in")
	} else {
		wantThrottled(t, resp, "59")
	}
	// The same /64 is the same source; another address and another connection are not.
	wantThrottled(t, th.post("basic", "2001:db8::ffff", oldPass), "59")
	if r := th.post("basic", "2001:db8:0:1::7", oldPass); r.Status != 200 {
		t.Fatalf("another source: %d %s, want 200", r.Status, r.Body)
	}
	if r := th.post("token", ip, oldPass); r.Status != 401 {
		t.Fatalf("another connection: %d %s, want 401", r.Status, r.Body)
	}
	th.now = blockedAt.Add(time.Minute - time.Millisecond)
	wantThrottled(t, th.post("basic", ip, oldPass), "1")
	th.now = blockedAt.Add(time.Minute)
	if r := th.post("basic", ip, oldPass); r.Status != 200 {
		t.Fatalf("after the window: %d %s, want 200", r.Status, r.Body)
	}
	if got := th.rejected("basic", "credentials_wrong"); got != 3 {
		t.Errorf("credentials_wrong counted %d, want 3", got)
	}
	if got := th.rejected("basic", ingest.ReasonAuthThrottled); got != 4 {
		t.Errorf("auth_throttled counted %d, want 4", got)
	}
	if got := th.lines("source throttled"); got != 1 {
		t.Errorf("%d lines say the source is throttled, want 1", got)
	}
	if len(th.q.msgs) != 2 {
		t.Errorf("%d messages enqueued, want the 2 genuine deliveries", len(th.q.msgs))
	}
}

// TestThrottleCountsGuessesOnly: failures spread wider than the window, and signed
// deliveries out of their timestamp window (made with a configured secret), never block.
func TestThrottleCountsGuessesOnly(t *testing.T) {
	th := newThrottled(t, 3, 60)
	for i := range 6 {
		if r := th.post("basic", "2001:db8::1", "guess"); r.Status != 401 {
			t.Fatalf("guess %d: %d, want 401", i, r.Status)
		}
		th.now = th.now.Add(31 * time.Second) // two per window
	}
	body := []byte(ticketBody)
	for i := range 6 {
		r := th.h.Handle(context.Background(), ingest.Request{Connection: "stdwh", Method: "POST", SourceIP: "2001:db8::1", Body: body,
			Header: stdSign(whsecOld, "msg_1", th.now.Add(-time.Hour), body)})
		if r.Status != 401 {
			t.Fatalf("late signature %d: %d %s, want 401", i, r.Status, r.Body)
		}
	}
	if got := th.rejected("basic", ingest.ReasonAuthThrottled) + th.rejected("stdwh", ingest.ReasonAuthThrottled); got != 0 {
		t.Errorf("auth_throttled counted %d, want 0", got)
	}
}

// TestDefaultThrottle: without settings, the 21st attempt within a minute is refused.
func TestDefaultThrottle(t *testing.T) {
	th := newThrottled(t, 0, 0)
	for i := range config.DefaultAuthFailures {
		if r := th.post("basic", "192.0.2.1", "guess"); r.Status != 401 {
			t.Fatalf("guess %d: %d, want 401", i, r.Status)
		}
	}
	wantThrottled(t, th.post("basic", "192.0.2.1", oldPass), "60")
}

// TestRejectionLinesAreLimited: every refusal is counted, but one source's are logged five
// to a window; the rest are summed up in one line when the next window begins.
func TestRejectionLinesAreLimited(t *testing.T) {
	th := newThrottled(t, 1000, 60)
	for range 50 {
		th.post("basic", "192.0.2.1", "guess")
	}
	th.post("basic", "192.0.2.2", "guess") // another source has its own share
	if got := th.rejected("basic", "credentials_wrong"); got != 51 {
		t.Fatalf("counted %d, want 51", got)
	}
	if got := th.lines("delivery rejected"); got != 6 {
		t.Fatalf("%d rejection lines, want 6", got)
	}
	th.now = th.now.Add(time.Minute)
	th.post("basic", "192.0.2.1", "guess")
	if got := th.lines("delivery rejected"); got != 7 {
		t.Fatalf("%d rejection lines after the window, want 7", got)
	}
	if !strings.Contains(th.logs.String(), `"msg":"delivery rejections not logged","connection":"basic","source_ip":"192.0.2.1"`) ||
		!strings.Contains(th.logs.String(), `"count":45`) {
		t.Fatalf("no summary of the 45 unlogged refusals:\n%s", logtest.Tail(th.logs.String(), 2000))
	}
	if strings.Contains(th.logs.String(), "guess") {
		t.Fatal("a password reached the log")
	}
}

// TestRememberedSourcesAreBounded: a flood of sources never grows the tracker beyond its
// bound; the least recently refused are forgotten first, and a forgotten source's unlogged
// refusals are still summed up.
func TestRememberedSourcesAreBounded(t *testing.T) {
	th := newThrottled(t, 1000, 60)
	th.h.LimitSources(100)
	for range 10 {
		th.post("basic", "192.0.2.1", "guess")
	}
	for i := range 1000 {
		th.post("basic", fmt.Sprintf("2001:db8:0:%x::1", i), "guess")
		if n := th.h.SourcesRemembered(); n > 100 {
			t.Fatalf("%d sources remembered, want at most 100", n)
		}
	}
	if !strings.Contains(th.logs.String(), `"source_ip":"192.0.2.1","since"`) {
		t.Fatal("the forgotten source's unlogged refusals were not summed up")
	}
}
