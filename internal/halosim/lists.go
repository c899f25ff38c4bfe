package halosim

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// params reads a request's query with lower-case names (Halo's parameter names are not
// case-sensitive); the first value of a repeated parameter wins.
func params(r *http.Request) map[string]string {
	out := map[string]string{}
	for k, vs := range r.URL.Query() {
		k = strings.ToLower(k)
		if _, seen := out[k]; !seen && len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	return out
}

// flag reads a boolean parameter: true, 1 or yes (any case).
func flag(p map[string]string, name string) bool {
	switch strings.ToLower(strings.TrimSpace(p[name])) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// query is a parsed list request.
type query struct {
	info kindInfo
	p    map[string]string
	from time.Time // lastupdatefromdate (zero: none)
	to   time.Time // lastupdatetodate (zero: none)
	// ids are the id filters: parameter → canonical id
	ids map[string]string
	// actions: startdate / enddate on datetime
	start, end time.Time
	// the flags and search read once, not per object
	deleted, openOnly, closedOnly, inactive, notActive bool
	search                                             string
}

// idFilters are the id-valued filters each kind honours, parameter name = field name.
func idFilters(k change.Kind) []string {
	switch k {
	case change.Ticket:
		return []string{"client_id", "site_id", "user_id", "agent_id", "team_id", "status_id", "priority_id", "tickettype_id"}
	case change.Action:
		return []string{"ticket_id"}
	case change.Client:
		return []string{"toplevel_id"}
	case change.Contact:
		return []string{"client_id", "site_id"}
	case change.Asset:
		return []string{"client_id", "site_id", "assettype_id"}
	}
	return nil
}

// parseDate reads a filter datetime: Halo's forms, with or without a Z.
func parseDate(name, v string) (time.Time, error) {
	t, ok, err := change.ParseHaloTime(v)
	if err != nil || !ok {
		return time.Time{}, fmt.Errorf("%s: %q is not a date", name, v)
	}
	return t, nil
}

func (t *Tenant) parseQuery(info kindInfo, p map[string]string) (query, error) {
	q := query{info: info, p: p, ids: map[string]string{},
		deleted: flag(p, "deleted"), openOnly: flag(p, "open_only"), closedOnly: flag(p, "closed_only"),
		inactive: flag(p, "includeinactive"), notActive: p["includeactive"] != "" && !flag(p, "includeactive"),
		search: strings.ToLower(strings.TrimSpace(p["search"]))}
	var err error
	if info.kind == change.Ticket || (!t.opts.UpdateFilterTicketsOnly && info.kind != change.Action) {
		if v := p["lastupdatefromdate"]; v != "" {
			if q.from, err = parseDate("lastupdatefromdate", v); err != nil {
				return q, err
			}
		}
		if v := p["lastupdatetodate"]; v != "" {
			if q.to, err = parseDate("lastupdatetodate", v); err != nil {
				return q, err
			}
		}
	}
	if info.kind == change.Action {
		if v := p["startdate"]; v != "" {
			if q.start, err = parseDate("startdate", v); err != nil {
				return q, err
			}
		}
		if v := p["enddate"]; v != "" {
			if q.end, err = parseDate("enddate", v); err != nil {
				return q, err
			}
		}
	}
	for _, name := range idFilters(info.kind) {
		v, ok := p[name]
		if !ok || v == "" {
			continue
		}
		id, err := change.CanonicalID(v)
		if err != nil {
			return q, fmt.Errorf("%s: %q is not an id", name, v)
		}
		if _, nerr := strconv.ParseInt(id, 10, 64); nerr != nil {
			return q, fmt.Errorf("%s: %q is not an id", name, v)
		}
		q.ids[name] = id
	}
	return q, nil
}

// match reports whether a record passes the query's filters; t.mu is held. It reads the
// fields it filters on one by one (Tenant.attr), so that a list of SeedScale's objects
// draws the fields of those it returns only.
func (q query) match(t *Tenant, r *record) bool {
	kind := q.info.kind
	if !q.from.IsZero() && r.marker.Before(q.from) {
		return false
	}
	if !q.to.IsZero() && r.marker.After(q.to) {
		return false
	}
	if len(q.ids) > 0 { // ranging over an empty map costs more than the rest of a match
		for name, id := range q.ids {
			if !sameID(t.attr(kind, r, name), id) {
				return false
			}
		}
	}
	switch kind {
	case change.Ticket:
		if truthy(t.attr(kind, r, "deleted")) != q.deleted {
			return false
		}
		if q.openOnly || q.closedOnly {
			closed := isClosedStatus(t.attr(kind, r, "status_id"))
			if q.openOnly && closed || q.closedOnly && !closed {
				return false
			}
		}
	case change.Action:
		if !q.start.IsZero() || !q.end.IsZero() {
			at, ok := t.noteTime(r)
			if !ok {
				return false
			}
			if (!q.start.IsZero() && at.Before(q.start)) || (!q.end.IsZero() && at.After(q.end)) {
				return false
			}
		}
	case change.Client, change.Contact, change.Asset:
		inactive := truthy(t.attr(kind, r, "inactive"))
		if inactive && !q.inactive {
			return false
		}
		if q.notActive && !inactive { // includeactive=false
			return false
		}
		if q.search != "" {
			name, _ := t.attr(kind, r, "name").(string)
			if !strings.Contains(strings.ToLower(name), q.search) {
				return false
			}
		}
	}
	return true
}

// noteTime is a note's datetime: read from the record as SeedScale made it, without
// formatting it to parse it back (a bulk notes listing matches every note by it).
func (t *Tenant) noteTime(r *record) (time.Time, bool) {
	if r.fields == nil {
		return time.UnixMilli(r.born).UTC(), true
	}
	s, _ := r.fields["datetime"].(string)
	at, ok, err := change.ParseHaloTime(s)
	return at, ok && err == nil
}

// candidates are the records a list considers, by id: a ticket's notes when the Actions
// list names one, else every object of the kind; t.mu is held.
func (t *Tenant) candidates(q query) []*record {
	if q.info.kind == change.Action {
		if id, ok := q.ids["ticket_id"]; ok {
			n, _ := strconv.ParseInt(id, 10, 64)
			tab := t.table(change.Action)
			out := make([]*record, 0, len(t.notes[n]))
			for _, id := range t.notes[n] {
				out = append(out, tab[id])
			}
			return out
		}
	}
	return t.sorted(q.info.kind)
}

// list answers GET /api/<Kind>: {"record_count": N, "<plural>": [...]}.
//
// With pageinate=true, page_no (from 1; 0 or less reads as 1) and page_size select a page,
// and the page holds at most PageCap items whatever page_size asks for: Halo's silent cap.
// page_no and page_size are echoed as asked. Without pageinate, count=N returns the first
// N; otherwise everything. record_count is always the number of matches. Results are by
// id unless order=<field> (orderdesc=true to reverse) says otherwise.
//
// The Actions list takes no paging parameters in Halo's documentation: like any
// parameter Halo does not know, they are ignored there. An id-only list (ticketidonly,
// idonly) with pageinate=true is refused (400): Halo documents the two as not compatible
// without saying how it answers, and a client sending both should fail its tests.
func (t *Tenant) list(w http.ResponseWriter, r *http.Request, info kindInfo) {
	p := params(r)
	if info.idOnly != "" && flag(p, info.idOnly) && flag(p, "pageinate") {
		badRequest(w, info.idOnly+" is not compatible with pagination")
		return
	}
	q, err := t.parseQuery(info, p)
	if err != nil {
		badRequest(w, err.Error())
		return
	}
	// The matches are found first and only those answered are copied: a page of a large
	// tenant costs a scan of its records, not a copy of every object. An order other than
	// by id needs every match's fields.
	ordered := strings.TrimSpace(p["order"]) != "" || flag(p, "orderdesc")
	// Ordered by the change marker or the id, the records themselves are sorted and only
	// the page answered is copied: a large tenant's backfill asks every page that way.
	byRecord := ordered && (orderField(p) == info.marker || orderField(p) == "id")
	env := map[string]any{}
	first, last := t.window(p, info, math.MaxInt, env)
	if ordered {
		first, last = 0, math.MaxInt // ordered below, then cut
	}
	t.mu.Lock()
	var recs []*record // the matches answered
	total := 0
	for _, rec := range t.candidates(q) {
		if q.match(t, rec) {
			if total >= first && total < last {
				recs = append(recs, rec)
			}
			total++
		}
	}
	env["record_count"] = total
	if byRecord {
		orderRecords(recs, orderField(p) == "id", flag(p, "orderdesc"))
		first, last = t.window(p, info, total, env)
		recs, ordered = recs[first:last], false
	}
	idOnly := info.idOnly != "" && flag(p, info.idOnly)
	rows := make([]map[string]any, 0, len(recs))
	for _, rec := range recs {
		if idOnly && !ordered {
			rows = append(rows, map[string]any{"id": rec.id})
			continue
		}
		rows = append(rows, t.viewCopy(info.kind, rec))
	}
	t.mu.Unlock()
	if ordered {
		orderRows(rows, p)
		first, last = t.window(p, info, total, env)
		rows = rows[first:last]
	}
	if idOnly {
		for i, row := range rows {
			rows[i] = map[string]any{"id": row["id"]}
		}
	}
	env[info.envelope] = rows
	writeJSON(w, http.StatusOK, env)
}

// get answers GET /api/<Kind>/<id>: the object (a deleted ticket too, with deleted true),
// or 404. includedetails and other parameters are ignored: objects are always whole. A
// note is read with its ticket: GET /api/Actions/{id} without ticket_id is refused (400),
// as Halo's API needs it, and one naming another ticket is not found.
func (t *Tenant) get(w http.ResponseWriter, r *http.Request, info kindInfo, idText string) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		notFound(w, fmt.Sprintf("%s %q not found", info.kind, idText))
		return
	}
	ticket := ""
	if info.kind == change.Action {
		v := strings.TrimSpace(params(r)["ticket_id"])
		if v == "" {
			badRequest(w, "ticket_id is required to read an action")
			return
		}
		if ticket, err = change.CanonicalID(v); err != nil {
			badRequest(w, fmt.Sprintf("ticket_id: %q is not an id", v))
			return
		}
	}
	t.mu.Lock()
	rec, ok := t.table(info.kind)[id]
	var obj map[string]any
	if ok {
		obj = t.viewCopy(info.kind, rec)
	}
	t.mu.Unlock()
	if ok && ticket != "" && !sameID(obj["ticket_id"], ticket) {
		ok = false
	}
	if !ok {
		notFound(w, fmt.Sprintf("%s %d not found", info.kind, id))
		return
	}
	writeJSON(w, http.StatusOK, obj)
}

// window is the part of total matches a list answers: with pageinate=true, page_no (from
// 1; 0 or less reads as 1) and page_size, at most PageCap whatever page_size asks for
// (both echoed in env as asked); without it, the first count=N; otherwise all.
func (t *Tenant) window(p map[string]string, info kindInfo, total int, env map[string]any) (first, last int) {
	if flag(p, "pageinate") && info.kind != change.Action {
		size := atoiDefault(p["page_size"], t.opts.PageCap)
		no := atoiDefault(p["page_no"], 1)
		env["page_size"] = size
		env["page_no"] = no
		if size <= 0 || size > t.opts.PageCap {
			size = t.opts.PageCap
		}
		if no < 1 {
			no = 1
		}
		first = (no - 1) * size
		if first > total || first < 0 {
			first = total
		}
		return first, min(first+size, total)
	}
	if n := atoiDefault(p["count"], 0); n > 0 && n < total {
		return 0, n
	}
	return 0, total
}

func atoiDefault(s string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}

// orderRows sorts rows by the order parameter's field (id when absent), reversed with
// orderdesc=true; ties keep id order.
func orderRows(rows []map[string]any, p map[string]string) {
	desc := flag(p, "orderdesc")
	if strings.TrimSpace(p["order"]) == "" && !desc {
		return
	}
	field := orderField(p)
	sort.SliceStable(rows, func(i, j int) bool {
		c := compareValues(rows[i][field], rows[j][field])
		if desc {
			return c > 0
		}
		return c < 0
	})
}

// orderField is the field a list is ordered by: order=, else the id.
func orderField(p map[string]string) string {
	if field := strings.ToLower(strings.TrimSpace(p["order"])); field != "" {
		return field
	}
	return "id"
}

// orderRecords orders records as orderRows orders their rows, by id or by change marker
// (the marker field's text orders as its time: one format, millisecond precision), ties
// in the order found.
func orderRecords(recs []*record, byID, desc bool) {
	sort.SliceStable(recs, func(i, j int) bool {
		c := recs[i].marker.Compare(recs[j].marker)
		if byID {
			c = cmp.Compare(recs[i].id, recs[j].id)
		}
		if desc {
			return c > 0
		}
		return c < 0
	})
}

// compareValues orders two field values: numbers numerically, anything else as text.
func compareValues(a, b any) int {
	fa, oka := toFloat(a)
	fb, okb := toFloat(b)
	if oka && okb {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
