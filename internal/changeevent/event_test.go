package changeevent_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
)

var at = time.Date(2026, 1, 1, 9, 0, 1, 0, time.UTC)

func ticketChange(version int64, fields map[string]any) change.Change {
	return change.Change{Connection: "acme", Kind: change.Ticket, ID: "42", Op: change.OpUpsert, Version: version,
		Source: change.SourceWebhook, DeliveryID: "d-1", Event: "Ticket Updated", Fields: fields}
}

func TestAnAppliedChangeBecomesOneEventWithTheDeliveryRecordsDiffAndSummary(t *testing.T) {
	c := ticketChange(2, map[string]any{"agent_id": json.Number("11"), "summary": "Printer"})
	r := change.Result{Outcome: change.Applied, Previous: map[string]any{"agent_id": json.Number("7"), "summary": "Printer"}}
	ev, ok := changeevent.New(c, r, at)
	if !ok {
		t.Fatal("an applied change has no event")
	}
	d := change.NewDelivery(c, r, at, at)
	want := changeevent.Event{
		ID: ev.Detail.EventID, Source: "halosync", DetailType: "ticket updated", Time: at,
		Detail: changeevent.Detail{EventID: ev.ID, Connection: "acme", Kind: change.Ticket, ID: "42", Operation: "updated",
			Version: 2, Source: change.SourceWebhook, DeliveryID: "d-1", HaloEvent: "Ticket Updated",
			Changed: map[string]change.FieldChange{"agent_id": {From: json.Number("7"), To: json.Number("11")}},
			Summary: "reassigned: agent_id 7 → 11"},
	}
	if !reflect.DeepEqual(ev, want) {
		t.Fatalf("event\n got %+v\nwant %+v", ev, want)
	}
	if ev.Detail.Summary != d.Summary || !reflect.DeepEqual(ev.Detail.Changed, d.Changed) {
		t.Fatalf("the event says %q %v, the delivery record %q %v", ev.Detail.Summary, ev.Detail.Changed, d.Summary, d.Changed)
	}
	if ev.ID == "" || len(ev.ID) != 32 {
		t.Fatalf("event id %q", ev.ID)
	}
}

func TestOnlyAppliedChangesHaveEvents(t *testing.T) {
	for _, o := range []change.Outcome{change.Pending, change.Duplicate, change.Stale, change.Filtered} {
		if _, ok := changeevent.New(ticketChange(2, map[string]any{}), change.Result{Outcome: o}, at); ok {
			t.Errorf("outcome %s has an event", o)
		}
	}
}

func TestOperations(t *testing.T) {
	created, _ := changeevent.New(ticketChange(1, map[string]any{"summary": "x"}), change.Result{Outcome: change.Applied}, at)
	if created.DetailType != "ticket created" || created.Detail.Summary != "created" || created.Detail.Changed != nil {
		t.Errorf("first state: %q %q %v", created.DetailType, created.Detail.Summary, created.Detail.Changed)
	}
	del := change.Change{Connection: "acme", Kind: change.Action, ID: "5", ParentID: "42", Op: change.OpDelete, Version: 3}
	deleted, _ := changeevent.New(del, change.Result{Outcome: change.Applied, Previous: map[string]any{}}, at)
	if deleted.DetailType != "action deleted" || deleted.Detail.ParentID != "42" || deleted.Detail.Operation != "deleted" {
		t.Errorf("delete: %+v", deleted)
	}
}

func TestTheEventIDIsStableAndNamesOneChange(t *testing.T) {
	id := changeevent.ID("acme", change.Ticket, "42", "", 2, 0)
	if id != changeevent.ID("acme", change.Ticket, "42", "", 2, 0) {
		t.Fatal("the same change has two ids")
	}
	others := []string{
		changeevent.ID("acme", change.Ticket, "42", "", 3, 0),
		changeevent.ID("acme", change.Ticket, "43", "", 2, 0),
		changeevent.ID("other", change.Ticket, "42", "", 2, 0),
		changeevent.ID("acme", change.Asset, "42", "", 2, 0),
		changeevent.ID("acme", change.Action, "42", "1", 2, 0),
		changeevent.ID("acme", change.Ticket, "42", "", 2, 9),
	}
	for i, o := range others {
		if o == id {
			t.Errorf("change %d has the id of another", i)
		}
	}
}

func TestDetailTypesNameEveryKindAndOperation(t *testing.T) {
	types := changeevent.DetailTypes()
	if len(types) != 3*len(change.Kinds()) {
		t.Fatalf("%d detail-types: %v", len(types), types)
	}
	for _, want := range []string{"ticket created", "ticket updated", "ticket deleted", "action created", "contact deleted"} {
		found := false
		for _, dt := range types {
			found = found || dt == want
		}
		if !found {
			t.Errorf("%q is not listed", want)
		}
	}
}

func TestEncodeAndDecode(t *testing.T) {
	ev, _ := changeevent.New(ticketChange(2, map[string]any{"team": "<Ops & Co>"}),
		change.Result{Outcome: change.Applied, Previous: map[string]any{}}, at)
	b, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := changeevent.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, ev) {
		t.Fatalf("decoded\n got %+v\nwant %+v", back, ev)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || doc["detail-type"] != "ticket updated" || doc["source"] != "halosync" {
		t.Fatalf("encoded %s (%v)", b, err)
	}
}
