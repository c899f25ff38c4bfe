package localserver

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/metrics"
)

// serverConnection is the connection the server's own refusals are counted under: the
// reading routes belong to no connection, and a path's connection is the caller's choice.
const serverConnection = "_server"

// readGuard admits a request to the reading routes (the copy and /status) when its Host
// header names this server and it carries one of the read tokens (docs/ARCHITECTURE.md,
// "Local mode"). The webhook route is not guarded: Halo reaches it by a public name and
// authenticates as the connection says.
type readGuard struct {
	hosts  map[string]bool
	tokens [][sha256.Size]byte
	count  *metrics.Memory
	log    *slog.Logger
}

// loopbackHosts are always accepted: a page elsewhere cannot make a browser send them.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

func newReadGuard(tokens, hosts []string, count *metrics.Memory, log *slog.Logger) *readGuard {
	g := &readGuard{hosts: map[string]bool{}, count: count, log: log}
	for _, t := range tokens {
		g.tokens = append(g.tokens, sha256.Sum256([]byte(t)))
	}
	for _, h := range append(loopbackHosts, hosts...) {
		g.allowHost(h)
	}
	return g
}

// allowHost accepts host (a name, an IP address, bracketed or not, with or without a
// port); an empty or unspecified host (":8080", "0.0.0.0") names no one and adds nothing.
func (g *readGuard) allowHost(host string) {
	if h := hostOf(host); h != "" {
		if a, err := netip.ParseAddr(h); err == nil && a.IsUnspecified() {
			return
		}
		g.hosts[h] = true
	}
}

// withHosts is a copy of g that also accepts hosts.
func (g *readGuard) withHosts(hosts ...string) *readGuard {
	c := *g
	c.hosts = make(map[string]bool, len(g.hosts)+len(hosts))
	for h := range g.hosts {
		c.hosts[h] = true
	}
	for _, h := range hosts {
		c.allowHost(h)
	}
	return &c
}

// hostOf is a Host header's host in one spelling: lower case, without port, brackets or
// a trailing dot, an IP address as netip prints it.
func hostOf(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

// wrap answers with next only for a request the guard admits.
func (g *readGuard) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !g.hostKnown(w, r) {
			return
		}
		if reason := g.check(credential(r)); reason != "" {
			challenge := `Bearer realm="halosync"`
			if reason == "token_wrong" {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			g.refuse(w, r, apierror.Unauthorized, reason,
				"send Authorization: Bearer with a token of server.read_tokens, or of the read-token file in the data directory of halosync serve")
			return
		}
		next(w, r)
	}
}

// hostKnown reports whether r's Host header names this server, refusing it when not.
func (g *readGuard) hostKnown(w http.ResponseWriter, r *http.Request) bool {
	if g.hosts[hostOf(r.Host)] {
		return true
	}
	g.refuse(w, r, apierror.UnknownHost, "host_unknown",
		"this server does not answer reads under that host name; list it in server.hosts")
	return false
}

// sessionCookie carries a read token for a browser, which cannot send a bearer header on
// navigation: GET /dashboard?token=... sets it (wrapPage). It is HttpOnly, so no script
// reads it, and SameSite=Strict, so no other site's page makes the browser send it.
const sessionCookie = "halosync_read"

// credential is the request's Authorization header, or, without one, the read token of
// its session cookie as a bearer credential.
func credential(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		return h
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		token, err := base64.RawURLEncoding.DecodeString(c.Value)
		if err != nil {
			return "Bearer !" // not a cookie this server set: a wrong token
		}
		return "Bearer " + string(token)
	}
	return ""
}

// wrapPage guards a page as wrap does, and also takes a read token as the query
// parameter token: a right one (under a known host) sets the session cookie and
// redirects to the page without it, so the token leaves the address bar and history.
func (g *readGuard) wrapPage(next http.HandlerFunc) http.HandlerFunc {
	guarded := g.wrap(next)
	return func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.Query().Has("token") {
			guarded(w, r)
			return
		}
		if !g.hostKnown(w, r) {
			return
		}
		token := r.URL.Query().Get("token")
		if reason := g.check("Bearer " + token); reason != "" {
			g.refuse(w, r, apierror.Unauthorized, reason,
				"the token parameter is not one of server.read_tokens, nor the read-token file in the data directory of halosync serve")
			return
		}
		// Encoded: a configured token may hold bytes a cookie value cannot.
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(token)), Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, r.URL.Path, http.StatusSeeOther)
	}
}

// check returns why the Authorization header is refused, or "". Every token is compared,
// in constant time over their hashes, so neither which token matched nor its length shows.
func (g *readGuard) check(header string) string {
	if header == "" {
		return "token_missing"
	}
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "token_malformed"
	}
	sum := sha256.Sum256([]byte(token))
	match := 0
	for _, t := range g.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match != 1 {
		return "token_wrong"
	}
	return ""
}

// refuse answers code, counts the refusal (ReadsRefused) and logs it without the
// Authorization header.
func (g *readGuard) refuse(w http.ResponseWriter, r *http.Request, code apierror.Code, reason, message string) {
	g.count.Count(metrics.Metric{Name: metrics.ReadsRefused, Connection: serverConnection, Label: reason}, 1)
	g.log.WarnContext(r.Context(), "read refused", "reason", reason, "status", code.Status(),
		"path", r.URL.Path, "peer", r.RemoteAddr)
	apierror.Write(w, code, message)
}
