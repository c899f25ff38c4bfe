package halosim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// knownScopes lists the scopes Halo's token endpoint knows (as HaloAPI-PS lists them).
// read:actions and edit:actions are not among them: Halo refuses them as invalid_scope.
func knownScopes() []string {
	s := []string{"all", "all:standard", "admin", "editMine:timesheets", "access:chat", "access:adpasswordreset"}
	for _, area := range []string{
		"tickets", "calendar", "customers", "crm", "timesheets", "contracts", "suppliers",
		"items", "projects", "sales", "quotes", "sos", "pos", "invoices", "reporting",
		"software", "softwarelicensing", "kb", "assets",
	} {
		s = append(s, "read:"+area, "edit:"+area)
	}
	return s
}

// statusWriter remembers the status answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP serves Halo's API under /api and its authorisation server under /auth. Routes
// and query parameter names are matched without regard to case, as Halo's are.
func (t *Tenant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	path := strings.ToLower(strings.TrimRight(r.URL.Path, "/"))
	limited := false // answered 429 by the rate limit, not by an injected fault
	defer func() {
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		t.mu.Lock()
		t.served++
		if status == http.StatusTooManyRequests && limited {
			t.limited++
		}
		t.requests = appendLogged(t.requests, Request{
			Time: t.now(), Method: r.Method, Path: r.URL.Path,
			Query: cloneValues(r.URL.Query()), Status: status,
		})
		t.mu.Unlock()
	}()
	if f := t.fault(r, path); f != nil {
		if f.Delay > 0 {
			timer := time.NewTimer(f.Delay)
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				sw.status = 499 // the client gave up
				return
			case <-t.done:
				timer.Stop()
				sw.status = http.StatusServiceUnavailable
				return
			}
		}
		if f.Status != 0 {
			for k, vs := range f.Header {
				for _, v := range vs {
					sw.Header().Add(k, v)
				}
			}
			body := f.Body
			if body == "" {
				body = `{"error":"` + http.StatusText(f.Status) + `"}`
			}
			sw.Header().Set("Content-Type", "application/json; charset=utf-8")
			sw.WriteHeader(f.Status)
			_, _ = sw.Write([]byte(body))
			return
		}
	}
	if !t.admit(sw) {
		limited = true
		return
	}
	switch {
	case path == "/api/authinfo":
		t.authInfo(sw, r)
	case path == "/auth/token":
		t.token(sw, r)
	case strings.HasPrefix(path, "/api/"):
		t.api(sw, r, strings.Split(strings.TrimPrefix(path, "/api/"), "/"))
	default:
		http.NotFound(sw, r)
	}
}

// fault returns the fault to apply to a request, if any.
func (t *Tenant) fault(r *http.Request, path string) *Fault {
	if t.opts.Faults != nil {
		if f := t.opts.Faults(r); f != nil {
			return f
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.faults {
		q := &t.faults[i]
		if !strings.HasPrefix(path, strings.ToLower(q.f.Path)) {
			continue
		}
		f := q.f
		q.n--
		if q.n <= 0 {
			t.faults = append(t.faults[:i], t.faults[i+1:]...)
		}
		return &f
	}
	return nil
}

// admit applies the rolling rate limit; it answers 429 and returns false over it.
func (t *Tenant) admit(w http.ResponseWriter) bool {
	if t.opts.RateLimit <= 0 {
		return true
	}
	t.mu.Lock()
	now := t.now()
	keep := t.hits[:0]
	for _, h := range t.hits {
		if now.Sub(h) < t.opts.RateWindow {
			keep = append(keep, h)
		}
	}
	t.hits = keep
	if len(t.hits) < t.opts.RateLimit {
		t.hits = append(t.hits, now)
		t.mu.Unlock()
		return true
	}
	wait := t.hits[0].Add(t.opts.RateWindow).Sub(now)
	t.mu.Unlock()
	if t.opts.SendRetryAfter {
		secs := int(math.Ceil(wait.Seconds()))
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintf(w, "Rate Limit Reached - %d Requests per rolling %s window", t.opts.RateLimit, windowText(t.opts.RateWindow))
	return false
}

func windowText(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%d minute", int(d/time.Minute))
	}
	return fmt.Sprintf("%d second", int(math.Ceil(d.Seconds())))
}

// authInfo answers GET /api/authinfo: where the authorisation server is and the tenant.
func (t *Tenant) authInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_url":  scheme + "://" + r.Host + "/auth",
		"tenant_id": t.opts.TenantName,
	})
}

// token answers POST /auth/token: the client-credentials grant, credentials in the form
// or in HTTP Basic (as Nango sends them).
func (t *Tenant) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	if t.opts.TenantName != "" && !strings.EqualFold(r.URL.Query().Get("tenant"), t.opts.TenantName) {
		oauthError(w, http.StatusBadRequest, "invalid_request", "unknown or missing tenant")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" {
		id, secret = u, p
	}
	if id != t.opts.ClientID || secret != t.opts.ClientSecret {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "")
		return
	}
	scope := strings.Join(strings.Fields(r.PostForm.Get("scope")), " ")
	if scope == "" {
		scope = "all"
	}
	granted := map[string]bool{}
	for _, s := range t.opts.GrantedScopes {
		granted[strings.ToLower(s)] = true
	}
	scopes := map[string]bool{}
	for _, s := range strings.Fields(scope) {
		if !granted[strings.ToLower(s)] {
			oauthError(w, http.StatusBadRequest, "invalid_scope", "")
			return
		}
		scopes[strings.ToLower(s)] = true
	}
	t.mu.Lock()
	t.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", t.opts.TenantName, id, t.seq)))
	tok := fmt.Sprintf("halotest.%d.%x", t.seq, sum[:16])
	t.tokens[tok] = tokenInfo{expires: t.now().Add(t.opts.TokenTTL), scopes: scopes}
	t.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(t.opts.TokenTTL / time.Second),
		"scope":        scope,
	})
}

// authorize checks the request's Bearer token; it answers 401 and returns nil when the
// token is missing, unknown or expired.
func (t *Tenant) authorize(w http.ResponseWriter, r *http.Request) map[string]bool {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		tok := strings.TrimSpace(h[7:])
		t.mu.Lock()
		info, ok := t.tokens[tok]
		now := t.now()
		if ok && !now.Before(info.expires) {
			delete(t.tokens, tok)
			ok = false
		}
		t.mu.Unlock()
		if ok {
			return info.scopes
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	} else {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.WriteHeader(http.StatusUnauthorized)
	return nil
}

// allows reports whether scopes cover an area ("tickets", "customers", "assets", or
// "admin" for webhook management).
func allows(scopes map[string]bool, area string) bool {
	if scopes["all"] {
		return true
	}
	if area == "admin" {
		return scopes["admin"]
	}
	return scopes["all:standard"] || scopes["read:"+area] || scopes["edit:"+area]
}

// api routes an authenticated /api request; parts are the lower-case path segments.
func (t *Tenant) api(w http.ResponseWriter, r *http.Request, parts []string) {
	scopes := t.authorize(w, r)
	if scopes == nil {
		return
	}
	if len(parts) > 2 {
		http.NotFound(w, r)
		return
	}
	id := ""
	if len(parts) == 2 {
		id = parts[1]
	}
	switch parts[0] {
	case "webhook", "notification", "webhookevent":
		if !allows(scopes, "admin") {
			forbidden(w, "the token's scopes do not allow webhook management")
			return
		}
		t.mu.Lock()
		deny := t.denyHook
		t.mu.Unlock()
		if deny {
			forbidden(w, "you do not have permission to manage webhooks")
			return
		}
		switch parts[0] {
		case "webhook":
			t.serveWebhooks(w, r, id)
		case "notification":
			t.serveNotifications(w, r, id)
		default:
			t.serveWebhookEvents(w, r, id)
		}
		return
	}
	for _, info := range kinds() {
		if parts[0] != info.route {
			continue
		}
		if !allows(scopes, info.scope) {
			forbidden(w, "the token's scopes do not cover "+info.envelope)
			return
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		if t.opts.StrictParams {
			if bad := undocumented(r, info.kind, id != ""); len(bad) > 0 {
				badRequest(w, "parameters Halo's API does not document here: "+strings.Join(bad, ", "))
				return
			}
		}
		if id == "" && info.kind == change.Action && t.refuseBulkActions(w, r) {
			return
		}
		if id == "" {
			t.list(w, r, info)
		} else {
			t.get(w, r, info, id)
		}
		return
	}
	http.NotFound(w, r)
}

// ---- answers ----

// marshal writes JSON as .NET does: <, > and & as themselves, not \u003c escapes.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]any{"error": code}
	if desc != "" {
		body["error_description"] = desc
	}
	writeJSON(w, status, body)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
}

func forbidden(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusForbidden, map[string]any{"error": msg})
}

func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": msg})
}

func notFound(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": msg})
}
