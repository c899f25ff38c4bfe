// Package awslambda adapts the handlers to aws-lambda-go's event types: API Gateway HTTP
// API (payload 2.0) requests for ingest, SQS batches for the worker, and the EventBridge
// scheduled event for the poller (poller.go). Lambda, the runtime interface emulator and
// the local server all go through these same functions.
package awslambda

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/worker"
)

// WebhookPathPrefix is the route prefix; the connection id follows it.
const WebhookPathPrefix = "/webhooks/halo/"

// Ingest returns the API Gateway handler for the webhook route.
func Ingest(h *ingest.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		header := make(map[string]string, len(e.Headers))
		for k, v := range e.Headers {
			header[strings.ToLower(k)] = v
		}
		conn, secret := e.PathParameters["connection"], e.PathParameters["secret"]
		if conn == "" {
			conn, secret, _ = strings.Cut(strings.TrimPrefix(e.RawPath, WebhookPathPrefix), "/")
		}
		resp := h.Handle(ctx, ingest.Request{
			Connection: conn,
			PathSecret: secret,
			Method:     e.RequestContext.HTTP.Method,
			Header:     header,
			Body:       []byte(e.Body),
			Base64:     e.IsBase64Encoded,
			SourceIP:   e.RequestContext.HTTP.SourceIP,
			RequestID:  e.RequestContext.RequestID,
		})
		headers := map[string]string{"content-type": "application/json"}
		for k, v := range resp.Header {
			headers[k] = v
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: resp.Status, Headers: headers, Body: string(resp.Body)}, nil
	}
}

// Visibility delays a failed message's next delivery.
type Visibility interface {
	ChangeVisibility(ctx context.Context, receiptHandle string, timeout time.Duration) error
}

// Worker returns the SQS batch handler. Each failed message is reported in
// batchItemFailures (the event source mapping needs ReportBatchItemFailures) so only it is
// retried; when vis is set, its next delivery is delayed by worker.Backoff, and a
// permanently failing one is made visible at once so it reaches the dead-letter queue
// without waiting.
func Worker(w *worker.Worker, vis Visibility, log *slog.Logger) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, m := range e.Records {
			if _, err := w.Process(ctx, m.MessageId, []byte(m.Body)); err != nil {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
				if vis == nil || m.ReceiptHandle == "" {
					continue
				}
				delay := time.Duration(0)
				if !errors.Is(err, worker.ErrPermanent) {
					n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
					delay = worker.Backoff(max(n, 1))
				}
				if verr := vis.ChangeVisibility(ctx, m.ReceiptHandle, delay); verr != nil {
					log.WarnContext(ctx, "could not delay retry", "message_id", m.MessageId, "error", verr.Error())
				}
			}
		}
		return resp, nil
	}
}
