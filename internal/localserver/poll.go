package localserver

import (
	"context"
	"time"

	"github.com/halosync/halosync/internal/poller"
)

// Poll runs each connection's poller until ctx ends, as the scheduled Lambda does in AWS:
// every tick each runner decides by its plan whether a poll (or the daily reconcile) is
// due. Runs of one connection never overlap.
func (s *Server) Poll(ctx context.Context, runners map[string]poller.Runner, every time.Duration) {
	if len(runners) == 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		for conn, r := range runners {
			polled, rep, err := r.Run(ctx, false)
			switch {
			case err != nil && ctx.Err() == nil:
				s.log.ErrorContext(ctx, "poll failed", "connection", conn, "error", err.Error())
			case polled:
				s.log.InfoContext(ctx, "polled", "connection", conn, "enqueued", total(rep.Enqueued), "webhook_gap", total(rep.Gap))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func total[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
