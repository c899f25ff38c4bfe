package change

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCanonicalID(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		want    string
		wantErr bool
	}{
		{"int", 12, "12", false},
		{"int64", int64(12), "12", false},
		{"whole float", 12.0, "12", false},
		{"negative whole float", -3.0, "-3", false},
		{"zero", 0.0, "0", false},
		{"string", "12", "12", false},
		{"padded string", " 12 ", "12", false},
		{"leading zeros as Halo displays ids", "0004242", "4242", false},
		{"plus sign", "+12", "12", false},
		{"plus sign", "+12", "12", false},
		{"string whole float", "12.0", "12", false},
		{"json number", json.Number("12"), "12", false},
		{"json number whole float", json.Number("12.0"), "12", false},
		{"json number exponent", json.Number("1.2e1"), "12", false},
		{"largest exact float", float64(1 << 53), "9007199254740992", false},
		{"large int64", int64(1) << 60, "1152921504606846976", false},
		{"nil", nil, "", false},
		{"empty string", "", "", false},
		{"blank string", "   ", "", false},
		{"guid kept", "5c1f0a7e-8a4b-4f1e-9d7a-2b6c3e9f1a01", "5c1f0a7e-8a4b-4f1e-9d7a-2b6c3e9f1a01", false},
		{"padded guid trimmed", " ABC-def ", "ABC-def", false},
		{"fraction", 12.5, "", true},
		{"string fraction", "12.5", "", true},
		{"json number fraction", json.Number("12.5"), "", true},
		{"huge float", 1e20, "", true},
		{"float just past 2^53", float64(1<<53) * 2, "", true},
		{"json number huge", json.Number("1e300"), "", true},
		{"json number not a number", json.Number("abc"), "", true},
		{"NaN", math.NaN(), "", true},
		{"infinity", math.Inf(1), "", true},
		{"bool", true, "", true},
		{"map", map[string]any{"id": 1}, "", true},
		{"slice", []any{1}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalID(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("CanonicalID(%#v) = %q, nil; want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("CanonicalID(%#v): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("CanonicalID(%#v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCanonicalIDSameForEveryForm(t *testing.T) {
	forms := []any{42, int64(42), 42.0, "42", " 42 ", "42.0", json.Number("42"), json.Number("42.0")}
	for _, f := range forms {
		got, err := CanonicalID(f)
		if err != nil || got != "42" {
			t.Errorf("CanonicalID(%#v) = %q, %v; want \"42\"", f, got, err)
		}
	}
}

func TestParseHaloTime(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Time
		ok      bool
		wantErr bool
	}{
		{"webhook timestamp, 7 fractional digits and Z", "2026-09-25T06:41:08.7895915Z",
			time.Date(2026, 9, 25, 6, 41, 8, 789591500, time.UTC), true, false},
		{"API date without Z", "2026-08-01T06:30:00", time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC), true, false},
		{"without Z, 7 fractional digits", "2026-09-25T06:41:07.9730000",
			time.Date(2026, 9, 25, 6, 41, 7, 973000000, time.UTC), true, false},
		{"without Z, 2 fractional digits", "2026-09-24T14:02:11.35",
			time.Date(2026, 9, 24, 14, 2, 11, 350000000, time.UTC), true, false},
		{"with Z, no fraction", "2026-08-01T06:30:00Z", time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC), true, false},
		{"space separator", "2026-08-01 06:30:00", time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC), true, false},
		{"space separator with fraction", "2026-08-01 06:30:00.25", time.Date(2026, 8, 1, 6, 30, 0, 250000000, time.UTC), true, false},
		{"date only", "2026-08-01", time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), true, false},
		{"surrounding blanks", "  2026-08-01T06:30:00Z\n", time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC), true, false},
		{"offset converted to UTC", "2026-08-01T08:30:00+02:00", time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC), true, false},
		{"negative offset crossing midnight", "2026-07-31T22:30:00-08:00", time.Date(2026, 8, 1, 6, 30, 0, 0, time.UTC), true, false},
		{"1900-01-01 is no date", "1900-01-01T00:00:00", time.Time{}, false, false},
		{"1900-01-01 date only is no date", "1900-01-01", time.Time{}, false, false},
		{"1980 is no date", "1980-06-15T12:00:00", time.Time{}, false, false},
		{"last instant of 1980 is no date", "1980-12-31T23:59:59.9999999Z", time.Time{}, false, false},
		{"1981 is a date", "1981-01-01T00:00:00", time.Date(1981, 1, 1, 0, 0, 0, 0, time.UTC), true, false},
		{"year 1 is no date", "0001-01-01T00:00:00", time.Time{}, false, false},
		{"empty is no date", "", time.Time{}, false, false},
		{"blank is no date", "   ", time.Time{}, false, false},
		{"garbage", "yesterday", time.Time{}, false, true},
		{"impossible month", "2026-13-01T00:00:00", time.Time{}, false, true},
		{"US format", "08/01/2026 06:30", time.Time{}, false, true},
		{"unix seconds as text", "1790000000", time.Time{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseHaloTime(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseHaloTime(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if ok != tt.ok {
				t.Fatalf("ParseHaloTime(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			}
			if !got.Equal(tt.want) || (!got.IsZero() && got.Location() != time.UTC) {
				t.Fatalf("ParseHaloTime(%q) = %v (%v), want %v UTC", tt.in, got, got.Location(), tt.want)
			}
			if !ok && !got.IsZero() {
				t.Fatalf("ParseHaloTime(%q) not ok but returned %v", tt.in, got)
			}
		})
	}
}

func TestVersionOf(t *testing.T) {
	utc := time.Date(2026, 9, 25, 6, 41, 8, 789591500, time.UTC)
	if got, want := VersionOf(utc), utc.UnixNano(); got != want {
		t.Fatalf("VersionOf = %d, want %d", got, want)
	}
	same := utc.In(time.FixedZone("X", -5*3600))
	if VersionOf(same) != VersionOf(utc) {
		t.Fatalf("VersionOf depends on the location")
	}
	if VersionOf(utc.Add(time.Nanosecond)) <= VersionOf(utc) {
		t.Fatalf("VersionOf is not increasing at nanosecond resolution")
	}
}

// TestParsedTimesMakeValidVersions: every date ParseHaloTime accepts as ok must turn into
// a positive version, or the change built from it fails Validate.
func TestParsedTimesMakeValidVersions(t *testing.T) {
	for _, s := range []string{"1981-01-01", "2026-09-25T06:41:08.7895915Z", "2262-04-11T00:00:00Z", "2300-01-01T00:00:00Z", "9999-12-31"} {
		tm, ok, err := ParseHaloTime(s)
		if err != nil || !ok {
			continue // refusing such a date is fine
		}
		if v := VersionOf(tm); v <= 0 || VersionOf(tm.Add(-time.Second)) >= v {
			t.Errorf("ParseHaloTime(%q) is ok but VersionOf gives %d (not positive or not ordered)", s, v)
		}
	}
}

func TestParseKind(t *testing.T) {
	tests := []struct {
		in   string
		want Kind
	}{
		{"ticket", Ticket},
		{" Ticket ", Ticket},
		{"ACTION", Action},
		{"client", Client},
		{"contact", Contact},
		{"user", Contact},
		{"User", Contact},
		{"asset", Asset},
		{"tickets", Ticket},
		{"Assets", Asset},
		{"users", Contact},
		{"actions", Action},
	}
	for _, tt := range tests {
		got, err := ParseKind(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseKind(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "ticketss", "note", "device", "widget"} {
		if got, err := ParseKind(bad); err == nil || !strings.Contains(err.Error(), "action, asset, client, contact, ticket") {
			t.Errorf("ParseKind(%q) = %q, %v; want an error listing the kinds", bad, got, err)
		}
	}
}

func TestKindsAndLookup(t *testing.T) {
	specs := Kinds()
	want := []Kind{Action, Asset, Client, Contact, Ticket}
	if len(specs) != len(want) {
		t.Fatalf("Kinds() has %d kinds, want %d", len(specs), len(want))
	}
	for i, s := range specs {
		if s.Kind != want[i] {
			t.Errorf("Kinds()[%d] = %q, want %q (sorted by name)", i, s.Kind, want[i])
		}
		got, ok := Lookup(s.Kind)
		if !ok || got != s {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", s.Kind, got, ok, s)
		}
		if s.PayloadKey == "" || s.VersionField == "" {
			t.Errorf("kind %q has no payload key or version field", s.Kind)
		}
		if (s.Parent == "") != (s.ParentField == "") {
			t.Errorf("kind %q: Parent %q and ParentField %q must be set together", s.Kind, s.Parent, s.ParentField)
		}
	}
	if got := KindNames(); !slices.Equal(got, []string{"action", "asset", "client", "contact", "ticket"}) {
		t.Errorf("KindNames() = %v, want the kinds' names sorted", got)
	}
	if _, ok := Lookup("widget"); ok {
		t.Errorf("Lookup(widget) ok")
	}
	if a, _ := Lookup(Action); a.Parent != Ticket || a.ParentField != "ticket_id" {
		t.Errorf("action spec %+v: want stored under its ticket via ticket_id", a)
	}
	if c, _ := Lookup(Contact); c.PayloadKey != "user" {
		t.Errorf("contact payload key %q, want user", c.PayloadKey)
	}
}

func TestErrInvalidIsDistinct(t *testing.T) {
	if errors.Is(errors.New("invalid change"), ErrInvalid) {
		t.Fatal("ErrInvalid matches an unrelated error with the same text")
	}
}
