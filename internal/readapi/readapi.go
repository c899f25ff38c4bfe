// Package readapi answers the read routes over the copy: an object, a ticket's note, a
// delivery's records, and what changed of a kind since a time, a page at a time. `halosync
// serve` serves them behind its read guard (internal/localserver); the read function serves
// them in AWS behind IAM authorisation (internal/awslambda, functions/read). Both answer the
// same JSON with the same errors, through internal/apierror's table.
package readapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/change"
)

// The routes, as net/http patterns.
const (
	ObjectRoute   = "GET /connections/{connection}/{kinds}/{id}"
	NoteRoute     = "GET /connections/{connection}/tickets/{ticket}/actions/{id}"
	DeliveryRoute = "GET /connections/{connection}/deliveries/{deliveryId}"
	ChangedRoute  = "GET /connections/{connection}/{kinds}"
)

// Store is what the routes read of the copy.
type Store interface {
	Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error)
	Deliveries(ctx context.Context, conn, deliveryID string) ([]change.Delivery, error)
	// Changed lists up to limit objects of a kind whose by-change key
	// (change.ChangedIndexSort) sorts above after, ascending.
	Changed(ctx context.Context, conn string, kind change.Kind, after string, limit int) ([]change.Object, error)
}

// DefaultLimit is how many objects a page of the changed listing holds when the request
// does not say; change.MaxChangedPage is the most it may ask for.
const DefaultLimit = 100

// Options tune the routes.
type Options struct {
	Log *slog.Logger
	// Now is the clock the settle window is measured on (default time.Now).
	Now func() time.Time
	// Settle leaves out of the changed listing what was written less than this long ago,
	// so that a write stamped a moment before it landed (or before an eventually
	// consistent index shows it) is not passed over by a consumer resuming after a later
	// one. 0: everything is listed at once (a store whose writes show in their order).
	Settle time.Duration
}

// API answers the read routes over a store.
type API struct {
	store  Store
	log    *slog.Logger
	now    func() time.Time
	settle time.Duration
}

// New returns the routes over store.
func New(store Store, o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &API{store: store, log: o.Log, now: o.Now, settle: o.Settle}
}

// Handler serves the routes, and the JSON not_found body for any other path.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(ObjectRoute, a.Object)
	mux.HandleFunc(NoteRoute, a.Note)
	mux.HandleFunc(DeliveryRoute, a.Delivery)
	mux.HandleFunc(ChangedRoute, a.Changed)
	return JSONErrors(mux)
}

// JSONErrors answers a path no route of mux knows with the JSON body every other answer
// has; a known path asked with another method keeps the router's 405 and its Allow header.
func JSONErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			probe := r.Clone(r.Context())
			probe.Method = http.MethodGet
			if _, pattern := mux.Handler(probe); pattern == "" {
				apierror.Write(w, apierror.NotFound, "no such route")
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// Object answers ObjectRoute: the stored state of one object (a tombstone too), 404 when
// none is stored.
func (a *API) Object(w http.ResponseWriter, r *http.Request) {
	kind, err := change.ParseKind(strings.TrimSuffix(r.PathValue("kinds"), "s"))
	if err != nil || kind == change.Action {
		apierror.Write(w, apierror.UnknownKind, "use "+kindNames(false))
		return
	}
	a.writeObject(w, r, kind, r.PathValue("id"), "")
}

// Note answers NoteRoute: a note read under its ticket.
func (a *API) Note(w http.ResponseWriter, r *http.Request) {
	a.writeObject(w, r, change.Action, r.PathValue("id"), r.PathValue("ticket"))
}

func (a *API) writeObject(w http.ResponseWriter, r *http.Request, kind change.Kind, id, parent string) {
	o, ok, err := a.store.Get(r.Context(), r.PathValue("connection"), kind, id, parent)
	switch {
	case err != nil:
		a.log.ErrorContext(r.Context(), "read object", "kind", kind, "id", id, "error", err.Error())
		apierror.Write(w, apierror.Internal, "the store could not be read")
	case !ok:
		apierror.Write(w, apierror.NotFound, fmt.Sprintf("no %s %s", kind, id))
	default:
		WriteJSON(w, http.StatusOK, o)
	}
}

// Delivery answers DeliveryRoute: a delivery's records (change.Delivery, one per object
// it carried) as a JSON array, 404 when none is kept.
func (a *API) Delivery(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("deliveryId")
	ds, err := a.store.Deliveries(r.Context(), r.PathValue("connection"), id)
	switch {
	case err != nil:
		a.log.ErrorContext(r.Context(), "read delivery records", "delivery_id", id, "error", err.Error())
		apierror.Write(w, apierror.Internal, "the store could not be read")
	case len(ds) == 0:
		apierror.Write(w, apierror.NotFound, fmt.Sprintf("no record of delivery %s (records are kept %d days)", id, int(change.DeliveryRetention.Hours()/24)))
	default:
		WriteJSON(w, http.StatusOK, ds)
	}
}

// Page is the changed listing's answer.
type Page struct {
	// Items are the objects, ascending by the time halosync wrote them (SyncedAt), each
	// in its state as of the read; an object changed again later moves to its new place.
	Items []change.Object `json:"items"`
	// Next is the position after the last item (or the request's, when there is none):
	// ask with cursor=Next to go on, now for the next page or later for what changes.
	Next string `json:"next"`
	// More says whether objects past Next were already there to read: ask again at once.
	More bool `json:"more"`
}

// Changed answers ChangedRoute: the objects of a kind written since a time (since,
// RFC 3339; default: the start) or after a cursor a page gave, limit at a time (default
// DefaultLimit, at most change.MaxChangedPage), ascending by when halosync wrote them.
// Tombstones are listed (deleted: true); notes (actions) carry their ticket's id. What was
// written within the settle window is left for a later page.
func (a *API) Changed(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("connection")
	kind, err := change.ParseKind(strings.TrimSuffix(r.PathValue("kinds"), "s"))
	if err != nil {
		apierror.Write(w, apierror.UnknownKind, "use "+kindNames(true))
		return
	}
	q := r.URL.Query()
	limit := DefaultLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > change.MaxChangedPage {
			apierror.Write(w, apierror.InvalidQuery, fmt.Sprintf("limit must be a whole number from 1 to %d", change.MaxChangedPage))
			return
		}
	}
	after := ""
	switch cur, since := q.Get("cursor"), q.Get("since"); {
	case cur != "":
		if after, err = decodeCursor(cur, conn, kind); err != nil {
			apierror.Write(w, apierror.InvalidQuery, "cursor is not one this listing gave: "+err.Error())
			return
		}
	case since != "":
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			apierror.Write(w, apierror.InvalidQuery, "since must be a time in RFC 3339, such as 2026-09-25T06:45:00Z")
			return
		}
		after = change.ChangedFrom(t)
	}
	// One more than asked says whether there is more.
	objs, err := a.store.Changed(r.Context(), conn, kind, after, min(limit+1, change.MaxChangedPage))
	if err != nil {
		a.log.ErrorContext(r.Context(), "list changed objects", "connection", conn, "kind", kind, "error", err.Error())
		apierror.Write(w, apierror.Internal, "the store could not be read")
		return
	}
	page := Page{Items: []change.Object{}, Next: encodeCursor(conn, kind, after)}
	settled := a.now().Add(-a.settle)
	for i, o := range objs {
		if a.settle > 0 && o.SyncedAt.After(settled) {
			break // written too recently: a later page lists it
		}
		if i == limit {
			page.More = true
			break
		}
		page.Items = append(page.Items, o)
		page.Next = encodeCursor(conn, kind, change.ChangedIndexSort(o.SyncedAt, o.Kind, o.ID, o.ParentID))
	}
	if len(objs) == change.MaxChangedPage && len(page.Items) == len(objs) {
		page.More = true // limit was the most a store lists: one more was not asked for
	}
	WriteJSON(w, http.StatusOK, page)
}

// cursor is what a cursor carries: the listing it belongs to and the position after the
// last object it gave. It is base64url JSON, opaque to the caller and checked when it comes
// back: another connection's or kind's, or a position that is none, is refused.
type cursor struct {
	Conn  string      `json:"c"`
	Kind  change.Kind `json:"k"`
	After string      `json:"a"`
}

func encodeCursor(conn string, kind change.Kind, after string) string {
	b, _ := json.Marshal(cursor{Conn: conn, Kind: kind, After: after}) // strings always encode
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, conn string, kind change.Kind) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return "", errors.New("not base64url")
	}
	var c cursor
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return "", errors.New("unreadable")
	}
	if c.Conn != conn || c.Kind != kind {
		return "", fmt.Errorf("it belongs to the %ss of connection %s", c.Kind, c.Conn)
	}
	if c.After != "" {
		if _, err := change.ParseChangedSort(c.After); err != nil {
			return "", errors.New("no position")
		}
	}
	return c.After, nil
}

// kindNames names the kinds as the paths spell them: every kind, or every kind but notes,
// which are read under their ticket.
func kindNames(notes bool) string {
	var names []string
	for _, k := range change.Kinds() {
		if notes || k.Parent == "" {
			names = append(names, string(k.Kind)+"s")
		}
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// WriteJSON answers v as indented JSON, HTML characters unescaped.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
