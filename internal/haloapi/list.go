package haloapi

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// ListQuery selects what List returns. Halo silently ignores parameters it does not know,
// so a filter a kind does not support is refused rather than sent (docs/HALO.md, "The
// calls halosync makes").
type ListQuery struct {
	// UpdatedFrom and UpdatedTo filter on the last update (lastupdatefromdate /
	// lastupdatetodate, written with TimeLayout). Confirmed for Tickets; Client, Users
	// and Asset may ignore them (Endpoint.UpdatedFilterConfirmed); Actions have neither.
	UpdatedFrom, UpdatedTo time.Time
	// Deleted lists deleted tickets only (deleted=true); Tickets only.
	Deleted bool
	// IDOnly asks for ids only (ticketidonly or idonly), in one unpaged answer: Halo
	// documents its id-only lists as not compatible with paging. Not on Actions.
	IDOnly bool
	// TicketID lists one ticket's actions (ticket_id); Actions only.
	TicketID string
	// ClientID lists one client's objects (client_id); Tickets, Users and Assets.
	ClientID string
	// IncludeInactive includes inactive clients, users or assets (includeinactive=true).
	// Tickets and notes have no inactive state and no such parameter: nothing is sent
	// for them, and every one is listed.
	IncludeInactive bool
	// From and To select notes by their date (startdate / enddate on the note's
	// datetime); Actions only. Without TicketID they list notes across tickets, which the
	// API doc allows and a tenant may not (docs/HALO.md, "Notes in bulk").
	From, To time.Time
	// Count caps an unpaged answer (count=N): Halo then says in record_count how many
	// there were, and List fails with ErrTruncated when that is more.
	Count int
	// OpenOnly and ClosedOnly list open or closed tickets only; Tickets only.
	OpenOnly, ClosedOnly bool
	// Order names the field a paged list is sorted by (order), OrderDesc reverses it
	// (orderdesc=true); not on Actions.
	Order     string
	OrderDesc bool
	// PageSize is the page size asked for (default 100, Halo's cap). Unpaged lists
	// (Actions, id-only lists) ignore it.
	PageSize int
	// MaxPages stops the list with ErrPageLimit after this many pages (default the
	// client's MaxPages).
	MaxPages int
	// StartPage resumes a listing at this page (default 1): a backfill interrupted after
	// page n resumes at n+1, the objects before it counted as read. An unpaged list
	// refuses a later page.
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
	if (!q.UpdatedFrom.IsZero() || !q.UpdatedTo.IsZero()) && !ep.UpdatedFilter {
		return nil, fmt.Errorf("%s: no lastupdatefromdate / lastupdatetodate filter", ep.Path)
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
		if ep.IDOnlyParam == "" {
			return nil, fmt.Errorf("%s: no id-only list", ep.Path)
		}
		if q.StartPage > 1 {
			return nil, fmt.Errorf("%s: an id-only list is not paged: no page %d", ep.Path, q.StartPage)
		}
		v.Set(ep.IDOnlyParam, "true")
	}
	if !ep.Paged && q.StartPage > 1 {
		return nil, fmt.Errorf("%s: the list is not paged: no page %d", ep.Path, q.StartPage)
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
	if !q.From.IsZero() || !q.To.IsZero() {
		if !ep.DateWindow {
			return nil, fmt.Errorf("%s: no startdate / enddate filter", ep.Path)
		}
		if !q.From.IsZero() {
			v.Set(ParamStartDate, FormatTime(q.From))
		}
		if !q.To.IsZero() {
			v.Set(ParamEndDate, FormatTime(q.To))
		}
	}
	if q.Count > 0 {
		if ep.Paged {
			return nil, fmt.Errorf("%s: count caps unpaged lists; this one is paged", ep.Path)
		}
		v.Set(ParamCount, strconv.Itoa(q.Count))
	}
	if q.OpenOnly || q.ClosedOnly {
		if !ep.OpenClosed || (q.OpenOnly && q.ClosedOnly) {
			return nil, fmt.Errorf("%s: open_only / closed_only: Tickets only, one of the two", ep.Path)
		}
		if q.OpenOnly {
			v.Set(ParamOpenOnly, "true")
		} else {
			v.Set(ParamClosedOnly, "true")
		}
	}
	if q.Order != "" || q.OrderDesc {
		if !ep.Ordered || q.IDOnly {
			return nil, fmt.Errorf("%s: no order / orderdesc", ep.Path)
		}
		if q.Order != "" {
			v.Set(ParamOrder, q.Order)
		}
		if q.OrderDesc {
			v.Set(ParamOrderDesc, "true")
		}
	}
	if q.IncludeInactive && ep.Inactive {
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
// Lists Halo does not page (Actions, id-only lists) are asked once, without paging
// parameters; an answer holding fewer objects than its record_count is an error, not a
// partial list. An error from fn stops the list and is returned wrapped.
func (c *Client) List(ctx context.Context, kind change.Kind, q ListQuery, fn func(page []map[string]any) error) error {
	ep, ok := endpoints[kind]
	if !ok {
		return &Error{Op: "list " + string(kind), class: ErrPermanent, Detail: fmt.Sprintf("unknown kind %q", kind)}
	}
	params, err := q.values(ep)
	if err != nil {
		return &Error{Op: "list " + ep.Envelope, class: ErrPermanent, Detail: err.Error()}
	}
	mode := bareComplete
	if !ep.Paged || q.IDOnly {
		mode = unpaged
	}
	return c.listPages(ctx, listing{
		op: "list " + ep.Envelope, path: ep.Path, params: params, envelope: ep.Envelope,
		status:   func(op string, r *response) error { return apiStatus(op, kind, r) },
		mode:     mode,
		pageSize: q.PageSize, firstPage: q.StartPage, maxPages: q.MaxPages, total: q.Total,
	}, fn)
}
