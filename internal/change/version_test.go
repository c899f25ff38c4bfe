package change

import (
	"slices"
	"testing"
	"time"
)

func TestVersionRuleCheck(t *testing.T) {
	received := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	snapshot := func(marker any) Change {
		c := Change{Connection: "c", Kind: Ticket, ID: "1", Op: OpUpsert, Fields: map[string]any{"id": "1"}}
		if marker != nil {
			c.Fields["last_update"] = marker
		}
		if s, ok := marker.(string); ok {
			if t, ok, err := ParseHaloTime(s); err == nil && ok {
				c.Version, c.VersionFrom = VersionOf(t), "last_update"
				return c
			}
		}
		c.Version, c.VersionFrom = VersionOf(received), "received"
		return c
	}
	tests := []struct {
		name        string
		rule        VersionRule
		c           Change
		wantVersion int64
		wantFrom    string
		clamped     bool
		missing     bool
	}{
		{"a marker in the past stands", VersionRule{}, snapshot("2026-05-01T09:00:00"), VersionOf(received.Add(-time.Hour)), "last_update", false, false},
		{"a marker within the default skew stands", VersionRule{}, snapshot("2026-05-01T10:10:00"), VersionOf(received.Add(10 * time.Minute)), "last_update", false, false},
		{"a marker past the default skew is clamped", VersionRule{}, snapshot("2026-05-01T10:10:01"), VersionOf(received), VersionFromClamped, true, false},
		{"a marker in 2261 is clamped", VersionRule{}, snapshot("2261-01-01T00:00:00"), VersionOf(received), VersionFromClamped, true, false},
		{"the configured skew applies", VersionRule{MaxSkew: time.Minute}, snapshot("2026-05-01T10:02:00"), VersionOf(received), VersionFromClamped, true, false},
		{"a missing marker is reported", VersionRule{}, snapshot(nil), VersionOf(received), "received", false, true},
		{"an unreadable marker is reported", VersionRule{}, snapshot("next tuesday"), VersionOf(received), "received", false, true},
		{"a marker beyond 2261 is reported", VersionRule{}, snapshot("9999-12-31T00:00:00"), VersionOf(received), "received", false, true},
		{"an event without a snapshot has no marker to miss", VersionRule{},
			Change{Kind: Ticket, Op: OpUpsert, Version: VersionOf(received.Add(time.Hour)), VersionFrom: "timestamp"},
			VersionOf(received), VersionFromClamped, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.c.Version
			got, vc := tt.rule.Check(tt.c, received)
			if got.Version != tt.wantVersion || got.VersionFrom != tt.wantFrom || vc.Clamped != tt.clamped || vc.Missing != tt.missing {
				t.Fatalf("Check = version %d from %q clamped %v missing %v; want %d %q %v %v",
					got.Version, got.VersionFrom, vc.Clamped, vc.Missing, tt.wantVersion, tt.wantFrom, tt.clamped, tt.missing)
			}
			if vc.Clamped && vc.Was != before {
				t.Fatalf("Was = %d, want the version before the check %d", vc.Was, before)
			}
		})
	}
}

// A delivery pinned in 2261, clamped, no longer makes the next real update stale.
func TestClampedVersionLetsTheNextUpdateApply(t *testing.T) {
	received := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	bogus, _ := VersionRule{}.Check(Change{Connection: "c", Kind: Ticket, ID: "1", Op: OpUpsert,
		Version: VersionOf(time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC)), Fields: map[string]any{"summary": "bogus"}}, received)
	stored, res := Apply(nil, bogus, received)
	if res.Outcome != Applied {
		t.Fatalf("bogus delivery = %s", res.Outcome)
	}
	next := Change{Connection: "c", Kind: Ticket, ID: "1", Op: OpUpsert, Version: VersionOf(received.Add(time.Minute)),
		Fields: map[string]any{"summary": "real"}}
	if stored, res = Apply(&stored, next, received); res.Outcome != Applied || stored.Fields["summary"] != "real" {
		t.Fatalf("the next real update = %s, summary %v; want applied", res.Outcome, stored.Fields["summary"])
	}
}

func TestDifferentFields(t *testing.T) {
	stored := map[string]any{"a": "1", "n": 12.5, "kept": "only stored"}
	got := DifferentFields(stored, map[string]any{"a": "1", "n": "x", "new": nil})
	if want := []string{"n", "new"}; !slices.Equal(got, want) {
		t.Fatalf("DifferentFields = %v, want %v", got, want)
	}
}
