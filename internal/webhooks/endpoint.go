package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Deliverer sends a delivery body to our webhook endpoint, authenticated as Halo's
// deliveries are, and returns the answer.
type Deliverer interface {
	Deliver(ctx context.Context, body []byte) (Answer, error)
}

// Answer is our endpoint's answer to a delivery.
type Answer struct {
	Status int    `json:"status"`
	Body   string `json:"body,omitempty"` // the first 1 KiB
}

// Accepted reports a 2xx answer.
func (a Answer) Accepted() bool { return a.Status >= 200 && a.Status <= 299 }

// Endpoint posts deliveries to our webhook URL with the managed webhook's credentials:
// exactly what Halo would send, through the same ingest path (authentication, decoding,
// filters, the queue).
type Endpoint struct {
	URL  string
	Auth Auth
	// HTTP sends the requests (default: a client with a 30 s timeout).
	HTTP *http.Client
}

// EndpointFor is the endpoint of a Spec.
func EndpointFor(s Spec) Endpoint { return Endpoint{URL: s.URL, Auth: s.Auth} }

// Deliver implements Deliverer. The error reports only a delivery that got no answer.
func (e Endpoint) Deliver(ctx context.Context, body []byte) (Answer, error) {
	hc := e.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(body))
	if err != nil {
		return Answer{}, fmt.Errorf("webhook endpoint: %w", err)
	}
	req.Header = e.Auth.Headers(body)
	req.Header.Set("User-Agent", "halosync-webhooks")
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("webhook endpoint %s: %w", e.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return Answer{Status: resp.StatusCode, Body: strings.TrimSpace(string(b))}, nil
}

// ProbeBody is what a probe delivers: a batch of no events. Our endpoint authenticates it
// like any delivery and answers 200 with nothing queued.
var ProbeBody = []byte("[]")

// Errors of a probe of our endpoint.
var (
	// ErrSecretRefused: our endpoint answered 401 to the managed webhook's credentials.
	ErrSecretRefused = errors.New("our endpoint refuses the webhook's credentials")
	// ErrEndpoint: our endpoint could not be reached, or gave another answer than 2xx or 401.
	ErrEndpoint = errors.New("our endpoint did not accept a probe")
)

// Probe checks that our endpoint accepts the credentials: it delivers ProbeBody and
// expects a 2xx answer.
func (e Endpoint) Probe(ctx context.Context) error {
	a, err := e.Deliver(ctx, ProbeBody)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w (is the endpoint deployed and reachable from here? --no-probe skips this check)", ErrEndpoint, err)
	case a.Accepted():
		return nil
	case a.Status == http.StatusUnauthorized:
		return fmt.Errorf("%w (HTTP 401 from %s): the endpoint does not accept this secret yet; restart halosync serve, or let the functions load the new configuration, then apply again", ErrSecretRefused, e.URL)
	case a.Status == http.StatusNotFound:
		return fmt.Errorf("%w: HTTP 404 from %s: check webhook.manage.url (…/webhooks/halo/<connection>)", ErrEndpoint, e.URL)
	case a.Status == http.StatusForbidden:
		return fmt.Errorf("%w: HTTP 403 from %s: this machine is outside the connection's allow_ips, so the secret cannot be checked from here (--no-probe skips the check)", ErrEndpoint, e.URL)
	default:
		return fmt.Errorf("%w: HTTP %d from %s: %s", ErrEndpoint, a.Status, e.URL, a.Body)
	}
}

// ProbeSpec is a Manager.Probe that probes the Spec's endpoint with http (nil: default).
func ProbeSpec(hc *http.Client) func(ctx context.Context, s Spec) error {
	return func(ctx context.Context, s Spec) error {
		e := EndpointFor(s)
		e.HTTP = hc
		return e.Probe(ctx)
	}
}
