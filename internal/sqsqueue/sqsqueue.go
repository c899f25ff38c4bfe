// Package sqsqueue carries halosync's messages on Amazon SQS (standard queues): sending in
// batches, long-poll receiving with the receive count and sent time, deleting,
// changing visibility, and creating a queue with its dead-letter queue for tests and
// local use.
package sqsqueue

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/signedjson"
)

// SQS limits.
const (
	// MaxBatch is the most entries one batch request may carry.
	MaxBatch = 10
	// MaxAttributes is the most message attributes one message may carry.
	MaxAttributes = 10
	// maxBatchBytes bounds the summed size of one SendMessageBatch. SQS allows 1 MiB
	// since 2025, 256 KiB before; the smaller keeps any SQS-compatible queue happy, and a
	// message larger than that alone is sent in a batch of its own.
	maxBatchBytes = message.MaxMessageBytes
	// MaxMessageBytes is the largest message SQS accepts (body and attributes), and the
	// stand-in's default. A queue may set a lower MaximumMessageSize; halosync's own
	// messages stay under message.MaxMessageBytes of body.
	MaxMessageBytes = 1 << 20
	// maxWait is the longest long poll SQS allows.
	maxWait = 20 * time.Second
	// maxVisibility is the longest visibility timeout SQS allows (12 hours).
	maxVisibility = 12 * time.Hour
)

// sendAttempts is how often a batch entry that failed through no fault of the sender
// (SenderFault false: throttling, an internal error) is sent before Send gives up.
const sendAttempts = 3

// API calls one SQS operation in AWS JSON 1.0 (X-Amz-Target AmazonSQS.<operation>) with
// in as its JSON body, decoding the answer into out; *signedjson.Client, as NewClient
// makes it, satisfies it. The queue speaks SQS's protocol without the SDK's SQS client,
// whose package the Lambda functions would otherwise load at every cold start
// (docs/PERFORMANCE.md, "Cold start").
type API interface {
	Call(ctx context.Context, operation string, in, out any) error
}

// Service is SQS's AWS JSON 1.0 API.
var Service = signedjson.Service{ID: "SQS", SigningName: "sqs", TargetPrefix: "AmazonSQS", JSONVersion: "1.0", QueryCompatible: true}

// NewClient returns an SQS client with cfg's credentials, region, retryer and endpoint
// (AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL, else the region's, as the SDK's client
// resolves it).
func NewClient(cfg aws.Config) *signedjson.Client { return signedjson.New(cfg, Service) }

// Queue is one SQS queue. It is safe for concurrent use.
type Queue struct {
	client API
	url    string
	// retryDelay is the pause before resending failed batch entries (doubling).
	retryDelay time.Duration
}

// New returns the queue at queueURL.
func New(client API, queueURL string) *Queue {
	return &Queue{client: client, url: queueURL, retryDelay: 100 * time.Millisecond}
}

// Open returns the queue at queueURL through an SQS client made from cfg (NewClient).
func Open(cfg aws.Config, queueURL string) *Queue { return New(NewClient(cfg), queueURL) }

// At returns the queue at queueURL through q's client (a dead-letter queue beside its
// queue: one client, built once).
func (q *Queue) At(queueURL string) *Queue { return New(q.client, queueURL) }

// URL is the queue's URL.
func (q *Queue) URL() string { return q.url }

// Send sends msgs in batches (at most ten messages and 256 KiB a batch), each attribute as
// a String message attribute; attributes with an empty value are left out, since SQS
// rejects them. A message SQS can never take (empty, over 1 MiB: message.ErrTooLarge, more
// than ten attributes) fails the whole Send before anything is sent. Entries SQS failed on
// its side are resent a few times. Delivery is at least once: when Send fails, some
// messages may have been sent, and sending them again makes duplicates, which consumers
// must tolerate (the store does).
func (q *Queue) Send(ctx context.Context, msgs []message.Message) error {
	var entries []sendEntry
	for i, m := range msgs {
		e, err := entry(i, m)
		if err != nil {
			return fmt.Errorf("sqs send to %s: %w", q.url, err)
		}
		entries = append(entries, e)
	}
	failed, sent := 0, 0
	var first error
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < MaxBatch {
			s := entrySize(entries[n])
			if n > 0 && size+s > maxBatchBytes {
				break
			}
			size += s
			n++
		}
		if err := q.sendBatch(ctx, entries[:n]); err != nil {
			var be *batchError
			if !errors.As(err, &be) {
				return fmt.Errorf("sqs send to %s: %d of %d messages sent, then: %w", q.url, sent, len(msgs), err)
			}
			failed += be.failed
			if first == nil {
				first = be.first
			}
			sent -= be.failed
		}
		sent += n
		entries = entries[n:]
	}
	if failed > 0 {
		return fmt.Errorf("sqs send to %s: %d of %d messages failed: %w", q.url, failed, len(msgs), first)
	}
	return nil
}

// batchError reports entries of one batch that failed for good.
type batchError struct {
	failed int
	first  error
}

func (e *batchError) Error() string { return fmt.Sprintf("%d entries failed: %v", e.failed, e.first) }

// sendBatch sends one batch, resending the entries SQS failed on its side up to
// sendAttempts times. It returns a *batchError when entries failed for good.
func (q *Queue) sendBatch(ctx context.Context, entries []sendEntry) error {
	var final []batchFailure
	delay := q.retryDelay
	for attempt := 1; len(entries) > 0; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return &batchError{failed: len(final) + len(entries), first: fmt.Errorf("resending %d messages: %w", len(entries), ctx.Err())}
			case <-time.After(delay):
			}
			delay *= 2
		}
		var out batchResult
		if err := q.client.Call(ctx, "SendMessageBatch", sendBatchRequest{QueueURL: q.url, Entries: entries}, &out); err != nil {
			return fmt.Errorf("send message batch: %w", err)
		}
		byID := make(map[string]sendEntry, len(entries))
		for _, e := range entries {
			byID[e.ID] = e
		}
		for _, s := range out.Successful {
			if e, ok := byID[s.ID]; ok {
				if err := checksum(s.MessageID, e.MessageBody, s.MD5OfMessageBody); err != nil {
					return fmt.Errorf("send message batch: %w", err)
				}
			}
		}
		entries = entries[:0:0]
		for _, f := range out.Failed {
			if e, ok := byID[f.ID]; ok && !f.SenderFault && attempt < sendAttempts {
				entries = append(entries, e)
			} else {
				final = append(final, f)
			}
		}
	}
	if len(final) > 0 {
		return &batchError{failed: len(final), first: entryError(final[0])}
	}
	return nil
}

func entryError(f batchFailure) error {
	fault := "SQS"
	if f.SenderFault {
		fault = "sender"
	}
	return fmt.Errorf("message %s: %s: %s (%s fault)", f.ID, f.Code, f.Message, fault)
}

// checksum checks a message body against the MD5 SQS says it holds, as the SDK's SQS
// client does for sends and receives (nothing to check when SQS gives none).
func checksum(messageID, body, md5Hex string) error {
	if md5Hex == "" {
		return nil
	}
	sum := md5.Sum([]byte(body))
	if got := hex.EncodeToString(sum[:]); got != md5Hex {
		return fmt.Errorf("message %s: body checksum %s, SQS says %s", messageID, got, md5Hex)
	}
	return nil
}

// entry makes the batch entry of message i; its id is the message's index in the Send.
func entry(i int, m message.Message) (sendEntry, error) {
	e := sendEntry{ID: strconv.Itoa(i), MessageBody: string(m.Body)}
	if len(m.Body) == 0 {
		return e, fmt.Errorf("message %d has an empty body, which SQS rejects", i)
	}
	for k, v := range m.Attributes {
		if v == "" {
			continue
		}
		if e.MessageAttributes == nil {
			e.MessageAttributes = map[string]attributeValue{}
		}
		e.MessageAttributes[k] = attributeValue{DataType: "String", StringValue: v}
	}
	if len(e.MessageAttributes) > MaxAttributes {
		return e, fmt.Errorf("message %d has %d attributes; SQS allows %d", i, len(e.MessageAttributes), MaxAttributes)
	}
	if size := entrySize(e); size > MaxMessageBytes {
		return e, fmt.Errorf("message %d is %d bytes with its attributes, over SQS's %d: %w", i, size, MaxMessageBytes, message.ErrTooLarge)
	}
	return e, nil
}

// entrySize is the size SQS counts: the body and each attribute's name, type and value.
func entrySize(e sendEntry) int {
	n := len(e.MessageBody)
	for k, v := range e.MessageAttributes {
		n += len(k) + len(v.DataType) + len(v.StringValue)
	}
	return n
}

// Receive returns up to maxMessages messages (clamped to 1..10), waiting up to wait (at most 20
// s, in whole seconds) for the first to arrive. Each carries its String message
// attributes, receive count and sent time. When ctx ends, Receive returns at once with
// no messages and ctx's error; a message SQS handed out meanwhile is redelivered after
// its visibility timeout.
func (q *Queue) Receive(ctx context.Context, maxMessages int, wait time.Duration) ([]message.Received, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqs receive from %s: %w", q.url, err)
	}
	maxMessages = min(max(maxMessages, 1), MaxBatch)
	wait = min(max(wait, 0), maxWait)
	msgs, err := q.receive(ctx, maxMessages, wait, 0)
	if err != nil {
		return nil, fmt.Errorf("sqs receive from %s: %w", q.url, err)
	}
	return msgs, nil
}

// receive receives up to maxMessages, long-polling for wait (whole seconds), hidden for
// visibility (whole seconds; 0: the queue's visibility timeout).
func (q *Queue) receive(ctx context.Context, maxMessages int, wait, visibility time.Duration) ([]message.Received, error) {
	var out receiveResult
	err := q.client.Call(ctx, "ReceiveMessage", receiveRequest{
		QueueURL:                    q.url,
		MaxNumberOfMessages:         maxMessages,
		WaitTimeSeconds:             int((wait + time.Second - 1) / time.Second),
		VisibilityTimeout:           int(visibility / time.Second),
		MessageSystemAttributeNames: []string{attributeReceiveCount, attributeSentTimestamp},
		MessageAttributeNames:       []string{"All"},
	}, &out)
	if err != nil {
		return nil, err
	}
	for _, m := range out.Messages {
		if err := checksum(m.MessageID, m.Body, m.MD5OfBody); err != nil {
			return nil, err
		}
	}
	return received(out.Messages), nil
}

// received turns SQS messages into received messages.
func received(in []receivedMessage) []message.Received {
	msgs := make([]message.Received, 0, len(in))
	for _, m := range in {
		r := message.Received{ID: m.MessageID, Body: []byte(m.Body), ReceiptHandle: m.ReceiptHandle}
		if len(m.MessageAttributes) > 0 {
			r.Attributes = make(map[string]string, len(m.MessageAttributes))
			for k, v := range m.MessageAttributes {
				r.Attributes[k] = v.StringValue
			}
		}
		if s, ok := m.Attributes[attributeReceiveCount]; ok {
			r.ReceiveCount, _ = strconv.Atoi(s)
		}
		if s, ok := m.Attributes[attributeSentTimestamp]; ok {
			if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
				r.SentAt = time.UnixMilli(ms)
			}
		}
		msgs = append(msgs, r)
	}
	return msgs
}

// Delete deletes received messages by receipt handle, in batches of ten.
func (q *Queue) Delete(ctx context.Context, receiptHandles ...string) error {
	failed := 0
	var first error
	for start := 0; start < len(receiptHandles); start += MaxBatch {
		chunk := receiptHandles[start:min(start+MaxBatch, len(receiptHandles))]
		entries := make([]handleEntry, len(chunk))
		for i, h := range chunk {
			entries[i] = handleEntry{ID: strconv.Itoa(start + i), ReceiptHandle: h}
		}
		var out batchResult
		if err := q.client.Call(ctx, "DeleteMessageBatch", handleBatchRequest{QueueURL: q.url, Entries: entries}, &out); err != nil {
			return fmt.Errorf("sqs delete from %s: %w", q.url, err)
		}
		failed += len(out.Failed)
		if first == nil && len(out.Failed) > 0 {
			first = entryError(out.Failed[0])
		}
	}
	if failed > 0 {
		return fmt.Errorf("sqs delete from %s: %d of %d messages failed: %w", q.url, failed, len(receiptHandles), first)
	}
	return nil
}

// ChangeVisibility makes a received message visible again after timeout (whole seconds,
// at most 12 hours); zero makes it visible at once.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error {
	timeout = min(max(timeout, 0), maxVisibility)
	err := q.client.Call(ctx, "ChangeMessageVisibility", changeVisibilityRequest{
		QueueURL:          q.url,
		ReceiptHandle:     receiptHandle,
		VisibilityTimeout: int(timeout / time.Second),
	}, &struct{}{})
	if err != nil {
		return fmt.Errorf("sqs change visibility on %s: %w", q.url, err)
	}
	return nil
}

// DLQSuffix names a queue's dead-letter queue: <name>-dlq.
const DLQSuffix = "-dlq"

// dlqRetention keeps dead letters for SQS's longest retention, 14 days.
const dlqRetention = 14 * 24 * time.Hour

// CreateQueuePair creates (or finds, when they exist with the same attributes) the queue
// name with the given visibility timeout (whole seconds) and its dead-letter queue
// name-dlq, to which SQS moves a message received more than maxReceive times. It is for
// tests and local use; in AWS the template creates the queues.
func CreateQueuePair(ctx context.Context, client API, name string, visibility time.Duration, maxReceive int) (mainURL, dlqURL string, err error) {
	if maxReceive < 1 {
		return "", "", fmt.Errorf("sqs create queue %s: max receive count %d must be at least 1", name, maxReceive)
	}
	var dlq createQueueResult
	err = client.Call(ctx, "CreateQueue", createQueueRequest{
		QueueName:  name + DLQSuffix,
		Attributes: map[string]string{"MessageRetentionPeriod": strconv.Itoa(int(dlqRetention / time.Second))},
	}, &dlq)
	if err != nil {
		return "", "", fmt.Errorf("sqs create queue %s%s: %w", name, DLQSuffix, err)
	}
	var attrs queueAttributesResult
	err = client.Call(ctx, "GetQueueAttributes", queueAttributesRequest{QueueURL: dlq.QueueURL, AttributeNames: []string{"QueueArn"}}, &attrs)
	if err != nil {
		return "", "", fmt.Errorf("sqs create queue %s: read the dead-letter queue's ARN: %w", name, err)
	}
	arn := attrs.Attributes["QueueArn"]
	if arn == "" {
		return "", "", fmt.Errorf("sqs create queue %s: the dead-letter queue has no ARN", name)
	}
	redrive, err := json.Marshal(struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}{arn, maxReceive})
	if err != nil {
		return "", "", fmt.Errorf("sqs create queue %s: %w", name, err)
	}
	var created createQueueResult
	err = client.Call(ctx, "CreateQueue", createQueueRequest{
		QueueName: name,
		Attributes: map[string]string{
			"VisibilityTimeout": strconv.Itoa(int(visibility / time.Second)),
			"RedrivePolicy":     string(redrive),
		},
	}, &created)
	if err != nil {
		return "", "", fmt.Errorf("sqs create queue %s: %w", name, err)
	}
	return created.QueueURL, dlq.QueueURL, nil
}
