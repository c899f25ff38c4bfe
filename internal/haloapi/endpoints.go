package haloapi

import (
	"net/url"
	"sort"

	"github.com/halosync/halosync/internal/change"
)

// Endpoint is how the Halo REST API serves one kind, as data (docs/HALO.md, "Kinds").
type Endpoint struct {
	Kind change.Kind
	// Path is the resource under /api: GET /api/{Path} lists, GET /api/{Path}/{id} reads one.
	Path string
	// Envelope is the key of the array in a paged list response:
	// {"record_count": N, "<Envelope>": [...]}.
	Envelope string
	// IDOnlyParam asks a list for ids only (reconciling deletes): Tickets name it
	// ticketidonly, the others idonly.
	IDOnlyParam string
	// GetParams are sent with every single-object read (tickets: includedetails=true).
	GetParams url.Values
	// Deleted reports whether the list honours deleted=true. Halo ignores parameters it
	// does not know, so deleted=true on another kind would list live objects as deleted:
	// the client refuses it.
	Deleted bool
	// ParentParam names the list filter by parent (Actions: ticket_id), if any.
	ParentParam string
	// ClientParam names the list filter by client (client_id), if any.
	ClientParam string
	// UpdatedFilterConfirmed reports whether lastupdatefromdate / lastupdatetodate are
	// known to filter this list. They are confirmed for Tickets only; on the other kinds
	// Halo may ignore them and return everything (docs/HALO.md, "The REST API"), which
	// costs requests but loses nothing.
	UpdatedFilterConfirmed bool
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
)

var endpoints = map[change.Kind]Endpoint{
	change.Ticket: {
		Kind: change.Ticket, Path: "Tickets", Envelope: "tickets", IDOnlyParam: "ticketidonly",
		GetParams: url.Values{"includedetails": {"true"}}, Deleted: true, ClientParam: "client_id",
		UpdatedFilterConfirmed: true,
	},
	change.Action: {
		Kind: change.Action, Path: "Actions", Envelope: "actions", IDOnlyParam: "idonly",
		ParentParam: "ticket_id",
	},
	change.Client: {
		Kind: change.Client, Path: "Client", Envelope: "clients", IDOnlyParam: "idonly",
	},
	change.Contact: {
		Kind: change.Contact, Path: "Users", Envelope: "users", IDOnlyParam: "idonly",
		ClientParam: "client_id",
	},
	change.Asset: {
		Kind: change.Asset, Path: "Asset", Envelope: "assets", IDOnlyParam: "idonly",
		ClientParam: "client_id",
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
