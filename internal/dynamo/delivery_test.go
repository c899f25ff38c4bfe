package dynamo

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
)

// TestPreviousValuesFromEitherShape: AWS returns under fields only the nested paths the
// update overwrote; DynamoDB Local returns the whole old map. Both give the same values.
func TestPreviousValuesFromEitherShape(t *testing.T) {
	c := change.Change{Fields: map[string]any{"agent_id": json.Number("11"), "team_id": json.Number("3"), "new": "x"}}
	m := func(kv map[string]types.AttributeValue) types.AttributeValue {
		return &types.AttributeValueMemberM{Value: kv}
	}
	null := &types.AttributeValueMemberNULL{Value: true}
	tests := []struct {
		name string
		old  map[string]types.AttributeValue
		want string
	}{
		{"AWS: only the nested paths that existed", map[string]types.AttributeValue{
			attrVersion: num(10), attrFields: m(map[string]types.AttributeValue{"agent_id": num(7), "team_id": null}),
		}, `{"agent_id":7,"team_id":null}`},
		{"DynamoDB Local: the whole old map", map[string]types.AttributeValue{
			attrVersion: num(10), attrFields: m(map[string]types.AttributeValue{"agent_id": num(7), "team_id": null, "summary": str("s")}),
		}, `{"agent_id":7,"team_id":null}`},
		{"only new fields: no fields attribute", map[string]types.AttributeValue{attrVersion: num(10)}, `{}`},
		{"no item before", nil, `null`},
		{"a pending marker", map[string]types.AttributeValue{attrVersion: num(0), attrFields: m(nil)}, `null`},
	}
	for _, tt := range tests {
		got, err := previousValues(tt.old, c)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if b, _ := json.Marshal(got); string(b) != tt.want {
			t.Errorf("%s: previous %s, want %s", tt.name, b, tt.want)
		}
	}
}

// TestPreviousValuesCostNoRequest: the previous values come with the conditional write.
func TestPreviousValuesCostNoRequest(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	ctx := context.Background()
	tk := func(v int64, fields map[string]any) change.Change {
		return change.Change{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: v, Source: change.SourceWebhook, Fields: fields}
	}
	if _, err := s.Apply(ctx, tk(10, map[string]any{"agent_id": json.Number("7"), "team_id": json.Number("2"), "summary": "s"})); err != nil {
		t.Fatal(err)
	}
	api.calls()
	r, err := s.Apply(ctx, tk(20, map[string]any{"agent_id": json.Number("11"), "team_id": json.Number("3")}))
	if err != nil {
		t.Fatal(err)
	}
	if calls := api.calls(); calls != "0 GetItem, 1 UpdateItem" {
		t.Errorf("an update with its previous values took %s", calls)
	}
	if b, _ := json.Marshal(r.Previous); string(b) != `{"agent_id":7,"team_id":2}` {
		t.Errorf("previous %s", b)
	}
}

func TestDeliveryItemLayout(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	ctx := context.Background()
	processed := time.Date(2026, 9, 25, 6, 41, 9, 123000000, time.UTC)
	d := change.Delivery{Connection: conn, DeliveryID: "0f8fad5b-d9cb-469f-a165-70867728950e", Kind: change.Asset, ID: "900",
		Op: change.OpUpsert, Event: "asset updated", Source: change.SourceWebhook, Outcome: change.Applied, Version: 77,
		Changed: map[string]change.FieldChange{
			"user_id": {From: json.Number("5"), To: json.Number("9")},
			"site_id": {To: json.Number("2"), Added: true},
			"notes":   {Elided: true},
		},
		Summary: "assigned: user_id 5 → 9, site_id (none) → 2", ReceivedAt: processed.Add(-time.Second), ProcessedAt: processed}
	if err := s.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n, calls := api.puts.Load(), api.calls(); n != 1 || calls != "0 GetItem, 0 UpdateItem" {
		t.Errorf("recording a delivery took %d PutItem and %s", n, calls)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: map[string]types.AttributeValue{
		"pk": str("C#" + conn + "#DELIVERY#0f8fad5b-d9cb-469f-a165-70867728950e"), "sk": str("asset#900")}})
	if err != nil || out.Item == nil {
		t.Fatalf("the record is not at its keys: %v", err)
	}
	if exp, err := getN(out.Item, "expires_at"); err != nil || exp != processed.Add(7*24*time.Hour).Unix() {
		t.Errorf("expires_at = %d, %v; want processed_at + 7 days in Unix seconds", exp, err)
	}
	for k, want := range map[string]string{"outcome": "applied", "event": "asset updated", "processed_at": "2026-09-25T06:41:09.123Z", "kind": "asset", "id": "900"} {
		if got := getS(out.Item, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	changed, _ := out.Item["changed"].(*types.AttributeValueMemberM)
	if changed == nil {
		t.Fatalf("changed = %#v", out.Item["changed"])
	}
	user, _ := changed.Value["user_id"].(*types.AttributeValueMemberM)
	if user == nil {
		t.Fatalf("changed.user_id = %#v", changed.Value["user_id"])
	}
	if n, _ := user.Value["to"].(*types.AttributeValueMemberN); n == nil || n.Value != "9" {
		t.Errorf("changed.user_id.to = %#v, want N 9", user.Value["to"])
	}
	site, _ := changed.Value["site_id"].(*types.AttributeValueMemberM)
	if _, has := site.Value["from"]; has || !getBool(site.Value, "added") {
		t.Errorf("changed.site_id = %#v: an added field has no from", site.Value)
	}
}
