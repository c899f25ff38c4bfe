package localserver

import (
	"strconv"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

func TestRecentKeepsTheNewest(t *testing.T) {
	r := newRecent(3, nil)
	if got := r.list(""); got == nil || len(got) != 0 {
		t.Fatalf("empty ring lists %v, want an empty list", got)
	}
	for i := 1; i <= 5; i++ {
		conn := "a"
		if i%2 == 0 {
			conn = "b"
		}
		r.add(change.Delivery{Connection: conn, DeliveryID: strconv.Itoa(i)})
	}
	ids := func(ds []change.Delivery) string {
		s := ""
		for _, d := range ds {
			s += d.DeliveryID
		}
		return s
	}
	if got := ids(r.list("")); got != "543" {
		t.Errorf("list = %s, want 543 (the newest three, newest first)", got)
	}
	if got := ids(r.list("a")); got != "53" {
		t.Errorf("connection a = %s, want 53", got)
	}
}
