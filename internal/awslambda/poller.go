package awslambda

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/poller"
)

// PollDetail is what a manual invocation may put in the event's detail; EventBridge's
// scheduled events carry an empty detail ({}), which polls every connection that is due.
type PollDetail struct {
	// Force polls even the connections that are not due.
	Force bool `json:"force,omitempty"`
	// Connections, when set, limits the run to these connections.
	Connections []string `json:"connections,omitempty"`
}

// PollResult is what one invocation did: the function's response (what `sam local
// invoke` prints; EventBridge discards it).
type PollResult struct {
	EventID     string                    `json:"event_id,omitempty"`
	Time        time.Time                 `json:"time"` // the event's time: when the schedule fired
	Connections []poller.ConnectionResult `json:"connections"`
}

// Poller returns the handler of the poller function's scheduled event: the poller's run
// loop (poller.Schedule) under the invocation's deadline; the event's detail may force a
// poll or pick connections (PollDetail).
func Poller(s *poller.Schedule, log *slog.Logger) func(context.Context, events.EventBridgeEvent) (PollResult, error) {
	return func(ctx context.Context, e events.EventBridgeEvent) (PollResult, error) {
		res := PollResult{EventID: e.ID, Time: e.Time, Connections: []poller.ConnectionResult{}}
		detail, err := pollDetail(e.Detail)
		if err != nil {
			return res, err
		}
		n := len(detail.Connections)
		if n == 0 {
			n = len(s.Connections())
		}
		log.InfoContext(ctx, "poll run", "event_id", e.ID, "detail_type", e.DetailType, "scheduled", e.Time,
			"connections", n, "force", detail.Force)
		res.Connections, err = s.Run(ctx, detail.Force, detail.Connections)
		return res, err
	}
}

// pollDetail reads the event's detail: empty, null or {} from a schedule; a PollDetail,
// strictly, from a manual invocation.
func pollDetail(raw json.RawMessage) (PollDetail, error) {
	var d PollDetail
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return d, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("poller: the event's detail is not a poll request ({\"force\": bool, \"connections\": [ids]}): %w", err)
	}
	return d, nil
}
