package lambdaevent

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/changeevent"
)

// Publisher returns the handler of the table stream's event source mapping: each record's
// images go to the publisher as DynamoDB JSON, and the first record whose event was not
// published is reported in batchItemFailures (ReportBatchItemFailures), so the mapping
// retries from it and does not repeat the records before it.
func Publisher(p *changeevent.Publisher) func(context.Context, events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	return func(ctx context.Context, e events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		records := make([]changeevent.Record, 0, len(e.Records))
		for _, r := range e.Records {
			rec := changeevent.Record{ID: r.Change.SequenceNumber}
			var err error
			if rec.Old, err = image(r.Change.OldImage); err == nil {
				rec.New, err = image(r.Change.NewImage)
			}
			if err != nil {
				// Not expected of Lambda's own event: failing here retries, then bisects.
				return events.DynamoDBEventResponse{}, fmt.Errorf("record %s: %w", rec.ID, err)
			}
			records = append(records, rec)
		}
		var resp events.DynamoDBEventResponse
		if failed := p.Handle(ctx, records); failed != "" {
			resp.BatchItemFailures = []events.DynamoDBBatchItemFailure{{ItemIdentifier: failed}}
		}
		return resp, nil
	}
}

// image is a stream image as DynamoDB JSON; nil when the record has none.
func image(m map[string]events.DynamoDBAttributeValue) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}
