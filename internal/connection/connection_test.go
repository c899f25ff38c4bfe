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

// Verification is on by default, in what the poll leaves of its share, over a day,
// alarming below 99%.
func TestVerifyIsCompiledWithItsDefaults(t *testing.T) {
	off := false
	for name, tt := range map[string]struct {
		in   config.Verify
		want connection.Verify
	}{
		"defaults": {config.Verify{}, connection.Verify{Enabled: true, Window: 24 * time.Hour, AlarmBelow: 99}},
		"set": {config.Verify{Enabled: &off, Share: "0.2", WindowHours: 6, AlarmBelow: 95},
			connection.Verify{Fraction: 0.2, Window: 6 * time.Hour, AlarmBelow: 95}},
	} {
		if got := connection.VerifyOf(tt.in); got != tt.want {
			t.Errorf("%s: %+v, want %+v", name, got, tt.want)
		}
	}
}
