package lambdae2e

// The poller through the emulated Lambda path: the scenarios of package pollscenario
// (which internal/localserver runs through `halosync serve`), with the poller function's
// bootstrap under the runtime interface emulator, its first invoke (the warm-up) the first
// run, each invoke a scheduled event (the sample's, under a new id) or, where a scenario
// forces a poll, one whose detail is {"force": true}; the poller reads the scenario's fake
// Halo tenant and enqueues on the SQS stand-in. The event source mapping (played) has the
// worker function apply what was enqueued to DynamoDB Local; webhook deliveries go through
// API Gateway (played in-test, as the convergence run plays it) into the ingest function.
//
// The poller function reads the system clock (its bootstrap has no clock to inject), as
// the worker does for the webhook heartbeat, so the tenant's clock follows the system
// clock (systemClock) and a poll the plan would make minutes later is forced. The
// fallback to the short poll interval when the webhooks fall silent, and back again, is
// therefore not run here: it is about the schedule's own decisions (Plan.Due and
// Plan.After) over time, in whole minutes (the fallback interval is at least a minute,
// the silence window several), and forcing the invoke bypasses exactly those decisions,
// so on this path it would need several minutes of real time per run. It runs through
// serve on a controlled clock (localserver's TestPollFallbackEngagesAndRecovers) and in
// the poller's unit tests (internal/poller/schedule_test.go: TestFallbackEngagesAndRecovers,
// TestRunnerFallsBackWhenWebhooksStopAndReturns). So do the other scenarios that need the
// poller's clock or process: a day until the next reconcile, a crash mid-backfill, and
// the lists that change while they are read in ways only an in-process hook can time.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/halotest/pollscenario"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/poller"
)

// pollDrain bounds each wait for the queue to empty.
const pollDrain = 30 * time.Second

// pollHarness is pollscenario's Harness through the emulated Lambda path: one stack, the
// worker function and its played mapping, and, once needed, the poller and ingest
// functions.
type pollHarness struct {
	s       *stack
	cfgFile string
	worker  *function
	player  *esmPlayer
	poller  *function        // started by the first Poll: its warm-up invoke is the first run
	ingest  *function        // started by the first WebhookURL
	gw      *httptest.Server // API Gateway, played, in front of ingest
	sample  []byte           // the sample scheduled event, as EventBridge sends it
	event   events.EventBridgeEvent
	runs    int
}

func (h *pollHarness) TenantClock(skew time.Duration) pollscenario.Clock {
	return &systemClock{offset: -skew}
}

func (h *pollHarness) ControlsClock() bool { return false }

func (h *pollHarness) Start(t *testing.T, doc string) {
	t.Helper()
	h.s = newStack(t, "poll")
	h.cfgFile = filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(h.cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	h.worker = startConfigured(t, h.s, "worker", h.cfgFile, events.SQSEvent{Records: []events.SQSMessage{}})
	h.player = newPlayer(t, h.s.queue, h.worker, h.s.player.arn)
	h.player.wait = 200 * time.Millisecond
	h.sample = sampleEvent(t, "poller-schedule.json")
	if err := json.Unmarshal(h.sample, &h.event); err != nil {
		t.Fatal(err)
	}
}

func (h *pollHarness) WebhookURL(t *testing.T, conn string) string {
	t.Helper()
	if h.gw == nil {
		h.ingest = startConfigured(t, h.s, "ingest", h.cfgFile, warmupIngest)
		h.gw = httptest.NewServer(&apiGateway{t: t, fn: h.ingest})
		t.Cleanup(h.gw.Close)
	}
	return h.gw.URL + ingest.PathPrefix + conn
}

// Poll invokes the poller with a scheduled event: the sample itself the first time (the
// function's warm-up, so its cold start is in it), then under a new id; forced, with the
// detail {"force": true}.
func (h *pollHarness) Poll(t *testing.T, force bool) []poller.ConnectionResult {
	t.Helper()
	h.runs++
	ev := h.event
	var payload any = h.sample
	if h.runs > 1 || force {
		ev.ID, ev.Time = fmt.Sprintf("run-%d-%s", h.runs, strconv.FormatInt(time.Now().UnixNano(), 36)), time.Now().UTC().Truncate(time.Second)
		if force {
			ev.Detail = json.RawMessage(`{"force": true}`)
		}
		payload = ev
	}
	var res awslambda.PollResult
	if h.poller == nil {
		var out []byte
		h.poller, out = startPollerFunction(t, h.s, h.cfgFile, "info", payload)
		res = decodeAs[awslambda.PollResult](t, h.poller, out)
	} else {
		res = invokeAs[awslambda.PollResult](t, h.poller, payload)
	}
	if res.EventID != ev.ID {
		t.Fatalf("run %d answered %+v for event %s", h.runs, res, ev.ID)
	}
	return res.Connections
}

func (h *pollHarness) Drain(t *testing.T) {
	t.Helper()
	h.player.runUntil(pollDrain, "the queue drained", func() bool { return h.s.depth(t, h.s.qURL) == 0 })
}

func (h *pollHarness) Store() pollscenario.Store { return h.s.store }

func (h *pollHarness) WantHoldsOnly(t *testing.T, exps []converge.Expectation) {
	t.Helper()
	wantTableHoldsOnly(t, h.s, exps)
}

func (h *pollHarness) WantNothingFailed(t *testing.T) {
	t.Helper()
	for id, n := range h.player.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, truncate(h.player.bodies[id], 300))
	}
	if d := h.s.depth(t, h.s.dlqURL); d != 0 {
		t.Errorf("%d messages on the dead-letter queue", d)
	}
}

// functions are the harness's functions started so far.
func (h *pollHarness) functions() []*function {
	var out []*function
	for _, f := range []*function{h.poller, h.worker, h.ingest} {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// Counts sums the functions' EMF output, polling until the counts of name sum to total
// (bounded: a function's output reaches the file through the emulator, possibly just
// after the invoke returned).
func (h *pollHarness) Counts(t *testing.T, name string, total int64) pollscenario.Counts {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := pollscenario.Counts{}
		for _, f := range h.functions() {
			c, err := emfCounts(f.stdout)
			if err != nil {
				t.Fatalf("%s output: %v", f.name, err)
			}
			for m, n := range c.only(name) {
				got[m] += n
			}
		}
		if got.Total() == total || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond) // polling, bounded by deadline
	}
}

// Logs reads the functions' slog records (the JSON lines with a level).
func (h *pollHarness) Logs(t *testing.T) []pollscenario.Record {
	t.Helper()
	var out []pollscenario.Record
	for _, f := range h.functions() {
		lines, err := jsonLines(f.stdout)
		if err != nil {
			t.Fatalf("%s output: %v", f.name, err)
		}
		for _, l := range lines {
			if _, ok := l["level"]; ok {
				out = append(out, l)
			}
		}
	}
	return out
}

// systemClock is the tenant's clock on this path: the system clock, which the poller
// function reads, shifted by an offset (Halo's clock minus ours) that Advance moves on.
type systemClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *systemClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *systemClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
	return c.Now()
}

// startPollerFunction runs the poller's bootstrap under its own emulator on the stack's
// queue and table, configured by cfgFile, at the log level given (and with any extra
// environment), with warmup (a scheduled event: the first run) as its warm-up invoke, and
// returns that invoke's answer too.
func startPollerFunction(t *testing.T, s *stack, cfgFile, level string, warmup any, extraEnv ...string) (*function, []byte) {
	t.Helper()
	bins := build(t)
	return startFunction(t, bins.rie, "poller", bins.bootstrap["poller"], append(s.env(t, "poller", cfgFile, level), extraEnv...), warmup)
}

// ---- the scenarios ----

func TestPollFindsWhatTheWebhooksLost(t *testing.T) {
	t.Parallel()
	pollscenario.FindsWhatTheWebhooksLost(t, &pollHarness{})
}

func TestPollFindsDeletesOfEveryKind(t *testing.T) {
	t.Parallel()
	pollscenario.FindsDeletesOfEveryKind(t, &pollHarness{})
}

func TestPollBackfillPagesThroughTheCap(t *testing.T) {
	t.Parallel()
	for _, pageCap := range []int{100, 40} {
		t.Run(fmt.Sprintf("cap %d", pageCap), func(t *testing.T) {
			t.Parallel()
			pollscenario.PagesThroughTheCap(t, &pollHarness{}, pageCap)
		})
	}
}

// A 429 storm the client rides out waiting for real: 8 requests per rolling 2 seconds,
// answered with a Retry-After of 1 or 2 s, over a backfill of a few dozen requests.
func TestPollBackfillRidesOutA429Storm(t *testing.T) {
	t.Parallel()
	pollscenario.RidesOutA429Storm(t, &pollHarness{}, pollscenario.Storm{Clients: 3, RateLimit: 8, Window: 2 * time.Second})
}

// A failed page answered 400 once (the client does not retry it); a page that fails with
// 5xx until the client gives up runs through serve only, where the client's backoff
// sleeps on the tenant's clock: here it would take half a minute of real time.
func TestPollBackfillResumesAfterAFailedPage(t *testing.T) {
	t.Parallel()
	pollscenario.ResumesAfterAFailedPage(t, &pollHarness{}, pollscenario.PageFailure{
		Status: http.StatusBadRequest, Attempts: 1, Class: haloapi.ErrPermanent})
}

// Clock skew: the poller function runs on the system clock, which the test cannot move,
// so the tenant's clock is shifted instead.
func TestPollSkewLosesNothing(t *testing.T) {
	t.Parallel()
	for _, skew := range []time.Duration{2 * time.Minute, -2 * time.Minute} {
		t.Run(fmt.Sprintf("ours %+v", skew), func(t *testing.T) {
			t.Parallel()
			pollscenario.SkewLosesNothing(t, &pollHarness{}, skew)
		})
	}
}

func TestPollNotesOfADeletedTicket(t *testing.T) {
	t.Parallel()
	pollscenario.NotesOfADeletedTicket(t, &pollHarness{})
}

func TestPollReconcileKeepsALiveTicketWhileTheListShifts(t *testing.T) {
	t.Parallel()
	pollscenario.ReconcileKeepsALiveTicketWhileTheListShifts(t, &pollHarness{})
}
