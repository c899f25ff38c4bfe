package halosim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// HaloRateLimit is a hosted Halo tenant's rate limit: requests per rolling five minutes
// (the default RateWindow), shared by every integration of the tenant (docs/HALO.md).
// Options{RateLimit: HaloRateLimit, SendRetryAfter: true} answers as Halo does beyond it,
// with a Retry-After.
const HaloRateLimit = 300

// Options configures a fake tenant. The zero value is usable.
type Options struct {
	// ClientID and ClientSecret are the API application's credentials (default
	// "halotest-client" and "halotest-secret").
	ClientID     string
	ClientSecret string
	// TenantName, when set, is what the token request's tenant query parameter must be
	// (as hosted tenants require) and the tenant_id /api/authinfo answers. When empty the
	// tenant behaves as a self-hosted install: the parameter is not needed.
	TenantName string
	// GrantedScopes are the scopes the API application holds; a token request asking for
	// another is refused with invalid_scope. Default: every scope Halo knows. A token
	// allows what its scopes cover: tickets and actions need all or read:/edit:tickets,
	// clients and users all or read:/edit:customers, assets all or read:/edit:assets, and
	// webhook management all or admin (the last is an assumption: Halo does not document it).
	GrantedScopes []string
	// TokenTTL is the access tokens' lifetime (default one hour, as Halo's expires_in 3600).
	TokenTTL time.Duration
	// PageCap is the most items one page holds whatever page_size asks for (default 100,
	// Halo's silent cap).
	PageCap int
	// RateLimit is how many requests a rolling RateWindow admits (0: no limit). Requests
	// over it are answered 429 and do not count.
	RateLimit int
	// RateWindow is the rate limit's rolling window (default 5 minutes, Halo's hosted
	// "300 requests per rolling 5 minute window").
	RateWindow time.Duration
	// SendRetryAfter adds a Retry-After header (whole seconds until a request leaves the
	// window) to 429 answers; Halo is not known to send one.
	SendRetryAfter bool
	// Clock is the tenant's time (default time.Now): token expiry, change markers, the
	// rate window and the delivery log read it. Use a *Clock for deterministic tests.
	Clock func() time.Time
	// UpdateFilterTicketsOnly makes lastupdatefromdate / lastupdatetodate filter Tickets
	// only and be ignored (like any unknown parameter) on Client, Users and Asset. By
	// default they filter those too, by alastupdate, ulastupdate and dlastupdate: whether
	// Halo does is unconfirmed, so test both.
	UpdateFilterTicketsOnly bool
	// EnvelopeManagementLists makes GET /api/Notification and GET /api/WebhookEvent answer
	// {"record_count": N, "notifications"|"webhookevents": [...]} instead of a bare array
	// (Halo's shape for these two is unconfirmed; GET /api/Webhook is a bare array either way).
	EnvelopeManagementLists bool
	// DenyWebhookManagement answers 403 to the Webhook, Notification and WebhookEvent
	// endpoints, as Halo does for an agent without configuration rights. SetWebhookAccess
	// changes it later.
	DenyWebhookManagement bool
	// Faults, when set, is asked about every request before it is served; a non-nil
	// Fault is applied to it (see Fault). FailNext queues faults without a hook.
	Faults func(r *http.Request) *Fault
	// StrictParams answers 400 to a list or a single read of tickets, notes, clients,
	// users or assets carrying a query parameter Halo's API documentation does not list
	// for that call (or that the simulator does not implement). Halo itself ignores such a
	// parameter, as the simulator does by default: strictness makes a client sending one
	// fail its tests instead of being silently ignored.
	StrictParams bool
	// RefuseBulkActions answers 400 to a notes listing naming no ticket (GET /api/Actions
	// without ticket_id), to test a client's fallback to listing notes per ticket.
	RefuseBulkActions bool
}

// Fault is a misbehaviour injected into the answer to a request.
type Fault struct {
	// Delay holds the request this long (or until the client gives up) before anything else.
	Delay time.Duration
	// Status, when non-zero, answers the request with this status instead of serving it:
	// 500/502/503 for an outage, 401 to refuse a token that is still valid (a revoked
	// token: the client should fetch a new one and retry), 429 for a throttle.
	Status int
	// Body is the answer's body with Status (default a short JSON error).
	Body string
	// Header is added to the answer with Status (for example Retry-After).
	Header http.Header
	// Path limits a queued fault (FailNext) to requests whose path starts with it, compared
	// without regard to case ("/api/" leaves the token endpoint alone); "" matches all.
	Path string
}

// ServerError is a fault answering status (5xx) with a JSON error.
func ServerError(status int) Fault {
	return Fault{Status: status, Body: `{"error":"` + http.StatusText(status) + `"}`}
}

// Unauthorized is a fault answering 401 to an API request whatever its token, as when
// Halo revokes a token before its expiry; the token endpoint is left alone so that the
// client can fetch a new token.
func Unauthorized() Fault { return Fault{Status: http.StatusUnauthorized, Path: "/api/"} }

// Slow is a fault delaying a request by d.
func Slow(d time.Duration) Fault { return Fault{Delay: d} }

// Request is one request the tenant received, for assertions.
type Request struct {
	Time   time.Time // by the tenant's clock
	Method string
	Path   string
	Query  url.Values
	Status int // the status answered
}

// Tenant is a simulated Halo tenant: an http.Handler, which New also serves on a local
// HTTP server. It answers as real tenants do (docs/HALO.md, "The REST API"):
//
//   - GET /api/authinfo; POST /auth/token for client credentials (form or Basic, the
//     tenant parameter when TenantName is set, invalid_client, invalid_scope), tokens
//     that expire and scopes that limit what they may call;
//   - list and read every kind: envelopes with record_count, pages silently capped at
//     PageCap, count=N, the filters Halo has; 404 for an absent object (a deleted ticket
//     stays, flagged);
//   - Halo's data: UTC dates without Z, 1900-01-01 for no date, numeric ids, change
//     markers that rise with every change;
//   - routes and parameters matched regardless of case, unknown parameters ignored;
//   - 429 over a rolling RateWindow; webhook management (Webhook, Notification,
//     WebhookEvent), 403 with DenyWebhookManagement; injected faults (FailNext, Faults).
//
// Its data is set directly (Upsert, Delete, Seed, SeedScale for a tenant of a managed
// service provider's size) or changed by the generator (Step, Run,
// Do), which returns the webhook Event each change raises; a Sender delivers those as
// Halo does, logging each delivery in the WebhookEvent log. With a seeded *rand.Rand and
// a Clock, all of it is deterministic. Where Halo's behaviour is unconfirmed an Options
// field picks the other answer. Nothing is package-level state, and all its methods are
// safe for concurrent use.
type Tenant struct {
	opts      Options
	now       func() time.Time
	srv       *http.Server
	url       string
	done      chan struct{} // closed by Close: ends injected delays
	closeOnce sync.Once

	mu       sync.Mutex
	objects  map[change.Kind]map[int64]*record
	order    map[change.Kind][]*record // each kind's records by id; nil when it must be rebuilt
	notes    map[int64][]int64         // a ticket's note ids, ascending: the Actions list by ticket_id
	scaled   *layout                   // how SeedScale's objects are drawn, nil without them
	nextID   map[change.Kind]int64
	sites    map[int64]site
	nextSite int64
	tokens   map[string]tokenInfo
	seq      uint64 // numbers tokens and generated uuids
	hits     []time.Time
	faults   []queuedFault
	requests []Request
	served   int64 // every request answered, 429s included
	limited  int64 // the requests answered 429 by the rate limit
	denyHook bool

	webhooks         []map[string]any // in creation order
	notifications    []map[string]any
	nextNotification int64
	deliveries       []map[string]any // the WebhookEvent log, oldest first
}

// record is one stored object and its change marker. An object SeedScale made holds no
// fields until something changes it: its fields are drawn again from the tenant's layout,
// its id and the few values kept here each time they are read (Tenant.view), so a tenant
// of hundreds of thousands of objects costs tens of bytes per object.
type record struct {
	fields map[string]any // nil while the object is as SeedScale made it
	marker time.Time      // the change marker's value, at millisecond precision
	id     int64
	owner  int64 // SeedScale's objects: the client (ticket, user, asset) or the ticket (note)
	born   int64 // SeedScale's objects: when it was created, Unix milliseconds
	state  uint8 // SeedScale's objects: stateClosed, stateInactive, and a status index
}

// site is a client's site; sites are not served but objects name them.
type site struct {
	ID       int64
	ClientID int64
	Name     string
}

type tokenInfo struct {
	expires time.Time
	scopes  map[string]bool
}

type queuedFault struct {
	f Fault
	n int
}

// New starts a fake tenant on a local HTTP server (a free port on the loopback address).
// Close it when done. It panics if no port can be had, as there is nothing to serve on.
func New(opts Options) *Tenant {
	t := NewHandler(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("halosim: listen on a local port: %v", err))
	}
	t.srv = &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second}
	t.url = "http://" + ln.Addr().String()
	go func() { _ = t.srv.Serve(ln) }()
	return t
}

// NewHandler makes a fake tenant without starting a server, for mounting its handler
// elsewhere (the local demo): URL is then "" and /api/authinfo names the host the request
// came to.
func NewHandler(opts Options) *Tenant {
	if opts.ClientID == "" {
		opts.ClientID = "halotest-client"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "halotest-secret"
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.PageCap <= 0 {
		opts.PageCap = 100
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = 5 * time.Minute
	}
	if len(opts.GrantedScopes) == 0 {
		opts.GrantedScopes = knownScopes()
	} else {
		opts.GrantedScopes = append([]string(nil), opts.GrantedScopes...)
	}
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	t := &Tenant{
		opts:     opts,
		now:      func() time.Time { return now().UTC() },
		done:     make(chan struct{}),
		objects:  map[change.Kind]map[int64]*record{},
		order:    map[change.Kind][]*record{},
		notes:    map[int64][]int64{},
		nextID:   map[change.Kind]int64{},
		sites:    map[int64]site{},
		nextSite: 30,
		tokens:   map[string]tokenInfo{},
		denyHook: opts.DenyWebhookManagement,

		nextNotification: 40,
	}
	for _, k := range kinds() {
		t.objects[k.kind] = map[int64]*record{}
		t.nextID[k.kind] = k.firstID
	}
	return t
}

// URL is the tenant's base URL: the API is under URL()+"/api", the authorisation server
// under URL()+"/auth". It is "" for a tenant made by NewHandler.
func (t *Tenant) URL() string {
	return t.url
}

// Close stops the tenant's server (cutting injected delays short). It may be called more
// than once.
func (t *Tenant) Close() {
	t.closeOnce.Do(func() {
		close(t.done)
		if t.srv != nil {
			t.srv.Close()
		}
	})
}

// maxLog bounds the request and delivery logs: the oldest entries go first.
const maxLog = 10000

// appendCapped appends v, dropping the oldest entries past maxLog.
func appendCapped[T any](list []T, v T) []T {
	list = append(list, v)
	if len(list) > maxLog {
		list = append(list[:0], list[len(list)-maxLog:]...)
	}
	return list
}

// appendLogged is appendCapped for the request log, which a long run (a backfill of a
// large tenant) appends to on every request: the log grows to twice maxLog before the
// oldest are dropped, so entries move once per maxLog requests, not on every one.
// lastLogged reads the newest maxLog.
func appendLogged[T any](list []T, v T) []T {
	list = append(list, v)
	if len(list) > 2*maxLog {
		list = append(list[:0], list[len(list)-maxLog:]...)
	}
	return list
}

// lastLogged is the newest maxLog entries of a log appendLogged keeps.
func lastLogged[T any](list []T) []T {
	if len(list) > maxLog {
		return list[len(list)-maxLog:]
	}
	return list
}

// Options returns the tenant's options with the defaults filled in (the credentials a
// client should use, the page cap, ...).
func (t *Tenant) Options() Options {
	o := t.opts
	o.GrantedScopes = append([]string(nil), o.GrantedScopes...)
	return o
}

// Now is the tenant's clock.
func (t *Tenant) Now() time.Time { return t.now() }

// FailNext applies f to the next n requests matching f.Path.
func (t *Tenant) FailNext(n int, f Fault) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = append(t.faults, queuedFault{f: f, n: n})
}

// ClearFaults drops the faults FailNext queued.
func (t *Tenant) ClearFaults() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = nil
}

// RevokeTokens invalidates every access token issued so far.
func (t *Tenant) RevokeTokens() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.tokens = map[string]tokenInfo{}
}

// SetWebhookAccess allows (true) or refuses with 403 (false) the webhook management endpoints.
func (t *Tenant) SetWebhookAccess(allowed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.denyHook = !allowed
}

// Requests returns the requests received so far (the last 10000), oldest first.
func (t *Tenant) Requests() []Request {
	t.mu.Lock()
	defer t.mu.Unlock()
	logged := lastLogged(t.requests)
	out := make([]Request, len(logged))
	for i, r := range logged {
		r.Query = cloneValues(r.Query)
		out[i] = r
	}
	return out
}

// ResetRequests forgets the requests received so far (Requests; RequestTotals go on
// counting).
func (t *Tenant) ResetRequests() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests = nil
}

// RequestTotals returns how many requests the tenant has answered since it was made, and
// how many of them the rate limit refused with 429: unlike Requests, never capped.
func (t *Tenant) RequestTotals() (served, limited int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.served, t.limited
}

// ---- the data API ----

// Upsert creates or updates an object of a kind and returns a copy of it as stored. An
// obj without an id (or with id 0) is created with the next free id; one with an id
// updates that object field by field (creating it if absent). The change marker
// (last_update, last_updated, alastupdate, ulastupdate or dlastupdate) is set to the
// tenant's clock, or just after its previous value if the clock has not moved past it, so
// every change of an object raises its marker. time.Time values are stored as Halo
// writes dates. Ids the fake allocates are int64. Upsert changes only the object given
// (an action upserted this way does not touch its ticket; the generator's changes do, as
// Halo does). The data methods panic on an unknown kind, and Upsert on an id that is not
// a whole number: those are mistakes in a test.
func (t *Tenant) Upsert(kind change.Kind, obj map[string]any) map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return copyMap(t.upsert(kind, obj, t.now()).fields)
}

// Delete deletes an object and reports whether it existed. A ticket is deleted as Halo
// does, softly: it stays, with deleted true and a new last_update, and is listed only with
// deleted=true. Actions, clients, users and assets are removed (hard deletes: 404 after).
func (t *Tenant) Delete(kind change.Kind, id int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.delete(kind, id, t.now())
}

// Object returns a copy of one object (a deleted ticket included).
func (t *Tenant) Object(kind change.Kind, id int64) (map[string]any, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.table(kind)[id]
	if !ok {
		return nil, false
	}
	return t.viewCopy(kind, r), true
}

// Objects returns copies of every object of a kind (deleted tickets included), by id.
func (t *Tenant) Objects(kind change.Kind) []map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	recs := t.sorted(kind)
	out := make([]map[string]any, len(recs))
	for i, r := range recs {
		out[i] = t.viewCopy(kind, r)
	}
	return out
}

// Count returns how many objects of a kind exist (deleted tickets included).
func (t *Tenant) Count(kind change.Kind) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.table(kind))
}

// table returns a kind's objects, panicking on an unknown kind.
func (t *Tenant) table(kind change.Kind) map[int64]*record {
	m, ok := t.objects[kind]
	if !ok {
		panic(fmt.Sprintf("halotest: unknown kind %q", kind))
	}
	return m
}

// upsert stores obj at time at; t.mu is held.
func (t *Tenant) upsert(kind change.Kind, obj map[string]any, at time.Time) *record {
	info := mustInfo(kind)
	tab := t.table(kind)
	id, ok := toInt64(obj["id"])
	if !ok && obj["id"] != nil {
		panic(fmt.Sprintf("halotest: %s id %v is not a whole number", kind, obj["id"]))
	}
	if id <= 0 {
		id = t.nextID[kind]
	}
	if id >= t.nextID[kind] {
		t.nextID[kind] = id + 1
	}
	r, exists := tab[id]
	var ticket int64
	if !exists {
		r = &record{id: id, fields: map[string]any{}}
		switch kind {
		case change.Ticket:
			r.fields["deleted"] = false
			r.fields["hasbeenclosed"] = false
		case change.Client, change.Contact, change.Asset:
			r.fields["inactive"] = false
		}
		tab[id] = r
		t.added(kind, r)
	} else {
		t.own(kind, r)
		if kind == change.Action {
			ticket = t.noteTicket(r)
		}
	}
	for k, v := range obj {
		r.fields[k] = normalize(v)
	}
	r.fields["id"] = id
	t.bump(kind, r, at)
	if kind == change.Asset {
		r.fields["last_modified"] = r.fields[info.marker]
	}
	if kind == change.Action {
		t.noteMoved(id, ticket, t.noteTicket(r))
	}
	return r
}

// bump raises a record's change marker to at, or 1 ms past its previous value.
func (t *Tenant) bump(kind change.Kind, r *record, at time.Time) {
	m := at.UTC().Truncate(time.Millisecond)
	if !r.marker.IsZero() && !m.After(r.marker) {
		m = r.marker.Add(time.Millisecond)
	}
	r.marker = m
	t.own(kind, r).fields[mustInfo(kind).marker] = haloTime(m)
}

// delete deletes an object; t.mu is held.
func (t *Tenant) delete(kind change.Kind, id int64, at time.Time) bool {
	tab := t.table(kind)
	r, ok := tab[id]
	if !ok {
		return false
	}
	if kind == change.Ticket {
		t.own(kind, r).fields["deleted"] = true
		t.bump(kind, r, at)
		return true
	}
	if kind == change.Action {
		t.noteMoved(id, t.noteTicket(r), 0)
	}
	delete(tab, id)
	t.removed(kind, id)
	return true
}

// newUUID makes a deterministic version-4 style uuid from the tenant's sequence; t.mu is held.
func (t *Tenant) newUUID(what string) string {
	t.seq++
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], t.seq)
	sum := sha256.Sum256(append([]byte(what+"\x00"+t.opts.TenantName+"\x00"), b[:]...))
	return formatUUID(sum[:16])
}

// formatUUID formats 16 bytes as a version 4, RFC 4122 variant uuid.
func formatUUID(b []byte) string {
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ---- kinds ----

// kindInfo is how the fake serves one kind.
type kindInfo struct {
	kind     change.Kind
	route    string // the lower-case path segment under /api
	envelope string // the list envelope's key
	marker   string // the change marker field
	scope    string // the scope family covering it
	idOnly   string // the id-only listing parameter
	firstID  int64  // the first id allocated
}

func kinds() []kindInfo {
	return []kindInfo{
		{change.Ticket, "tickets", "tickets", "last_update", "tickets", "ticketidonly", 4200},
		{change.Action, "actions", "actions", "last_updated", "tickets", "", 1},
		{change.Client, "client", "clients", "alastupdate", "customers", "idonly", 12},
		{change.Contact, "users", "users", "ulastupdate", "customers", "idonly", 80},
		{change.Asset, "asset", "assets", "dlastupdate", "assets", "idonly", 500},
	}
}

func mustInfo(k change.Kind) kindInfo {
	for _, i := range kinds() {
		if i.kind == k {
			return i
		}
	}
	panic(fmt.Sprintf("halotest: unknown kind %q", k))
}

// ---- values ----

// haloLayout is how Halo writes datetimes: UTC, no Z, fractional seconds only as needed.
const haloLayout = "2006-01-02T15:04:05.999"

// emptyDate is Halo's "no date".
const emptyDate = "1900-01-01T00:00:00"

// haloTime writes t as Halo does; the zero time is Halo's empty date.
func haloTime(t time.Time) string {
	if t.IsZero() {
		return emptyDate
	}
	return t.UTC().Format(haloLayout)
}

// webhookTime writes a webhook timestamp: UTC, 7 fractional digits, Z.
func webhookTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// normalize deep-copies a value, writing time.Time as Halo dates.
func normalize(v any) any {
	switch x := v.(type) {
	case time.Time:
		return haloTime(x)
	case *time.Time:
		if x == nil {
			return emptyDate
		}
		return haloTime(*x)
	default:
		return copyValue(v)
	}
}

// copyValue deep-copies maps and slices of JSON-like values.
func copyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return copyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyValue(e)
		}
		return out
	case []map[string]any:
		out := make([]map[string]any, len(x))
		for i, e := range x {
			out[i] = copyMap(e)
		}
		return out
	default:
		return v
	}
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// toInt64 reads a whole number given as any Go number, json.Number or string; nil and
// "" are 0, false.
func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint32:
		return int64(x), true
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return 0, false
		}
		return int64(x), true
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		f, err := x.Float64()
		if err != nil {
			return 0, false
		}
		return toInt64(f)
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, false
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, true
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		return toInt64(f)
	}
	return 0, false
}

// toFloat reads a number of any kind.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// sameID reports whether a field value names the id want (12, 12.0 and "12" alike).
func sameID(v any, want string) bool {
	id, err := change.CanonicalID(v)
	return err == nil && id != "" && id == want
}

// truthy reads a boolean field leniently.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		b, _ := strconv.ParseBool(x)
		return b
	}
	if f, ok := toFloat(v); ok {
		return f != 0
	}
	return false
}
