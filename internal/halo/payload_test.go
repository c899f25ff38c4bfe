package halo

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// received is the fixed time the deliveries in these tests arrive at.
var received = time.Date(2026, 9, 25, 12, 0, 0, 0, time.UTC)

// deliveryFiles lists the delivery bodies in testdata (not the goldens).
func deliveryFiles(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".golden.json") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// changesOf decodes a delivery and turns every event into its changes.
func changesOf(t *testing.T, body []byte, events Events) []change.Change {
	t.Helper()
	decoded, err := Decode(body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var out []change.Change
	for i, e := range decoded {
		cs, err := e.Changes("default", events, received)
		if err != nil {
			t.Fatalf("event %d Changes: %v", i, err)
		}
		out = append(out, cs...)
	}
	return out
}

func TestGoldenDeliveriesPresent(t *testing.T) {
	want := []string{
		"action-added-event-only", "action-added-full", "action-deleted", "action-small",
		"asset-deleted", "asset-event-only", "asset-full", "asset-reassigned", "asset-small",
		"batch-mixed-kinds",
		"client-deleted", "client-event-only", "client-full", "client-small",
		"contact-deleted", "contact-event-only", "contact-full", "contact-small",
		"custom-payload", "dates-with-and-without-z", "ids-every-form", "last-update-1900",
		"ticket-batch-wrapped", "ticket-batch", "ticket-deleted", "ticket-event-only",
		"ticket-full", "ticket-ids-as-strings", "ticket-reassigned", "ticket-small", "ticket-with-action",
		"unknown-event-kind-word", "unknown-event-nested-asset",
	}
	var got []string
	for _, p := range deliveryFiles(t) {
		got = append(got, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("testdata deliveries = %v, want %v", got, want)
	}
}

// TestGolden decodes every delivery in testdata and compares its changes with
// <name>.golden.json. Run with -update to rewrite the goldens, then read them.
func TestGolden(t *testing.T) {
	for _, path := range deliveryFiles(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := changesOf(t, body, Events{})
			if len(got) == 0 {
				t.Fatal("no changes")
			}
			for i, c := range got {
				validate := c.Validate
				if !c.HasSnapshot() {
					// An event-only note travels without its ticket; the worker learns it by
					// fetching the note (TestEventOnlyActionWithoutTicket).
					validate = c.ValidateQueued
				}
				if err := validate(); err != nil {
					t.Errorf("change %d: %v", i, err)
				}
			}
			out, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, '\n')
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("changes differ from %s\ngot:\n%s\nwant:\n%s", golden, out, want)
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, ok, err := change.ParseHaloTime(s)
	if err != nil || !ok {
		t.Fatalf("ParseHaloTime(%q) = %v, %v, %v", s, tm, ok, err)
	}
	return tm
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFullTicket checks the live-shaped delivery field by field, independently of the golden.
func TestFullTicket(t *testing.T) {
	body := readTestdata(t, "ticket-full.json")
	events, err := Decode(body)
	if err != nil || len(events) != 1 {
		t.Fatalf("Decode = %d events, %v", len(events), err)
	}
	e := events[0]
	if e.ID != "5c1f0a7e-8a4b-4f1e-9d7a-2b6c3e9f1a01" || e.WebhookID != "a3e5c9d2-1b7f-4c8e-9f0a-6d2e4b8c1f37" ||
		e.NotificationID != "41" || e.ObjectID != "4242" || e.Name != "ticket status changed" {
		t.Errorf("event header = %+v", e)
	}
	if want := time.Date(2026, 9, 25, 6, 41, 8, 789591500, time.UTC); !e.Timestamp.Equal(want) {
		t.Errorf("Timestamp = %v, want %v", e.Timestamp, want)
	}
	if !bytes.Equal(e.Raw, bytes.TrimSpace(body)) {
		t.Errorf("Raw is not the delivered event")
	}
	if len(e.Objects) != 1 || e.Objects[change.Ticket] == nil {
		t.Fatalf("Objects = %v, want just the ticket", e.Objects)
	}
	cs, err := e.Changes("default", Events{}, received)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Changes = %v, %v", cs, err)
	}
	c := cs[0]
	if c.Kind != change.Ticket || c.ID != "4242" || c.Op != change.OpUpsert || c.ParentID != "" {
		t.Errorf("change = %+v", c)
	}
	if want := change.VersionOf(mustTime(t, "2026-09-25T06:41:07.973")); c.Version != want || c.VersionFrom != "last_update" {
		t.Errorf("version = %d from %q, want %d from last_update", c.Version, c.VersionFrom, want)
	}
	if !c.OccurredAt.Equal(e.Timestamp) || c.DeliveryID != e.ID || c.Event != e.Name || c.Source != change.SourceWebhook || c.Connection != "default" {
		t.Errorf("metadata = %+v", c)
	}
	// Unmodelled fields are kept, numbers exactly as written.
	if c.Fields["estimate"] != json.Number("1.5") || c.Fields["team"] != "1st Line Support" {
		t.Errorf("fields estimate %#v team %#v", c.Fields["estimate"], c.Fields["team"])
	}
	cf, ok := c.Fields["customfields"].([]any)
	if !ok || len(cf) != 2 {
		t.Fatalf("customfields = %#v", c.Fields["customfields"])
	}
	if c.ClientID() != "12" {
		t.Errorf("ClientID = %q, want 12", c.ClientID())
	}
}

func TestBatchKeepsOrderAndRaw(t *testing.T) {
	for _, name := range []string{"ticket-batch.json", "ticket-batch-wrapped.json"} {
		t.Run(name, func(t *testing.T) {
			events, err := Decode(readTestdata(t, name))
			if err != nil {
				t.Fatal(err)
			}
			var all []any
			var doc any
			if err := json.Unmarshal(readTestdata(t, name), &doc); err != nil {
				t.Fatal(err)
			}
			if m, ok := doc.(map[string]any); ok {
				all = m["events"].([]any)
			} else {
				all = doc.([]any)
			}
			if len(events) != len(all) {
				t.Fatalf("%d events, want %d", len(events), len(all))
			}
			for i, e := range events {
				var raw map[string]any
				if err := json.Unmarshal(e.Raw, &raw); err != nil {
					t.Fatalf("event %d Raw: %v", i, err)
				}
				if !reflect.DeepEqual(raw, all[i]) {
					t.Errorf("event %d Raw is not the batch's element %d", i, i)
				}
				if want := all[i].(map[string]any)["id"]; e.ID != want {
					t.Errorf("event %d ID = %q, want %v", i, e.ID, want)
				}
			}
		})
	}
}

func TestBatchOrdersTheSameTicketByLastUpdate(t *testing.T) {
	cs := changesOf(t, readTestdata(t, "ticket-batch.json"), Events{})
	var versions []int64
	for _, c := range cs {
		if c.ID == "4242" {
			versions = append(versions, c.Version)
		}
	}
	if len(versions) != 2 || versions[0] >= versions[1] {
		t.Fatalf("versions of ticket 4242 = %v, want two increasing", versions)
	}
}

func TestTicketWithAction(t *testing.T) {
	cs := changesOf(t, readTestdata(t, "ticket-with-action.json"), Events{})
	if len(cs) != 2 {
		t.Fatalf("%d changes, want ticket and action", len(cs))
	}
	tk, ac := cs[0], cs[1]
	if tk.Kind != change.Ticket || tk.ID != "42" || tk.VersionFrom != "last_update" {
		t.Errorf("ticket change %+v", tk)
	}
	if ac.Kind != change.Action || ac.ID != "7" || ac.ParentID != "42" || ac.Op != change.OpUpsert || ac.VersionFrom != "last_updated" {
		t.Errorf("action change %+v", ac)
	}
	if got, want := change.PartitionKey(ac.Connection, ac.Kind, ac.ID, ac.ParentID), "C#default#ticket#42"; got != want {
		t.Errorf("action partition %q, want %q", got, want)
	}
	if got := change.SortKey(ac.Kind, ac.ID); got != "ACTION#7" {
		t.Errorf("action sort key %q", got)
	}
}

func TestDeletedTicketIsEventOnlyDelete(t *testing.T) {
	cs := changesOf(t, readTestdata(t, "ticket-deleted.json"), Events{})
	if len(cs) != 1 {
		t.Fatalf("%d changes", len(cs))
	}
	c := cs[0]
	if c.Op != change.OpDelete || c.ID != "4243" || c.HasSnapshot() || c.VersionFrom != "timestamp" {
		t.Fatalf("change %+v, want an event-only delete of 4243 versioned by timestamp", c)
	}
}

func TestIDsAsStrings(t *testing.T) {
	events, err := Decode(readTestdata(t, "ticket-ids-as-strings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if events[0].ObjectID != "42" || events[0].NotificationID != "41" {
		t.Errorf("ObjectID %q NotificationID %q", events[0].ObjectID, events[0].NotificationID)
	}
	cs, err := events[0].Changes("default", Events{}, received)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Changes = %v, %v", cs, err)
	}
	if cs[0].ID != "42" || cs[0].ClientID() != "12" {
		t.Errorf("ID %q ClientID %q, want 42 and 12", cs[0].ID, cs[0].ClientID())
	}
	if want := change.VersionOf(time.Date(2026, 9, 25, 9, 14, 59, 0, time.UTC)); cs[0].Version != want {
		t.Errorf("version %d, want last_update %d", cs[0].Version, want)
	}
}

func TestDecodeUnreadable(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ""},
		{"whitespace", " \n\t "},
		{"null", "null"},
		{"string", `"ticket updated"`},
		{"number", "42"},
		{"true", "true"},
		{"array of number", "[1]"},
		{"array of null", "[null]"},
		{"array with a bad second event", `[{"event":"ticket updated","object_id":1}, 5]`},
		{"array of arrays", `[[{"event":"ticket updated"}]]`},
		{"event is a number", `{"event": 5}`},
		{"event is null", `{"event": null, "object_id": 1}`},
		{"missing event", `{"id":"x","object_id":42,"timestamp":"2026-09-25T06:41:08Z"}`},
		{"nested ticket is a string", `{"event":"ticket updated","object_id":42,"ticket":"42"}`},
		{"nested ticket is an array", `{"event":"ticket updated","object_id":42,"ticket":[{"id":42}]}`},
		{"nested action is a number", `{"event":"action added","action":7}`},
		{"object_id is a bool", `{"event":"ticket updated","object_id":true}`},
		{"object_id is fractional", `{"event":"ticket updated","object_id":42.5}`},
		{"object_id is an object", `{"event":"ticket updated","object_id":{"id":42}}`},
		{"id is a bool", `{"event":"ticket updated","id":false,"object_id":42}`},
		{"webhook_id is an array", `{"event":"ticket updated","webhook_id":[],"object_id":42}`},
		{"notification_id is fractional", `{"event":"ticket updated","notification_id":4.1,"object_id":42}`},
		{"invalid timestamp", `{"event":"ticket updated","object_id":42,"timestamp":"yesterday"}`},
		{"numeric timestamp", `{"event":"ticket updated","object_id":42,"timestamp":1790000000}`},
		{"truncated", `{"event":"ticket updated","object_id":42`},
		{"trailing garbage", `{"event":"ticket updated","object_id":42} x`},
		{"two objects", `{"event":"ticket updated"} {"event":"ticket updated"}`},
		{"events is not an array", `{"events": 5}`},
		{"events holds a non-object", `{"events": ["ticket updated"]}`},
		{"events is null, nothing else", `{"events": null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decode([]byte(tt.body))
			if err == nil {
				t.Fatalf("Decode(%s) = %+v, nil; want an error", tt.body, events)
			}
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("Decode(%s) = %v, does not wrap ErrUnreadable", tt.body, err)
			}
			if events != nil {
				t.Fatalf("Decode returned events with an error: %+v", events)
			}
		})
	}
}

func TestDecodeBatchErrorNamesTheEvent(t *testing.T) {
	_, err := Decode([]byte(`[{"event":"ticket updated","object_id":1},{"event":"ticket updated","object_id":true}]`))
	if err == nil || !strings.Contains(err.Error(), "event 1") {
		t.Fatalf("err = %v, want it to name event 1", err)
	}
}

func TestDecodeEmptyBatches(t *testing.T) {
	for _, body := range []string{`[]`, `{"events": []}`} {
		events, err := Decode([]byte(body))
		if err != nil || len(events) != 0 {
			t.Errorf("Decode(%s) = %v, %v; want no events and no error", body, events, err)
		}
	}
}

// A single event object that happens to carry an "events" key is still one event.
func TestDecodeEventWithEventsKeyIsOneEvent(t *testing.T) {
	events, err := Decode([]byte(`{"event":"ticket updated","object_id":42,"events":[{"event":"x"}]}`))
	if err != nil || len(events) != 1 || events[0].Name != "ticket updated" || events[0].ObjectID != "42" {
		t.Fatalf("Decode = %+v, %v", events, err)
	}
}

func TestDecodeNestedKinds(t *testing.T) {
	body := `{"event":"something","object_id":1,"ticket":{"id":1},"action":{"id":2},"client":{"id":3},"user":{"id":4},"asset":{"id":5},"site":{"id":6}}`
	events, err := Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got := map[change.Kind]string{}
	for k, obj := range events[0].Objects {
		got[k] = string(obj["id"].(json.Number))
	}
	want := map[change.Kind]string{change.Ticket: "1", change.Action: "2", change.Client: "3", change.Contact: "4", change.Asset: "5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Objects ids = %v, want %v (contacts come under \"user\"; unknown keys ignored)", got, want)
	}
}

func TestDecodeTimestamps(t *testing.T) {
	tests := []struct {
		name string
		ts   string
		want time.Time
	}{
		{"absent", ``, time.Time{}},
		{"null", `,"timestamp":null`, time.Time{}},
		{"empty", `,"timestamp":""`, time.Time{}},
		{"1900 is no timestamp", `,"timestamp":"1900-01-01T00:00:00Z"`, time.Time{}},
		{"7 digits and Z", `,"timestamp":"2026-09-25T06:41:08.7895915Z"`, time.Date(2026, 9, 25, 6, 41, 8, 789591500, time.UTC)},
		{"without Z", `,"timestamp":"2026-09-25T06:41:08"`, time.Date(2026, 9, 25, 6, 41, 8, 0, time.UTC)},
		{"offset", `,"timestamp":"2026-09-25T08:41:08+02:00"`, time.Date(2026, 9, 25, 6, 41, 8, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decode([]byte(`{"event":"ticket updated","object_id":1` + tt.ts + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := events[0].Timestamp; !got.Equal(tt.want) || (!got.IsZero() && got.Location() != time.UTC) {
				t.Fatalf("Timestamp = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangesUnknownEvent(t *testing.T) {
	for _, body := range []string{
		`{"event":"sla breached","object_id":42}`,
		`{"event":"","object_id":42}`,
		`{"event":"   ","object_id":42}`,
	} {
		events, err := Decode([]byte(body))
		if err != nil {
			t.Fatalf("Decode(%s): %v", body, err)
		}
		cs, err := events[0].Changes("default", Events{}, received)
		if !errors.Is(err, ErrUnknownEvent) || cs != nil {
			t.Errorf("Changes(%s) = %v, %v; want ErrUnknownEvent", body, cs, err)
		}
	}
	// The same name becomes known through Extra.
	events, _ := Decode([]byte(`{"event":"SLA Breached","object_id":42}`))
	cs, err := events[0].Changes("default", Events{Extra: map[string]EventRule{"sla breached": {change.Ticket, change.OpUpsert}}}, received)
	if err != nil || len(cs) != 1 || cs[0].Kind != change.Ticket || cs[0].ID != "42" {
		t.Fatalf("with Extra: %v, %v", cs, err)
	}
}

func TestChanges(t *testing.T) {
	ts := time.Date(2026, 9, 25, 6, 41, 8, 789591500, time.UTC)
	tsVersion := change.VersionOf(ts)
	type want struct {
		kind          change.Kind
		id, parent    string
		op            change.Operation
		version       int64
		versionFrom   string
		snapshot      bool
		occurredAtRcv bool
	}
	tests := []struct {
		name string
		body string
		want []want
	}{
		{
			name: "1900-01-01 last_update falls back to the timestamp",
			body: `{"event":"ticket updated","object_id":42,"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":42,"last_update":"1900-01-01T00:00:00"}}`,
			want: []want{{change.Ticket, "42", "", change.OpUpsert, tsVersion, "timestamp", true, false}},
		},
		{
			name: "unreadable last_update falls back to the timestamp",
			body: `{"event":"ticket updated","object_id":42,"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":42,"last_update":"soon"}}`,
			want: []want{{change.Ticket, "42", "", change.OpUpsert, tsVersion, "timestamp", true, false}},
		},
		{
			name: "non-string last_update falls back to the timestamp",
			body: `{"event":"ticket updated","object_id":42,"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":42,"last_update":20260925}}`,
			want: []want{{change.Ticket, "42", "", change.OpUpsert, tsVersion, "timestamp", true, false}},
		},
		{
			name: "neither marker nor timestamp uses received",
			body: `{"event":"ticket updated","object_id":42,"ticket":{"id":42,"summary":"x"}}`,
			want: []want{{change.Ticket, "42", "", change.OpUpsert, change.VersionOf(received), "received", true, true}},
		},
		{
			name: "event only without timestamp uses received",
			body: `{"event":"ticket updated","object_id":42}`,
			want: []want{{change.Ticket, "42", "", change.OpUpsert, change.VersionOf(received), "received", false, true}},
		},
		{
			name: "nested ticket without id takes object_id",
			body: `{"event":"ticket updated","object_id":42,"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"summary":"x"}}`,
			want: []want{{change.Ticket, "42", "", change.OpUpsert, tsVersion, "timestamp", true, false}},
		},
		{
			name: "nested id wins over object_id",
			body: `{"event":"ticket updated","object_id":41,"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":42}}`,
			want: []want{{change.Ticket, "42", "", change.OpUpsert, tsVersion, "timestamp", true, false}},
		},
		{
			name: "ticket deleted with its object is a delete carrying the fields",
			body: `{"event":"ticket deleted","object_id":42,"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":42,"deleted":true}}`,
			want: []want{{change.Ticket, "42", "", change.OpDelete, tsVersion, "timestamp", true, false}},
		},
		{
			name: "action without ticket_id goes under the nested ticket",
			body: `{"event":"action added","object_id":7,"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":42},"action":{"id":7,"note":"hi"}}`,
			want: []want{
				{change.Ticket, "42", "", change.OpUpsert, tsVersion, "timestamp", true, false},
				{change.Action, "7", "42", change.OpUpsert, tsVersion, "timestamp", true, false},
			},
		},
		{
			name: "action event with only the action and its ticket_id; ticket 42 is pending via object_id",
			body: `{"event":"ticket updated","object_id":42,"timestamp":"2026-09-25T06:41:08.7895915Z","action":{"id":"7","ticket_id":"42","last_updated":"2026-09-25T06:41:00"}}`,
			want: []want{
				{change.Action, "7", "42", change.OpUpsert, change.VersionOf(time.Date(2026, 9, 25, 6, 41, 0, 0, time.UTC)), "last_updated", true, false},
				{change.Ticket, "42", "", change.OpUpsert, tsVersion, "timestamp", false, false},
			},
		},
		{
			name: "action deleted",
			body: `{"event":"action deleted","object_id":7,"timestamp":"2026-09-25T06:41:08.7895915Z","action":{"id":7,"ticket_id":42}}`,
			want: []want{{change.Action, "7", "42", change.OpDelete, tsVersion, "timestamp", true, false}},
		},
		{
			name: "client updated versioned by alastupdate",
			body: `{"event":"client updated","object_id":12,"timestamp":"2026-09-25T06:41:08.7895915Z","client":{"id":12,"name":"Contoso","alastupdate":"2026-09-25T06:00:00"}}`,
			want: []want{{change.Client, "12", "", change.OpUpsert, change.VersionOf(time.Date(2026, 9, 25, 6, 0, 0, 0, time.UTC)), "alastupdate", true, false}},
		},
		{
			name: "user payload is a contact versioned by ulastupdate",
			body: `{"event":"user updated","object_id":301,"timestamp":"2026-09-25T06:41:08.7895915Z","user":{"id":301,"client_id":12,"ulastupdate":"2026-09-25T06:00:00"}}`,
			want: []want{{change.Contact, "301", "", change.OpUpsert, change.VersionOf(time.Date(2026, 9, 25, 6, 0, 0, 0, time.UTC)), "ulastupdate", true, false}},
		},
		{
			name: "unknown name, nested asset decides",
			body: `{"event":"warranty expiring","object_id":900,"timestamp":"2026-09-25T06:41:08.7895915Z","asset":{"id":900,"dlastupdate":"1900-01-01"}}`,
			want: []want{{change.Asset, "900", "", change.OpUpsert, tsVersion, "timestamp", true, false}},
		},
		{
			name: "unknown name with a kind word, event only",
			body: `{"event":"Asset Removed","object_id":900,"timestamp":"2026-09-25T06:41:08.7895915Z"}`,
			want: []want{{change.Asset, "900", "", change.OpDelete, tsVersion, "timestamp", false, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			cs, err := events[0].Changes("default", Events{}, received)
			if err != nil {
				t.Fatalf("Changes: %v", err)
			}
			if len(cs) != len(tt.want) {
				t.Fatalf("%d changes %+v, want %d", len(cs), cs, len(tt.want))
			}
			for i, w := range tt.want {
				c := cs[i]
				if c.Kind != w.kind || c.ID != w.id || c.ParentID != w.parent || c.Op != w.op {
					t.Errorf("change %d = %s %s (parent %q) %s; want %s %s (parent %q) %s", i, c.Kind, c.ID, c.ParentID, c.Op, w.kind, w.id, w.parent, w.op)
				}
				if c.Version != w.version || c.VersionFrom != w.versionFrom {
					t.Errorf("change %d version %d from %q; want %d from %q", i, c.Version, c.VersionFrom, w.version, w.versionFrom)
				}
				if c.HasSnapshot() != w.snapshot {
					t.Errorf("change %d HasSnapshot = %v, want %v", i, c.HasSnapshot(), w.snapshot)
				}
				if w.occurredAtRcv && !c.OccurredAt.Equal(received) {
					t.Errorf("change %d OccurredAt = %v, want received %v", i, c.OccurredAt, received)
				}
				if !w.occurredAtRcv && !c.OccurredAt.Equal(ts) {
					t.Errorf("change %d OccurredAt = %v, want the timestamp %v", i, c.OccurredAt, ts)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("change %d: %v", i, err)
				}
			}
		})
	}
}

func TestChangesUnreadable(t *testing.T) {
	tests := []struct{ name, body string }{
		{"no object id anywhere", `{"event":"ticket updated"}`},
		{"nested ticket id is a bool", `{"event":"ticket updated","object_id":42,"ticket":{"id":true}}`},
		{"event-only note deleted names no ticket", `{"event":"action deleted","object_id":7}`},
		{"nested action without id", `{"event":"action added","object_id":42,"ticket":{"id":42},"action":{"note":"x"}}`},
		{"nested action without any ticket id", `{"event":"action added","object_id":7,"action":{"id":7}}`},
		{"action ticket_id unreadable", `{"event":"action added","object_id":7,"action":{"id":7,"ticket_id":4.5}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			cs, err := events[0].Changes("default", Events{}, received)
			if !errors.Is(err, ErrUnreadable) || cs != nil {
				t.Fatalf("Changes = %+v, %v; want ErrUnreadable", cs, err)
			}
		})
	}
}

// TestChangesVersionOutOfRange: a date Halo could never mean (after 2262, beyond
// int64 Unix nanoseconds) must not become a wrapped, negative or misordered version.
func TestChangesVersionOutOfRange(t *testing.T) {
	for _, body := range []string{
		`{"event":"ticket updated","object_id":42,"timestamp":"2300-01-01T00:00:00Z"}`,
		`{"event":"ticket updated","object_id":42,"timestamp":"2026-09-25T06:41:08Z","ticket":{"id":42,"last_update":"2300-01-01T00:00:00"}}`,
	} {
		events, err := Decode([]byte(body))
		if err != nil {
			continue // refusing the delivery is fine
		}
		cs, err := events[0].Changes("default", Events{}, received)
		if err != nil {
			continue
		}
		for _, c := range cs {
			if err := c.Validate(); err != nil {
				t.Errorf("%s: change %+v: %v", body, c, err)
			}
		}
	}
}

// addTestdata seeds a fuzz target with the payloads of testdata.
func addTestdata(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecode: Decode never panics; its errors wrap ErrUnreadable; every decoded event's
// Changes errors (with ErrUnreadable or ErrUnknownEvent) or returns only valid changes.
func FuzzDecode(f *testing.F) {
	addTestdata(f)
	f.Add([]byte(`{"event":"action added","object_id":7,"ticket":{"id":42},"action":{"id":7}}`))
	f.Add([]byte(`{"events":[{"event":"user updated","user":{"id":"5","client_id":1.0}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrUnreadable) {
				t.Fatalf("Decode error does not wrap ErrUnreadable: %v", err)
			}
			if events != nil {
				t.Fatalf("Decode returned events with an error")
			}
			return
		}
		for i, e := range events {
			cs, err := e.Changes("conn", Events{}, received)
			if err != nil {
				if !errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrUnknownEvent) {
					t.Fatalf("event %d: Changes error is neither ErrUnreadable nor ErrUnknownEvent: %v", i, err)
				}
				continue
			}
			if len(cs) == 0 {
				t.Fatalf("event %d: Changes returned no changes and no error", i)
			}
			for j, c := range cs {
				if err := c.ValidateQueued(); err != nil {
					t.Fatalf("event %d change %d %+v: %v", i, j, c, err)
				}
				// An accepted id is already in its one spelling: reading it again
				// changes nothing, so no other spelling could have named it.
				for _, id := range []string{c.ID, c.ParentID} {
					if again, err := change.ParseID(id); err != nil || again != id {
						t.Fatalf("event %d change %d: id %q reads again as %q, %v", i, j, id, again, err)
					}
				}
			}
		}
	})
}

// TestEventOnlyActionWithoutTicket: an event-only note names only itself; it travels
// without its ticket, which the worker learns by fetching the note.
func TestEventOnlyActionWithoutTicket(t *testing.T) {
	events, err := Decode([]byte(`{"event":"action added","object_id":7,"timestamp":"2026-09-25T12:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := events[0].Changes("default", Events{}, time.Now())
	if err != nil || len(cs) != 1 {
		t.Fatalf("Changes = %+v, %v", cs, err)
	}
	c := cs[0]
	if c.Kind != change.Action || c.ID != "7" || c.ParentID != "" || c.HasSnapshot() {
		t.Fatalf("change %+v", c)
	}
	if err := c.ValidateQueued(); err != nil {
		t.Fatalf("ValidateQueued: %v", err)
	}
	if err := c.Validate(); !errors.Is(err, change.ErrInvalid) {
		t.Fatalf("Validate = %v: a store cannot keep it before its ticket is known", err)
	}
}
