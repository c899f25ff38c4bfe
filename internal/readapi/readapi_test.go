package readapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/readapi"
	"github.com/halosync/halosync/internal/storetest"
)

type answer struct {
	status int
	body   []byte
}

func get(t *testing.T, h http.Handler, path string) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if ct := rec.Header().Get("content-type"); ct != "application/json" {
		t.Fatalf("GET %s: content-type %q", path, ct)
	}
	return answer{rec.Code, rec.Body.Bytes()}
}

// refused checks a refusal's status and code, and returns its message.
func (a answer) refused(t *testing.T, status int, code string) string {
	t.Helper()
	var e struct{ Error, Message string }
	if err := json.Unmarshal(a.body, &e); err != nil || a.status != status || e.Error != code {
		t.Fatalf("answer %d %s, want %d %s", a.status, a.body, status, code)
	}
	return e.Message
}

func (a answer) page(t *testing.T) readapi.Page {
	t.Helper()
	var p readapi.Page
	if err := json.Unmarshal(a.body, &p); err != nil || a.status != http.StatusOK {
		t.Fatalf("answer %d %s (%v), want 200 and a page", a.status, a.body, err)
	}
	return p
}

func apply(t *testing.T, s *storetest.Memory, c change.Change) {
	t.Helper()
	if _, err := s.Apply(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func up(kind change.Kind, id, parent string, v int64, fields map[string]any) change.Change {
	return change.Change{Connection: "default", Kind: kind, ID: id, ParentID: parent, Op: change.OpUpsert, Version: v,
		Source: change.SourceWebhook, Fields: fields}
}

func TestObjectNoteAndDelivery(t *testing.T) {
	s := storetest.NewMemory()
	apply(t, s, up(change.Ticket, "4242", "", 10, map[string]any{"summary": "Printer jammed"}))
	apply(t, s, up(change.Action, "3", "4242", 10, map[string]any{"note": "Roller replaced"}))
	d := change.Delivery{Connection: "default", DeliveryID: "d-1", Kind: change.Ticket, ID: "4242", Op: change.OpUpsert,
		Source: change.SourceWebhook, Outcome: change.Applied, Version: 10, ProcessedAt: time.Now()}
	if err := s.RecordDelivery(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	h := readapi.New(s, readapi.Options{}).Handler()

	var o change.Object
	if a := get(t, h, "/connections/default/tickets/4242"); a.status != http.StatusOK || json.Unmarshal(a.body, &o) != nil ||
		o.ID != "4242" || o.Fields["summary"] != "Printer jammed" {
		t.Errorf("ticket: %d %s", a.status, a.body)
	}
	if a := get(t, h, "/connections/default/tickets/4242/actions/3"); a.status != http.StatusOK || json.Unmarshal(a.body, &o) != nil ||
		o.ParentID != "4242" || o.Fields["note"] != "Roller replaced" {
		t.Errorf("note: %d %s", a.status, a.body)
	}
	var ds []change.Delivery
	if a := get(t, h, "/connections/default/deliveries/d-1"); a.status != http.StatusOK || json.Unmarshal(a.body, &ds) != nil ||
		len(ds) != 1 || ds[0].ID != "4242" {
		t.Errorf("delivery: %d %s", a.status, a.body)
	}
	for path, code := range map[string]string{
		"/connections/default/tickets/1":            "not_found",
		"/connections/other/tickets/4242":           "not_found",
		"/connections/default/tickets/1/actions/3":  "not_found",
		"/connections/default/deliveries/d-2":       "not_found",
		"/connections/default/actions/3":            "unknown_kind",
		"/connections/default/widgets/3":            "unknown_kind",
		"/connections/default/tickets/4242/history": "not_found", // no such route
	} {
		get(t, h, path).refused(t, http.StatusNotFound, code)
	}
	msg := get(t, h, "/connections/default/widgets/3").refused(t, http.StatusNotFound, "unknown_kind")
	if msg != "use assets, clients, contacts or tickets" {
		t.Errorf("unknown kind of an object: %q", msg)
	}
}

// failing is a store whose every read fails.
type failing struct{}

var errDown = errors.New("table unavailable")

func (failing) Get(context.Context, string, change.Kind, string, string) (change.Object, bool, error) {
	return change.Object{}, false, errDown
}
func (failing) Deliveries(context.Context, string, string) ([]change.Delivery, error) {
	return nil, errDown
}
func (failing) Changed(context.Context, string, change.Kind, string, int) ([]change.Object, error) {
	return nil, errDown
}

func TestStoreErrorsAreInternal(t *testing.T) {
	h := readapi.New(&failing{}, readapi.Options{Log: slog.New(slog.DiscardHandler)}).Handler()
	for _, path := range []string{"/connections/c/tickets/1", "/connections/c/tickets/1/actions/2", "/connections/c/deliveries/d", "/connections/c/tickets"} {
		if msg := get(t, h, path).refused(t, http.StatusInternalServerError, "internal"); strings.Contains(msg, errDown.Error()) {
			t.Errorf("%s: the message shows the cause: %q", path, msg)
		}
	}
}

func ids(p readapi.Page) string {
	var out []string
	for _, o := range p.Items {
		out = append(out, o.ID)
	}
	return strings.Join(out, " ")
}

func TestChangedPagesWithACursor(t *testing.T) {
	s := storetest.NewMemory()
	for _, id := range []string{"5", "3", "9", "1", "7"} {
		apply(t, s, up(change.Asset, id, "", 10, map[string]any{"n": id}))
	}
	apply(t, s, up(change.Asset, "8", "", 10, nil)) // a pending marker: never written
	h := readapi.New(s, readapi.Options{}).Handler()

	var got []string
	path := "/connections/default/assets?limit=2"
	var last readapi.Page
	for i := 0; ; i++ {
		if i > 5 {
			t.Fatal("the listing does not end")
		}
		p := get(t, h, path).page(t)
		got = append(got, ids(p))
		last = p
		if !p.More {
			break
		}
		path = "/connections/default/assets?limit=2&cursor=" + url.QueryEscape(p.Next)
	}
	if strings.Join(got, "|") != "5 3|9 1|7" {
		t.Fatalf("pages = %q, want 5 3|9 1|7 (write order, two at a time)", got)
	}
	// Resuming later from the last cursor gives only what changed since, a rewrite included.
	resume := "/connections/default/assets?cursor=" + url.QueryEscape(last.Next)
	if p := get(t, h, resume).page(t); len(p.Items) != 0 || p.More || p.Next != last.Next {
		t.Errorf("caught up: %+v, want no items and the same cursor", p)
	}
	apply(t, s, up(change.Asset, "3", "", 20, map[string]any{"n": "3 again"}))
	apply(t, s, up(change.Asset, "2", "", 10, map[string]any{"n": "2"}))
	p := get(t, h, resume).page(t)
	if ids(p) != "3 2" || p.Items[0].Version != 20 || p.More {
		t.Errorf("after two writes: %s", get(t, h, resume).body)
	}

	// since: the objects written at or after a time.
	all := get(t, h, "/connections/default/assets").page(t)
	if ids(all) != "5 9 1 7 3 2" {
		t.Fatalf("every asset: %q", ids(all))
	}
	since := all.Items[2].SyncedAt.Format(time.RFC3339Nano)
	if p := get(t, h, "/connections/default/assets?since="+url.QueryEscape(since)).page(t); ids(p) != "1 7 3 2" {
		t.Errorf("since %s: %q, want 1 7 3 2", since, ids(p))
	}
	// Notes list across tickets, each with its ticket.
	apply(t, s, up(change.Action, "3", "4242", 10, map[string]any{"note": "x"}))
	if p := get(t, h, "/connections/default/actions").page(t); len(p.Items) != 1 || p.Items[0].ParentID != "4242" {
		t.Errorf("notes: %s", get(t, h, "/connections/default/actions").body)
	}
	if p := get(t, h, "/connections/default/tickets").page(t); len(p.Items) != 0 || p.More {
		t.Errorf("tickets: %+v, want none", p)
	}
}

func TestChangedRefusesWhatItCannotRead(t *testing.T) {
	s := storetest.NewMemory()
	apply(t, s, up(change.Ticket, "1", "", 10, map[string]any{"n": 1}))
	h := readapi.New(s, readapi.Options{}).Handler()
	tickets := get(t, h, "/connections/default/tickets?limit=1").page(t)
	for _, q := range []string{
		"limit=0", "limit=1001", "limit=ten", "since=yesterday", "since=2026-09-25",
		"cursor=not-a-cursor", "cursor=" + url.QueryEscape("eyJjIjoiZGVmYXVsdCJ9"), // {"c":"default"}: another kind
	} {
		get(t, h, "/connections/default/tickets?"+q).refused(t, http.StatusBadRequest, "invalid_query")
	}
	// A cursor is for the listing that gave it.
	get(t, h, "/connections/default/assets?cursor="+url.QueryEscape(tickets.Next)).refused(t, http.StatusBadRequest, "invalid_query")
	get(t, h, "/connections/other/tickets?cursor="+url.QueryEscape(tickets.Next)).refused(t, http.StatusBadRequest, "invalid_query")
	msg := get(t, h, "/connections/default/widgets").refused(t, http.StatusNotFound, "unknown_kind")
	if msg != "use actions, assets, clients, contacts or tickets" {
		t.Errorf("unknown kind: %q, want every kind named", msg)
	}
}

// written lists objects written at the times they carry.
type written struct {
	failing // only Changed is read
	objects []change.Object
}

func (w *written) Changed(_ context.Context, _ string, _ change.Kind, after string, limit int) ([]change.Object, error) {
	var out []change.Object
	for _, o := range w.objects {
		if change.ChangedIndexSort(o.SyncedAt, o.Kind, o.ID, o.ParentID) > after && len(out) < limit {
			out = append(out, o)
		}
	}
	return out, nil
}

func TestChangedLeavesTheSettleWindowForLater(t *testing.T) {
	t0 := time.Date(2026, 9, 25, 6, 45, 0, 0, time.UTC)
	s := &written{objects: []change.Object{
		{Connection: "default", Kind: change.Client, ID: "1", SyncedAt: t0},
		{Connection: "default", Kind: change.Client, ID: "2", SyncedAt: t0.Add(4 * time.Second)},
		{Connection: "default", Kind: change.Client, ID: "3", SyncedAt: t0.Add(5 * time.Second)},
	}}
	now := t0.Add(10 * time.Second)
	h := readapi.New(s, readapi.Options{Now: func() time.Time { return now }, Settle: 5 * time.Second}).Handler()
	p := get(t, h, "/connections/default/clients").page(t)
	if ids(p) != "1 2 3" || p.More {
		t.Fatalf("all settled: %q more %v", ids(p), p.More)
	}
	now = t0.Add(8 * time.Second) // clients 2 and 3 were written within the last 5 s
	p = get(t, h, "/connections/default/clients?limit=1").page(t)
	if ids(p) != "1" || p.More {
		t.Fatalf("first page: %q more %v, want client 1, nothing more yet", ids(p), p.More)
	}
	p = get(t, h, "/connections/default/clients?limit=1&cursor="+url.QueryEscape(p.Next)).page(t)
	if ids(p) != "" || p.More {
		t.Fatalf("within the settle window: %q more %v, want nothing yet", ids(p), p.More)
	}
	now = t0.Add(9 * time.Second)
	if p := get(t, h, "/connections/default/clients?cursor="+url.QueryEscape(p.Next)).page(t); ids(p) != "2" || p.More {
		t.Errorf("once client 2 settled: %q more %v, want client 2", ids(p), p.More)
	}
}
