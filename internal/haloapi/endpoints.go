package haloapi

import (
	"net/url"
	"sort"

	"github.com/halosync/halosync/internal/change"
)

// Endpoint is how the Halo REST API serves one kind, as data: the parameters each call
// takes are those of Halo's API documentation (docs/HALO.md, "The calls halosync makes"),
// and no others, since Halo ignores a parameter it does not know and answers as if it had
// not been sent.
type Endpoint struct {
	Kind change.Kind
	// Path is the resource under /api: GET /api/{Path} lists, GET /api/{Path}/{id} reads one.
	Path string
	// Envelope is the key of the array in a list response:
	// {"record_count": N, "<Envelope>": [...]}.
	Envelope string
	// IDOnlyParam asks a list for ids only (reconciling deletes): Tickets name it
	// ticketidonly, Client, Users and Asset idonly; the Actions list has none. Halo
	// documents its id-only lists as not compatible with paging: they are read unpaged.
	IDOnlyParam string
	// GetParams are sent with every single-object read (tickets: includedetails=true).
	GetParams url.Values
	// Deleted reports whether the list honours deleted=true. Halo ignores parameters it
	// does not know, so deleted=true on another kind would list live objects as deleted:
	// the client refuses it.
	Deleted bool
	// ParentParam names the parent's id (Actions: ticket_id): the list's filter by parent,
	// and what a single read needs (GET /api/Actions/{id}?ticket_id=).
	ParentParam string
	// ClientParam names the list filter by client (client_id), if any.
	ClientParam string
	// Paged reports whether the list takes Halo's paging parameters (pageinate,
	// page_size, page_no). The Actions list takes none: it is read in one answer.
	Paged bool
	// Inactive reports whether the list takes includeinactive (Client, Users, Asset).
	// Tickets and notes have no inactive state and no such parameter.
	Inactive bool
	// UpdatedFilter reports whether the list takes lastupdatefromdate /
	// lastupdatetodate (not Actions, which filter by startdate / enddate).
	UpdatedFilter bool
	// UpdatedFilterConfirmed reports whether lastupdatefromdate / lastupdatetodate are
	// known to filter this list. They are confirmed for Tickets only; on the other kinds
	// Halo may ignore them and return everything (docs/HALO.md, "The REST API"), which
	// costs requests but loses nothing.
	UpdatedFilterConfirmed bool
	// DateWindow reports whether the list takes startdate / enddate (Actions: the note's
	// datetime), and so can be listed across tickets by date (docs/HALO.md, "Notes in
	// bulk").
	DateWindow bool
	// OpenClosed reports whether the list takes open_only / closed_only (Tickets).
	OpenClosed bool
	// Ordered reports whether the list takes order / orderdesc (the paged lists).
	Ordered bool
}

// Halo's list parameters (docs/HALO.md, "The REST API"). Halo spells "pageinate" this way.
const (
	ParamPaginate        = "pageinate"
	ParamPageSize        = "page_size"
	ParamPageNo          = "page_no"
	ParamRecordCount     = "record_count"
	ParamUpdatedFrom     = "lastupdatefromdate"
	ParamUpdatedTo       = "lastupdatetodate"
	ParamDeleted         = "deleted"
	ParamIncludeInactive = "includeinactive"
	ParamStartDate       = "startdate"
	ParamEndDate         = "enddate"
	ParamCount           = "count"
	ParamOpenOnly        = "open_only"
	ParamClosedOnly      = "closed_only"
	ParamOrder           = "order"
	ParamOrderDesc       = "orderdesc"
)

var endpoints = map[change.Kind]Endpoint{
	change.Ticket: {
		Kind: change.Ticket, Path: "Tickets", Envelope: "tickets", IDOnlyParam: "ticketidonly",
		GetParams: url.Values{"includedetails": {"true"}}, Deleted: true, ClientParam: "client_id",
		Paged: true, UpdatedFilter: true, UpdatedFilterConfirmed: true, OpenClosed: true, Ordered: true,
	},
	change.Action: {
		Kind: change.Action, Path: "Actions", Envelope: "actions", ParentParam: "ticket_id", DateWindow: true,
	},
	change.Client: {
		Kind: change.Client, Path: "Client", Envelope: "clients", IDOnlyParam: "idonly",
		Paged: true, Inactive: true, UpdatedFilter: true, Ordered: true,
	},
	change.Contact: {
		Kind: change.Contact, Path: "Users", Envelope: "users", IDOnlyParam: "idonly",
		ClientParam: "client_id", Paged: true, Inactive: true, UpdatedFilter: true, Ordered: true,
	},
	change.Asset: {
		Kind: change.Asset, Path: "Asset", Envelope: "assets", IDOnlyParam: "idonly",
		ClientParam: "client_id", Paged: true, Inactive: true, UpdatedFilter: true, Ordered: true,
	},
}

// EndpointOf returns how the API serves a kind.
func EndpointOf(k change.Kind) (Endpoint, bool) {
	e, ok := endpoints[k]
	if ok {
		e.GetParams = cloneValues(e.GetParams)
	}
	return e, ok
}

// Endpoints lists every kind's endpoint, sorted by kind.
func Endpoints() []Endpoint {
	out := make([]Endpoint, 0, len(endpoints))
	for k := range endpoints {
		e, _ := EndpointOf(k)
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
