// Package pollscenario holds the poller's end-to-end scenarios, each written once and run
// against both harnesses: internal/localserver runs them through `halosync serve` in
// process (the SQLite store and queue, the worker pump, the poller on a clock the test
// controls), internal/lambdae2e through the three Lambda bootstraps under the runtime
// interface emulator, with DynamoDB Local and the SQS stand-in (the poller on the system
// clock). A scenario makes a fake Halo tenant (halosim), has the harness run the pipeline
// with a connection pointing at it, changes the tenant, loses webhook deliveries, injects
// faults, runs polls and checks what they read and enqueued, the cursors, the counters,
// and that the copy converges with the tenant (converge.WantConverged). A scenario only
// one harness can run lives in that harness's package and uses Scenario the same way. It
// is test support, imported only by tests.
//
// Time. The poller decides by its clock whether a poll is due (docs/ARCHITECTURE.md, "The
// poller"). Where the harness runs the poller on the tenant's clock (ControlsClock), a
// scenario moves that clock on and lets the plan decide. A poller on the system clock
// cannot be moved on by minutes, so there a poll the plan would make later is forced (the
// scheduled event's detail {"force": true} in AWS), and the tenant's clock follows the
// system clock, moved ahead by Advance (Halo's clock ahead of ours loses nothing: the
// watermark is the earlier of the two).
package pollscenario

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/poller"
)

// Harness runs halosync's pipeline for a scenario: one per test, started once (a harness
// may restart its pipeline between steps of a scenario of its own).
type Harness interface {
	// TenantClock returns the clock the tenant runs on, with the poller's clock skew
	// ahead of it (negative: behind). It is called once, before Start.
	TenantClock(skew time.Duration) Clock
	// ControlsClock reports whether the poller reads the tenant's clock (plus the skew),
	// so that Clock.Advance moves both.
	ControlsClock() bool
	// Start runs the pipeline with the configuration document config. The poller first
	// runs at the first Poll.
	Start(t *testing.T, config string)
	// WebhookURL is where a connection's webhook deliveries are posted.
	WebhookURL(t *testing.T, conn string) string
	// Poll runs the poller's run loop once, as the schedule does (force false: each
	// connection's plan decides whether a poll or the reconcile is due) or forced, and
	// returns what it did for each connection. A run that fails as a whole fails the test.
	Poll(t *testing.T, force bool) []poller.ConnectionResult
	// Drain has the worker apply what is queued, until the queue is empty.
	Drain(t *testing.T)
	// Store reads the copy and the poller's cursors.
	Store() Store
	// WantHoldsOnly fails the test unless the copy's objects are exactly those expected.
	WantHoldsOnly(t *testing.T, exps []converge.Expectation)
	// WantNothingFailed fails the test if a change failed to apply or reached the
	// dead-letter queue.
	WantNothingFailed(t *testing.T)
	// Counts returns the pipeline's counters of the metric name. Where they arrive after
	// the run that counted them, it waits (bounded) until they sum to total.
	Counts(t *testing.T, name string, total int64) Counts
	// Logs returns the structured log records the pipeline wrote so far.
	Logs(t *testing.T) []Record
}

// Clock is the tenant's clock as the scenarios move it (*halosim.Clock is one).
type Clock interface {
	Now() time.Time
	Advance(d time.Duration) time.Time
}

// Store reads the copy and the poller's cursors; every store adapter provides it.
type Store interface {
	poller.Copy
	poller.Cursors
}

// Record is one structured log record: its keys (level, msg and attributes) as JSON.
type Record map[string]json.RawMessage

// Str returns a record's string value of key, or "".
func (r Record) Str(key string) string {
	var s string
	_ = json.Unmarshal(r[key], &s)
	return s
}
