package eventbridgebus_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/eventbridgebus"
)

func event(id string) changeevent.Event {
	c := change.Change{Connection: "acme", Kind: change.Ticket, ID: id, Op: change.OpUpsert, Version: 2, Fields: map[string]any{"agent_id": json.Number("11")}}
	ev, _ := changeevent.New(c, change.Result{Outcome: change.Applied, Previous: map[string]any{"agent_id": json.Number("7")}},
		time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC))
	return ev
}

// TestPutSendsOneEntryPerEventAndReportsEachRefusal drives the real SDK client against
// a fake EventBridge endpoint.
func TestPutSendsOneEntryPerEventAndReportsEachRefusal(t *testing.T) {
	fake := awstest.NewEventBridge(t)
	fake.Refuse(func(e awstest.PutEntry) bool { return strings.Contains(e.Detail, `"id":"2"`) })
	client := eventbridge.NewFromConfig(awstest.Config(), func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(fake.URL) })
	bus := eventbridgebus.New(client, "halosync-changes")

	errs, err := bus.Put(context.Background(), []changeevent.Event{event("1"), event("2"), event("3")})
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || errs[1] == nil || errs[2] != nil || !strings.Contains(errs[1].Error(), "InternalFailure") {
		t.Fatalf("errors %v", errs)
	}
	got := fake.Accepted()
	if len(got) != 2 {
		t.Fatalf("accepted %+v", got)
	}
	e := got[0]
	if e.EventBusName != "halosync-changes" || e.Source != "halosync" || e.DetailType != "ticket updated" {
		t.Fatalf("entry %+v", e)
	}
	var detail changeevent.Detail
	if err := json.Unmarshal([]byte(e.Detail), &detail); err != nil || detail.EventID != event("1").ID ||
		detail.Summary != "reassigned: agent_id 7 → 11" || detail.Changed["agent_id"].To != float64(11) {
		t.Fatalf("detail %s (%v)", e.Detail, err)
	}
	if _, err := bus.Put(context.Background(), make([]changeevent.Event, 11)); err == nil {
		t.Fatal("eleven events in one call")
	}
}
