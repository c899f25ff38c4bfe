package localserver

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
)

// A running backfill shows the poller's newest figures, phase included; a kind the
// poller has not reported on is pending, and notes are left out until they are.
func TestReportShowsARunningBackfill(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	cfg := &config.Config{Connections: []config.Connection{{ID: "acme",
		Halo:    config.Halo{BaseURL: "https://acme.example.com", ClientID: "id", ClientSecret: "secret"},
		Webhook: config.Webhook{Auth: []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"a-long-password"}}}}}}}
	q, dlq := Queues(db, cfg.Queue)
	s, err := New(cfg, Options{Store: db.Store(), Queue: q, DeadLetter: dlq, Log: slog.New(slog.DiscardHandler), Status: db})
	if err != nil {
		t.Fatal(err)
	}
	s.backfills.Progress(poller.Progress{Connection: "acme", Kind: change.Client, What: "backfill", Done: 3, Total: 3, Finished: true})
	s.backfills.Progress(poller.Progress{Connection: "acme", Kind: change.Ticket, What: "backfill", Phase: "closed tickets",
		Done: 40, Total: 100, PerSecond: 4, Left: 15 * time.Second})
	got := s.report(t.Context()).ByConnection["acme"].Backfill
	want := []BackfillReport{{Kind: change.Client, State: "running"}, {Kind: change.Contact, State: "pending"}, {Kind: change.Asset, State: "pending"},
		{Kind: change.Ticket, State: "running", Phase: "closed tickets", Done: 40, Total: 100, PerSecond: 4, LeftSeconds: 15, Left: "15s"}}
	if len(got) != len(want) {
		t.Fatalf("backfill %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("backfill of %s: %+v, want %+v", want[i].Kind, got[i], want[i])
		}
	}
}
