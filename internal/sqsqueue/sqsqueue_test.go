package sqsqueue

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/queuetest"
	"github.com/halosync/halosync/internal/signedjson"
)

var queueSeq atomic.Int64

// newPair creates a fresh, uniquely named queue pair on the SQS stand-in and deletes it
// when the test ends.
func newPair(t *testing.T, visibility time.Duration, maxReceive int) (client *signedjson.Client, mainURL, dlqURL string) {
	t.Helper()
	client = NewClient(awstest.SQSConfig(t))
	name := fmt.Sprintf("halosync-test-%d-%d", time.Now().UnixNano(), queueSeq.Add(1))
	mainURL, dlqURL, err := CreateQueuePair(context.Background(), client, name, visibility, maxReceive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, u := range []string{mainURL, dlqURL} {
			if err := client.Call(context.Background(), "DeleteQueue", map[string]string{"QueueUrl": u}, &struct{}{}); err != nil {
				t.Errorf("delete queue %s: %v", u, err)
			}
		}
	})
	return client, mainURL, dlqURL
}

func TestQueueContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queuetest.Options) (queuetest.Queue, queuetest.Queue) {
		client, mainURL, dlqURL := newPair(t, o.Visibility, o.MaxReceive)
		return New(client, mainURL), New(client, dlqURL)
	})
}

func TestQueueAdminContract(t *testing.T) {
	queuetest.RunAdmin(t, func(t *testing.T, o queuetest.Options) (*Queue, *Queue) {
		client, mainURL, dlqURL := newPair(t, o.Visibility, o.MaxReceive)
		return New(client, mainURL), New(client, dlqURL)
	})
}

func TestCreateQueuePair(t *testing.T) {
	client, mainURL, dlqURL := newPair(t, 45*time.Second, 3)
	ctx := context.Background()
	attrs := func(url string) map[string]string {
		var out queueAttributesResult
		if err := client.Call(ctx, "GetQueueAttributes", queueAttributesRequest{QueueURL: url, AttributeNames: []string{"All"}}, &out); err != nil {
			t.Fatal(err)
		}
		return out.Attributes
	}
	m, d := attrs(mainURL), attrs(dlqURL)
	if m["VisibilityTimeout"] != "45" {
		t.Errorf("visibility timeout %q", m["VisibilityTimeout"])
	}
	if want := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":3}`, d["QueueArn"]); m["RedrivePolicy"] != want {
		t.Errorf("redrive policy %s, want %s", m["RedrivePolicy"], want)
	}
	if d["MessageRetentionPeriod"] != "1209600" {
		t.Errorf("dead-letter retention %q", d["MessageRetentionPeriod"])
	}
	if !strings.HasSuffix(dlqURL, DLQSuffix) {
		t.Errorf("dead-letter queue URL %s", dlqURL)
	}
	// Creating the same pair again finds it.
	name := mainURL[strings.LastIndex(mainURL, "/")+1:]
	m2, d2, err := CreateQueuePair(ctx, client, name, 45*time.Second, 3)
	if err != nil || m2 != mainURL || d2 != dlqURL {
		t.Fatalf("second CreateQueuePair = %s %s, %v", m2, d2, err)
	}
	if _, _, err := CreateQueuePair(ctx, client, name, 45*time.Second, 0); err == nil {
		t.Fatal("max receive 0 accepted")
	}
}

// countingSQS counts batch sends on a real client.
type countingSQS struct {
	API
	batches atomic.Int64
}

func (c *countingSQS) Call(ctx context.Context, operation string, in, out any) error {
	if operation == "SendMessageBatch" {
		c.batches.Add(1)
	}
	return c.API.Call(ctx, operation, in, out)
}

func TestSendSplitsBatchesBySize(t *testing.T) {
	client, url, _ := newPair(t, 30*time.Second, 5)
	api := &countingSQS{API: client}
	q := New(api, url)
	ctx := context.Background()
	var msgs []message.Message
	for i := range 10 {
		msgs = append(msgs, message.Message{Body: []byte(fmt.Sprintf("%d:%s", i, strings.Repeat("x", 100_000))), Attributes: map[string]string{"i": fmt.Sprint(i)}})
	}
	// The largest message halosync sends, with attributes on top.
	msgs = append(msgs, message.Message{Body: []byte(strings.Repeat("y", message.MaxMessageBytes)),
		Attributes: map[string]string{message.AttrConnection: "default", message.AttrKind: "ticket", message.AttrSource: "webhook"}})
	if err := q.Send(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if n := api.batches.Load(); n < 5 {
		t.Errorf("11 messages of 100-256 KB went in %d batches; want them split under 256 KiB each", n)
	}
	got := 0
	// A bound, not a pause: the stand-in serves every package's tests at once.
	deadline := time.Now().Add(30 * time.Second)
	for got < len(msgs) && time.Now().Before(deadline) {
		r, err := q.Receive(ctx, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range r {
			if len(m.Body) < 100_000 {
				t.Fatalf("message %s body of %d bytes", m.ID, len(m.Body))
			}
		}
		got += len(r)
	}
	if got != len(msgs) {
		t.Fatalf("received %d of %d", got, len(msgs))
	}
}

func TestSendBetweenClassicAndCurrentLimits(t *testing.T) {
	client, url, _ := newPair(t, 30*time.Second, 5)
	q := New(client, url)
	ctx := context.Background()
	// 300 KB: over SQS's classic 256 KiB, within today's 1 MiB (and the stand-in's).
	big := message.Message{Body: []byte(strings.Repeat("z", 300_000))}
	if err := q.Send(ctx, []message.Message{{Body: []byte("small")}, big}); err != nil {
		t.Fatal(err)
	}
	huge := message.Message{Body: []byte(strings.Repeat("z", MaxMessageBytes-5)), Attributes: map[string]string{"kind": "ticket"}}
	err := q.Send(ctx, []message.Message{{Body: []byte("small")}, huge})
	if !errors.Is(err, message.ErrTooLarge) {
		t.Fatalf("sending a message over 1 MiB with its attributes: %v", err)
	}
	got := 0
	deadline := time.Now().Add(30 * time.Second)
	for got < 2 && time.Now().Before(deadline) {
		r, err := q.Receive(ctx, 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got += len(r)
	}
	if rest, _ := q.Receive(ctx, 10, 0); got != 2 || len(rest) != 0 {
		t.Fatalf("received %d then %d messages; want the 2 of the first Send only", got, len(rest))
	}
}

func TestReceiveReturnsWhenCancelledWhileWaiting(t *testing.T) {
	client, url, _ := newPair(t, 30*time.Second, 5)
	q := New(client, url)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	msgs, err := q.Receive(ctx, 10, 20*time.Second)
	if len(msgs) != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive = %d messages, %v; want none and the context's error", len(msgs), err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a cancelled long poll took %v to return", d)
	}
}

// fakeSQS scripts SendMessageBatch answers and records requests.
type fakeSQS struct {
	mu       sync.Mutex
	sends    []sendBatchRequest
	fail     func(call int, e sendEntry) *batchFailure
	receives []receiveRequest
	deletes  []handleBatchRequest
	// corrupt answers a body checksum that is not the body's.
	corrupt bool
}

func (f *fakeSQS) md5(body string) string {
	if f.corrupt {
		return "00000000000000000000000000000000"
	}
	sum := md5.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

func (f *fakeSQS) Call(_ context.Context, operation string, in, out any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch operation {
	case "SendMessageBatch":
		req, res := in.(sendBatchRequest), out.(*batchResult)
		f.sends = append(f.sends, req)
		for _, e := range req.Entries {
			if f.fail != nil {
				if r := f.fail(len(f.sends), e); r != nil {
					r.ID = e.ID
					res.Failed = append(res.Failed, *r)
					continue
				}
			}
			res.Successful = append(res.Successful, batchSuccess{ID: e.ID, MessageID: "m" + e.ID, MD5OfMessageBody: f.md5(e.MessageBody)})
		}
	case "ReceiveMessage":
		f.receives = append(f.receives, in.(receiveRequest))
		*out.(*receiveResult) = receiveResult{Messages: []receivedMessage{{
			MessageID: "id1", ReceiptHandle: "rh1", Body: "body", MD5OfBody: f.md5("body"),
			Attributes:        map[string]string{"ApproximateReceiveCount": "3", "SentTimestamp": "1767225600123"},
			MessageAttributes: map[string]attributeValue{"kind": {DataType: "String", StringValue: "ticket"}},
		}}}
	case "DeleteMessageBatch":
		req, res := in.(handleBatchRequest), out.(*batchResult)
		f.deletes = append(f.deletes, req)
		for _, e := range req.Entries {
			if e.ReceiptHandle == "bad" {
				res.Failed = append(res.Failed, batchFailure{ID: e.ID, Code: "ReceiptHandleIsInvalid", SenderFault: true})
			}
		}
	default:
		return fmt.Errorf("fake SQS: %s not scripted", operation)
	}
	return nil
}

func messages(n int) []message.Message {
	var m []message.Message
	for i := range n {
		m = append(m, message.Message{Body: []byte(fmt.Sprint("m", i)), Attributes: map[string]string{"n": fmt.Sprint(i), "empty": ""}})
	}
	return m
}

func TestSendBatchesAndAttributes(t *testing.T) {
	f := &fakeSQS{}
	if err := New(f, "q").Send(context.Background(), messages(23)); err != nil {
		t.Fatal(err)
	}
	if len(f.sends) != 3 || len(f.sends[0].Entries) != 10 || len(f.sends[2].Entries) != 3 {
		t.Fatalf("23 messages went in %d batches", len(f.sends))
	}
	e := f.sends[2].Entries[2]
	if e.ID != "22" || e.MessageBody != "m22" {
		t.Fatalf("entry %s %s", e.ID, e.MessageBody)
	}
	if a := e.MessageAttributes; len(a) != 1 || a["n"].DataType != "String" || a["n"].StringValue != "22" {
		t.Fatalf("attributes %+v (empty values must be left out)", a)
	}
	if err := New(f, "q").Send(context.Background(), nil); err != nil || len(f.sends) != 3 {
		t.Fatalf("sending nothing: %v, %d batches", err, len(f.sends))
	}
}

func TestSendRetriesServerFaults(t *testing.T) {
	f := &fakeSQS{fail: func(call int, e sendEntry) *batchFailure {
		if call == 1 && (e.ID == "1" || e.ID == "3") {
			return &batchFailure{Code: "InternalError", SenderFault: false}
		}
		return nil
	}}
	q := New(f, "q")
	q.retryDelay = time.Millisecond
	if err := q.Send(context.Background(), messages(5)); err != nil {
		t.Fatal(err)
	}
	if len(f.sends) != 2 || len(f.sends[1].Entries) != 2 || f.sends[1].Entries[0].ID != "1" {
		t.Fatalf("%d requests; the retry carried %d entries", len(f.sends), len(f.sends[len(f.sends)-1].Entries))
	}
}

func TestSendGivesUp(t *testing.T) {
	f := &fakeSQS{fail: func(call int, e sendEntry) *batchFailure {
		switch e.ID {
		case "0":
			return &batchFailure{Code: "InternalError"}
		case "12":
			return &batchFailure{Code: "InvalidMessageContents", Message: "bad char", SenderFault: true}
		}
		return nil
	}}
	q := New(f, "q")
	q.retryDelay = time.Millisecond
	err := q.Send(context.Background(), messages(15))
	if err == nil || !strings.Contains(err.Error(), "2 of 15 messages failed") || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("Send = %v", err)
	}
	// Batch one: first try and two resends of entry 0; batch two: one try (sender fault).
	if len(f.sends) != sendAttempts+1 {
		t.Fatalf("%d requests", len(f.sends))
	}
}

func TestSendRejectsUnsendableMessages(t *testing.T) {
	f := &fakeSQS{}
	many := map[string]string{}
	for i := range 11 {
		many[fmt.Sprint("a", i)] = "v"
	}
	for name, m := range map[string]message.Message{"empty body": {}, "11 attributes": {Body: []byte("x"), Attributes: many}} {
		if err := New(f, "q").Send(context.Background(), []message.Message{m}); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
	if len(f.sends) != 0 {
		t.Fatalf("%d requests for unsendable messages", len(f.sends))
	}
}

func TestReceiveRequest(t *testing.T) {
	f := &fakeSQS{}
	q := New(f, "q")
	ctx := context.Background()
	for _, c := range []struct {
		max, wantMax   int
		wait           time.Duration
		wantWaitSecond int
	}{{0, 1, 0, 0}, {5, 5, 1500 * time.Millisecond, 2}, {50, 10, time.Minute, 20}, {-1, 1, -time.Second, 0}} {
		msgs, err := q.Receive(ctx, c.max, c.wait)
		if err != nil {
			t.Fatal(err)
		}
		in := f.receives[len(f.receives)-1]
		if in.MaxNumberOfMessages != c.wantMax || in.WaitTimeSeconds != c.wantWaitSecond {
			t.Errorf("Receive(%d, %v) asked for %d messages waiting %d s", c.max, c.wait, in.MaxNumberOfMessages, in.WaitTimeSeconds)
		}
		if fmt.Sprint(in.MessageAttributeNames) != "[All]" || len(in.MessageSystemAttributeNames) != 2 {
			t.Errorf("attribute names %v %v", in.MessageAttributeNames, in.MessageSystemAttributeNames)
		}
		m := msgs[0]
		if m.ID != "id1" || m.ReceiptHandle != "rh1" || string(m.Body) != "body" || m.ReceiveCount != 3 ||
			!m.SentAt.Equal(time.UnixMilli(1767225600123)) || m.Attributes["kind"] != "ticket" {
			t.Errorf("received %+v", m)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	n := len(f.receives)
	if msgs, err := q.Receive(cctx, 10, time.Second); len(msgs) != 0 || !errors.Is(err, context.Canceled) || len(f.receives) != n {
		t.Fatalf("cancelled Receive = %d messages, %v, %d requests", len(msgs), err, len(f.receives)-n)
	}
}

func TestDeleteBatches(t *testing.T) {
	f := &fakeSQS{}
	handles := make([]string, 21)
	for i := range handles {
		handles[i] = fmt.Sprint("h", i)
	}
	handles[20] = "bad"
	err := New(f, "q").Delete(context.Background(), handles...)
	if len(f.deletes) != 3 || len(f.deletes[2].Entries) != 1 {
		t.Fatalf("21 deletes went in %d batches", len(f.deletes))
	}
	if err == nil || !strings.Contains(err.Error(), "1 of 21 messages failed") || !strings.Contains(err.Error(), "ReceiptHandleIsInvalid") {
		t.Fatalf("Delete = %v", err)
	}
}

// TestAtSendsThroughTheSameClient: a dead-letter queue opened At its URL beside its queue
// sends to that URL through the queue's client.
func TestAtSendsThroughTheSameClient(t *testing.T) {
	client, mainURL, dlqURL := newPair(t, 30*time.Second, 5)
	api := &countingSQS{API: client}
	dlq := New(api, mainURL).At(dlqURL)
	ctx := context.Background()
	if dlq.URL() != dlqURL {
		t.Fatalf("URL %s, want %s", dlq.URL(), dlqURL)
	}
	if err := dlq.Send(ctx, []message.Message{{Body: []byte("dead letter")}}); err != nil {
		t.Fatal(err)
	}
	if n := api.batches.Load(); n != 1 {
		t.Fatalf("%d batches through the queue's client, want 1", n)
	}
	// A bound, not a pause: the stand-in serves every package's tests at once.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		r, err := dlq.Receive(ctx, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) == 1 {
			if string(r[0].Body) != "dead letter" {
				t.Fatalf("body %q", r[0].Body)
			}
			return
		}
	}
	t.Fatal("the message sent At the dead-letter queue's URL never arrived there")
}

// TestSendMessageBatchSendsWhatTheSDKSends: a batch with a message attribute goes as the
// SDK's SQS client sends it: target, content type, query mode and body, byte for byte.
func TestSendMessageBatchSendsWhatTheSDKSends(t *testing.T) {
	fake, cfg := awstest.NewJSONAPI(t, 200, `{"Successful":[],"Failed":[]}`)
	const url = "https://sqs.eu-west-1.amazonaws.com/123456789012/changes"
	msg := message.Message{Body: []byte(`{"id":42}`), Attributes: map[string]string{message.AttrKind: "ticket"}}
	if err := Open(cfg, url).Send(context.Background(), []message.Message{msg}); err != nil {
		t.Fatal(err)
	}
	_, err := sqs.NewFromConfig(cfg).SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{
		QueueUrl: aws.String(url),
		Entries: []types.SendMessageBatchRequestEntry{{
			Id: aws.String("0"), MessageBody: aws.String(`{"id":42}`),
			MessageAttributes: map[string]types.MessageAttributeValue{message.AttrKind: {DataType: aws.String("String"), StringValue: aws.String("ticket")}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := fake.Requests()
	if len(got) != 2 || got[0] != got[1] {
		t.Fatalf("requests\n ours %+v\n SDK's %+v", got[0], got[len(got)-1])
	}
	if r := got[0]; r.Target != "AmazonSQS.SendMessageBatch" || r.ContentType != "application/x-amz-json-1.0" || r.QueryMode != "true" {
		t.Fatalf("request %+v", r)
	}
}

// TestChecksumMismatchFails: a send or a receive whose body checksum is not the body's
// fails, as with the SDK's SQS client.
func TestChecksumMismatchFails(t *testing.T) {
	f := &fakeSQS{corrupt: true}
	q := New(f, "q")
	if err := q.Send(context.Background(), messages(1)); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Send = %v, want a checksum error", err)
	}
	if msgs, err := q.Receive(context.Background(), 1, 0); err == nil || len(msgs) != 0 || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("Receive = %d messages, %v; want a checksum error", len(msgs), err)
	}
}
