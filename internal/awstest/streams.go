package awstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// StreamRecord is one record of a DynamoDB stream as DynamoDB Streams' GetRecords
// returns it, its images left as DynamoDB JSON: the shape Lambda hands a stream's event
// source mapping, which Record writes.
type StreamRecord struct {
	EventID   string `json:"eventID"`
	EventName string `json:"eventName"` // INSERT, MODIFY or REMOVE
	Dynamodb  struct {
		Keys           json.RawMessage `json:"Keys"`
		NewImage       json.RawMessage `json:"NewImage,omitempty"`
		OldImage       json.RawMessage `json:"OldImage,omitempty"`
		SequenceNumber string          `json:"SequenceNumber"`
		StreamViewType string          `json:"StreamViewType"`
	} `json:"dynamodb"`
}

// Record is r as a record of Lambda's DynamoDB event (events.DynamoDBEventRecord's JSON),
// from the stream whose ARN is streamARN.
func (r StreamRecord) Record(streamARN string) map[string]any {
	return map[string]any{
		"eventID": r.EventID, "eventName": r.EventName, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
		"awsRegion": Region, "eventSourceARN": streamARN, "dynamodb": r.Dynamodb,
	}
}

// StreamRecords reads every record of table's stream in DynamoDB Local, oldest first, with
// DynamoDB Streams' own API (DescribeTable, DescribeStream, GetShardIterator from the trim
// horizon, GetRecords to the end of each shard), and returns the stream's ARN too. The
// table must have a stream.
func StreamRecords(tb testing.TB, table string) (string, []StreamRecord) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep := DynamoDBEndpoint(tb)
	var described struct {
		Table struct {
			LatestStreamArn string `json:"LatestStreamArn"`
		} `json:"Table"`
	}
	call(ctx, tb, ep, "DynamoDB_20120810.DescribeTable", map[string]any{"TableName": table}, &described)
	arn := described.Table.LatestStreamArn
	if arn == "" {
		tb.Fatalf("table %s has no stream", table)
	}
	var stream struct {
		StreamDescription struct {
			Shards []struct {
				ShardID string `json:"ShardId"`
			} `json:"Shards"`
		} `json:"StreamDescription"`
	}
	call(ctx, tb, ep, "DynamoDBStreams_20120810.DescribeStream", map[string]any{"StreamArn": arn}, &stream)
	var out []StreamRecord
	for _, shard := range stream.StreamDescription.Shards {
		var it struct {
			ShardIterator string `json:"ShardIterator"`
		}
		call(ctx, tb, ep, "DynamoDBStreams_20120810.GetShardIterator",
			map[string]any{"StreamArn": arn, "ShardId": shard.ShardID, "ShardIteratorType": "TRIM_HORIZON"}, &it)
		iterator := it.ShardIterator
		for iterator != "" {
			var page struct {
				Records           []StreamRecord `json:"Records"`
				NextShardIterator string         `json:"NextShardIterator"`
			}
			call(ctx, tb, ep, "DynamoDBStreams_20120810.GetRecords", map[string]any{"ShardIterator": iterator}, &page)
			for _, r := range page.Records {
				r.Dynamodb.NewImage = typedEmptyMaps(tb, r.Dynamodb.NewImage)
				r.Dynamodb.OldImage = typedEmptyMaps(tb, r.Dynamodb.OldImage)
				out = append(out, r)
			}
			if len(page.Records) == 0 {
				break // an open shard's end: no more records now
			}
			iterator = page.NextShardIterator
		}
	}
	return arn, out
}

// typedEmptyMaps writes an empty map attribute as DynamoDB and Lambda do, {"M": {}}:
// DynamoDB Local's GetRecords writes it {}, without its type.
func typedEmptyMaps(tb testing.TB, image json.RawMessage) json.RawMessage {
	tb.Helper()
	if len(image) == 0 {
		return image
	}
	var item map[string]any
	if err := json.Unmarshal(image, &item); err != nil {
		tb.Fatalf("stream image %s: %v", image, err)
	}
	var fix func(v any) any
	fix = func(v any) any {
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		if len(m) == 0 {
			return map[string]any{"M": map[string]any{}}
		}
		if inner, ok := m["M"].(map[string]any); ok {
			for k, e := range inner {
				inner[k] = fix(e)
			}
		}
		if list, ok := m["L"].([]any); ok {
			for i, e := range list {
				list[i] = fix(e)
			}
		}
		return m
	}
	for k, v := range item {
		item[k] = fix(v)
	}
	out, err := json.Marshal(item)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// call makes one signed call of the DynamoDB JSON protocol to DynamoDB Local.
func call(ctx context.Context, tb testing.TB, endpoint, target string, in, out any) {
	tb.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", target)
	creds, err := Config().Credentials.Retrieve(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "dynamodb", Region, time.Now()); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: %d %s (%v)", target, resp.StatusCode, b, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		tb.Fatalf("%s: %v in %s", target, err, b)
	}
}

// Matches reports whether a JSON document matches an event pattern as EventBridge rules
// and Lambda's event filters read one: every key of the pattern must be in the document;
// a nested object matches a nested object; a list of values matches a scalar equal to
// one of them, or one of these comparisons: {"prefix": s}, {"suffix": s},
// {"exists": bool}, {"anything-but": [values] or value}, {"numeric": [op, n, ...]}. A list in the document matches
// when one of its elements does. Other comparisons are errors.
func Matches(pattern, document []byte) (bool, error) {
	var p, d any
	if err := json.Unmarshal(pattern, &p); err != nil {
		return false, fmt.Errorf("pattern: %w", err)
	}
	if err := json.Unmarshal(document, &d); err != nil {
		return false, fmt.Errorf("document: %w", err)
	}
	pm, ok := p.(map[string]any)
	if !ok {
		return false, fmt.Errorf("the pattern is not an object")
	}
	return matchObject(pm, d)
}

func matchObject(p map[string]any, d any) (bool, error) {
	dm, _ := d.(map[string]any)
	for k, want := range p {
		v, present := dm[k]
		switch w := want.(type) {
		case map[string]any:
			if !present {
				return false, nil
			}
			ok, err := matchObject(w, v)
			if err != nil || !ok {
				return false, err
			}
		case []any:
			ok, err := matchValues(w, v, present)
			if err != nil || !ok {
				return false, err
			}
		default:
			return false, fmt.Errorf("pattern key %q: a value must be an object or a list, not %v", k, want)
		}
	}
	return true, nil
}

// matchValues matches one document value (present or not) against a pattern's list.
func matchValues(list []any, v any, present bool) (bool, error) {
	if arr, ok := v.([]any); ok && present {
		for _, e := range arr {
			if ok, err := matchValues(list, e, true); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	for _, want := range list {
		cmp, ok := want.(map[string]any)
		if !ok {
			if present && fmt.Sprint(want) == fmt.Sprint(v) && sameType(want, v) {
				return true, nil
			}
			continue
		}
		for op, arg := range cmp {
			s, isString := v.(string)
			switch op {
			case "exists":
				if present == (arg == true) {
					return true, nil
				}
			case "prefix":
				if present && isString && len(s) >= len(fmt.Sprint(arg)) && s[:len(fmt.Sprint(arg))] == fmt.Sprint(arg) {
					return true, nil
				}
			case "suffix":
				a := fmt.Sprint(arg)
				if present && isString && len(s) >= len(a) && s[len(s)-len(a):] == a {
					return true, nil
				}
			case "numeric":
				if n, isNumber := v.(float64); present && isNumber && numeric(n, arg) {
					return true, nil
				}
			case "anything-but":
				others, ok := arg.([]any)
				if !ok {
					others = []any{arg}
				}
				if hit, _ := matchValues(others, v, present); present && !hit {
					return true, nil
				}
			default:
				return false, fmt.Errorf("comparison %q is not supported here", op)
			}
		}
	}
	return false, nil
}

func sameType(a, b any) bool { return fmt.Sprintf("%T", a) == fmt.Sprintf("%T", b) }

// numeric reports whether n satisfies every comparison of a numeric filter: [">", 0] or
// [">=", 1, "<", 5].
func numeric(n float64, arg any) bool {
	list, _ := arg.([]any)
	if len(list) == 0 || len(list)%2 != 0 {
		return false
	}
	for i := 0; i < len(list); i += 2 {
		op, _ := list[i].(string)
		x, ok := list[i+1].(float64)
		if !ok {
			return false
		}
		var hold bool
		switch op {
		case ">":
			hold = n > x
		case ">=":
			hold = n >= x
		case "<":
			hold = n < x
		case "<=":
			hold = n <= x
		case "=":
			hold = n == x
		}
		if !hold {
			return false
		}
	}
	return true
}
