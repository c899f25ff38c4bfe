package haloapi

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/halosync/halosync/internal/change"
)

// Every listing (objects, webhooks, subscriptions, the delivery log) is read by
// listPages, so that they agree on Halo's paging (docs/HALO.md, "The REST API"): ask
// pageinate=true&page_size=N&page_no=1, 2, ... and stop at record_count items, at an empty
// page, or at a short page when the answer has no count. A short page while record_count
// says more is Halo's silent cap: paging carries on at the size Halo used. A page
// repeating the previous one means Halo ignored page_no, which is an error.

// pagingMode says what a listing's endpoint does with paging, and so what a bare JSON
// array (no envelope, no record_count) means.
type pagingMode int

const (
	// bareComplete: a bare array is the complete answer. Object lists (List) answer an
	// envelope; an endpoint answering a bare array there does not page, and asking it for
	// page 2 would only cost a request.
	bareComplete pagingMode = iota
	// barePaged: a bare array is one page of the answer, with no count: paging goes on
	// until a short or empty page, or a page longer than asked (Halo ignored page_size
	// and sent everything). The delivery log (WebhookEvents): Halo's shape for it is
	// unconfirmed, and a bare log that honours page_no would otherwise be cut at its
	// first page.
	barePaged
	// unpaged: no paging parameters are sent and the one answer is complete; one whose
	// record_count says it holds more is refused. The webhook and subscription lists,
	// the Actions list (Halo documents no paging for them) and id-only lists (documented
	// as not compatible with paging).
	unpaged
)

// listing is one paged read: where its pages are and how to read one.
type listing struct {
	op       string     // names the listing in errors; each page adds " page N"
	path     string     // the resource under /api: "Tickets", "WebhookEvent"
	params   url.Values // the listing's own query; the paging parameters override it
	envelope string     // the array's key in an envelope answer
	// status turns a final answer into nil (2xx) or the error it means.
	status   func(op string, r *response) error
	mode     pagingMode
	pageSize int // the page size asked first (default DefaultPageSize)
	// firstPage resumes at this page (default 1), the objects before it counted as read.
	firstPage int
	maxPages  int // stop with ErrPageLimit after this many pages (default the client's)
	// total, when set, is told each answer's record_count (-1: none) before fn's page.
	total func(recordCount int)
}

// listPages reads a listing page by page, calling fn once per non-empty page. An error
// from fn stops the listing and is returned wrapped, naming the page.
func (c *Client) listPages(ctx context.Context, l listing, fn func(page []map[string]any) error) error {
	size := l.pageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	maxPages := l.maxPages
	if maxPages <= 0 {
		maxPages = c.maxPages
	}
	pageNo, got := 1, 0
	if l.firstPage > 1 {
		pageNo, got = l.firstPage, (l.firstPage-1)*size
	}
	params := cloneValues(l.params)
	if params == nil {
		params = url.Values{}
	}
	if l.mode == unpaged {
		// Not even as extra parameters: the list takes none, and Halo documents its
		// id-only lists as not compatible with paging.
		params.Del(ParamPaginate)
		params.Del(ParamPageSize)
		params.Del(ParamPageNo)
	}
	var prevFirst string
	for pages := 1; ; pages++ {
		op := l.op
		if l.mode != unpaged {
			op = fmt.Sprintf("%s page %d", l.op, pageNo)
			params.Set(ParamPaginate, "true")
			params.Set(ParamPageSize, strconv.Itoa(size))
			params.Set(ParamPageNo, strconv.Itoa(pageNo))
		}
		if pages > maxPages {
			return &Error{Op: op, class: ErrPageLimit, Detail: fmt.Sprintf("stopped after %d pages (%d objects)", maxPages, got)}
		}
		u := c.base + "/api/" + l.path
		if len(params) > 0 {
			u += "?" + params.Encode()
		}
		resp, err := c.send(ctx, op, true, getRequest(u))
		if err != nil {
			return err
		}
		if err := l.status(op, resp); err != nil {
			return err
		}
		page, count, bare, err := decodePage(resp.body, l.envelope)
		if err != nil {
			return &Error{Op: op, Status: resp.status, class: ErrBadResponse, cause: err}
		}
		if bare && l.mode == barePaged {
			count = -1 // a bare array tells no total
		}
		if l.total != nil {
			l.total(count)
		}
		if l.mode == unpaged && count > len(page) {
			// Halo cut the answer, and it cannot be paged: a partial list would lose
			// objects silently, and the reconcile would take the rest as deleted.
			return &Error{Op: op, Status: resp.status, class: ErrBadResponse, cause: ErrTruncated,
				Detail: fmt.Sprintf("the answer holds %d of its record_count %d, and the list takes no paging", len(page), count)}
		}
		if len(page) > 0 {
			first := firstID(page)
			if pages > 1 && first != "" && first == prevFirst {
				return &Error{Op: op, class: ErrBadResponse, Detail: "the page repeats the previous one: Halo ignored page_no"}
			}
			prevFirst = first
			if err := fn(page); err != nil {
				return fmt.Errorf("halo: %s: %w", op, err)
			}
		}
		got += len(page)
		switch {
		case l.mode == unpaged, len(page) == 0:
			return nil
		case bare && (l.mode == bareComplete || len(page) > size):
			return nil
		case count >= 0 && got >= count:
			return nil
		case len(page) < size:
			if count < 0 {
				return nil // a short page and no count: the last page
			}
			// record_count says more: the server capped the page. Carry on with its page
			// size, from the next object, when the objects so far fill whole pages of it.
			if got%len(page) == 0 {
				size = len(page)
				pageNo = got/size + 1
			} else {
				pageNo++
			}
		default:
			pageNo++
		}
	}
}

// firstID is the id of a page's first item, to tell a repeated page.
func firstID(page []map[string]any) string {
	id, _ := change.CanonicalID(lookupKey(page[0], "id"))
	return id
}
