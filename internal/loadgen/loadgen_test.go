package loadgen

import (
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halo"
)

// TestGenMakesDeliveriesHalosyncReadsAsTheirVersion: each generated body is one Halo
// ticket event that decodes to an upsert of its ticket at exactly the version the
// generator reports, newer for each delivery, so reading a ticket at that version or
// newer means the delivery's change is readable.
func TestGenMakesDeliveriesHalosyncReadsAsTheirVersion(t *testing.T) {
	g := NewGen(7, 3)
	var last int64
	ids := map[string]bool{}
	for range 10 {
		d := g.Next()
		events, err := halo.Decode(d.Body)
		if err != nil || len(events) != 1 {
			t.Fatalf("%s: %d events, err %v", d.Body, len(events), err)
		}
		changes, err := events[0].Changes("default", halo.Events{}, time.Now())
		if err != nil || len(changes) != 1 {
			t.Fatalf("%s: %d changes, err %v", d.Body, len(changes), err)
		}
		c := changes[0]
		if c.Kind != change.Ticket || c.ID != d.Ticket || c.Op != change.OpUpsert || c.Version != d.Version || c.DeliveryID != d.ID {
			t.Fatalf("decoded %s %s %s v%d delivery %s; generated ticket %s v%d delivery %s",
				c.Kind, c.ID, c.Op, c.Version, c.DeliveryID, d.Ticket, d.Version, d.ID)
		}
		if d.Version <= last || ids[d.ID] {
			t.Fatalf("delivery %s v%d after v%d: versions must rise and ids differ", d.ID, d.Version, last)
		}
		last, ids[d.ID] = d.Version, true
	}
}
