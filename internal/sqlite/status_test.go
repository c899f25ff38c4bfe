package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
)

func TestStatusSurvivesReopenAndStaysBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	db := openTestDB(t, path)
	accepted := metrics.Metric{Name: metrics.DeliveriesAccepted, Connection: "default"}
	rejected := metrics.Metric{Name: metrics.DeliveriesRejected, Connection: "default", Label: "auth"}
	record := func(i int) change.Delivery {
		return change.Delivery{Connection: "default", DeliveryID: fmt.Sprintf("d%d", i), Kind: change.Ticket, ID: "1", Version: int64(i)}
	}
	// Counters are replaced, not added to: the caller saves its running totals.
	for i := 1; i <= 3; i++ {
		var batch []change.Delivery
		for j := range 4 {
			batch = append(batch, record((i-1)*4+j))
		}
		if err := db.SaveStatus(ctx, []metrics.Entry{{Metric: accepted, Value: int64(i)}, {Metric: rejected, Value: 7}}, batch, 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, path)
	counters, recent, err := db.LoadStatus(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []metrics.Entry{{Metric: accepted, Value: 3}, {Metric: rejected, Value: 7}}
	if fmt.Sprint(counters) != fmt.Sprint(want) {
		t.Errorf("counters = %v, want %v", counters, want)
	}
	if len(recent) != 5 || recent[0].DeliveryID != "d7" || recent[4].DeliveryID != "d11" {
		t.Errorf("recent = %v, want d7..d11 oldest first", recent)
	}
	var rows int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM recent_deliveries`).Scan(&rows); err != nil || rows != 5 {
		t.Errorf("recent_deliveries holds %d rows (err %v), want 5", rows, err)
	}
	if _, recent, _ := db.LoadStatus(ctx, 2); len(recent) != 2 || recent[1].DeliveryID != "d11" {
		t.Errorf("LoadStatus(2) = %v, want d10, d11", recent)
	}
}
