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

// TestDashboardInABrowser opens the dashboard in headless Chromium as an operator does
// (the printed address with the token), sends a delivery, and watches it appear.
func TestDashboardInABrowser(t *testing.T) {
	exe := chromium(t)
	s := startServer(t, testConfig())

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string
	// Listen starts the browser, under a context without a deadline (as chromedp asks);
	// each step below has its own.
	err := chromedp.Listen(browser, func(ev any) {
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
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	step := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(browser, d)
		t.Cleanup(cancel)
		return ctx
	}

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

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// Kept after the run, as the test's artifact: .artifacts/ at the repository's root
	// (ignored by git, removed by make clean).
	shot, err := filepath.Abs(filepath.Join("..", "..", ".artifacts", "dashboard.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("the page logged %s", p)
	}
}
