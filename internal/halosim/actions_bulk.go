package halosim

import (
	"net/http"
	"strings"
)

// refuseBulkActions answers, when Options.RefuseBulkActions is set, a notes listing that
// names no ticket (GET /api/Actions without ticket_id): 400, as a tenant that does not
// list notes across tickets might. Whether any tenant refuses it is unconfirmed: Halo's
// API documentation makes ticket_id optional, and by default the simulator lists the
// notes of every ticket, filtered by startdate / enddate on their datetime and capped by
// count (record_count still says how many matched). It reports whether it answered.
func (t *Tenant) refuseBulkActions(w http.ResponseWriter, r *http.Request) bool {
	if !t.opts.RefuseBulkActions || strings.TrimSpace(params(r)["ticket_id"]) != "" {
		return false
	}
	badRequest(w, "ticket_id is required")
	return true
}
