package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/storetest"
)

// shared is the one table of this test binary, created on first use against DynamoDB
// Local and deleted by TestMain. Tests use distinct connection ids, so they can share it.
var shared struct {
	once   sync.Once
	client *dynamodb.Client
	name   string
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.client != nil && shared.err == nil {
		_, err := shared.client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(shared.name)})
		if err != nil {
			fmt.Fprintf(os.Stderr, "delete test table %s: %v\n", shared.name, err)
		}
	}
	os.Exit(code)
}

// testTable returns the shared table's client and name; it skips (or, under CI, fails)
// without DynamoDB Local.
func testTable(tb testing.TB) (*dynamodb.Client, string) {
	tb.Helper()
	client := awstest.DynamoDB(tb)
	shared.once.Do(func() {
		shared.client = client
		shared.name = fmt.Sprintf("halosync-test-%d", time.Now().UnixNano())
		shared.err = CreateTable(context.Background(), client, shared.name)
	})
	if shared.err != nil {
		tb.Fatal(shared.err)
	}
	return shared.client, shared.name
}

func testStore(tb testing.TB) *Store {
	tb.Helper()
	client, name := testTable(tb)
	return New(client, name)
}

var connSeq atomic.Int64

func newConn() string { return fmt.Sprintf("dt-%d-%d", time.Now().UnixNano(), connSeq.Add(1)) }

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		s := testStore(t)
		s.pageSize = 64 // so that the contract's listing needs several Query pages
		return s
	})
}

// counting wraps the client and counts calls, to hold the store to its write budget.
type counting struct {
	API
	gets, updates, puts, queries atomic.Int64
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.puts.Add(1)
	return c.API.PutItem(ctx, in, o...)
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.API.GetItem(ctx, in, o...)
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.updates.Add(1)
	return c.API.UpdateItem(ctx, in, o...)
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.queries.Add(1)
	return c.API.Query(ctx, in, o...)
}

func (c *counting) calls() string {
	return fmt.Sprintf("%d GetItem, %d UpdateItem", c.gets.Swap(0), c.updates.Swap(0))
}

func TestRequestsPerChange(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	tk := func(v int64, fields map[string]any) change.Change {
		return change.Change{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: v, Source: change.SourcePoll, Fields: fields}
	}
	del := tk(60, nil)
	del.Op = change.OpDelete
	steps := []struct {
		name  string
		c     change.Change
		want  change.Outcome
		calls string
	}{
		{"new object: merge fails, create", tk(10, map[string]any{"a": "1"}), change.Applied, "0 GetItem, 2 UpdateItem"},
		{"update of a stored object", tk(20, map[string]any{"a": "2"}), change.Applied, "0 GetItem, 1 UpdateItem"},
		{"duplicate", tk(20, map[string]any{"a": "2"}), change.Duplicate, "0 GetItem, 1 UpdateItem"},
		{"stale", tk(15, map[string]any{"a": "x"}), change.Stale, "0 GetItem, 1 UpdateItem"},
		{"event only", tk(30, nil), change.Pending, "0 GetItem, 1 UpdateItem"},
		{"event only, duplicate", tk(30, nil), change.Duplicate, "0 GetItem, 1 UpdateItem"},
		{"empty snapshot", tk(40, map[string]any{}), change.Applied, "0 GetItem, 1 UpdateItem"},
		{"delete", del, change.Applied, "0 GetItem, 1 UpdateItem"},
	}
	for _, st := range steps {
		got, err := s.Apply(context.Background(), st.c)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if calls := api.calls(); got.Outcome != st.want || calls != st.calls {
			t.Errorf("%s = %s with %s; want %s with %s", st.name, got.Outcome, calls, st.want, st.calls)
		}
	}
	// An event for an unseen object creates its marker in one write too.
	got, err := s.Apply(context.Background(), change.Change{Connection: conn, Kind: change.Asset, ID: "1", Op: change.OpUpsert, Version: 5})
	if calls := api.calls(); err != nil || got.Outcome != change.Pending || calls != "0 GetItem, 1 UpdateItem" {
		t.Errorf("event for an unseen object = %s, %v with %s", got.Outcome, err, calls)
	}
}

func TestItemLayout(t *testing.T) {
	client, name := testTable(t)
	s, conn := New(client, name), newConn()
	ctx := context.Background()
	c := change.Change{Connection: conn, Kind: change.Ticket, ID: "77", Op: change.OpUpsert, Version: 1000, Source: change.SourceWebhook,
		DeliveryID: "d1", Event: "ticket updated", Fields: map[string]any{"client_id": json.Number("12"), "summary": "s"}}
	if _, err := s.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: itemKey(conn, change.Ticket, "77", "")})
	if err != nil {
		t.Fatal(err)
	}
	wantS := map[string]string{
		"pk": "C#" + conn + "#ticket#77", "sk": "STATE", "conn": conn, "kind": "ticket", "id": "77", "client_id": "12",
		"gsi1pk": "C#" + conn + "#CLIENT#12", "gsi1sk": "ticket#77", "source": "webhook", "delivery_id": "d1", "event": "ticket updated",
		"gsi2pk": "C#" + conn + "#KIND#ticket", "gsi2sk": "77",
	}
	for k, want := range wantS {
		if got := getS(out.Item, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if v, _ := out.Item["version"].(*types.AttributeValueMemberN); v == nil || v.Value != "1000" {
		t.Errorf("version = %#v", out.Item["version"])
	}
	if d, _ := out.Item["deleted"].(*types.AttributeValueMemberBOOL); d == nil || d.Value {
		t.Errorf("deleted = %#v", out.Item["deleted"])
	}
	if _, err := time.Parse(time.RFC3339Nano, getS(out.Item, "synced_at")); err != nil {
		t.Errorf("synced_at: %v", err)
	}
	f, _ := out.Item["fields"].(*types.AttributeValueMemberM)
	if f == nil {
		t.Fatalf("fields = %#v", out.Item["fields"])
	}
	if n, _ := f.Value["client_id"].(*types.AttributeValueMemberN); n == nil || n.Value != "12" {
		t.Errorf("fields.client_id = %#v, want N 12", f.Value["client_id"])
	}
	// A change without a delivery id or event removes the old ones, as change.Apply does.
	c2 := c
	c2.Version, c2.DeliveryID, c2.Event, c2.Fields = 2000, "", "", map[string]any{"summary": "t"}
	if _, err := s.Apply(ctx, c2); err != nil {
		t.Fatal(err)
	}
	o, _, err := s.Get(ctx, conn, change.Ticket, "77", "")
	if err != nil || o.DeliveryID != "" || o.Event != "" || o.ClientID != "12" {
		t.Fatalf("after update without metadata: delivery %q event %q client %q, err %v", o.DeliveryID, o.Event, o.ClientID, err)
	}
}

func TestListByClient(t *testing.T) {
	s, conn := testStore(t), newConn()
	ctx := context.Background()
	apply := func(c change.Change) {
		t.Helper()
		if _, err := s.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	up := func(kind change.Kind, id string, fields map[string]any) change.Change {
		return change.Change{Connection: conn, Kind: kind, ID: id, Op: change.OpUpsert, Version: 10, Source: change.SourcePoll, Fields: fields}
	}
	apply(up(change.Client, "12", map[string]any{"name": "Acme"}))
	apply(up(change.Ticket, "1", map[string]any{"client_id": json.Number("12")}))
	apply(up(change.Ticket, "2", map[string]any{"client_id": "12"}))
	apply(up(change.Ticket, "3", map[string]any{"client_id": json.Number("13")}))
	apply(up(change.Asset, "5", map[string]any{"client_id": 12.0}))
	apply(up(change.Contact, "7", map[string]any{"client_id": json.Number("0")})) // no client
	moved := up(change.Ticket, "2", map[string]any{"client_id": json.Number("13")})
	moved.Version = 20
	apply(moved)
	gone := up(change.Asset, "5", nil)
	gone.Op, gone.Version = change.OpDelete, 20
	apply(gone)

	got, err := s.ListByClient(ctx, conn, "12")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range got {
		ids = append(ids, fmt.Sprintf("%s#%s deleted=%v", o.Kind, o.ID, o.Deleted))
	}
	want := []string{"asset#5 deleted=true", "client#12 deleted=false", "ticket#1 deleted=false"}
	sort.Strings(ids)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("ListByClient(12) = %v, want %v", ids, want)
	}
	if other, err := s.ListByClient(ctx, conn, "13"); err != nil || len(other) != 2 {
		t.Fatalf("ListByClient(13) = %d objects, err %v; want 2", len(other), err)
	}
	if none, err := s.ListByClient(ctx, newConn(), "12"); err != nil || len(none) != 0 {
		t.Fatalf("another connection's client 12 = %d objects, err %v", len(none), err)
	}
}

func TestListByClientPages(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	ctx := context.Background()
	big := make([]byte, 100_000) // ~10 items pass Query's 1 MB page
	for i := range big {
		big[i] = 'x'
	}
	const n = 14
	for i := range n {
		c := change.Change{Connection: conn, Kind: change.Ticket, ID: fmt.Sprint(i), Op: change.OpUpsert, Version: 1, Source: change.SourcePoll,
			Fields: map[string]any{"client_id": "1", "blob": string(big)}}
		if _, err := s.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListByClient(ctx, conn, "1")
	if err != nil || len(got) != n {
		t.Fatalf("ListByClient = %d objects, err %v; want %d", len(got), err, n)
	}
	if q := api.queries.Load(); q < 2 {
		t.Fatalf("ListByClient made %d queries; the test meant to need pages", q)
	}
}

// TestMatchesReferenceRule applies random change sequences both to the store and to
// change.Apply and requires the same outcomes and the same stored objects.
func TestMatchesReferenceRule(t *testing.T) {
	s, conn := testStore(t), newConn()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	ref := map[string]*change.Object{}
	ids := []string{"1", "2", "3"}
	fieldNames := []string{"summary", "status_id", "client_id", "a.b", "#x", "details"}
	values := []any{"v", "", json.Number("7"), json.Number("12"), nil, true, map[string]any{"k": []any{json.Number("1")}}, []any{}}
	for step := range 300 {
		c := change.Change{Connection: conn, Kind: change.Ticket, ID: ids[rng.IntN(len(ids))], Op: change.OpUpsert,
			Version: int64(1 + rng.IntN(40)), Source: []change.Source{change.SourcePoll, change.SourceWebhook}[rng.IntN(2)],
			DeliveryID: []string{"", "d1", "d2"}[rng.IntN(3)], Event: []string{"", "ev"}[rng.IntN(2)]}
		switch r := rng.IntN(10); {
		case r < 2: // event only
		case r < 4:
			c.Op = change.OpDelete
			if r == 3 {
				c.Fields = map[string]any{"summary": "deleted"}
			}
		default:
			c.Fields = map[string]any{}
			for range rng.IntN(4) {
				c.Fields[fieldNames[rng.IntN(len(fieldNames))]] = values[rng.IntN(len(values))]
			}
		}
		got, err := s.Apply(ctx, c)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		next, want := change.Apply(ref[c.ID], c, now)
		ref[c.ID] = &next
		gr, _ := json.Marshal(got)
		wr, _ := json.Marshal(want)
		if string(gr) != string(wr) {
			t.Fatalf("step %d: %+v = %s, reference %s", step, c, gr, wr)
		}
		o, ok, err := s.Get(ctx, conn, change.Ticket, c.ID, "")
		if err != nil || !ok {
			t.Fatalf("step %d: Get = %v, %v", step, ok, err)
		}
		g, _ := json.Marshal(o)
		w, _ := json.Marshal(next)
		if string(g) != string(w) {
			t.Fatalf("step %d: after %+v\n store %s\n   ref %s", step, c, g, w)
		}
	}
}

func TestLargeSnapshotIsMergedInGo(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	ctx := context.Background()
	many := func(v int64, prefix string, n int) change.Change {
		f := map[string]any{}
		for i := range n {
			f[fmt.Sprintf("custom_field_%03d", i)] = fmt.Sprint(prefix, i)
		}
		return change.Change{Connection: conn, Kind: change.Ticket, ID: "big", Op: change.OpUpsert, Version: v, Source: change.SourcePoll, Fields: f}
	}
	mustApply := func(c change.Change, want change.Outcome) {
		t.Helper()
		got, err := s.Apply(ctx, c)
		if err != nil || got.Outcome != want {
			t.Fatalf("Apply v%d = %s, %v; want %s", c.Version, got.Outcome, err, want)
		}
	}
	mustApply(many(10, "a", 600), change.Applied) // new: read, create
	if calls := api.calls(); calls != "1 GetItem, 1 UpdateItem" {
		t.Errorf("creating a large object took %s", calls)
	}
	small := many(20, "b", 3)
	small.Fields["extra"] = "e"
	mustApply(small, change.Applied)
	// The small change merges in one write; the large one reads, merges in Go and rewrites.
	mustApply(many(30, "c", 500), change.Applied)
	if calls := api.calls(); calls != "1 GetItem, 2 UpdateItem" {
		t.Errorf("updating a large object took %s", calls)
	}
	mustApply(many(30, "d", 500), change.Duplicate)
	mustApply(many(25, "d", 500), change.Stale)
	o, ok, err := s.Get(ctx, conn, change.Ticket, "big", "")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if len(o.Fields) != 601 || o.Fields["custom_field_000"] != "c0" || o.Fields["custom_field_599"] != "a599" || o.Fields["extra"] != "e" || o.Version != 30 {
		t.Fatalf("merged large object: %d fields, 000=%v 599=%v extra=%v version %d", len(o.Fields),
			o.Fields["custom_field_000"], o.Fields["custom_field_599"], o.Fields["extra"], o.Version)
	}
}

func TestConcurrentLargeSnapshots(t *testing.T) {
	s, conn := testStore(t), newConn()
	ctx := context.Background()
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for v := 1; v <= n; v++ {
		wg.Add(1)
		go func(v int) {
			defer wg.Done()
			f := map[string]any{fmt.Sprint("only_", v): true}
			for i := range 400 {
				f[fmt.Sprintf("custom_field_%03d", i)] = fmt.Sprint("v", v)
			}
			_, err := s.Apply(ctx, change.Change{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: int64(v), Source: change.SourcePoll, Fields: f})
			errs <- err
		}(v)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	o, _, err := s.Get(ctx, conn, change.Ticket, "1", "")
	if err != nil || o.Version != n || o.Fields["custom_field_123"] != fmt.Sprint("v", n) || o.Fields[fmt.Sprint("only_", n)] != true {
		t.Fatalf("after concurrent large writes: version %d field %v, err %v", o.Version, o.Fields["custom_field_123"], err)
	}
}

func TestInvalidChanges(t *testing.T) {
	client, name := testTable(t)
	api := &counting{API: client}
	s, conn := New(api, name), newConn()
	for _, c := range []change.Change{
		{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 0, Fields: map[string]any{}},
		{Connection: conn, Kind: "widget", ID: "1", Op: change.OpUpsert, Version: 1},
		{Connection: conn, Kind: change.Action, ID: "1", Op: change.OpUpsert, Version: 1},
		{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 1, Fields: map[string]any{"n": json.Number("1e400")}},
		{Connection: conn, Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 1, Fields: map[string]any{"": "x"}},
	} {
		if _, err := s.Apply(context.Background(), c); !errors.Is(err, change.ErrInvalid) {
			t.Errorf("Apply(%+v) = %v; want change.ErrInvalid", c, err)
		}
	}
	if calls := api.calls(); calls != "0 GetItem, 0 UpdateItem" {
		t.Errorf("invalid changes cost %s", calls)
	}
}

// ownTable creates a table of the test's own, named after prefix, shaped by opts, deleted
// when it ends.
func ownTable(t *testing.T, client *dynamodb.Client, prefix string, opts ...func(*dynamodb.CreateTableInput)) string {
	t.Helper()
	name := fmt.Sprintf("halosync-%s-%d", prefix, time.Now().UnixNano())
	if err := CreateTable(context.Background(), client, name, opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("delete table %s: %v", name, err)
		}
	})
	return name
}

func TestCreateTable(t *testing.T) {
	client, _ := testTable(t)
	ctx := context.Background()
	name := ownTable(t, client, "create")
	if err := CreateTable(ctx, client, name); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	tbl := d.Table
	keys := func(ks []types.KeySchemaElement) string {
		var s string
		for _, k := range ks {
			s += fmt.Sprintf("%s:%s ", aws.ToString(k.AttributeName), k.KeyType)
		}
		return s
	}
	if got := keys(tbl.KeySchema); got != "pk:HASH sk:RANGE " {
		t.Errorf("key schema %q", got)
	}
	if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing %+v", tbl.BillingModeSummary)
	}
	if len(tbl.GlobalSecondaryIndexes) != 3 {
		t.Fatalf("%d global secondary indexes", len(tbl.GlobalSecondaryIndexes))
	}
	gsis := map[string]string{}
	for _, gsi := range tbl.GlobalSecondaryIndexes {
		projected := append([]string(nil), gsi.Projection.NonKeyAttributes...)
		sort.Strings(projected)
		gsis[aws.ToString(gsi.IndexName)] = fmt.Sprintf("%s%s %v", keys(gsi.KeySchema), gsi.Projection.ProjectionType, projected)
	}
	if got, want := gsis["GSI1"], "gsi1pk:HASH gsi1sk:RANGE ALL []"; got != want {
		t.Errorf("GSI1 = %q, want %q", got, want)
	}
	if got, want := gsis["GSI2"], "gsi2pk:HASH gsi2sk:RANGE INCLUDE [deleted parent_id]"; got != want {
		t.Errorf("GSI2 = %q, want %q", got, want)
	}
	if got, want := gsis["GSI3"], "gsi3pk:HASH gsi3sk:RANGE ALL []"; got != want {
		t.Errorf("GSI3 = %q, want %q", got, want)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "expires_at" || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Errorf("time to live %+v", d)
	}
}
