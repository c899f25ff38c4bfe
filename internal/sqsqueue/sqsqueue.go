// Package sqsqueue carries halosync's messages on Amazon SQS (standard queues): sending in
// batches, long-poll receiving with the receive count and sent time, deleting,
// changing visibility, and creating a queue with its dead-letter queue for tests and
// local use.
package sqsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/halosync/halosync/internal/message"
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

// API is the part of the SQS client the queue uses; *sqs.Client satisfies it.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

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

// Open returns the queue at queueURL through an SQS client made from cfg.
func Open(cfg aws.Config, queueURL string) *Queue { return New(sqs.NewFromConfig(cfg), queueURL) }

// At returns the queue at queueURL through q's client (a dead-letter queue beside its
// queue: one client, built once).
func (q *Queue) At(queueURL string) *Queue { return New(q.client, queueURL) }

// URL is the queue's URL.
func (q *Queue) URL() string { return q.url }

// Send sends msgs in batches (at most ten messages and 256 KiB a batch), each attribute
// as a String message attribute; attributes with an empty value are left out, since SQS
// rejects them. A message SQS can never take (empty, over 1 MiB: message.ErrTooLarge, more
// than ten attributes) fails the whole Send before anything is sent. Entries SQS failed on its side are resent a few times. Delivery is at
// least once: when Send fails, some messages may have been sent, and sending them again
// makes duplicates, which consumers must tolerate (the store does).
func (q *Queue) Send(ctx context.Context, msgs []message.Message) error {
	var entries []types.SendMessageBatchRequestEntry
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
func (q *Queue) sendBatch(ctx context.Context, entries []types.SendMessageBatchRequestEntry) error {
	var final []types.BatchResultErrorEntry
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
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
			return fmt.Errorf("send message batch: %w", err)
		}
		byID := make(map[string]types.SendMessageBatchRequestEntry, len(entries))
		for _, e := range entries {
			byID[aws.ToString(e.Id)] = e
		}
		entries = entries[:0:0]
		for _, f := range out.Failed {
			if e, ok := byID[aws.ToString(f.Id)]; ok && !f.SenderFault && attempt < sendAttempts {
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

func entryError(f types.BatchResultErrorEntry) error {
	fault := "SQS"
	if f.SenderFault {
		fault = "sender"
	}
	return fmt.Errorf("message %s: %s: %s (%s fault)", aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message), fault)
}

// entry makes the batch entry of message i; its id is the message's index in the Send.
func entry(i int, m message.Message) (types.SendMessageBatchRequestEntry, error) {
	e := types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(m.Body))}
	if len(m.Body) == 0 {
		return e, fmt.Errorf("message %d has an empty body, which SQS rejects", i)
	}
	for k, v := range m.Attributes {
		if v == "" {
			continue
		}
		if e.MessageAttributes == nil {
			e.MessageAttributes = map[string]types.MessageAttributeValue{}
		}
		e.MessageAttributes[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
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
func entrySize(e types.SendMessageBatchRequestEntry) int {
	n := len(aws.ToString(e.MessageBody))
	for k, v := range e.MessageAttributes {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
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
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(q.url),
		MaxNumberOfMessages: int32(maxMessages),
		WaitTimeSeconds:     int32((wait + time.Second - 1) / time.Second),
		VisibilityTimeout:   int32(visibility / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
		},
		MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		return nil, err
	}
	return received(out.Messages), nil
}

// received turns SQS messages into received messages.
func received(in []types.Message) []message.Received {
	msgs := make([]message.Received, 0, len(in))
	for _, m := range in {
		r := message.Received{ID: aws.ToString(m.MessageId), Body: []byte(aws.ToString(m.Body)), ReceiptHandle: aws.ToString(m.ReceiptHandle)}
		if len(m.MessageAttributes) > 0 {
			r.Attributes = make(map[string]string, len(m.MessageAttributes))
			for k, v := range m.MessageAttributes {
				r.Attributes[k] = aws.ToString(v.StringValue)
			}
		}
		if s, ok := m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; ok {
			r.ReceiveCount, _ = strconv.Atoi(s)
		}
		if s, ok := m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)]; ok {
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
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, h := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(start + i)), ReceiptHandle: aws.String(h)}
		}
		out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
		if err != nil {
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
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.url),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: int32(timeout / time.Second),
	})
	if err != nil {
		return fmt.Errorf("sqs change visibility on %s: %w", q.url, err)
	}
	return nil
}

// AdminAPI is the part of the SQS client CreateQueuePair uses; *sqs.Client satisfies it.
type AdminAPI interface {
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// DLQSuffix names a queue's dead-letter queue: <name>-dlq.
const DLQSuffix = "-dlq"

// dlqRetention keeps dead letters for SQS's longest retention, 14 days.
const dlqRetention = 14 * 24 * time.Hour

// CreateQueuePair creates (or finds, when they exist with the same attributes) the queue
// name with the given visibility timeout (whole seconds) and its dead-letter queue
// name-dlq, to which SQS moves a message received more than maxReceive times. It is for
// tests and local use; in AWS the template creates the queues.
func CreateQueuePair(ctx context.Context, client AdminAPI, name string, visibility time.Duration, maxReceive int) (mainURL, dlqURL string, err error) {
	if maxReceive < 1 {
		return "", "", fmt.Errorf("sqs create queue %s: max receive count %d must be at least 1", name, maxReceive)
	}
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName:  aws.String(name + DLQSuffix),
		Attributes: map[string]string{string(types.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(dlqRetention / time.Second))},
	})
	if err != nil {
		return "", "", fmt.Errorf("sqs create queue %s%s: %w", name, DLQSuffix, err)
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       dlq.QueueUrl,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("sqs create queue %s: read the dead-letter queue's ARN: %w", name, err)
	}
	arn := attrs.Attributes[string(types.QueueAttributeNameQueueArn)]
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
	created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(name),
		Attributes: map[string]string{
			string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(visibility / time.Second)),
			string(types.QueueAttributeNameRedrivePolicy):     string(redrive),
		},
	})
	if err != nil {
		return "", "", fmt.Errorf("sqs create queue %s: %w", name, err)
	}
	return aws.ToString(created.QueueUrl), aws.ToString(dlq.QueueUrl), nil
}
