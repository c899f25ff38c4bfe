package dynamo

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/halosync/halosync/internal/change"
)

func TestMarshalValueTypes(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want types.AttributeValue
	}{
		{"nil", nil, &types.AttributeValueMemberNULL{Value: true}},
		{"string", "héllo ✓", &types.AttributeValueMemberS{Value: "héllo ✓"}},
		{"empty string", "", &types.AttributeValueMemberS{Value: ""}},
		{"true", true, &types.AttributeValueMemberBOOL{Value: true}},
		{"false", false, &types.AttributeValueMemberBOOL{Value: false}},
		{"json.Number as written", json.Number("12.50"), &types.AttributeValueMemberN{Value: "12.50"}},
		{"json.Number exponent", json.Number("-1.5E+3"), &types.AttributeValueMemberN{Value: "-1.5E+3"}},
		{"float64", 12.5, &types.AttributeValueMemberN{Value: "12.5"}},
		{"int", 42, &types.AttributeValueMemberN{Value: "42"}},
		{"int64", int64(-7), &types.AttributeValueMemberN{Value: "-7"}},
		{"empty map", map[string]any{}, &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}},
		{"empty list", []any{}, &types.AttributeValueMemberL{Value: []types.AttributeValue{}}},
		{"nested", map[string]any{"a": []any{json.Number("1"), nil, map[string]any{"b": "c"}}},
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": &types.AttributeValueMemberL{Value: []types.AttributeValue{
				&types.AttributeValueMemberN{Value: "1"}, &types.AttributeValueMemberNULL{Value: true},
				&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"b": &types.AttributeValueMemberS{Value: "c"}}},
			}}}}},
		{"other types via JSON", []string{"x", "y"}, &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberS{Value: "x"}, &types.AttributeValueMemberS{Value: "y"}}}},
		{"raw JSON keeps numbers", json.RawMessage(`{"n": 1.10}`), &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"n": &types.AttributeValueMemberN{Value: "1.10"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := marshalValue(tt.in, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("marshalValue(%#v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFieldsRoundTrip(t *testing.T) {
	fields := map[string]any{
		"str": "héllo ✓", "empty": "", "int": json.Number("123456789012"), "dec": json.Number("12.50"),
		"neg": json.Number("-3"), "exp": json.Number("1e-7"), "yes": true, "no": false, "null": nil,
		"obj":       map[string]any{"a": json.Number("1"), "b": []any{"x", json.Number("2"), nil, []any{}}},
		"list":      []any{map[string]any{"id": json.Number("5"), "value": "v"}},
		"emptylist": []any{}, "emptyobj": map[string]any{}, "a.dotted name": "dots", "#hash": "h", ":colon": "c",
	}
	m, err := marshalFields(fields)
	if err != nil {
		t.Fatal(err)
	}
	back, err := unmarshalFields(m)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, fields) {
		t.Fatalf("round trip\n got %#v\nwant %#v", back, fields)
	}
	// Spelling survives exactly, not just the value.
	g, _ := json.Marshal(back)
	w, _ := json.Marshal(fields)
	if string(g) != string(w) {
		t.Fatalf("JSON after round trip\n got %s\nwant %s", g, w)
	}
}

func TestUnmarshalFieldsMissingIsEmpty(t *testing.T) {
	got, err := unmarshalFields(nil)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("unmarshalFields(nil) = %#v, %v; want an empty map", got, err)
	}
	if _, err := unmarshalFields(&types.AttributeValueMemberS{Value: "x"}); err == nil {
		t.Fatal("a fields attribute that is not a map was accepted")
	}
}

func TestUnmarshalSets(t *testing.T) {
	got, err := unmarshalValue(&types.AttributeValueMemberNS{Value: []string{"1", "2.5"}})
	if err != nil || !reflect.DeepEqual(got, []any{json.Number("1"), json.Number("2.5")}) {
		t.Fatalf("NS = %#v, %v", got, err)
	}
	got, err = unmarshalValue(&types.AttributeValueMemberSS{Value: []string{"a"}})
	if err != nil || !reflect.DeepEqual(got, []any{"a"}) {
		t.Fatalf("SS = %#v, %v", got, err)
	}
}

func TestMarshalRejectsWhatDynamoDBCannotHold(t *testing.T) {
	deep := any("bottom")
	for range maxDepth {
		deep = []any{deep}
	}
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"not a number", json.Number("12abc"), "not a number"},
		{"empty number", json.Number(""), "not a number"},
		{"number with spaces", json.Number(" 1"), "not a number"},
		{"39 digits", json.Number("123456789012345678901234567890123456789"), "38 significant digits"},
		{"too large", json.Number("1e126"), "out of DynamoDB's range"},
		{"too small", json.Number("1e-131"), "out of DynamoDB's range"},
		{"NaN", nan(), "number"},
		{"too deep", deep, "nested deeper"},
		{"empty key", map[string]any{"": "x"}, `field named ""`},
		{"unencodable", make(chan int), "value of type chan int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := marshalValue(tt.in, 1)
			if !errors.Is(err, change.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("marshalValue = %v; want change.ErrInvalid containing %q", err, tt.want)
			}
		})
	}
	if _, err := marshalFields(map[string]any{"": 1}); !errors.Is(err, change.ErrInvalid) {
		t.Fatalf("top-level empty field name: %v", err)
	}
}

func TestCheckNumberAccepts(t *testing.T) {
	for _, s := range []string{"0", "-0", "0.0", "0e999", "12", "-12.50", "1e125", "9.9999999999999999999999999999999999999e125",
		"1e-130", "0.0001e-126", "12345678901234567890123456789012345678", "1234567890123456789012345678901234567800000", "1.5E+3"} {
		if err := checkNumber(s); err != nil {
			t.Errorf("checkNumber(%q) = %v", s, err)
		}
	}
}

func TestDecodeItem(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 123, time.UTC)
	item := map[string]types.AttributeValue{
		attrConn: str("default"), attrKind: str("action"), attrID: str("3"), attrParentID: str("9"),
		attrVersion: num(20), attrPending: num(30), attrDeleted: &types.AttributeValueMemberBOOL{Value: true},
		attrFields:   &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"note": str("hi")}},
		attrClientID: str("12"), attrSyncedAt: str(now.Format(time.RFC3339Nano)), attrSource: str("poll"),
		attrDelivery: str("d"), attrEvent: str("e"),
	}
	got, err := decodeItem(item)
	if err != nil {
		t.Fatal(err)
	}
	want := change.Object{Connection: "default", Kind: change.Action, ID: "3", ParentID: "9", Version: 20, PendingVersion: 30,
		Deleted: true, Fields: map[string]any{"note": "hi"}, ClientID: "12", SyncedAt: now, Source: change.SourcePoll, DeliveryID: "d", Event: "e"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeItem\n got %#v\nwant %#v", got, want)
	}
	if _, err := decodeItem(map[string]types.AttributeValue{attrVersion: &types.AttributeValueMemberN{Value: "1.5"}}); err == nil {
		t.Fatal("a non-integral version was accepted")
	}
}

func TestExprBuilderPlaceholders(t *testing.T) {
	var e exprBuilder
	a, b, a2 := e.name("fields"), e.name("a.b #c :d"), e.name("fields")
	if a != a2 || a == b {
		t.Fatalf("names %q %q %q", a, b, a2)
	}
	if e.names[b] != "a.b #c :d" {
		t.Fatalf("placeholder %s stands for %q", b, e.names[b])
	}
	for i := range 100 {
		p := e.name(strings.Repeat("x", i+1))
		for _, r := range p[1:] {
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
				t.Fatalf("placeholder %q is not alphanumeric", p)
			}
		}
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}
