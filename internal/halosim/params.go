package halosim

import (
	"net/http"
	"sort"
	"strings"

	"github.com/halosync/halosync/internal/change"
)

// documentedParams are, per call, the query parameters the simulator implements that
// Halo's API documentation lists for it (docs/HALO.md, "The calls halosync makes"): the
// lists page and filter, a single read takes includedetails, and a note's read its
// ticket_id. The Actions list takes no paging and no order.
func documentedParams(k change.Kind, one bool) []string {
	if one {
		switch k {
		case change.Action:
			return []string{"ticket_id", "includedetails"}
		case change.Ticket:
			return []string{"includedetails", "includelastaction"}
		}
		return []string{"includedetails"}
	}
	paged := []string{"pageinate", "page_size", "page_no", "count", "order", "orderdesc"}
	inactive := []string{"lastupdatefromdate", "lastupdatetodate", "idonly", "includeinactive", "includeactive", "search"}
	switch k {
	case change.Ticket:
		return append(paged, "lastupdatefromdate", "lastupdatetodate", "deleted", "ticketidonly", "open_only", "closed_only",
			"client_id", "site_id", "user_id", "agent_id", "status_id")
	case change.Action:
		return []string{"ticket_id", "count", "startdate", "enddate", "datesearch"}
	case change.Client:
		return append(append(paged, inactive...), "toplevel_id")
	case change.Contact:
		return append(append(paged, inactive...), "client_id", "site_id")
	case change.Asset:
		return append(append(paged, inactive...), "client_id", "site_id", "assettype_id")
	}
	return nil
}

// undocumented names the query parameters of a request for a kind (one object, or the
// list) that are not among documentedParams, sorted; none when all are.
func undocumented(r *http.Request, k change.Kind, one bool) []string {
	known := map[string]bool{}
	for _, p := range documentedParams(k, one) {
		known[p] = true
	}
	var out []string
	for name := range r.URL.Query() {
		if !known[strings.ToLower(name)] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
