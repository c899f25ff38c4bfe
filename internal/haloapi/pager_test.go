package haloapi

import (
	"context"
	"net/http"
	"testing"
)

// TestPagingModes: what a bare array means is the one rule listings may differ in; the
// cap and the stop rules are the same for all.
func TestPagingModes(t *testing.T) {
	everything := func(w http.ResponseWriter, _ *http.Request) {
		items := make([]map[string]any, 150)
		for i := range items {
			items[i] = map[string]any{"id": i + 1}
		}
		writeJSON(w, items)
	}
	for _, c := range []struct {
		name            string
		mode            pagingMode
		api             http.HandlerFunc
		objects, pages  int
		requests        int32
		pagingParamsOff bool
	}{
		{"bare array, complete", bareComplete, (&pager{n: 150, limit: 100, bare: true}).ServeHTTP, 100, 1, 1, false},
		{"bare array, paged", barePaged, (&pager{n: 150, limit: 100, bare: true}).ServeHTTP, 150, 2, 2, false},
		{"bare array, paged, page_size ignored", barePaged, everything, 150, 1, 1, false},
		{"envelope capped at 50, paged", barePaged, (&pager{n: 120, limit: 50, envelope: "items"}).ServeHTTP, 120, 3, 3, false},
		{"envelope capped at 50, complete", bareComplete, (&pager{n: 120, limit: 50, envelope: "items"}).ServeHTTP, 120, 3, 3, false},
		{"unpaged", unpaged, everything, 150, 1, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			tn := newTenant(t, c.api)
			cl := tn.client(t, newFakeClock(true), nil)
			objects, pages := 0, 0
			err := cl.listPages(context.Background(), listing{
				op: "list items", path: "Items", envelope: "items", mode: c.mode,
				status: func(op string, r *response) error { return answerError(op, r, "", ErrPermanent, "forbidden") },
			}, func(page []map[string]any) error {
				pages++
				objects += len(page)
				return nil
			})
			if err != nil || objects != c.objects || pages != c.pages || tn.api.Load() != c.requests {
				t.Fatalf("err %v, %d objects in %d pages, %d requests", err, objects, pages, tn.api.Load())
			}
			if got := tn.lastRequest().URL.Query().Has(ParamPaginate); got == c.pagingParamsOff {
				t.Fatalf("paging parameters sent: %v", got)
			}
		})
	}
}
