package localserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/verify"
)

// statusFeed is a stand-in for the server's /status and /events beside the real page: its
// /status answers the first document for good, so whatever the page shows after it came
// through the event stream.
type statusFeed struct {
	first  []byte
	pushes chan []byte
	mu     sync.Mutex
	opened int // event streams opened
}

func newStatusFeed(t *testing.T, first localserver.Report) *statusFeed {
	t.Helper()
	doc, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	return &statusFeed{first: doc, pushes: make(chan []byte)}
}

func (f *statusFeed) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /dashboard", localserver.DashboardPage())
	mux.Handle("GET /dashboard/{asset}", localserver.DashboardPage())
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(f.first)
	})
	mux.HandleFunc("GET /deliveries/recent", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write([]byte("[]"))
	})
	mux.HandleFunc("GET /trends", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write([]byte(`{"minutes":[]}`))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		rc := http.NewResponseController(w)
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", f.first); err != nil || rc.Flush() != nil {
			return
		}
		f.mu.Lock()
		f.opened++
		f.mu.Unlock()
		for {
			select {
			case <-r.Context().Done():
				return
			case doc := <-f.pushes:
				if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", doc); err != nil || rc.Flush() != nil {
					return
				}
			}
		}
	})
	return mux
}

// push sends a status event to the open stream.
func (f *statusFeed) push(t *testing.T, r localserver.Report) {
	t.Helper()
	doc, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case f.pushes <- doc:
	case <-time.After(10 * time.Second):
		t.Fatal("no event stream took the status within 10 s")
	}
}

// verifiedReport is a status of two connections, "default" verified, "other" not.
func verifiedReport(v *verify.Report) localserver.Report {
	conn := func(v *verify.Report) localserver.ConnectionReport {
		return localserver.ConnectionReport{SyncMode: "hybrid", Polled: true, Errors: map[string]localserver.LabelCounts{}, Verification: v}
	}
	return localserver.Report{
		Counters:     []metrics.Entry{},
		Connections:  []string{"default", "other"},
		ByConnection: map[string]localserver.ConnectionReport{"default": conn(v), "other": conn(nil)},
	}
}

// TestDashboardShowsVerification: a status carrying a connection's verification shows it
// on the page, the estimate with its interval, then per kind checked, equal, differing by
// cause, repaired and the last check; a new status through the event stream redraws it,
// and a connection without verification shows none.
func TestDashboardShowsVerification(t *testing.T) {
	checked := time.Now().Add(-2 * time.Minute).UTC()
	first := &verify.Report{
		WindowHours: 24,
		All: verify.KindReport{Checked: 1500, Equal: 1494, Differing: map[string]int{"fields": 1, "stale": 2, "missing": 1, "ahead": 2},
			Repaired: 6, Estimate: 0.9962, Low: 0.98934, High: 0.99919, LastCheckedAt: checked},
		Kinds: map[string]verify.KindReport{
			"ticket": {Checked: 1200, Equal: 1195, Differing: map[string]int{"fields": 1, "stale": 2, "ahead": 2}, Repaired: 5,
				Estimate: 0.9958, Low: 0.9903, High: 0.9982, LastCheckedAt: checked},
			"action": {Checked: 300, Equal: 299, Differing: map[string]int{"missing": 1}, Repaired: 1,
				Estimate: 0.9967, Low: 0.9814, High: 0.9994, LastCheckedAt: checked},
		},
	}
	feed := newStatusFeed(t, verifiedReport(first))
	srv := httptest.NewServer(feed.handler())
	t.Cleanup(srv.Close)

	b := startBrowser(t)
	ctx := b.step(30 * time.Second)
	const panel = `section[data-connection="default"] div[data-verification]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/dashboard"),
		chromedp.WaitVisible(panel),
		chromedp.Poll[chromedp.Void](`document.getElementById("state").textContent.includes("live")`),
	); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got, want := text(panel+` [data-verify="estimate"]`), "99.6% equal (98.9–99.9%, 95%)"; got != want {
		t.Errorf("the estimate reads %q, want %q", got, want)
	}
	summary := text(panel + ` p.verify-summary`)
	for _, want := range []string{"of 1500 checked over the last 24 h", "differing: missing 1, stale 2, ahead 2, fields 1", "repaired 6", "last check ", "min ago)"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the summary reads %q, want %q in it", summary, want)
		}
	}
	cells := func(kind string) []string {
		t.Helper()
		sel := panel + ` tr[data-verify-kind="` + kind + `"] td`
		out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll(%q)].map((td) => td.textContent)`, sel)))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for kind, want := range map[string][]string{
		"ticket": {"tickets", "1200", "1195", "99.5% equal (99.0–99.8%, 95%)", "stale 2, ahead 2, fields 1", "5"},
		"action": {"notes", "300", "299", "99.6% equal (98.1–99.9%, 95%)", "missing 1", "1"},
	} {
		got := cells(kind)
		if len(got) != len(want)+1 || strings.Join(got[:len(want)], "|") != strings.Join(want, "|") || !strings.Contains(got[len(want)], "min ago") {
			t.Errorf("the %s row reads %q, want %q and the last check", kind, got, want)
		}
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('section[data-connection="other"] [data-verification]').length`)); err != nil || n != 0 {
		t.Errorf("connection other, without verification, shows %d panels (%v), want none", n, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	keepArtifact(t, "dashboard-verification.png", png)

	// A new status through the event stream: every difference repaired, the estimate 100%.
	clean := &verify.Report{WindowHours: 6,
		All: verify.KindReport{Checked: 1400, Equal: 1400, Estimate: 1, Low: 0.99727, High: 1, LastCheckedAt: checked},
		Kinds: map[string]verify.KindReport{
			"ticket": {Checked: 1400, Equal: 1400, Estimate: 1, Low: 0.99727, High: 1, LastCheckedAt: checked},
		},
	}
	feed.push(t, verifiedReport(clean))
	js := fmt.Sprintf(`((document.querySelector(%q) || {}).textContent || "") === %q`, panel+` [data-verify="estimate"].good`, "100% equal (99.7–100%, 95%)")
	if err := chromedp.Do(b.step(5*time.Second), chromedp.Poll[chromedp.Void](js)); err != nil {
		t.Errorf("after a new status the estimate reads %q, want 100%% equal (99.7–100%%, 95%%) (%v)", text(panel+` [data-verify="estimate"]`), err)
	}
	if summary := text(panel + ` p.verify-summary`); !strings.Contains(summary, "over the last 6 h; differing: none; repaired 0") {
		t.Errorf("after a new status the summary reads %q", summary)
	}
	if got := cells("action"); len(got) != 0 {
		t.Errorf("a kind the new status does not carry still has a row: %q", got)
	}

	// A status without verification: the panel goes, the connection stays.
	feed.push(t, verifiedReport(nil))
	if err := chromedp.Do(b.step(5*time.Second), chromedp.Poll[chromedp.Void](
		`document.querySelector('section[data-connection="default"]') !== null && document.querySelector('section[data-connection="default"] [data-verification]') === null`)); err != nil {
		t.Errorf("the panel stays after a status without verification: %v", err)
	}
	feed.mu.Lock()
	opened := feed.opened
	feed.mu.Unlock()
	if opened != 1 {
		t.Errorf("the page opened %d event streams, want 1 (the updates came through it)", opened)
	}
	b.reportProblems(nil)
}
