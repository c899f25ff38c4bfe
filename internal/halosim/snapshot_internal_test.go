package halosim

import (
	"testing"
	"time"
)

// TestSnapshotKeepsTheNewestDeliveries: a snapshot keeps the last keptDeliveries of the
// delivery log, newest last, as the log is.
func TestSnapshotKeepsTheNewestDeliveries(t *testing.T) {
	tn := NewHandler(Options{})
	for i := range keptDeliveries + 5 {
		tn.logDelivery(deliveryLog{entityID: int64(i), at: time.Unix(int64(i), 0), code: 200})
	}
	s := tn.Snapshot()
	if len(s.Deliveries) != keptDeliveries {
		t.Fatalf("%d deliveries kept, want %d", len(s.Deliveries), keptDeliveries)
	}
	if first, last := s.Deliveries[0]["entity_id"], s.Deliveries[keptDeliveries-1]["entity_id"]; first != int64(5) || last != int64(keptDeliveries+4) {
		t.Errorf("kept entities %v to %v, want 5 to %d", first, last, keptDeliveries+4)
	}
}
