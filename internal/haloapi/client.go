package haloapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

// TimeLayout is how the client writes datetimes into query parameters
// (lastupdatefromdate, lastupdatetodate): UTC, milliseconds, and no zone suffix, as Halo
// writes and expects them (docs/HALO.md, "The REST API").
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

// Get reads one object of a kind stored by itself: GET /api/{Path}/{id} (tickets with
// includedetails=true). A 404 is ErrNotFound. Numbers keep their exact text
// (json.Number), as in webhook deliveries. A note needs its ticket: Read or GetAction.
func (c *Client) Get(ctx context.Context, kind change.Kind, id string) (map[string]any, error) {
	return c.Read(ctx, kind, id, "")
}

// Read reads one object; parentID is the ticket of a note, sent as ticket_id, without
// which Halo does not read one (docs/HALO.md, "The calls halosync makes"): a note without
// it is refused, unsent. Kinds stored by themselves ignore parentID.
func (c *Client) Read(ctx context.Context, kind change.Kind, id, parentID string) (map[string]any, error) {
	var params url.Values
	if ep, ok := endpoints[kind]; ok && ep.ParentParam != "" && strings.TrimSpace(parentID) != "" {
		params = url.Values{ep.ParentParam: {strings.TrimSpace(parentID)}}
	}
	return c.GetWith(ctx, kind, id, params)
}

// GetAction reads one ticket note: GET /api/Actions/{id}?ticket_id=...
func (c *Client) GetAction(ctx context.Context, ticketID, actionID string) (map[string]any, error) {
	return c.Read(ctx, change.Action, actionID, ticketID)
}

// GetWith is Get with extra query parameters; a kind stored under a parent needs the
// parent's id among them.
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
	if ep.ParentParam != "" && strings.TrimSpace(params.Get(ep.ParentParam)) == "" {
		return nil, &Error{Op: op, class: ErrPermanent, Detail: "no " + ep.ParentParam + ": Halo reads a note only with its ticket"}
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
