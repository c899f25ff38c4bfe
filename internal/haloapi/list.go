package haloapi

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// ListQuery selects what List returns. Halo silently ignores parameters it does not know,
// so a filter a kind does not support is refused rather than sent.
type ListQuery struct {
	// UpdatedFrom and UpdatedTo filter on the last update (lastupdatefromdate /
	// lastupdatetodate, written with TimeLayout). Confirmed for Tickets; the other kinds
	// may ignore them (Endpoint.UpdatedFilterConfirmed).
	UpdatedFrom, UpdatedTo time.Time
	// Deleted lists deleted tickets only (deleted=true); Tickets only.
	Deleted bool
	// IDOnly asks for ids only (ticketidonly or idonly).
	IDOnly bool
	// TicketID lists one ticket's actions (ticket_id); Actions only.
	TicketID string
	// ClientID lists one client's objects (client_id); Tickets, Users and Assets.
	ClientID string
	// IncludeInactive includes inactive clients, users or assets (includeinactive=true).
	IncludeInactive bool
	// PageSize is the page size asked for (default 100, Halo's cap).
	PageSize int
	// MaxPages stops the list with ErrPageLimit after this many pages (default the
	// client's MaxPages).
	MaxPages int
	// StartPage resumes a listing at this page (default 1): a backfill interrupted after
	// page n resumes at n+1, the objects before it counted as read.
	StartPage int
	// Total, when set, is told the record_count of each page's answer (-1 when it has
	// none) before fn sees the page: how many objects the whole listing holds, for
	// progress reports.
	Total func(recordCount int)
	// Extra parameters are sent as given (order, search, ...); the paging parameters
	// are the client's and override them.
	Extra url.Values
}

func (q ListQuery) values(ep Endpoint) (url.Values, error) {
	v := cloneValues(q.Extra)
	if v == nil {
		v = url.Values{}
	}
	if !q.UpdatedFrom.IsZero() {
		v.Set(ParamUpdatedFrom, FormatTime(q.UpdatedFrom))
	}
	if !q.UpdatedTo.IsZero() {
		v.Set(ParamUpdatedTo, FormatTime(q.UpdatedTo))
	}
	if q.Deleted {
		if !ep.Deleted {
			return nil, fmt.Errorf("%s: only Tickets honour deleted=true (Halo would ignore it and list live objects)", ep.Path)
		}
		v.Set(ParamDeleted, "true")
	}
	if q.IDOnly {
		v.Set(ep.IDOnlyParam, "true")
	}
	if q.TicketID != "" {
		if ep.ParentParam == "" {
			return nil, fmt.Errorf("%s: TicketID filters Actions only", ep.Path)
		}
		v.Set(ep.ParentParam, q.TicketID)
	}
	if q.ClientID != "" {
		if ep.ClientParam == "" {
			return nil, fmt.Errorf("%s: no client_id filter", ep.Path)
		}
		v.Set(ep.ClientParam, q.ClientID)
	}
	if q.IncludeInactive {
		v.Set(ParamIncludeInactive, "true")
	}
	return v, nil
}

// List reads every object a query selects, page by page, calling fn once per non-empty
// page. It asks for pageinate=true&page_size=100&page_no=1, 2, ... and stops when it has
// record_count objects, when a page comes back empty, or when a page comes back short and
// the answer has no record_count. Halo silently caps pages at 100 items: a short page
// while record_count says more is a cap, so the client carries on with the page size the
// server actually used. A bare JSON array (no envelope) is taken as the complete answer.
// An error from fn stops the list and is returned wrapped.
func (c *Client) List(ctx context.Context, kind change.Kind, q ListQuery, fn func(page []map[string]any) error) error {
	ep, ok := endpoints[kind]
	if !ok {
		return &Error{Op: "list " + string(kind), class: ErrPermanent, Detail: fmt.Sprintf("unknown kind %q", kind)}
	}
	params, err := q.values(ep)
	if err != nil {
		return &Error{Op: "list " + ep.Envelope, class: ErrPermanent, Detail: err.Error()}
	}
	return c.listPages(ctx, listing{
		op: "list " + ep.Envelope, path: ep.Path, params: params, envelope: ep.Envelope,
		status:   func(op string, r *response) error { return apiStatus(op, kind, r) },
		mode:     bareComplete,
		pageSize: q.PageSize, firstPage: q.StartPage, maxPages: q.MaxPages, total: q.Total,
	}, fn)
}
