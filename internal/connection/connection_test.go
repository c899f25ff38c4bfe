package connection_test

import (
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
)

func TestVersionsSkewIsCompiledWithItsDefault(t *testing.T) {
	auth := config.Webhook{Auth: []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"first-secret"}}}}
	set := connection.MustCompileAll(&config.Config{Connections: []config.Connection{
		{ID: "a", Webhook: auth},
		{ID: "b", Webhook: auth, Versions: config.Versions{MaxSkewSeconds: 90}},
	}})
	for id, want := range map[string]time.Duration{"a": change.DefaultMaxVersionSkew, "b": 90 * time.Second} {
		if c, _ := set.Get(id); c.Versions.MaxSkew != want {
			t.Errorf("connection %s: skew %v, want %v", id, c.Versions.MaxSkew, want)
		}
	}
}

// The poll's request settings take their defaults here: notes probed for bulk listing,
// a third of the budget, and scanned kinds spread over a day, except in poll mode, where
// no webhooks keep them current between slices.
func TestPollRequestDefaults(t *testing.T) {
	p := connection.PollOf(config.Poll{})
	if p.BulkNotes != "auto" || p.Share != connection.DefaultShare || p.ScanEvery != 24*time.Hour || p.NotesMaxAge != 0 {
		t.Errorf("hybrid defaults %+v", p)
	}
	if p := connection.PollOf(config.Poll{Mode: "poll"}); p.ScanEvery != 0 {
		t.Errorf("poll mode scans in slices every %v, want every poll in full", p.ScanEvery)
	}
	p = connection.PollOf(config.Poll{BulkNotes: "off", Share: 0.5, NotesMaxAgeDays: 30, ScanHours: 6})
	if p.BulkNotes != "off" || p.Share != 0.5 || p.NotesMaxAge != 30*24*time.Hour || p.ScanEvery != 6*time.Hour {
		t.Errorf("configured %+v", p)
	}
}
