package haloapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

// The Halo REST client: OAuth2 client credentials, a per-connection request budget,
// retries with jittered exponential backoff, and Halo's paging quirks (halo-facts §2, §3).

// Classes of failure. Every error the client returns is an *Error (or wraps the caller's
// own error from a List callback); errors.Is tells the class.
var (
	// ErrNotFound: Halo answered 404 for the object.
	ErrNotFound = errors.New("not found")
	// ErrAuth: the token endpoint refused the credentials or the scope, or the API refused
	// a freshly issued token. Retrying does not help; the configuration must change.
	ErrAuth = errors.New("authentication failed")
	// ErrPermanent: Halo refused the request (4xx other than 401, 404, 408 and 429), or
	// the request could not be built. Retrying does not help.
	ErrPermanent = errors.New("request refused")
	// ErrRateLimited: Halo still answered 429 when the retries ran out. Try again later.
	ErrRateLimited = errors.New("rate limited")
	// ErrUnavailable: 5xx answers, timeouts or network errors outlasted the retries. Try
	// again later.
	ErrUnavailable = errors.New("unavailable")
	// ErrBadResponse: a 2xx answer that is not the JSON expected.
	ErrBadResponse = errors.New("unreadable response")
	// ErrPageLimit: a list ran past its page limit.
	ErrPageLimit = errors.New("page limit reached")
)

// Retryable reports whether a later attempt may succeed: rate limiting, or Halo being
// unreachable or failing, after the client's own retries ran out.
func Retryable(err error) bool {
	return errors.Is(err, ErrRateLimited) || errors.Is(err, ErrUnavailable)
}

// Error is a failed Halo request. It never holds the client secret or a token.
type Error struct {
	Op       string // what was attempted: "get ticket 42", "list tickets page 3", "token"
	Status   int    // the last HTTP status; 0 when no answer came
	Code     string // the OAuth error code of a refused token request ("invalid_scope")
	Attempts int    // HTTP requests made for the operation
	Detail   string // what to fix, or Halo's own words
	class    error
	cause    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("halo: ")
	b.WriteString(e.Op)
	if e.class != nil {
		b.WriteString(": ")
		b.WriteString(e.class.Error())
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Unwrap returns the class (ErrNotFound, ErrAuth, ...) and the cause (a network error,
// the context's error).
func (e *Error) Unwrap() []error {
	var out []error
	if e.class != nil {
		out = append(out, e.class)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	return out
}

// TimeLayout is how the client writes datetimes into query parameters
// (lastupdatefromdate, lastupdatetodate): UTC, milliseconds, and no zone suffix, as Halo
// writes and expects them (halo-facts §2 "Dates and time zones").
const TimeLayout = "2006-01-02T15:04:05.000"

// FormatTime writes t the way Halo's query parameters expect.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// Client defaults.
const (
	DefaultScope            = "all"
	DefaultTimeout          = 30 * time.Second
	DefaultMaxRetries       = 5
	DefaultBackoffBase      = time.Second
	DefaultBackoffMax       = 60 * time.Second
	DefaultRetryAfterMax    = 5 * time.Minute
	DefaultPageSize         = 100 // Halo's own cap
	DefaultMaxPages         = 1000
	DefaultMaxResponseBytes = 64 << 20
	// DefaultTokenLifetime stands in when a token response has no expires_in.
	DefaultTokenLifetime = time.Hour
	// authFailureTTL is how long a refused token request is remembered, so that a wrong
	// secret does not send one token request per queued change.
	authFailureTTL = 30 * time.Second
)

// ClientOptions configures a Client. BaseURL, ClientID and ClientSecret are required.
type ClientOptions struct {
	// BaseURL is the tenant's address, https://acme.halopsa.com; the API is under /api (a
	// trailing /api is accepted and dropped).
	BaseURL string
	// AuthURL is the authorisation server (https://acme.halopsa.com/auth); empty means
	// discover it from GET {BaseURL}/api/authinfo (auth_url), falling back to
	// {BaseURL}/auth when the lookup has no answer.
	AuthURL string
	// Tenant is sent as the token request's tenant parameter (hosted tenants); empty
	// means the tenant_id authinfo names, or none (self-hosted).
	Tenant       string
	ClientID     string
	ClientSecret string
	Scope        string // default "all"
	// HTTP is the HTTP client; nil means a new one. Its own Timeout, if any, also applies.
	HTTP *http.Client
	// Budget is the connection's request budget, shared by everything that calls this
	// connection in the process; nil means a new one of 250 requests per five minutes.
	Budget *Budget
	// Timeout bounds each HTTP request, body included (default 30 s).
	Timeout time.Duration
	// MaxRetries is how many times a request is retried after a 429, a 5xx, a timeout or
	// a network error (default 5; negative: never).
	MaxRetries int
	// BackoffBase and BackoffMax bound the jittered exponential backoff between retries
	// (default 1 s doubling to 60 s). The n-th retry waits between half and all of
	// min(BackoffMax, BackoffBase·2ⁿ⁻¹).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// RetryAfterMax caps a Retry-After the client will honour (default 5 minutes).
	RetryAfterMax time.Duration
	// MaxPages is the default page limit of a List (default 1000 pages, 100 000 objects).
	MaxPages int
	// MaxResponseBytes caps a response body (default 64 MiB).
	MaxResponseBytes int64
	// Clock is the time source for token expiry, backoff and the default budget (default
	// the system clock).
	Clock Clock
	// UserAgent is sent with every request (default "halosync").
	UserAgent string
}

// String leaves the secret out, should the options be printed.
func (o ClientOptions) String() string {
	return fmt.Sprintf("haloapi.ClientOptions{BaseURL: %q, AuthURL: %q, Tenant: %q, ClientID: %q, Scope: %q}", o.BaseURL, o.AuthURL, o.Tenant, o.ClientID, o.Scope)
}

// GoString leaves the secret out of %#v too.
func (o ClientOptions) GoString() string { return o.String() }

// Client calls one Halo tenant's REST API. It is safe for concurrent use; make one per
// connection and share it, so that the token and the budget are shared.
type Client struct {
	base          string // scheme://host[/path], no trailing slash, no /api
	clientID      string
	secret        string
	scope         string
	hc            *http.Client
	budget        *Budget
	timeout       time.Duration
	maxRetries    int
	backoffBase   time.Duration
	backoffMax    time.Duration
	retryAfterMax time.Duration
	maxPages      int
	maxBody       int64
	clock         Clock
	userAgent     string

	mu           sync.Mutex
	authURL      string // fixed, or set by discovery
	tenant       string
	discovered   bool
	token        string
	refreshAt    time.Time // the token is renewed from here on
	fetching     *tokenCall
	authErr      error
	authErrUntil time.Time

	// onTokenWait, when set (tests), is called whenever a caller joins a token request
	// already under way.
	onTokenWait func()
}

type tokenCall struct {
	done  chan struct{}
	token string
	err   error
}

// String leaves the secret out, should the client be printed.
func (c *Client) String() string { return "haloapi.Client{" + c.base + "}" }

// NewClient checks the options and returns a client. It makes no request: the first call
// discovers the auth server if needed and fetches a token.
func NewClient(opts ClientOptions) (*Client, error) {
	base, err := checkURL("BaseURL", opts.BaseURL)
	if err != nil {
		return nil, err
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, "/"), "/api")
	var authURL string
	if opts.AuthURL != "" {
		if authURL, err = checkURL("AuthURL", opts.AuthURL); err != nil {
			return nil, err
		}
		authURL = strings.TrimSuffix(authURL, "/")
	}
	if strings.TrimSpace(opts.ClientID) == "" || opts.ClientSecret == "" {
		return nil, errors.New("halo: client id and client secret are required")
	}
	if config.IsReference(opts.ClientSecret) {
		return nil, errors.New("halo: the client secret is an unresolved secret reference")
	}
	c := &Client{
		base:          base,
		authURL:       authURL,
		discovered:    authURL != "",
		tenant:        strings.TrimSpace(opts.Tenant),
		clientID:      strings.TrimSpace(opts.ClientID),
		secret:        opts.ClientSecret,
		scope:         strings.TrimSpace(opts.Scope),
		hc:            opts.HTTP,
		budget:        opts.Budget,
		timeout:       opts.Timeout,
		maxRetries:    opts.MaxRetries,
		backoffBase:   opts.BackoffBase,
		backoffMax:    opts.BackoffMax,
		retryAfterMax: opts.RetryAfterMax,
		maxPages:      opts.MaxPages,
		maxBody:       opts.MaxResponseBytes,
		clock:         opts.Clock,
		userAgent:     opts.UserAgent,
	}
	if c.scope == "" {
		c.scope = DefaultScope
	}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.clock == nil {
		c.clock = SystemClock
	}
	if c.budget == nil {
		c.budget = NewBudget(DefaultBudgetRequests, DefaultBudgetWindow, c.clock)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.backoffBase <= 0 {
		c.backoffBase = DefaultBackoffBase
	}
	if c.backoffMax <= 0 {
		c.backoffMax = DefaultBackoffMax
	}
	c.backoffMax = max(c.backoffMax, c.backoffBase)
	if c.retryAfterMax <= 0 {
		c.retryAfterMax = DefaultRetryAfterMax
	}
	if c.maxPages <= 0 {
		c.maxPages = DefaultMaxPages
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxResponseBytes
	}
	if c.userAgent == "" {
		c.userAgent = "halosync"
	}
	return c, nil
}

// FromConfig builds the client of a connection from its configuration: its budget
// (requests per window, default 250 per five minutes) and its request timeout. The secret
// references must already be resolved (config.Load does that). Call it once per
// connection per process and share the client.
func FromConfig(h config.Halo, hc *http.Client) (*Client, error) {
	if !h.Configured() {
		return nil, errors.New("halo: the connection has no halo.base_url (it is webhook-only)")
	}
	return NewClient(ClientOptions{
		BaseURL:      h.BaseURL,
		AuthURL:      h.AuthURL,
		Tenant:       h.Tenant,
		ClientID:     h.ClientID,
		ClientSecret: h.ClientSecret,
		Scope:        h.Scope,
		HTTP:         hc,
		Budget:       NewBudget(h.Budget.Count(), h.Budget.Window(), nil),
		Timeout:      h.Timeout(),
	})
}

// Budget returns the client's request budget.
func (c *Client) Budget() *Budget { return c.budget }

func checkURL(name, s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("halo: %s %q is not an http(s) URL", name, s)
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// --- Reading objects ------------------------------------------------------------------

// Get reads one object: GET /api/{Path}/{id} (tickets with includedetails=true). A 404 is
// ErrNotFound. Numbers keep their exact text (json.Number), as in webhook deliveries.
func (c *Client) Get(ctx context.Context, kind change.Kind, id string) (map[string]any, error) {
	return c.GetWith(ctx, kind, id, nil)
}

// GetAction reads one ticket note. Halo's own clients name the ticket when reading an
// action (GET /api/Actions/{id}?ticket_id=...).
func (c *Client) GetAction(ctx context.Context, ticketID, actionID string) (map[string]any, error) {
	return c.GetWith(ctx, change.Action, actionID, url.Values{"ticket_id": {ticketID}})
}

// GetWith is Get with extra query parameters.
func (c *Client) GetWith(ctx context.Context, kind change.Kind, id string, params url.Values) (map[string]any, error) {
	ep, ok := endpoints[kind]
	id = strings.TrimSpace(id)
	op := fmt.Sprintf("get %s %s", kind, id)
	if !ok {
		return nil, &Error{Op: op, class: ErrPermanent, Detail: fmt.Sprintf("unknown kind %q", kind)}
	}
	if id == "" {
		return nil, &Error{Op: op, class: ErrPermanent, Detail: "no id"}
	}
	q := cloneValues(ep.GetParams)
	if q == nil {
		q = url.Values{}
	}
	for k, vs := range params {
		q[k] = append([]string(nil), vs...)
	}
	u := c.base + "/api/" + ep.Path + "/" + url.PathEscape(id)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, err := c.send(ctx, op, true, getRequest(u))
	if err != nil {
		return nil, err
	}
	if err := apiStatus(op, kind, resp); err != nil {
		return nil, err
	}
	obj, err := decodeJSONObject(resp.body)
	if err != nil {
		return nil, &Error{Op: op, Status: resp.status, class: ErrBadResponse, cause: err}
	}
	return obj, nil
}

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
	size := q.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	maxPages := q.MaxPages
	if maxPages <= 0 {
		maxPages = c.maxPages
	}
	pageNo, got := 1, 0
	if q.StartPage > 1 {
		pageNo, got = q.StartPage, (q.StartPage-1)*size
	}
	var prevFirst string
	for pages := 1; ; pages++ {
		op := fmt.Sprintf("list %s page %d", ep.Envelope, pageNo)
		if pages > maxPages {
			return &Error{Op: op, class: ErrPageLimit, Detail: fmt.Sprintf("stopped after %d pages (%d objects)", maxPages, got)}
		}
		params.Set(ParamPaginate, "true")
		params.Set(ParamPageSize, strconv.Itoa(size))
		params.Set(ParamPageNo, strconv.Itoa(pageNo))
		resp, err := c.send(ctx, op, true, getRequest(c.base+"/api/"+ep.Path+"?"+params.Encode()))
		if err != nil {
			return err
		}
		if err := apiStatus(op, kind, resp); err != nil {
			return err
		}
		page, count, bare, err := decodePage(resp.body, ep.Envelope)
		if err != nil {
			return &Error{Op: op, Status: resp.status, class: ErrBadResponse, cause: err}
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
		case bare, len(page) == 0:
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

func firstID(page []map[string]any) string {
	id, _ := change.CanonicalID(page[0]["id"])
	return id
}

// apiStatus turns a final API answer into nil (2xx) or the error it means.
func apiStatus(op string, kind change.Kind, r *response) error {
	switch {
	case r.status >= 200 && r.status < 300:
		return nil
	case r.status == http.StatusNotFound:
		return &Error{Op: op, Status: r.status, Attempts: r.attempts, class: ErrNotFound}
	case r.status == http.StatusUnauthorized:
		return &Error{Op: op, Status: r.status, Attempts: r.attempts, class: ErrAuth,
			Detail: "Halo refused a freshly issued token: check that the API application's login agent is active and may read " + string(kind) + "s"}
	case r.status == http.StatusForbidden:
		return &Error{Op: op, Status: r.status, Attempts: r.attempts, class: ErrPermanent,
			Detail: "forbidden: the application's scopes or its agent's permissions do not allow this" + haloSays(r.body)}
	default:
		return &Error{Op: op, Status: r.status, Attempts: r.attempts, class: ErrPermanent, Detail: strings.TrimPrefix(haloSays(r.body), "; ")}
	}
}

// --- Sending ------------------------------------------------------------------------

type response struct {
	status   int
	header   http.Header
	body     []byte
	attempts int
}

func getRequest(u string) func(context.Context) (*http.Request, error) {
	return func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
}

// retryableStatus: rate limiting, request timeouts and server failures (except 501, which
// will not change).
func retryableStatus(s int) bool {
	return s == http.StatusTooManyRequests || s == http.StatusRequestTimeout ||
		(s >= 500 && s != http.StatusNotImplemented)
}

// send makes one logical request: each attempt waits on the budget, carries a fresh token
// (authed), and is bounded by the request timeout. 429, 408, 5xx, timeouts and network
// errors are retried with backoff (Retry-After honoured); a 401 renews the token once. It
// returns the final answer for the caller to read, or an *Error.
func (c *Client) send(ctx context.Context, op string, authed bool, newReq func(context.Context) (*http.Request, error)) (*response, error) {
	var (
		tok       string
		refreshed bool
		last      *response
		lastErr   error
		requests  int
	)
	for retry := 0; ; retry++ {
		if authed {
			t, err := c.bearer(ctx)
			if err != nil {
				return nil, opError(op, requests, err)
			}
			tok = t
		}
		if err := c.budget.Wait(ctx); err != nil {
			return nil, &Error{Op: op, Attempts: requests, cause: err}
		}
		requests++
		resp, err := c.once(ctx, newReq, tok)
		last, lastErr = resp, err
		switch {
		case err != nil:
			var he *Error
			if errors.As(err, &he) {
				he.Op, he.Attempts = op, requests
				return nil, he
			}
			if ctx.Err() != nil {
				return nil, &Error{Op: op, Attempts: requests, cause: ctx.Err()}
			}
		case resp.status == http.StatusUnauthorized && authed && !refreshed:
			refreshed = true
			if _, err := c.renew(ctx, tok); err != nil {
				return nil, opError(op, requests, err)
			}
			retry-- // the one renewal is not a retry
			continue
		case !retryableStatus(resp.status):
			resp.attempts = requests
			return resp, nil
		}
		if retry >= c.maxRetries {
			e := &Error{Op: op, Attempts: requests, class: ErrUnavailable, cause: lastErr}
			if last != nil {
				e.Status = last.status
				e.Detail = strings.TrimPrefix(haloSays(last.body), "; ")
				if last.status == http.StatusTooManyRequests {
					e.class = ErrRateLimited
				}
			}
			return nil, e
		}
		delay := c.backoff(retry + 1)
		if last != nil {
			if d, ok := retryAfter(last.header, c.clock.Now()); ok {
				delay = min(d, c.retryAfterMax)
			}
			if last.status == http.StatusTooManyRequests {
				c.budget.Pause(delay) // everyone sharing the budget holds off
			}
		}
		if err := c.clock.Sleep(ctx, delay); err != nil {
			return nil, &Error{Op: op, Attempts: requests, cause: err}
		}
	}
}

// opError names the operation on an error from the token machinery.
func opError(op string, requests int, err error) error {
	var he *Error
	if errors.As(err, &he) {
		e := *he
		e.Op = op + ": " + he.Op
		if requests > e.Attempts {
			e.Attempts = requests
		}
		return &e
	}
	return &Error{Op: op, Attempts: requests, cause: err}
}

// once makes one HTTP request under the request timeout and reads its body. A returned
// *Error is final; any other error is worth a retry.
func (c *Client) once(ctx context.Context, newReq func(context.Context) (*http.Request, error), tok string) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := newReq(actx)
	if err != nil {
		return nil, &Error{class: ErrPermanent, cause: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("no answer within %s", c.timeout)
		}
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, c.maxBody+1))
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("body not read within %s", c.timeout)
		}
		return nil, err
	}
	if int64(len(body)) > c.maxBody {
		return nil, &Error{Status: res.StatusCode, class: ErrBadResponse, Detail: fmt.Sprintf("the body exceeds %d bytes", c.maxBody)}
	}
	return &response{status: res.StatusCode, header: res.Header, body: body}, nil
}

// backoff is the wait before the n-th retry: between half and all of
// min(max, base·2ⁿ⁻¹), at random, so that callers refused together do not return together.
func (c *Client) backoff(n int) time.Duration {
	d := c.backoffMax
	if n <= 30 {
		if e := c.backoffBase << (n - 1); e > 0 && e < d {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	s := strings.TrimSpace(h.Get("Retry-After"))
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// haloSays is a short excerpt of an error body for messages: its message field if it is
// JSON, else its text; at most 200 characters.
func haloSays(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	var m map[string]any
	s := ""
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"error_description", "message", "Message", "error", "title"} {
			if v, ok := m[k].(string); ok && v != "" {
				s = v
				break
			}
		}
	}
	if s == "" {
		s = string(body)
	}
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return "; Halo says: " + strconv.Quote(s)
}

// --- Tokens ----------------------------------------------------------------------------

// bearer returns a token that is not due for renewal.
func (c *Client) bearer(ctx context.Context) (string, error) { return c.renew(ctx, "") }

// renew returns a current token. stale names a token the API refused: it is dropped and
// a new one fetched, unless another caller already replaced it. Concurrent callers share
// one token request; each waits for it under its own context.
func (c *Client) renew(ctx context.Context, stale string) (string, error) {
	c.mu.Lock()
	now := c.clock.Now()
	if stale != "" && c.token == stale {
		c.token = ""
	}
	if c.token != "" && now.Before(c.refreshAt) {
		t := c.token
		c.mu.Unlock()
		return t, nil
	}
	if c.fetching == nil && c.authErr != nil && now.Before(c.authErrUntil) {
		err := c.authErr
		c.mu.Unlock()
		return "", err
	}
	call, joined := c.fetching, c.fetching != nil
	if !joined {
		call = &tokenCall{done: make(chan struct{})}
		c.fetching = call
		// The request runs apart from any caller's context, so that one caller giving up
		// does not fail the others waiting on it; it is bounded by the retries.
		go c.fetchToken(context.WithoutCancel(ctx), call)
	}
	hook := c.onTokenWait
	c.mu.Unlock()
	if joined && hook != nil {
		hook()
	}
	select {
	case <-call.done:
		return call.token, call.err
	case <-ctx.Done():
		return "", &Error{Op: "token", cause: ctx.Err()}
	}
}

func (c *Client) fetchToken(ctx context.Context, call *tokenCall) {
	tok, lifetime, err := c.requestToken(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if err == nil {
		c.token = tok
		// Renew a little early: a tenth of the lifetime, at most a minute.
		c.refreshAt = now.Add(lifetime - min(lifetime/10, time.Minute))
		c.authErr = nil
	} else if errors.Is(err, ErrAuth) {
		c.authErr, c.authErrUntil = err, now.Add(authFailureTTL)
	}
	c.fetching = nil
	call.token, call.err = tok, err
	close(call.done)
}

// authEndpoint returns the auth server and tenant, discovering them once through
// /api/authinfo when no auth URL is configured.
func (c *Client) authEndpoint(ctx context.Context) (string, string, error) {
	c.mu.Lock()
	authURL, tenant, done := c.authURL, c.tenant, c.discovered
	c.mu.Unlock()
	if done {
		return authURL, tenant, nil
	}
	resp, err := c.send(ctx, "authinfo", false, getRequest(c.base+"/api/authinfo"))
	if err != nil {
		var he *Error
		if errors.As(err, &he) && he.Detail == "" {
			he.Detail = "could not discover the auth server (set halo.auth_url to skip discovery)"
		}
		return "", "", err
	}
	authURL = c.base + "/auth" // Halo's usual place, when authinfo does not say
	if resp.status >= 200 && resp.status < 300 {
		if info, err := decodeJSONObject(resp.body); err == nil {
			if s, ok := lookupKey(info, "auth_url").(string); ok && strings.TrimSpace(s) != "" {
				if u, err := checkURL("auth_url", s); err == nil {
					authURL = strings.TrimSuffix(u, "/")
				}
			}
			if tenant == "" {
				if s, ok := lookupKey(info, "tenant_id").(string); ok {
					tenant = strings.TrimSpace(s)
				}
			}
		}
	}
	c.mu.Lock()
	c.authURL, c.tenant, c.discovered = authURL, tenant, true
	c.mu.Unlock()
	return authURL, tenant, nil
}

// requestToken asks the auth server for a client-credentials token.
func (c *Client) requestToken(ctx context.Context) (string, time.Duration, error) {
	authURL, tenant, err := c.authEndpoint(ctx)
	if err != nil {
		return "", 0, err
	}
	tokenURL := authURL + "/token"
	if tenant != "" {
		tokenURL += "?" + url.Values{"tenant": {tenant}}.Encode()
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.clientID},
		"client_secret": {c.secret},
		"scope":         {c.scope},
	}.Encode()
	resp, err := c.send(ctx, "token", false, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		return req, err
	})
	if err != nil {
		return "", 0, err
	}
	if resp.status < 200 || resp.status >= 300 {
		return "", 0, c.tokenRefused(resp, tokenURL)
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(resp.body, &tr); err != nil || tr.AccessToken == "" {
		return "", 0, &Error{Op: "token", Status: resp.status, class: ErrBadResponse, Detail: "the token response has no access_token"}
	}
	if tt := strings.TrimSpace(tr.TokenType); tt != "" && !strings.EqualFold(tt, "bearer") {
		return "", 0, &Error{Op: "token", Status: resp.status, class: ErrBadResponse, Detail: fmt.Sprintf("token type %q is not Bearer", tt)}
	}
	lifetime := DefaultTokenLifetime
	if s := strings.Trim(string(tr.ExpiresIn), `" `); s != "" && s != "null" {
		if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 {
			lifetime = time.Duration(n * float64(time.Second))
		}
	}
	return tr.AccessToken, lifetime, nil
}

// tokenRefused explains a refused token request. Halo's words are passed on with the
// secret cut out, should it ever be echoed.
func (c *Client) tokenRefused(resp *response, tokenURL string) error {
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(resp.body, &oe)
	e := &Error{Op: "token", Status: resp.status, Attempts: resp.attempts, Code: oe.Error, class: ErrAuth}
	switch oe.Error {
	case "invalid_client":
		e.Detail = fmt.Sprintf("Halo does not accept client id %q with this secret: check halo.client_id and halo.client_secret, and that the API application is active", c.clientID)
	case "invalid_scope":
		e.Detail = fmt.Sprintf("Halo refused scope %q: set halo.scope to \"all\" or to scopes the API application grants (there are no read:actions/edit:actions scopes; actions come with the ticket scopes)", c.scope)
	case "unauthorized_client", "unsupported_grant_type":
		e.Detail = "the API application may not use client credentials: set its authentication method to \"Client ID and Secret (Services)\" with an agent login"
	case "invalid_request":
		e.Detail = fmt.Sprintf("Halo refused the token request: check halo.tenant (%q) and halo.auth_url", c.tenant)
	default:
		switch resp.status {
		case http.StatusNotFound:
			e.Detail = "no token endpoint at " + tokenURL + ": check halo.auth_url"
		default:
			e.Detail = "the token request was refused: check halo.client_id, halo.client_secret, halo.scope and halo.tenant"
		}
	}
	e.Detail += haloSays(resp.body)
	e.Detail = c.redact(e.Detail)
	if resp.status >= 500 {
		e.class = ErrUnavailable
	}
	return e
}

// redact cuts the secret out of text from Halo.
func (c *Client) redact(s string) string {
	if len(c.secret) >= 4 {
		s = strings.ReplaceAll(s, c.secret, "[secret]")
	}
	return s
}

// --- Decoding ------------------------------------------------------------------------

// decodeJSONObject decodes one JSON object, numbers as json.Number.
func decodeJSONObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if m == nil {
		return nil, errors.New("not a JSON object: null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return m, nil
}

// decodePage reads a list answer: {"record_count": N, "<envelope>": [...]} or a bare
// array. count is -1 when the answer has none.
func decodePage(body []byte, envelope string) (items []map[string]any, count int, bare bool, err error) {
	body = bytes.TrimSpace(body)
	count = -1
	if len(body) > 0 && body[0] == '[' {
		items, err = decodeItems(body)
		return items, len(items), true, err
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil || env == nil {
		return nil, -1, false, fmt.Errorf("not a JSON object or array: %v", err)
	}
	if raw, ok := lookupRaw(env, ParamRecordCount); ok {
		var n json.Number
		if err := json.Unmarshal(bytes.Trim(raw, `"`), &n); err == nil {
			if f, err := n.Float64(); err == nil && f >= 0 {
				count = int(f)
			}
		}
	}
	raw, ok := lookupRaw(env, envelope)
	if !ok {
		if count == 0 {
			return nil, 0, false, nil
		}
		return nil, -1, false, fmt.Errorf("the answer has no %q array", envelope)
	}
	items, err = decodeItems(raw)
	return items, count, false, err
}

func decodeItems(raw []byte) ([]map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var items []map[string]any
	if err := dec.Decode(&items); err != nil {
		return nil, fmt.Errorf("not an array of objects: %w", err)
	}
	out := items[:0]
	for _, it := range items {
		if it != nil {
			out = append(out, it)
		}
	}
	return out, nil
}

// lookupKey finds a key exactly, else ignoring case.
func lookupKey(m map[string]any, key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

func lookupRaw(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}
