package haloapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// tokenCall is one token request under way, shared by every caller that needs a token
// meanwhile.
type tokenCall struct {
	done  chan struct{}
	token string
	err   error
}

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
