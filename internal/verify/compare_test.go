package verify

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/storedfields"
)

var readAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const marker = "2026-03-01T10:00:00.123"

func version(s string) int64 {
	t, _, err := change.ParseHaloTime(s)
	if err != nil {
		panic(err)
	}
	return change.VersionOf(t)
}

// ticket is Halo's ticket as read, with extra fields set.
func ticket(extra map[string]any) map[string]any {
	m := map[string]any{"id": json.Number("7"), "last_update": marker, "summary": "Printer", "client_id": json.Number("3")}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// stored is the copy of ticket 7 at version v with fields.
func stored(v int64, fields map[string]any) *change.Object {
	return &change.Object{Connection: "acme", Kind: change.Ticket, ID: "7", Version: v, Fields: fields}
}

func TestCompareVerdicts(t *testing.T) {
	v := version(marker)
	same := ticket(nil)
	tests := []struct {
		name   string
		halo   map[string]any
		stored *change.Object
		want   Cause
		fields []string
	}{
		{"equal", same, stored(v, ticket(nil)), Equal, nil},
		{"both absent", nil, nil, Equal, nil},
		{"deleted in both", ticket(map[string]any{"deleted": true}), &change.Object{Version: v + 1, Deleted: true}, Equal, nil},
		{"missing", same, nil, Missing, nil},
		{"missing: only a tombstone", same, &change.Object{Version: v + 1, Deleted: true, Fields: ticket(nil)}, Missing, nil},
		{"missing: only a pending marker", same, &change.Object{PendingVersion: v}, Missing, nil},
		{"extra: Halo has none", nil, stored(v, ticket(nil)), Extra, nil},
		{"extra: Halo deleted it", ticket(map[string]any{"deleted": true}), stored(v, ticket(nil)), Extra, nil},
		{"stale", same, stored(v-1, ticket(nil)), Stale, nil},
		{"stale with fields", same, stored(v-1, ticket(map[string]any{"summary": "Old"})), Stale, []string{"summary"}},
		{"ahead, fields equal", same, stored(v+1, ticket(nil)), Ahead, nil},
		{"ahead, fields differ", same, stored(v+1, ticket(map[string]any{"summary": "Future"})), Ahead, []string{"summary"}},
		{"field differs", same, stored(v, ticket(map[string]any{"summary": "Scanner"})), Fields, []string{"summary"}},
		{"field missing in the copy", ticket(map[string]any{"status_id": json.Number("2")}), stored(v, ticket(nil)), Fields, []string{"status_id"}},
		{"fields only in the copy are not compared", same, stored(v, ticket(map[string]any{"webhook_only": "x"})), Equal, nil},
		{"marker in the future: fields decide", ticket(map[string]any{"last_update": "2030-01-01T00:00:00"}),
			stored(change.VersionOf(readAt), ticket(map[string]any{"last_update": "2030-01-01T00:00:00"})), Equal, nil},
		{"marker in the future, fields differ", ticket(map[string]any{"last_update": "2030-01-01T00:00:00"}),
			stored(change.VersionOf(readAt), ticket(map[string]any{"last_update": "2030-01-01T00:00:00", "summary": "x"})), Fields, []string{"summary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Compare(change.Ticket, tt.halo, tt.stored, Rules{}, readAt)
			if err != nil {
				t.Fatal(err)
			}
			if got.Cause != tt.want {
				t.Fatalf("cause %q, want %q (%+v)", got.Cause, tt.want, got)
			}
			var names []string
			for _, f := range got.Fields {
				names = append(names, f.Name)
			}
			if !reflect.DeepEqual(names, tt.fields) {
				t.Errorf("fields %v, want %v", names, tt.fields)
			}
		})
	}
}

func TestCompareReportsValues(t *testing.T) {
	v := version(marker)
	got, err := Compare(change.Ticket, ticket(map[string]any{"status_id": json.Number("2")}), stored(v, ticket(map[string]any{"summary": "Old"})), Rules{}, readAt)
	if err != nil {
		t.Fatal(err)
	}
	want := []FieldDiff{
		{Name: "status_id", Halo: json.Number("2")},
		{Name: "summary", Copy: "Old", Halo: "Printer", InCopy: true},
	}
	if !reflect.DeepEqual(got.Fields, want) || got.CopyVersion != v || got.HaloVersion != v {
		t.Errorf("got %+v, want fields %+v at version %d", got, want, v)
	}
}

func TestCompareAppliesStoredFields(t *testing.T) {
	policy, err := storedfields.New(map[string]config.FieldList{"ticket": {Exclude: []string{"details_html"}}})
	if err != nil {
		t.Fatal(err)
	}
	v := version(marker)
	got, err := Compare(change.Ticket, ticket(map[string]any{"details_html": "<p>secret</p>"}), stored(v, ticket(nil)), Rules{Fields: policy}, readAt)
	if err != nil || got.Cause != Equal {
		t.Errorf("an excluded field: %+v, %v; want equal", got, err)
	}
	got, _ = Compare(change.Ticket, ticket(map[string]any{"details_html": "<p>secret</p>"}), stored(v, ticket(nil)), Rules{}, readAt)
	if got.Cause != Fields {
		t.Errorf("without the policy: %q, want fields", got.Cause)
	}
}

func TestCompareRefusesUnreadableMarker(t *testing.T) {
	for _, m := range []any{nil, "", "yesterday", "1900-01-01T00:00:00"} {
		if _, err := Compare(change.Ticket, ticket(map[string]any{"last_update": m}), nil, Rules{}, readAt); err == nil {
			t.Errorf("marker %v: no error", m)
		}
	}
	if _, err := Compare("widget", ticket(nil), nil, Rules{}, readAt); err == nil {
		t.Error("unknown kind: no error")
	}
}

// TestQuirks: what Halo writes in several spellings compares equal; what only looks alike
// does not.
func TestQuirks(t *testing.T) {
	tests := []struct {
		name       string
		field      string
		copy, halo any
		equal      bool
	}{
		{"json.Number and float64", "priority", 2.0, json.Number("2"), true},
		{"json.Number and int64", "priority", int64(2), json.Number("2"), true},
		{"float64 and int64", "priority", float64(2), int64(2), true},
		{"decimal spellings", "hours", json.Number("1.50"), 1.5, true},
		{"near miss: other number", "priority", 2.0, json.Number("3"), false},
		{"near miss: fraction", "hours", 1.5, json.Number("1.51"), false},
		{"id as string and number", "client_id", "12", json.Number("12"), true},
		{"id zero-padded", "client_id", "0012", 12.0, true},
		{"id field named id", "id", "7", int64(7), true},
		{"near miss: other id", "client_id", "12", json.Number("13"), false},
		{"near miss: id with blanks", "client_id", " 12", json.Number("12"), false},
		{"near miss: id with a fraction", "client_id", "12.5", 12.5, false},
		{"near miss: string number outside ids", "priority", "2", json.Number("2"), false},
		{"date with and without Z", "dateoccurred", "2026-03-01T10:00:00Z", "2026-03-01T10:00:00", true},
		{"date with and without fraction", "dateoccurred", "2026-03-01T10:00:00.000", "2026-03-01T10:00:00", true},
		{"date fraction and Z", "dateoccurred", "2026-03-01T10:00:00.5Z", "2026-03-01T10:00:00.500", true},
		{"near miss: one second", "dateoccurred", "2026-03-01T10:00:01", "2026-03-01T10:00:00", false},
		{"near miss: a millisecond", "dateoccurred", "2026-03-01T10:00:00.001", "2026-03-01T10:00:00", false},
		{"empty date and null", "fixbydate", nil, "1900-01-01T00:00:00", true},
		{"empty date and absent", "fixbydate", absent{}, "1900-01-01T00:00:00", true},
		{"null and absent", "fixbydate", absent{}, nil, true},
		{"near miss: empty date and a date", "fixbydate", "2026-03-01T10:00:00", "1900-01-01T00:00:00", false},
		{"near miss: empty string and empty date", "fixbydate", "", "1900-01-01T00:00:00", false},
		{"near miss: a date and its text", "note", "2026-03-01", "2026-03-01T10:00:00", false},
		{"nested date", "customfields", []any{map[string]any{"value": "2026-03-01T10:00:00Z"}}, []any{map[string]any{"value": "2026-03-01T10:00:00"}}, true},
		{"near miss: string and bool", "inactive", "true", true, false},
	}
	v := version(marker)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			copyFields := ticket(nil)
			if _, ok := tt.copy.(absent); !ok {
				copyFields[tt.field] = tt.copy
			}
			got, err := Compare(change.Ticket, ticket(map[string]any{tt.field: tt.halo}), stored(v, copyFields), Rules{}, readAt)
			if err != nil {
				t.Fatal(err)
			}
			if (got.Cause == Equal) != tt.equal {
				t.Errorf("%v against %v: %q %+v, want equal %v", tt.copy, tt.halo, got.Cause, got.Fields, tt.equal)
			}
		})
	}
}

// absent marks a field the copy lacks.
type absent struct{}

// TestCompareReadsEachKindsMarker: a kind's version comes from its own change marker.
func TestCompareReadsEachKindsMarker(t *testing.T) {
	const newer = "2026-03-01T11:00:00"
	for _, spec := range change.Kinds() {
		halo := map[string]any{"id": json.Number("5"), spec.VersionField: newer, "name": "x"}
		if spec.ParentField != "" {
			halo[spec.ParentField] = json.Number("7")
		}
		copyFields := map[string]any{"id": json.Number("5"), spec.VersionField: marker, "name": "x"}
		got, err := Compare(spec.Kind, halo, &change.Object{Kind: spec.Kind, ID: "5", Version: version(marker), Fields: copyFields}, Rules{}, readAt)
		if err != nil || got.Cause != Stale || got.HaloVersion != version(newer) {
			t.Errorf("%s: %+v, %v; want stale at %s's %s", spec.Kind, got, err, spec.Kind, spec.VersionField)
		}
	}
}
