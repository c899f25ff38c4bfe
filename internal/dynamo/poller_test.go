package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
)

func TestCursorItemLayout(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	at := time.Date(2026, 11, 27, 10, 0, 0, 123, time.FixedZone("CET", 3600))
	s.now = func() time.Time { return at }
	ctx := context.Background()
	doc := `{"watermark": "2026-11-27T09:00:00Z"}`
	if err := s.SaveCursor(ctx, conn, "ticket", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	if p, u := api.puts.Load(), api.updates.Load(); p != 1 || u != 0 {
		t.Errorf("SaveCursor made %d PutItem and %d UpdateItem; want one put", p, u)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: cursorKey(conn, "ticket")})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"pk": "C#" + conn + "#CURSOR", "sk": "ticket", "conn": conn, "doc": doc, "updated_at": "2026-11-27T09:00:00.000000123Z",
	}
	if len(out.Item) != len(want) {
		t.Errorf("cursor item has %d attributes, want %d: %v", len(out.Item), len(want), out.Item)
	}
	for k, w := range want {
		if _, ok := out.Item[k].(*types.AttributeValueMemberS); !ok || getS(out.Item, k) != w {
			t.Errorf("%s = %#v, want S %q", k, out.Item[k], w)
		}
	}
}

func TestObjectsEnterTheKindIndex(t *testing.T) {
	client, name := testTable(t)
	s, conn := New(client, name), newConn()
	ctx := context.Background()
	for _, c := range []change.Change{
		{Connection: conn, Kind: change.Action, ID: "3", ParentID: "42", Op: change.OpUpsert, Version: 1, Fields: map[string]any{"note": "n"}},
		{Connection: conn, Kind: change.Asset, ID: "9", Op: change.OpUpsert, Version: 1},  // a pending marker
		{Connection: conn, Kind: change.Client, ID: "5", Op: change.OpDelete, Version: 1}, // a tombstone
	} {
		if _, err := s.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: itemKey(conn, c.Kind, c.ID, c.ParentID)})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := getS(out.Item, "gsi2pk"), "C#"+conn+"#KIND#"+string(c.Kind); got != want {
			t.Errorf("%s gsi2pk = %q, want %q", c.Kind, got, want)
		}
		if got, want := getS(out.Item, "gsi2sk"), change.KindIndexSort(c.Kind, c.ID, c.ParentID); got != want {
			t.Errorf("%s gsi2sk = %q, want %q", c.Kind, got, want)
		}
	}
	if got, want := change.KindIndexSort(change.Action, "3", "42"), "42#3"; got != want {
		t.Errorf("note sort key %q, want %q", got, want)
	}
}

func TestStoredIDsPages(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	ctx := context.Background()
	for i := range 30 {
		c := change.Change{Connection: conn, Kind: change.Ticket, ID: fmt.Sprint(i), Op: change.OpUpsert, Version: 1, Fields: map[string]any{"a": "b"}}
		if _, err := s.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		size    int32
		pages   string
		queries int64
	}{
		{0, "[30]", 1},
		{7, "[7 7 7 7 2]", 5},
		{10, "[10 10 10]", 4}, // the last page is full: one more Query finds nothing, no empty page
	} {
		s.pageSize = tc.size
		api.queries.Store(0)
		var sizes []int
		if err := s.StoredIDs(ctx, conn, change.Ticket, func(ids []change.StoredID) error { sizes = append(sizes, len(ids)); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(sizes) != tc.pages || api.queries.Load() != tc.queries {
			t.Errorf("page size %d: pages %v in %d queries, want %s in %d", tc.size, sizes, api.queries.Load(), tc.pages, tc.queries)
		}
	}
}

func TestStoredIDRejectsAForeignIndexEntry(t *testing.T) {
	item := map[string]types.AttributeValue{"gsi2sk": str("42#3"), "parent_id": str("41")}
	if _, err := storedID(item, true); err == nil {
		t.Fatal("a note whose sort key does not start with its parent was accepted")
	}
	if id, err := storedID(map[string]types.AttributeValue{"gsi2sk": str("42#3"), "parent_id": str("42"), "deleted": &types.AttributeValueMemberBOOL{Value: true}}, true); err != nil ||
		id != (change.StoredID{ID: "3", ParentID: "42", Deleted: true}) {
		t.Fatalf("storedID = %+v, %v", id, err)
	}
}

func TestCreateTableRefusesATableWithoutGSI2(t *testing.T) {
	client, _ := testTable(t)
	ctx := context.Background()
	name := fmt.Sprintf("halosync-old-%d", time.Now().UnixNano())
	old := TableInput(name)
	old.GlobalSecondaryIndexes = old.GlobalSecondaryIndexes[:1]
	old.AttributeDefinitions = old.AttributeDefinitions[:4]
	if _, err := client.CreateTable(ctx, old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("delete table %s: %v", name, err)
		}
	})
	err := CreateTable(ctx, client, name)
	if err == nil || !strings.Contains(err.Error(), "without the index GSI2") {
		t.Fatalf("CreateTable on a table without GSI2 = %v", err)
	}
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		t.Fatalf("the error is the create call's: %v", err)
	}
}
