package worker

import (
	"context"
	"errors"
	"time"

	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// Retrier delays a failed message's next delivery (SQS's ChangeMessageVisibility).
type Retrier interface {
	ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error
}

// Margin is the time HandleBatch keeps free at the end of an invocation (ctx's deadline):
// it starts no message with less than Margin left, and a started message's work, a fetch
// from Halo's API included, ends Margin/2 before the deadline, so the failures are
// reported before the function is timed out. Without a deadline (the local pump) every
// message is started and takes what it takes.
const Margin = 10 * time.Second

// DeadLetterQueue receives permanent failures (the dead-letter queue).
type DeadLetterQueue interface {
	Send(ctx context.Context, msgs []message.Message) error
}

// SendDeadLettersTo has HandleBatch move each permanent failure straight to q, carrying
// its reason in the message attribute message.AttrFailureReason, instead of leaving it to
// the queue's redrive policy.
func (w *Worker) SendDeadLettersTo(q DeadLetterQueue) { w.deadLetters = q }

// HandleBatch processes a batch as a queue delivers it (the SQS event source mapping in
// AWS, the local server's pump locally) and returns the ids of the messages that failed:
// only those are retried, the caller deletes or acknowledges the rest. A permanent failure
// is sent to the dead-letter queue with its reason (SendDeadLettersTo) and so not reported
// failed; without a dead-letter queue, or when sending fails, it is failed and made
// visible at once, so the redrive policy moves it without waiting. When retry is set, any
// other failed message's next delivery is delayed by Backoff of its receive count. Messages the invocation had no time left to start (Margin) are failed
// and made visible at once, not backed off: they spent no attempt.
func (w *Worker) HandleBatch(ctx context.Context, msgs []message.Received, retry Retrier) (failed []string) {
	deadline, bounded := ctx.Deadline()
	for i, m := range msgs {
		if bounded && deadline.Sub(w.now()) < Margin {
			return append(failed, w.notStarted(ctx, msgs[i:], retry)...)
		}
		if m.ReceiveCount > 1 {
			w.count.Count(metricOf(metrics.ChangesRetried, m, ""), 1)
		}
		work, cancel := ctx, context.CancelFunc(func() {})
		if bounded {
			work, cancel = context.WithDeadline(ctx, deadline.Add(-Margin/2))
		}
		_, err := w.process(work, m.ID, m.Body, m.Envelope)
		cancel()
		if err == nil {
			continue
		}
		if errors.Is(err, ErrPermanent) && w.deadLetter(ctx, m, reasonOf(err)) {
			continue // moved: the caller deletes it from the queue
		}
		failed = append(failed, m.ID)
		delay := time.Duration(0)
		if !errors.Is(err, ErrPermanent) {
			delay = Backoff(max(m.ReceiveCount, 1))
		}
		w.retryAfter(ctx, retry, m, delay)
	}
	return failed
}

// notStarted fails the messages left when the invocation's time runs short, counted
// (ChangesFailed, label no_time) and made visible again at once for the next invocation.
func (w *Worker) notStarted(ctx context.Context, msgs []message.Received, retry Retrier) []string {
	ids := make([]string, 0, len(msgs))
	counts := map[metrics.Metric]int64{}
	for _, m := range msgs {
		ids = append(ids, m.ID)
		counts[metricOf(metrics.ChangesFailed, m, "no_time")]++
		w.retryAfter(ctx, retry, m, 0)
	}
	for metric, n := range counts {
		w.count.Count(metric, n)
	}
	w.log.WarnContext(ctx, "invocation deadline near: messages not started, visible again at once",
		"reason", "no_time", "not_started", len(ids), "message_ids", ids)
	return ids
}

// retryAfter makes a failed message visible again after delay.
func (w *Worker) retryAfter(ctx context.Context, retry Retrier, m message.Received, delay time.Duration) {
	if retry == nil || m.ReceiptHandle == "" {
		return
	}
	if err := retry.ChangeVisibility(ctx, m.ReceiptHandle, delay); err != nil {
		w.log.WarnContext(ctx, "could not delay retry", "message_id", m.ID, "error", err.Error())
	}
}

// deadLetter sends a permanently failing message to the dead-letter queue with its
// reason, reporting whether it did. Attributes beyond SQS's ten give way to the reason,
// routing headers first.
func (w *Worker) deadLetter(ctx context.Context, m message.Received, reason string) bool {
	if w.deadLetters == nil {
		return false
	}
	attrs := map[string]string{message.AttrFailureReason: reason}
	for _, k := range []string{message.AttrConnection, message.AttrKind, message.AttrSource} {
		if v, ok := m.Attributes[k]; ok {
			attrs[k] = v
		}
	}
	for k, v := range m.Attributes {
		if _, ok := attrs[k]; !ok && len(attrs) < message.MaxAttributes {
			attrs[k] = v
		}
	}
	if err := w.deadLetters.Send(ctx, []message.Message{{Body: m.Body, Attributes: attrs}}); err != nil {
		w.log.WarnContext(ctx, "could not move a permanent failure to the dead-letter queue; the redrive policy will",
			"message_id", m.ID, "reason", reason, "error", err.Error())
		return false
	}
	metric := metricOf(metrics.ChangesDeadLettered, m, reason)
	w.count.Count(metric, 1)
	w.log.ErrorContext(ctx, "permanent failure moved to the dead-letter queue", "message_id", m.ID, "connection", metric.Connection, "reason", reason)
	return true
}

// metricOf names a count about a message not decoded: its connection (_unknown when the
// message does not say) and kind from its attributes.
func metricOf(name string, m message.Received, label string) metrics.Metric {
	conn := m.Attributes[message.AttrConnection]
	if conn == "" {
		conn = "_unknown"
	}
	return metrics.Metric{Name: name, Connection: conn, Kind: m.Attributes[message.AttrKind], Label: label}
}
