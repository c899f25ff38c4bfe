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
	"strconv"
	"strings"
	"time"
)

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
		if err := BudgetOf(ctx).Wait(ctx); err != nil {
			return nil, &Error{Op: op, Attempts: requests, cause: err}
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
