package localserver

import (
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/halosync/halosync/internal/change"
)

// Between two saves the recent list keeps for the next save only as many records as it
// shows, the newest, oldest first, however many came in.
func TestRecentKeepsTheNewestUnsaved(t *testing.T) {
	const shown = 4
	for _, added := range []int{0, 3, shown, shown + 1, 2 * shown, 2*shown + 1, 5*shown + 3} {
		r := newRecent(shown, nil)
		for i := range added {
			r.add(change.Delivery{DeliveryID: strconv.Itoa(i)})
		}
		got := r.takeUnsaved()
		want := min(added, shown)
		if len(got) != want {
			t.Fatalf("after %d added: %d unsaved, want %d", added, len(got), want)
		}
		for i, d := range got {
			if w := strconv.Itoa(added - want + i); d.DeliveryID != w {
				t.Fatalf("after %d added: unsaved[%d] is %q, want %q", added, i, d.DeliveryID, w)
			}
		}
		if again := r.takeUnsaved(); len(again) != 0 {
			t.Fatalf("after %d added: %d unsaved after a take, want none", added, len(again))
		}
	}
}

// A body is read whole up to the limit, whatever size its request announced.
func TestReadBodyReadsUpToTheLimit(t *testing.T) {
	body := strings.Repeat("x", 3000)
	for _, c := range []struct {
		size, limit int64
		want        int
	}{
		{-1, 5000, 3000}, {3000, 5000, 3000}, {10, 5000, 3000}, {9000, 5000, 3000},
		{-1, 1001, 1001}, {3000, 1001, 1001}, {0, 5000, 3000},
	} {
		got, err := readBody(iotest.HalfReader(strings.NewReader(body)), c.size, c.limit)
		if err != nil || string(got) != body[:c.want] {
			t.Fatalf("size %d, limit %d: read %d bytes (%v), want %d", c.size, c.limit, len(got), err, c.want)
		}
	}
}
