package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
)

// TestTheStreamHoldsEveryChangeThatAlteredTheCopyAndNothingElse writes changes as the
// worker does, reads the table's stream from DynamoDB Local and turns its records into
// change events: one per applied change, each the event of the change and the result
// Apply returned; duplicates and stale changes leave no record at all; a pending marker,
// a delivery record and a cursor leave records but no event.
func TestTheStreamHoldsEveryChangeThatAlteredTheCopyAndNothingElse(t *testing.T) {
	client := awstest.DynamoDB(t)
	ctx := context.Background()
	name := ownTable(t, client, "stream", WithStream)
	s := New(client, name)
	ticket := func(v int64, fields map[string]any) change.Change {
		return change.Change{Connection: "c1", Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: v,
			Source: change.SourceWebhook, DeliveryID: fmt.Sprintf("d%d", v), Event: "ticket updated", Fields: fields}
	}
	note := change.Change{Connection: "c1", Kind: change.Action, ID: "5", ParentID: "1", Op: change.OpUpsert, Version: 12,
		Source: change.SourcePoll, Fields: map[string]any{"note": "called the customer"}}
	// Verification found the copy's fields wrong at Halo's own version, 20.
	fieldsRepair := ticket(20, map[string]any{"agent_id": json.Number("12"), "status_id": json.Number("1")})
	fieldsRepair.Repairs, fieldsRepair.DeliveryID, fieldsRepair.Event, fieldsRepair.Source = 20, "verify-ticket--1-1", "verify: fields", change.SourcePoll
	steps := []struct {
		c    change.Change
		want change.Outcome
	}{
		{ticket(10, map[string]any{"agent_id": json.Number("7"), "status_id": json.Number("1")}), change.Applied},
		{ticket(20, map[string]any{"agent_id": json.Number("11"), "status_id": json.Number("1")}), change.Applied},
		{ticket(20, map[string]any{"agent_id": json.Number("11")}), change.Duplicate},
		{ticket(15, map[string]any{"agent_id": json.Number("9")}), change.Stale},
		{fieldsRepair, change.Applied},
		{change.Change{Connection: "c1", Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 30, Source: change.SourceWebhook}, change.Pending},
		{note, change.Applied},
		{change.Change{Connection: "c1", Kind: change.Ticket, ID: "1", Op: change.OpDelete, Version: 40, Source: change.SourcePoll}, change.Applied},
	}
	var want []changeevent.Event
	for i, st := range steps {
		r, err := s.Apply(ctx, st.c)
		if err != nil || r.Outcome != st.want {
			t.Fatalf("step %d: %s, %v; want %s", i, r.Outcome, err, st.want)
		}
		if ev, ok := changeevent.New(st.c, r, time.Time{}); ok {
			want = append(want, ev)
		}
	}
	d := change.NewDelivery(steps[1].c, change.Result{Outcome: change.Applied}, time.Now(), time.Now())
	if err := s.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCursor(ctx, "c1", "ticket", []byte(`{"watermark":1}`)); err != nil {
		t.Fatal(err)
	}

	_, records := awstest.StreamRecords(t, name)
	// The object writes: two applied, the repair of fields, one pending marker, the note,
	// the delete; the delivery record and the cursor.
	if len(records) != 8 {
		for _, r := range records {
			t.Logf("%s %s", r.EventName, r.Dynamodb.Keys)
		}
		t.Fatalf("%d stream records, want 8", len(records))
	}
	var got []changeevent.Event
	for _, r := range records {
		ev, ok, err := StreamEvent(r.Dynamodb.OldImage, r.Dynamodb.NewImage)
		if err != nil {
			t.Fatalf("record %s: %v", r.Dynamodb.Keys, err)
		}
		if ok {
			if ev.Time.IsZero() {
				t.Errorf("event %s has no time", ev.ID)
			}
			got = append(got, ev)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d events from the stream, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Detail, want[i].Detail) || got[i].ID != want[i].ID || got[i].DetailType != want[i].DetailType {
			t.Errorf("event %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if got[1].Detail.Summary != "reassigned: agent_id 7 → 11" || got[2].Detail.Summary != "reassigned: agent_id 11 → 12" ||
		got[4].DetailType != "ticket deleted" || got[3].DetailType != "action created" {
		t.Errorf("events %q %q %q %q", got[1].Detail.Summary, got[2].Detail.Summary, got[3].DetailType, got[4].DetailType)
	}
}

func TestStreamEventReadsEveryAttributeType(t *testing.T) {
	newImage := []byte(`{"pk":{"S":"C#c1#ticket#1"},"sk":{"S":"STATE"},"gsi2pk":{"S":"C#c1#KIND#ticket"},"conn":{"S":"c1"},
		"kind":{"S":"ticket"},"id":{"S":"1"},"version":{"N":"2"},"deleted":{"BOOL":false},"synced_at":{"S":"2026-01-01T00:00:00Z"},
		"fields":{"M":{"n":{"N":"1.50"},"s":{"S":"x"},"b":{"BOOL":true},"z":{"NULL":true},"l":{"L":[{"S":"a"},{"N":"2"}]},"m":{"M":{}}}}}`)
	oldImage := []byte(`{"pk":{"S":"C#c1#ticket#1"},"sk":{"S":"STATE"},"gsi2pk":{"S":"C#c1#KIND#ticket"},"conn":{"S":"c1"},
		"kind":{"S":"ticket"},"id":{"S":"1"},"version":{"N":"1"},"fields":{"M":{"n":{"N":"1.5"},"s":{"S":"y"}}}}`)
	ev, ok, err := StreamEvent(oldImage, newImage)
	if err != nil || !ok {
		t.Fatalf("ok %v, %v", ok, err)
	}
	// 1.50 equals 1.5; s changed; the others are new.
	if _, same := ev.Detail.Changed["n"]; same || ev.Detail.Changed["s"].To != "x" || !ev.Detail.Changed["l"].Added || len(ev.Detail.Changed) != 5 {
		t.Fatalf("changed %+v", ev.Detail.Changed)
	}
	for _, bad := range []string{`{"pk":{"X":"1"}}`, `{"pk":{"S":"1","N":"2"}}`, `[1]`} {
		if _, _, err := StreamEvent(nil, []byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, ok, err := StreamEvent(oldImage, nil); ok || err != nil {
		t.Errorf("a removal: ok %v, %v", ok, err)
	}
}
