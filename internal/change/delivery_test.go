package change

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyReportsPreviousValues(t *testing.T) {
	tests := []struct {
		name   string
		stored *Object
		change Change
		want   string // Result.Previous as JSON
	}{
		{"new object", nil, upsertChange(10, map[string]any{"summary": "x"}), `null`},
		{"merge: old values of carried fields, absent ones missing", stored(10, 0, false),
			upsertChange(11, map[string]any{"summary": "new", "status_id": 2, "agent_id": 7}), `{"status_id":1,"summary":"old summary"}`},
		{"null is a value", &Object{Version: 1, Fields: map[string]any{"agent_id": nil}}, upsertChange(2, map[string]any{"agent_id": 7}), `{"agent_id":null}`},
		{"no fields carried", stored(10, 0, false), deleteChange(11), `{}`},
		{"pending marker only", &Object{PendingVersion: 5, Fields: map[string]any{}}, upsertChange(6, map[string]any{"summary": "x"}), `null`},
		{"duplicate", stored(10, 0, false), upsertChange(10, map[string]any{"summary": "x"}), `null`},
		{"stale", stored(10, 0, false), upsertChange(9, map[string]any{"summary": "x"}), `null`},
		{"pending", stored(10, 0, false), eventOnly(11), `null`},
	}
	for _, tt := range tests {
		_, r := Apply(tt.stored, tt.change, applyNow)
		if got := jsonOf(t, r.Previous); got != tt.want {
			t.Errorf("%s: previous %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestDiff(t *testing.T) {
	previous := map[string]any{
		"same_number": json.Number("7"), "decimal": json.Number("12.50"), "to_string": json.Number("12"),
		"nested": map[string]any{"a": []any{json.Number("1"), "x"}}, "was_null": nil, "kept": "k", "html": "<b>",
	}
	fields := map[string]any{
		"same_number": 7, "decimal": 12.5, "to_string": "12",
		"nested": map[string]any{"a": []any{1.0, "x"}}, "was_null": nil, "html": "<i>", "added": nil,
	}
	got := jsonOf(t, Diff(previous, fields))
	want := `{"added":{"from":null,"to":null,"added":true},"html":{"from":"\u003cb\u003e","to":"\u003ci\u003e"},"to_string":{"from":12,"to":"12"}}`
	if got != want {
		t.Fatalf("Diff\n got %s\nwant %s", got, want)
	}
	if d := Diff(nil, fields); d != nil {
		t.Fatalf("Diff without previous state = %v, want nil", d)
	}
	if d := Diff(map[string]any{"a": json.Number("1")}, map[string]any{"a": json.Number("1.0")}); d != nil {
		t.Fatalf("1 and 1.0 differ: %v", d)
	}
	if d := Diff(map[string]any{"a": json.Number("1e999999999")}, map[string]any{"a": json.Number("2e999999999")}); len(d) != 1 {
		t.Fatalf("huge exponents: %v", d)
	}
}

func TestDiffElidesLargeValues(t *testing.T) {
	big := strings.Repeat("x", maxShownValue)
	d := Diff(map[string]any{"details": "short"}, map[string]any{"details": big, "status_id": 2})
	if fc := d["details"]; !fc.Elided || fc.From != nil || fc.To != nil {
		t.Fatalf("large value: %+v", fc)
	}
	if fc := d["status_id"]; fc.Elided || fc.To != 2 {
		t.Fatalf("small value: %+v", fc)
	}
	// Past the record's budget, values are elided too, names kept.
	previous, fields := map[string]any{}, map[string]any{}
	for i := range 100 {
		k := fmt.Sprintf("f%03d", i)
		previous[k], fields[k] = strings.Repeat("a", 200), strings.Repeat("b", 200)
	}
	d = Diff(previous, fields)
	elided := 0
	for _, fc := range d {
		if fc.Elided {
			elided++
		}
	}
	if len(d) != 100 || elided == 0 || elided == 100 || !d["f099"].Elided || d["f000"].Elided {
		t.Fatalf("%d changes, %d elided", len(d), elided)
	}
}

func TestSummarize(t *testing.T) {
	n := func(s string) json.Number { return json.Number(s) }
	tests := []struct {
		name    string
		d       Delivery
		summary string
	}{
		{"ticket reassigned", Delivery{Kind: Ticket, Outcome: Applied, Changed: map[string]FieldChange{
			"team_id": {From: n("2"), To: n("3")}, "agent_id": {From: n("7"), To: n("11")}, "last_update": {From: "a", To: "b"},
		}}, "reassigned: agent_id 7 → 11, team_id 2 → 3"},
		{"ticket reassigned to a team by name, status and more", Delivery{Kind: Ticket, Outcome: Applied, Changed: map[string]FieldChange{
			"team": {From: "1st Line", To: "2nd Line"}, "status_id": {From: n("1"), To: n("2")}, "summary": {From: "a", To: "b"},
			"details": {Elided: true}, "last_update": {From: "a", To: "b"},
		}}, `reassigned: team "1st Line" → "2nd Line"; status: 1 → 2; changed: details, summary`},
		{"asset assigned", Delivery{Kind: Asset, Outcome: Applied, Changed: map[string]FieldChange{
			"site_id": {From: n("1"), To: n("2")}, "user_id": {From: n("5"), To: n("9")},
		}}, "assigned: user_id 5 → 9, site_id 1 → 2"},
		{"asset given a user it had none of", Delivery{Kind: Asset, Outcome: Applied, Changed: map[string]FieldChange{
			"user_id": {To: n("9"), Added: true}, "notes": {Elided: true, Added: true},
		}}, "assigned: user_id (none) → 9; changed: notes"},
		{"an agent_id on an asset is just a field", Delivery{Kind: Asset, Outcome: Applied, Changed: map[string]FieldChange{
			"agent_id": {From: n("1"), To: n("2")},
		}}, "changed: agent_id"},
		{"a ticket's client_id is just a field", Delivery{Kind: Ticket, Outcome: Applied, Changed: map[string]FieldChange{
			"client_id": {From: n("1"), To: n("2")}, "user_id": {From: n("1"), To: nil},
		}}, "changed: client_id, user_id"},
		{"only the change marker moved", Delivery{Kind: Ticket, Outcome: Applied, Changed: map[string]FieldChange{"last_update": {From: "a", To: "b"}}},
			"changed: last_update"},
		{"nothing changed", Delivery{Kind: Ticket, Outcome: Applied}, "no field changed"},
		{"created", Delivery{Kind: Ticket, Outcome: Applied, Created: true}, "created"},
		{"deleted", Delivery{Kind: Ticket, Op: OpDelete, Outcome: Applied}, "deleted"},
		{"deleted with a status", Delivery{Kind: Ticket, Op: OpDelete, Outcome: Applied, Changed: map[string]FieldChange{
			"status_id": {From: n("1"), To: n("9")}}}, "deleted; status: 1 → 9"},
		{"deleted, never seen", Delivery{Kind: Ticket, Op: OpDelete, Outcome: Applied, Created: true}, "deleted (never seen before)"},
		{"long values are cut", Delivery{Kind: Ticket, Outcome: Applied, Changed: map[string]FieldChange{
			"status_id": {From: strings.Repeat("é", 50), To: nil}}}, `status: "` + strings.Repeat("é", 38) + `… → null`},
		{"duplicate", Delivery{Outcome: Duplicate}, "duplicate: this version is already stored; nothing changed"},
		{"stale", Delivery{Outcome: Stale}, "stale: a newer version is stored; nothing changed"},
		{"pending", Delivery{Outcome: Pending}, "pending: an event without the object; the fields wait for a fetch or a snapshot"},
		{"filtered", Delivery{Outcome: Filtered, Reason: "clients"}, "filtered: clients"},
	}
	for _, tt := range tests {
		if got := tt.d.Summarize(); got != tt.summary {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.summary)
		}
	}
}

func TestNewDelivery(t *testing.T) {
	stored := &Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 10,
		Fields: map[string]any{"agent_id": json.Number("7"), "team_id": json.Number("2"), "status_id": json.Number("1")}}
	c := upsertChange(20, map[string]any{"agent_id": json.Number("11"), "team_id": 3, "status_id": 1.0})
	c.Event = "ticket reassigned"
	c.Endpoint = EndpointBackup
	_, r := Apply(stored, c, applyNow)
	received := applyNow.Add(-time.Second)
	d := NewDelivery(c, r, received, applyNow)
	if d.Connection != "conn" || d.DeliveryID != "d-new" || d.Kind != Ticket || d.ID != "42" || d.Event != "ticket reassigned" ||
		d.Source != SourceWebhook || d.Endpoint != EndpointBackup || d.Outcome != Applied || d.Version != 20 || d.Op != OpUpsert || d.Created {
		t.Fatalf("record %+v", d)
	}
	if got := jsonOf(t, d.Changed); got != `{"agent_id":{"from":7,"to":11},"team_id":{"from":2,"to":3}}` {
		t.Fatalf("changed %s", got)
	}
	if d.Summary != "reassigned: agent_id 7 → 11, team_id 2 → 3" {
		t.Fatalf("summary %q", d.Summary)
	}
	if d.ProcessedAt.Location() != time.UTC || !d.ProcessedAt.Equal(applyNow) || !d.ReceivedAt.Equal(received) {
		t.Fatalf("times %v %v", d.ReceivedAt, d.ProcessedAt)
	}
	if !d.ExpiresAt().Equal(applyNow.Add(7 * 24 * time.Hour)) {
		t.Fatalf("expires %v", d.ExpiresAt())
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	dup := NewDelivery(c, Result{Outcome: Duplicate}, received, applyNow)
	if dup.Changed != nil || dup.Outcome != Duplicate {
		t.Fatalf("duplicate record %+v", dup)
	}
}

func TestDeliveryReplaces(t *testing.T) {
	now := time.Date(2026, 9, 25, 0, 0, 0, 0, time.UTC)
	rec := func(o Outcome, v int64, processed time.Time) Delivery {
		return Delivery{Outcome: o, Version: v, ProcessedAt: processed}
	}
	tests := []struct {
		name     string
		old, new Delivery
		want     bool
	}{
		{"redelivered duplicate keeps applied", rec(Applied, 10, now), rec(Duplicate, 10, now.Add(time.Minute)), false},
		{"redelivered stale keeps applied", rec(Applied, 10, now), rec(Stale, 10, now.Add(time.Minute)), false},
		{"redelivered duplicate keeps pending", rec(Pending, 10, now), rec(Duplicate, 10, now.Add(time.Minute)), false},
		{"duplicate of another version replaces", rec(Applied, 10, now), rec(Duplicate, 11, now.Add(time.Minute)), true},
		{"duplicate replaces duplicate", rec(Duplicate, 10, now), rec(Duplicate, 10, now.Add(time.Minute)), true},
		{"applied replaces", rec(Applied, 10, now), rec(Applied, 10, now.Add(time.Minute)), true},
		{"filtered replaces", rec(Applied, 10, now), rec(Filtered, 10, now.Add(time.Minute)), true},
		{"expired is replaced", rec(Applied, 10, now), rec(Duplicate, 10, now.Add(DeliveryRetention)), true},
		{"just before expiry is kept", rec(Applied, 10, now), rec(Duplicate, 10, now.Add(DeliveryRetention-time.Second)), false},
	}
	for _, tt := range tests {
		if got := tt.new.Replaces(tt.old); got != tt.want {
			t.Errorf("%s: Replaces = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDeliveryKeys(t *testing.T) {
	if got := DeliveryPartitionKey("acme", "0f8f-ad5b"); got != "C#acme#DELIVERY#0f8f-ad5b" {
		t.Errorf("partition key %q", got)
	}
	if got := DeliverySortKey(Action, "7"); got != "action#7" {
		t.Errorf("sort key %q", got)
	}
}
