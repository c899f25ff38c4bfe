// Package worker applies queued changes to the store: one conditional write per change,
// newest version wins, duplicates and stale changes are acknowledged and counted.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/queue"
)

// Store applies a change with the newest-wins rule of change.Apply.
type Store interface {
	Apply(ctx context.Context, c change.Change) (change.Outcome, error)
}

// Counter counts what the worker does.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Worker processes change messages.
type Worker struct {
	store Store
	count Counter
	log   *slog.Logger
}

// New returns a worker.
func New(s Store, c Counter, log *slog.Logger) *Worker {
	return &Worker{store: s, count: c, log: log}
}

// ErrPermanent marks a message that will fail however often it is retried; it is still
// reported as failed, so the queue's redrive policy moves it to the dead-letter queue
// where it can be inspected and replayed.
var ErrPermanent = errors.New("permanent failure")

// Process applies one message body and returns the outcome.
func (w *Worker) Process(ctx context.Context, messageID string, body []byte) (change.Outcome, error) {
	env, err := queue.Decode(body)
	if err != nil {
		w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: "_unknown", Label: "undecodable"}, 1)
		w.log.ErrorContext(ctx, "change message undecodable", "message_id", messageID, "error", err.Error())
		return "", fmt.Errorf("%w: message %s: %w", ErrPermanent, messageID, err)
	}
	c := env.Change
	outcome, err := w.store.Apply(ctx, c)
	if err != nil {
		reason := "store_error"
		if errors.Is(err, change.ErrInvalid) {
			reason, err = "invalid", fmt.Errorf("%w: %w", ErrPermanent, err)
		}
		w.count.Count(metrics.Metric{Name: metrics.ChangesFailed, Connection: c.Connection, Label: reason}, 1)
		w.log.ErrorContext(ctx, "change not applied", "connection", c.Connection, "kind", c.Kind, "id", c.ID,
			"version", c.Version, "delivery_id", c.DeliveryID, "message_id", messageID, "reason", reason, "error", err.Error())
		return "", fmt.Errorf("apply %s %s: %w", c.Kind, c.ID, err)
	}
	w.count.Count(metrics.Metric{Name: metrics.ChangesApplied, Connection: c.Connection, Label: string(outcome)}, 1)
	w.log.InfoContext(ctx, "change processed", "connection", c.Connection, "kind", c.Kind, "id", c.ID,
		"version", c.Version, "outcome", outcome, "source", c.Source, "delivery_id", c.DeliveryID, "event", c.Event)
	return outcome, nil
}

// Backoff is the visibility delay before the n-th retry of a failed message (n ≥ 1):
// exponential from 2 s, capped at 5 minutes.
func Backoff(receiveCount int) time.Duration {
	d := 2 * time.Second
	for i := 1; i < receiveCount && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}
