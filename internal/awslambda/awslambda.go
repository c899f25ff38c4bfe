// Package awslambda adapts aws-lambda-go's event types to the pipeline's handlers: API
// Gateway HTTP API (payload 2.0) requests to ingest, SQS batches to the worker's batch
// policy, and the EventBridge scheduled event to the poller's run loop. Lambda and the
// runtime interface emulator go through these functions; the local server calls the
// handlers directly. The read and publish functions' adapters, which need none of the
// pipeline, are in internal/lambdaevent.
package awslambda

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/worker"
)

// Ingest returns the handler of the webhook route for both of the ingest function's
// endpoints, which hand it the same HTTP API payload 2.0 event: the API Gateway HTTP API
// (the primary) and the function's URL (the backup; it has no routes, so the connection
// and a path secret are read from rawPath). Which one a request came through is told by
// its domain name (EndpointOf).
func Ingest(h *ingest.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		header := make(map[string]string, len(e.Headers))
		for k, v := range e.Headers {
			header[strings.ToLower(k)] = v
		}
		conn, secret := e.PathParameters["connection"], e.PathParameters["secret"]
		if conn == "" {
			conn, secret, _ = strings.Cut(strings.TrimPrefix(e.RawPath, ingest.PathPrefix), "/")
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
			Endpoint:   EndpointOf(e.RequestContext),
		})
		headers := map[string]string{"content-type": "application/json"}
		for k, v := range resp.Header {
			headers[k] = v
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: resp.Status, Headers: headers, Body: string(resp.Body)}, nil
	}
}

// EndpointOf tells the endpoint a request came through: a Lambda function URL
// (<url-id>.lambda-url.<region>.on.aws) is the backup, anything else (API Gateway's
// <api-id>.execute-api.<region>.amazonaws.com, or a custom domain in front of it) the
// primary.
func EndpointOf(rc events.APIGatewayV2HTTPRequestContext) string {
	if strings.Contains(strings.ToLower(rc.DomainName), ".lambda-url.") {
		return change.EndpointBackup
	}
	return change.EndpointPrimary
}

// Worker returns the SQS batch handler: the worker's batch policy (worker.HandleBatch)
// over the event's records, under the invocation's deadline. Each failed message is
// reported in batchItemFailures (the event source mapping needs ReportBatchItemFailures)
// so only it is retried; vis, when set, delays its retry. A batch in which every message
// failed is also an error of the invocation, so the function's Errors metric (and
// WorkerErrorsAlarm) shows an outage; Lambda then retries the whole batch, which is every
// message anyway, each when its visibility (set by the worker) ends.
func Worker(w *worker.Worker, vis worker.Retrier) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, e events.SQSEvent) (events.SQSEventResponse, error) {
		msgs := make([]message.Received, 0, len(e.Records))
		for _, m := range e.Records {
			n, _ := strconv.Atoi(m.Attributes["ApproximateReceiveCount"])
			var attrs map[string]string
			for k, a := range m.MessageAttributes {
				if a.StringValue != nil {
					if attrs == nil {
						attrs = map[string]string{}
					}
					attrs[k] = *a.StringValue
				}
			}
			msgs = append(msgs, message.Received{ID: m.MessageId, Body: []byte(m.Body), ReceiptHandle: m.ReceiptHandle, ReceiveCount: n, Attributes: attrs})
		}
		var resp events.SQSEventResponse
		failed := w.HandleBatch(ctx, msgs, vis)
		for _, id := range failed {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
		if len(msgs) > 0 && len(failed) == len(msgs) {
			return resp, fmt.Errorf("every message of the batch failed (%d)", len(msgs))
		}
		return resp, nil
	}
}
