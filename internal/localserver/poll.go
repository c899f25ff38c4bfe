package localserver

import (
	"context"
	"time"
)

// Poll runs the poller's run loop every interval until ctx ends, as the scheduled Lambda
// does every minute in AWS: each connection's plan decides whether a poll (or the daily
// reconcile) is due, failures are counted (PollsFailed) and logged by the loop. Runs
// never overlap.
func (s *Server) Poll(ctx context.Context, every time.Duration) {
	if every <= 0 || len(s.pipeline.Poller.Connections()) == 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		_, _ = s.pipeline.Poller.Run(ctx, false, nil)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
