package localserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/localserver"
)

// chromium finds a Chromium or Chrome to drive. Missing, the test fails under CI
// (scripts/test.sh installs the Debian package) and is skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH: scripts/test.sh installs it (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: apt-get install chromium to run the dashboard in a browser")
	return ""
}

// browser is a headless Chromium and what its pages logged wrong.
type browser struct {
	ctx      context.Context // without a deadline, as chromedp asks; each step has its own
	t        *testing.T
	mu       sync.Mutex
	problems []string // console errors and warnings, exceptions, error and warning log entries
}

// startBrowser starts Chromium for the test; it is stopped when the test ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	b := &browser{ctx: ctx, t: t}
	// Listen starts the browser.
	err := chromedp.Listen(ctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range ev.Args {
					args = append(args, fmt.Sprintf("%s%s", a.Value, a.Description))
				}
				p = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				p += " " + ev.ExceptionDetails.Exception.Description
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				p = fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if p != "" {
			b.mu.Lock()
			b.problems = append(b.problems, p)
			b.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// step is a context for one step, bounded by d.
func (b *browser) step(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	b.t.Cleanup(cancel)
	return ctx
}

// reportProblems fails the test for every problem the page logged but those expected
// accepts.
func (b *browser) reportProblems(expected func(string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		if expected == nil || !expected(p) {
			b.t.Errorf("the page logged %s", p)
		} else {
			b.t.Logf("the page logged, as expected: %s", p)
		}
	}
}

// keepArtifact keeps a file after the run, as the test's artifact: .artifacts/ at the
// repository's root (ignored by git, removed by make clean).
func keepArtifact(t *testing.T, name string, data []byte) {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", ".artifacts", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// TestDashboardInABrowser opens the dashboard in headless Chromium as an operator does
// (the printed address with the token), sends a delivery, and watches it appear.
func TestDashboardInABrowser(t *testing.T) {
	s := startServer(t, testConfig())
	b := startBrowser(t)
	step := b.step

	// The address serve prints, with the token: the page is served after the redirect
	// that moves the token into the cookie.
	ctx := step(30 * time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.url+"/dashboard?token="+url.QueryEscape(readToken)),
		chromedp.WaitVisible(`section.connection[data-connection="default"]`),
	); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if location != s.url+"/dashboard" {
		t.Errorf("the page is at %s, want %s/dashboard (the token out of the address)", location, s.url)
	}
	if state, err := chromedp.Run(ctx, chromedp.Text(`#state`)); err != nil || !strings.HasPrefix(state, "updated") {
		t.Errorf("state line %q (%v), want it updated", state, err)
	}

	// The page follows the server's event stream rather than polling.
	if err := chromedp.Do(step(10*time.Second), chromedp.Poll[chromedp.Void](`document.getElementById("state").textContent.includes("live")`)); err != nil {
		t.Fatalf("the page is not following the event stream: %v", err)
	}

	full := sampleBody(t, "ingest-ticket-full.json")
	const id = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10"
	s.deliverOK(t, full)
	answered := time.Now()
	// The worker's record is pushed to the page as it is written.
	row := `tr.delivery[data-delivery-id="` + id + `"]`
	if err := chromedp.Do(step(2*time.Second), chromedp.WaitVisible(row)); err != nil {
		t.Fatalf("delivery %s not on the page within 2 s of its answer: %v", id, err)
	}
	t.Logf("the delivery appeared %v after its answer", time.Since(answered).Round(10*time.Millisecond))
	ctx = step(30 * time.Second)
	text, err := chromedp.Run(ctx, chromedp.Text(row))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "ticket 4242") || !strings.Contains(text, "applied") {
		t.Errorf("the delivery's row reads %q, want ticket 4242 applied", text)
	}

	// A refused delivery is listed as rejected, with its reason.
	if r := s.deliver(t, "default", authtest.Basic(user, "a-guessed-password-7"), full); r.status != http.StatusUnauthorized {
		t.Fatalf("a wrong password answered %d", r.status)
	}
	answered = time.Now()
	rejected := `section[data-connection="default"] tr.delivery[data-outcome="rejected"]`
	if err := chromedp.Do(step(2*time.Second), chromedp.WaitVisible(rejected)); err != nil {
		t.Fatalf("the refused delivery is not on the page within 2 s of its answer: %v", err)
	}
	t.Logf("the refusal appeared %v after its answer", time.Since(answered).Round(10*time.Millisecond))
	if text, err := chromedp.Run(ctx, chromedp.Text(rejected)); err != nil || !strings.Contains(text, "rejected") || !strings.Contains(text, "credentials_wrong") {
		t.Errorf("the refusal's row reads %q (%v), want rejected for credentials_wrong", text, err)
	}
	if text, err := chromedp.Run(ctx, chromedp.Text(`section[data-connection="default"]`)); err != nil || strings.Contains(text, "a-guessed-password-7") {
		t.Errorf("the page shows the guessed password (%v)", err)
	}

	// The copy's objects per kind, from the status the stream pushes.
	ticket := `section[data-connection="default"] dl[data-objects] dd[data-kind="ticket"] .n`
	if err := chromedp.Do(step(5*time.Second), chromedp.Poll[chromedp.Void](`(document.querySelector('`+ticket+`') || {}).textContent === "1"`)); err != nil {
		t.Errorf("the objects per kind do not show the ticket: %v", err)
	}
	// The trends' charts are drawn, with the minute's deliveries.
	charts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('section[data-connection="default"] svg.chart').length`))
	if err != nil || charts != 2 {
		t.Errorf("%d charts on the page (%v), want 2", charts, err)
	}
	if err := chromedp.Do(step(20*time.Second), chromedp.Poll[chromedp.Void](`document.querySelectorAll('section[data-connection="default"] svg.chart rect').length > 0`)); err != nil {
		t.Errorf("the deliveries chart draws no bar: %v", err)
	}
	applied, err := chromedp.Run(ctx, chromedp.Text(`section[data-connection="default"] dl[data-counter="ChangesApplied"]`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(applied, "applied") {
		t.Errorf("the ChangesApplied counter reads %q", applied)
	}
	webhook, err := chromedp.Run(ctx, chromedp.Text(`section[data-connection="default"] dd[data-fact="webhook"]`))
	if err != nil || !strings.Contains(webhook, "not managed") {
		t.Errorf("the webhook's health reads %q (%v), want not managed", webhook, err)
	}
	endpoints, err := chromedp.Run(ctx, chromedp.Text(`section[data-connection="default"] dd[data-fact="endpoints"]`))
	if err != nil || !strings.HasPrefix(endpoints, "primary ") || strings.HasPrefix(endpoints, "primary 0") || !strings.HasSuffix(endpoints, "backup 0") {
		t.Errorf("the deliveries by endpoint read %q (%v), want some through the primary, none through the backup", endpoints, err)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	keepArtifact(t, "dashboard.png", png)

	b.reportProblems(nil)
}

// With every event stream taken, the page polls: a delivery still shows within the
// polling period, and the page says it is polling.
func TestDashboardPollsWithoutTheStream(t *testing.T) {
	s := startServer(t, testConfig())
	for range localserver.MaxEventStreams {
		st := s.openStream(t, "Authorization", bearer)
		st.next(t, "status", pollTimeout, nil)
	}
	b := startBrowser(t)
	if err := chromedp.Do(b.step(30*time.Second),
		chromedp.Navigate(s.url+"/dashboard?token="+url.QueryEscape(readToken)),
		chromedp.WaitVisible(`section.connection[data-connection="default"]`),
		chromedp.Poll[chromedp.Void](`document.getElementById("state").textContent.includes("polling")`),
	); err != nil {
		t.Fatalf("open the dashboard without a stream: %v", err)
	}
	const id = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10"
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	s.waitDeliveries(t, "default", id)
	// One polling period, and the fetch and rendering.
	if err := chromedp.Do(b.step(3*time.Second), chromedp.WaitVisible(`tr.delivery[data-delivery-id="`+id+`"]`)); err != nil {
		t.Fatalf("the delivery is not on the polling page within 3 s of its record: %v", err)
	}
	// The refused stream is the browser's to report, the only thing it may report.
	b.reportProblems(func(p string) bool { return strings.Contains(p, "/events") || strings.Contains(p, "EventSource") })
}

// A polled connection with a managed webhook: the page shows its backfill per kind, the
// webhook's last check and the fallback it engaged.
func TestDashboardShowsAPolledConnection(t *testing.T) {
	_, cfg := polledConfig(t)
	s := startServer(t, cfg)
	if _, err := s.srv.Pipeline().Poller.Run(t.Context(), true, nil); err != nil {
		t.Fatal(err)
	}
	s.waitStatus(t, pollTimeout, "the queue drained", drained)
	b := startBrowser(t)
	ctx := b.step(30 * time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.url+"/dashboard?token="+url.QueryEscape(readToken)),
		chromedp.WaitVisible(`section[data-connection="default"] tr[data-backfill="ticket"]`),
	); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	// The page redraws a connection whole on each status, so each fact is read where it
	// stands at one moment, and waited for: the first status may predate the poll's end.
	for sel, want := range map[string]string{
		`section[data-connection="default"] tr[data-backfill="ticket"]`: "done",
		`section[data-connection="default"] dd[data-fact="mode"]`:       "hybrid",
		`section[data-connection="default"] dd[data-fact="webhook"]`:    "unhealthy, checked",
		`section[data-connection="default"] dd[data-fact="fallback"]`:   "since",
	} {
		js := fmt.Sprintf(`((document.querySelector(%q) || {}).textContent || "").includes(%q)`, sel, want)
		if err := chromedp.Do(b.step(5*time.Second), chromedp.Poll[chromedp.Void](js)); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
			t.Errorf("%s reads %q, want %q in it (%v)", sel, text, want, err)
		}
	}
	b.reportProblems(nil)
}
