package localserver_test

// The convergence run through `halosync serve`: the scenario of package converge (a fake
// Halo tenant changing while two webhooks deliver its changes, duplicated and out of
// order, full and event-only, which the worker fetches from the tenant's API, as `halosync
// serve` wires it with the connection's halo: settings); once the queue is drained, every
// object in the copy must equal the tenant's, field for field, and the store holds nothing
// else. internal/lambdae2e runs the same scenario through the emulated Lambda path. The
// server's pump applies changes while the tenant goes on changing, so fetches read it at
// various lags.

import (
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/metrics"
)

// ---- the serve path ----

// TestConvergesWithTheTenant runs the convergence scenario through the local server as
// `halosync serve` wires it (the SQLite store and queue, the pump, the Halo API client
// from the connection's halo: settings), over real HTTP.
func TestConvergesWithTheTenant(t *testing.T) {
	tenant, clock := converge.NewTenant(t)
	cfg, err := config.Parse(t.Context(), []byte(converge.Config(tenant.URL())), nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "halosync.db")
	// serve's wiring: localserver.Queues, the SQLite store and the Halo API client made by
	// haloapi.FromConfig.
	s := startServer(t, cfg, onFile(path), logTo(slog.LevelInfo, 8000),
		withHaloClient(func(c *connection.Connection) (*haloapi.Client, error) { return haloapi.FromConfig(c.Config.Halo, nil) }))
	cr := converge.NewRun(t, tenant, clock, s.url+"/webhooks/halo/default")

	start := time.Now()
	cr.Run(func() {}) // the pump works while the tenant keeps changing
	st := s.waitStatus(t, converge.Drain, "the queue drained", drained)
	t.Logf("generated, delivered and drained in %v", time.Since(start).Round(time.Millisecond))

	exps := converge.Expectations(t, tenant, cr.Sent)
	get := func(kind change.Kind, id, parentID string) (change.Object, bool, error) {
		return s.store.Get(t.Context(), "default", kind, id, parentID)
	}
	converge.WantConverged(t, exps, cr.Sent, get)
	wantNothingElse(t, path, exps)

	// The counters tell the same story: every change enqueued was applied once, some as
	// duplicates and some as stale, event-only ones were fetched, and nothing failed.
	if st.total(metrics.DeliveriesRejected) != 0 {
		t.Errorf("deliveries rejected: %+v", st.Counters)
	}
	if got := st.count(metrics.DeliveriesAccepted, "default", ""); got != int64(cr.Flushed.Sent) {
		t.Errorf("DeliveriesAccepted = %d, want %d (every delivery made, duplicates included)", got, cr.Flushed.Sent)
	}
	// Every enqueued change was processed; an event-only ticket change also brings the
	// ticket's notes, each processed on its own.
	enqueued, processed := st.count(metrics.ChangesEnqueued, "default", ""), st.total(metrics.ChangesApplied)
	if enqueued == 0 || processed < enqueued {
		t.Errorf("ChangesEnqueued = %d, ChangesApplied over every outcome = %d; want at least as many and not 0", enqueued, processed)
	}
	for _, c := range []struct{ name, label string }{
		{metrics.ChangesApplied, string(change.Applied)},
		{metrics.ChangesApplied, string(change.Duplicate)},
		{metrics.ChangesApplied, string(change.Stale)},
		{metrics.ChangesFetched, "found"},
	} {
		if st.count(c.name, "default", c.label) == 0 {
			t.Errorf("%s{%s} = 0, want some", c.name, c.label)
		}
	}
	if n := st.total(metrics.ChangesFailed); n != 0 {
		t.Errorf("ChangesFailed = %d, want 0: %+v", n, st.Counters)
	}
	if *st.DeadLetterQueue != (queueStats{}) {
		t.Errorf("dead-letter queue %+v, want empty", *st.DeadLetterQueue)
	}
	var summary []string
	for _, e := range st.Counters {
		if e.Name == metrics.ChangesApplied || e.Name == metrics.ChangesFetched {
			summary = append(summary, fmt.Sprintf("%s{%s}=%d", e.Name, e.Label, e.Value))
		}
	}
	t.Logf("enqueued %d changes; %s", enqueued, strings.Join(summary, " "))
}

// wantNothingElse checks that the copy holds no object beyond the expected ones, reading
// the store's table directly (read-only, beside the server's own connections).
func wantNothingElse(t *testing.T, path string, exps []converge.Expectation) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), `SELECT kind, id, parent_id FROM objects WHERE connection = 'default'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[converge.Key]bool{}
	for _, x := range exps {
		want[x.Key] = true
	}
	n := 0
	for rows.Next() {
		var k converge.Key
		if err := rows.Scan(&k.Kind, &k.ID, &k.ParentID); err != nil {
			t.Fatal(err)
		}
		n++
		if !want[k] {
			t.Errorf("the copy holds %s, which the tenant never had", k)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("the copy holds %d objects, want %d", n, len(want))
	}
}
