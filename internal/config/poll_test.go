package config

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// A poll interval that is not a whole number is refused, naming the key and what it
// takes: the YAML library would truncate it (0.5 to 0, the default) without a word.
func TestPollIntervalsAreWholeNumbers(t *testing.T) {
	for _, c := range []struct {
		key, value, want string
	}{
		{"interval_minutes", "1.5", "connections[0].poll.interval_minutes: 1.5 is not a whole number; give whole minutes"},
		{"fallback_minutes", "0.5", "connections[0].poll.fallback_minutes: 0.5 is not a whole number; give whole minutes"},
		{"silence_minutes", "2.25", "poll.silence_minutes: 2.25 is not a whole number; give whole minutes"},
		{"overlap_seconds", "1.5", "poll.overlap_seconds: 1.5 is not a whole number; give whole seconds"},
		{"reconcile_hours", "0.5", "poll.reconcile_hours: 0.5 is not a whole number; give whole hours"},
		{"interval_minutes", "90s", "poll.interval_minutes must be a whole number of minutes (0 or absent for the default), not a string"},
		{"interval_minutes", `"5"`, "poll.interval_minutes must be a whole number of minutes"},
	} {
		doc := example + "    poll:\n      " + c.key + ": " + c.value + "\n"
		_, err := Parse(context.Background(), []byte(doc), nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %s: err %v, want %q", c.key, c.value, err, c.want)
		}
	}
	// Whole numbers are honoured, however written.
	for value, want := range map[string]int{"3": 3, "2.0": 2, "1e1": 10, "0": 0} {
		doc := example + "    poll:\n      interval_minutes: " + value + "\n"
		cfg, err := Parse(context.Background(), []byte(doc), nil)
		if err != nil {
			t.Fatalf("interval_minutes: %s: %v", value, err)
		}
		if got := cfg.Connections[0].Poll.IntervalMinutes; got != want {
			t.Errorf("interval_minutes: %s read as %d, want %d", value, got, want)
		}
	}
}

// The poll keys that shape the poller's requests are checked where the file is read,
// naming the key, its line and what it takes.
func TestPollRequestKeysAreValidated(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{"bulk_notes", "sometimes", "line 10: connections[0].poll.bulk_notes must be auto, on or off"},
		{"bulk_notes", "true", "connections[0].poll.bulk_notes must be auto, on or off"},
		{"share", "1.5", "line 10: connections[0].poll.share must be a number above 0 and at most 1"},
		{"share", "-0.2", "connections[0].poll.share must be a number above 0 and at most 1"},
		{"share", "half", "connections[0].poll.share must be a number above 0 and at most 1"},
		{"notes_max_age_days", "7.5", "connections[0].poll.notes_max_age_days: 7.5 is not a whole number; give whole days"},
		{"notes_max_age_days", "-3", "poll: intervals cannot be negative"},
		{"scan_hours", "1.5", "connections[0].poll.scan_hours: 1.5 is not a whole number; give whole hours"},
	} {
		doc := example + "    poll:\n      " + c.key + ": " + c.value + "\n"
		_, err := Parse(context.Background(), []byte(doc), nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %s: err %v, want %q", c.key, c.value, err, c.want)
		}
	}
	doc := example + "    poll:\n      bulk_notes: off\n      share: 0.5\n      notes_max_age_days: 90\n      scan_hours: 12\n"
	cfg, err := Parse(context.Background(), []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Connections[0].Poll; p.BulkNotes != "off" || p.Share != 0.5 || p.NotesMaxAgeDays != 90 || p.ScanHours != 12 {
		t.Errorf("poll read as %+v", p)
	}
}
