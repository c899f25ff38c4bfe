package lambdae2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/message"
)

// consumer is the part of the SQS adapter the player uses.
type consumer interface {
	Receive(ctx context.Context, max int, wait time.Duration) ([]message.Received, error)
	Delete(ctx context.Context, receiptHandles ...string) error
}

// esmPlayer plays Lambda's SQS event source mapping with ReportBatchItemFailures on, as
// template.yaml configures it: it receives a batch from the queue, invokes the worker with
// it as an events.SQSEvent, deletes every message the worker did not report in
// batchItemFailures and leaves the reported ones on the queue, where they come back after
// their visibility timeout (which the worker itself changes) and, after maxReceiveCount
// receives, move to the dead-letter queue by the queue's redrive policy.
//
// A function error (the worker returns one when every message of the batch failed) fails
// the whole batch, as Lambda does: nothing is deleted, and each message comes back when
// the visibility the worker gave it ends. A crash or timeout of the function is fatal to
// the test; so is a batchItemFailures entry that names no message of the batch (Lambda
// would then retry the whole batch).
type esmPlayer struct {
	t         *testing.T
	queue     consumer
	worker    *function
	arn       string        // the queue's ARN, as eventSourceARN
	batchSize int           // messages per invoke (the mapping's BatchSize, at most 10 per receive)
	wait      time.Duration // long-poll time of each receive

	invokes    int
	errors     int               // invokes the function answered with an error
	deliveries map[string]int    // message id → times delivered to the worker
	failures   map[string]int    // message id → times reported in batchItemFailures
	deleted    map[string]bool   // message id → deleted after success
	bodies     map[string]string // message id → body
	counts     map[string][]int  // message id → the ApproximateReceiveCount of each delivery
}

func newPlayer(t *testing.T, q consumer, worker *function, queueARN string) *esmPlayer {
	return &esmPlayer{
		t: t, queue: q, worker: worker, arn: queueARN, batchSize: 10, wait: time.Second,
		deliveries: map[string]int{}, failures: map[string]int{}, deleted: map[string]bool{},
		bodies: map[string]string{}, counts: map[string][]int{},
	}
}

// poll receives one batch (long polling up to p.wait) and, if it is not empty, has the
// worker process it. It returns the number of messages delivered.
func (p *esmPlayer) poll(ctx context.Context) int {
	t := p.t
	t.Helper()
	msgs, err := p.queue.Receive(ctx, p.batchSize, p.wait)
	if err != nil {
		if ctx.Err() != nil {
			return 0 // runUntil reports the timeout
		}
		t.Fatalf("event source mapping: receive: %v", err)
	}
	if len(msgs) == 0 {
		return 0
	}
	ev := events.SQSEvent{Records: make([]events.SQSMessage, 0, len(msgs))}
	byID := map[string]message.Received{}
	for _, m := range msgs {
		ev.Records = append(ev.Records, p.record(m))
		byID[m.ID] = m
		p.deliveries[m.ID]++
		p.bodies[m.ID] = string(m.Body)
		p.counts[m.ID] = append(p.counts[m.ID], m.ReceiveCount)
	}
	p.invokes++
	out, err := p.worker.invoke(t.Context(), ev)
	if errors.Is(err, errFunction) {
		p.errors++
		for _, m := range msgs {
			p.failures[m.ID]++
		}
		return len(msgs)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp := decodeAs[events.SQSEventResponse](t, p.worker, out)
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if _, ok := byID[f.ItemIdentifier]; !ok {
			t.Fatalf("event source mapping: batchItemFailures names %q, which is not in the batch %v", f.ItemIdentifier, slices.Sorted(maps.Keys(byID)))
		}
		failed[f.ItemIdentifier] = true
		p.failures[f.ItemIdentifier]++
	}
	var handles []string
	for _, m := range msgs {
		if !failed[m.ID] {
			handles = append(handles, m.ReceiptHandle)
			p.deleted[m.ID] = true
		}
	}
	if len(handles) > 0 {
		if err := p.queue.Delete(ctx, handles...); err != nil {
			t.Fatalf("event source mapping: delete %d processed messages: %v", len(handles), err)
		}
	}
	return len(msgs)
}

// record is one message as Lambda hands it to the function.
func (p *esmPlayer) record(m message.Received) events.SQSMessage {
	sum := md5.Sum(m.Body)
	attrs := make(map[string]events.SQSMessageAttribute, len(m.Attributes))
	for k, v := range m.Attributes {
		attrs[k] = events.SQSMessageAttribute{StringValue: &v, DataType: "String"}
	}
	return events.SQSMessage{
		MessageId:     m.ID,
		ReceiptHandle: m.ReceiptHandle,
		Body:          string(m.Body),
		Md5OfBody:     hex.EncodeToString(sum[:]),
		Attributes: map[string]string{
			"ApproximateReceiveCount": strconv.Itoa(m.ReceiveCount),
			"SentTimestamp":           strconv.FormatInt(m.SentAt.UnixMilli(), 10),
		},
		MessageAttributes: attrs,
		EventSource:       "aws:sqs",
		EventSourceARN:    p.arn,
		AWSRegion:         awstest.Region,
	}
}

// runUntil polls until done reports true, bounded by timeout; what describes the goal for
// the failure message.
func (p *esmPlayer) runUntil(timeout time.Duration, what string, done func() bool) {
	t := p.t
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	for !done() {
		if ctx.Err() != nil {
			t.Fatalf("event source mapping: not done after %v: %s\n%s", timeout, what, p.summary())
		}
		p.poll(ctx)
	}
	t.Logf("event source mapping: %s after %v (%d invokes so far)", what, time.Since(start).Round(time.Millisecond), p.invokes)
}

func (p *esmPlayer) summary() string {
	s := "  invokes: " + strconv.Itoa(p.invokes) + "\n"
	for _, id := range slices.Sorted(maps.Keys(p.deliveries)) {
		s += "  " + id + ": delivered " + strconv.Itoa(p.deliveries[id]) + ", failed " + strconv.Itoa(p.failures[id]) +
			", deleted " + strconv.FormatBool(p.deleted[id]) + ", body " + truncate(p.bodies[id], 120) + "\n"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
