package pollscenario

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
)

// List is one list request the tenant served.
type List struct {
	halosim.Request
	Page, Size int
}

// Lists returns the list requests of a kind whose query satisfies match (nil: all), in
// the order received.
func Lists(tenant *halosim.Tenant, kind change.Kind, match func(q url.Values) bool) []List {
	path := ListPath(kind)
	var out []List
	for _, r := range tenant.Requests() {
		if r.Method != http.MethodGet || !strings.EqualFold(r.Path, path) || (match != nil && !match(r.Query)) {
			continue
		}
		l := List{Request: r}
		l.Page, _ = strconv.Atoi(r.Query.Get("page_no"))
		l.Size, _ = strconv.Atoi(r.Query.Get("page_size"))
		out = append(out, l)
	}
	return out
}

// BackfillList matches a backfill's (or a scan's) listing: no id-only, deleted or
// last-update filter.
func BackfillList(q url.Values) bool {
	return q.Get("ticketidonly") == "" && q.Get("idonly") == "" && q.Get("deleted") == "" && q.Get("lastupdatefromdate") == ""
}

// OpenTickets and ClosedTickets match a ticket backfill's two phases: open tickets
// first, then closed ones.
func OpenTickets(q url.Values) bool { return BackfillList(q) && q.Get("open_only") == "true" }

// ClosedTickets: see OpenTickets.
func ClosedTickets(q url.Values) bool { return BackfillList(q) && q.Get("closed_only") == "true" }

// TicketStates counts a tenant's open and closed tickets (deleted ones left out, as the
// backfill lists them).
func TicketStates(tenant *halosim.Tenant) (open, closed int) {
	for _, o := range tenant.Objects(change.Ticket) {
		switch {
		case o["deleted"] == true:
		case fmt.Sprint(o["status_id"]) == "9":
			closed++
		default:
			open++
		}
	}
	return open, closed
}

// IDOnlyList matches the reconcile's id listing.
func IDOnlyList(q url.Values) bool {
	return q.Get("ticketidonly") == "true" || q.Get("idonly") == "true"
}

// Paged matches a listing that asks for paging (pageinate, page_size or page_no).
func Paged(q url.Values) bool {
	return q.Has(haloapi.ParamPaginate) || q.Has(haloapi.ParamPageSize) || q.Has(haloapi.ParamPageNo)
}

// ListPath is the API path of a kind's listing, as the client writes it.
func ListPath(kind change.Kind) string {
	ep, _ := haloapi.EndpointOf(kind)
	return "/api/" + ep.Path
}

// IsList reports whether r lists a kind with a query match accepts.
func IsList(r *http.Request, kind change.Kind, match func(q url.Values) bool) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.URL.Path, ListPath(kind)) && match(r.URL.Query())
}

// IsPage reports whether r asks for a kind's backfill page n.
func IsPage(r *http.Request, kind change.Kind, n int) bool {
	return IsList(r, kind, BackfillList) && r.URL.Query().Get("page_no") == strconv.Itoa(n)
}

// Pages lists the pages asked for, as page/size→status.
func Pages(ls []List) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d/%d→%d", l.Page, l.Size, l.Status)
	}
	return b.String()
}
