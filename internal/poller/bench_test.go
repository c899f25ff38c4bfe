package poller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// BenchmarkPoll measures a poll's cost in Halo requests (requests/op) and time, against
// the fake tenant: a quiet poll, and polls after N ticket updates.
func BenchmarkPoll(b *testing.B) {
	for _, changes := range []int{0, 10, 100, 250} {
		b.Run(fmt.Sprintf("changes=%d", changes), func(b *testing.B) {
			s := newSetup(b, 0)
			for i := range 300 {
				s.tenant.Upsert(change.Ticket, map[string]any{"id": int64(60000 + i), "summary": "bulk", "client_id": int64(1)})
			}
			if _, err := s.poller.Poll(context.Background()); err != nil {
				b.Fatal(err)
			}
			tickets := s.tenant.Objects(change.Ticket)
			requests := 0
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				s.clock.Advance(15 * time.Minute)
				for i := range changes {
					o := tickets[i%len(tickets)]
					o["summary"] = fmt.Sprint("edit ", i)
					s.tenant.Upsert(change.Ticket, o)
				}
				s.clock.Advance(time.Minute)
				s.tenant.ResetRequests()
				b.StartTimer()
				if _, err := s.poller.Poll(context.Background()); err != nil {
					b.Fatal(err)
				}
				requests += len(s.tenant.Requests())
			}
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
		})
	}
}
