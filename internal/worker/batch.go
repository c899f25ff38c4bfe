package worker

import (
	"context"
	"errors"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// Retrier delays a failed message's next delivery (SQS's ChangeMessageVisibility).
type Retrier interface {
	ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error
}

// HandleBatch processes a batch as a queue delivers it (the SQS event source mapping in
// AWS, the local server's pump locally) and returns the ids of the messages that failed:
// only those are retried, the caller deletes or acknowledges the rest. When retry is set,
// a failed message's next delivery is delayed by Backoff of its receive count, and a
// permanently failing one is made visible at once, so it reaches the dead-letter queue
// without waiting.
func (w *Worker) HandleBatch(ctx context.Context, msgs []message.Received, retry Retrier) (failed []string) {
	for _, m := range msgs {
		if _, err := w.Process(ctx, m.ID, m.Body); err != nil {
			failed = append(failed, m.ID)
			if retry == nil || m.ReceiptHandle == "" {
				continue
			}
			delay := time.Duration(0)
			if !errors.Is(err, ErrPermanent) {
				delay = Backoff(max(m.ReceiveCount, 1))
			}
			if verr := retry.ChangeVisibility(ctx, m.ReceiptHandle, delay); verr != nil {
				w.log.WarnContext(ctx, "could not delay retry", "message_id", m.ID, "error", verr.Error())
			}
		}
	}
	return failed
}
