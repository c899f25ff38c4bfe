package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// validConnectionID says whether id is 1-63 lower-case letters, digits, '-' or '_', a
// letter or digit first (^[a-z0-9][a-z0-9_-]{0,62}$). It is written out, not a pattern:
// every Lambda function checks it at each cold start (docs/PERFORMANCE.md, "Cold start").
func validConnectionID(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Validate checks the document is usable.
func (c *Config) Validate() error {
	if len(c.Connections) == 0 {
		return fmt.Errorf("%w: no connections: list at least one under \"connections\"", ErrInvalid)
	}
	seen := map[string]bool{}
	for i, conn := range c.Connections {
		where := fmt.Sprintf("connections[%d]", i)
		if !validConnectionID(conn.ID) {
			return fmt.Errorf("%w: %s: id %q must be 1-63 lower-case letters, digits, '-' or '_'", ErrInvalid, where, conn.ID)
		}
		if seen[conn.ID] {
			return fmt.Errorf("%w: %s: id %q is used twice", ErrInvalid, where, conn.ID)
		}
		seen[conn.ID] = true
		where = "connection " + conn.ID
		if n := conn.Webhook.MaxBodyBytes; n < 0 || n > MaxBodyCeiling {
			return fmt.Errorf("%w: %s: webhook.max_body_bytes must be between 1 and %d", ErrInvalid, where, MaxBodyCeiling)
		}
		if t := conn.Webhook.AuthThrottle; t.Failures < 0 || t.WindowSeconds < 0 || time.Duration(t.WindowSeconds)*time.Second > maxAuthWindow {
			return fmt.Errorf("%w: %s: webhook.auth_throttle: failures must be 0 (the default, %d) or more, window_seconds between 0 (the default, %d) and %d",
				ErrInvalid, where, DefaultAuthFailures, int(DefaultAuthWindow.Seconds()), int(maxAuthWindow.Seconds()))
		}
		if len(conn.Webhook.Auth) == 0 {
			return fmt.Errorf("%w: %s: webhook.auth lists no scheme; every delivery would be refused", ErrInvalid, where)
		}
		for j, a := range conn.Webhook.Auth {
			if err := a.validate(); err != nil {
				return fmt.Errorf("%w: %s: webhook.auth[%d]: %w", ErrInvalid, where, j, err)
			}
		}
		if err := conn.Halo.validate(); err != nil {
			return fmt.Errorf("%w: %s: halo: %w", ErrInvalid, where, err)
		}
		for kind, fl := range conn.StoredFields {
			if !knownKinds[kind] {
				return fmt.Errorf("%w: %s: stored_fields: unknown kind %q (%s)", ErrInvalid, where, kind, strings.Join(change.KindNames(), ", "))
			}
			if len(fl.Include) > 0 && len(fl.Exclude) > 0 {
				return fmt.Errorf("%w: %s: stored_fields.%s: give include or exclude, not both", ErrInvalid, where, kind)
			}
		}
		switch conn.Poll.Mode {
		case "", "hybrid", "webhook", "poll":
		default:
			return fmt.Errorf("%w: %s: poll.mode %q (hybrid, webhook or poll)", ErrInvalid, where, conn.Poll.Mode)
		}
		for kind, mode := range conn.Poll.Kinds {
			if !knownKinds[kind] || (mode != "incremental" && mode != "scan" && mode != "auto") {
				return fmt.Errorf("%w: %s: poll.kinds[%q]: kind %s; incremental, scan or auto", ErrInvalid, where, kind, polledKinds())
			}
		}
		if p := conn.Poll; p.IntervalMinutes < 0 || p.FallbackMinutes < 0 || p.SilenceMinutes < 0 || p.OverlapSeconds < 0 || p.ReconcileHours < 0 ||
			p.NotesMaxAgeDays < 0 || p.ScanHours < 0 {
			return fmt.Errorf("%w: %s: poll: intervals cannot be negative", ErrInvalid, where)
		}
		switch conn.Poll.BulkNotes {
		case "", "auto", "on", "off":
		default:
			return fmt.Errorf("%w: %s: poll.bulk_notes %q (auto, on or off)", ErrInvalid, where, conn.Poll.BulkNotes)
		}
		if s := conn.Poll.Share; s < 0 || s > 1 {
			return fmt.Errorf("%w: %s: poll.share %g: a part of halo.budget above 0 and at most 1 (0 or absent: 1/3)", ErrInvalid, where, s)
		}
		if err := conn.Verify.validate(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, where, err)
		}
		if n := conn.Versions.MaxSkewSeconds; n < 0 || n > MaxVersionSkewSeconds {
			return fmt.Errorf("%w: %s: versions.max_skew_seconds must be between 1 and %d", ErrInvalid, where, MaxVersionSkewSeconds)
		}
		for name, m := range conn.Events {
			if !knownKinds[m.Kind] || (m.Op != "upsert" && m.Op != "delete" && m.Op != "") {
				return fmt.Errorf("%w: %s: events[%q]: kind must be one of %s and op upsert or delete", ErrInvalid, where, name, strings.Join(change.KindNames(), ", "))
			}
		}
		if _, err := ParseCIDRs(conn.Webhook.AllowIPs); err != nil {
			return fmt.Errorf("%w: %s: webhook.allow_ips: %w", ErrInvalid, where, err)
		}
		for j, h := range conn.Webhook.RoutingHeaders {
			if !headerName().MatchString(h) {
				return fmt.Errorf("%w: %s: webhook.routing_headers[%d]: %q is not a header name", ErrInvalid, where, j, h)
			}
		}
		if len(conn.Webhook.RoutingHeaders) > 7 {
			return fmt.Errorf("%w: %s: webhook.routing_headers: at most 7 (a queued message carries 10 attributes, 3 are halosync's)", ErrInvalid, where)
		}
		if m := conn.Webhook.Manage; m != nil {
			if err := m.validate(conn); err != nil {
				return fmt.Errorf("%w: %s: webhook.manage: %w", ErrInvalid, where, err)
			}
		}
	}
	if _, err := ParseCIDRs(c.Server.TrustedProxies); err != nil {
		return fmt.Errorf("%w: server.trusted_proxies: %w", ErrInvalid, err)
	}
	if h := c.Server.ForwardedHeader; h != "" && !headerName().MatchString(h) {
		return fmt.Errorf("%w: server.forwarded_header: %q is not a header name", ErrInvalid, h)
	}
	if err := c.Server.validate(c.Connections); err != nil {
		return fmt.Errorf("%w: server.%w", ErrInvalid, err)
	}
	switch c.Store.Driver {
	case "", "sqlite":
	case "dynamodb":
		if c.Store.Table == "" {
			return fmt.Errorf("%w: store: driver dynamodb needs a table", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: store: unknown driver %q (sqlite or dynamodb)", ErrInvalid, c.Store.Driver)
	}
	if s := c.Queue.SQS; s != nil && (s.URL == "" || s.DeadLetterURL == "") {
		return fmt.Errorf("%w: queue.sqs needs url and dead_letter_url (the stack outputs ChangesQueueUrl and DeadLetterQueueUrl)", ErrInvalid)
	}
	return nil
}

// MinReadToken is the shortest read token accepted: it guards every mirrored ticket.
const MinReadToken = 16

// The patterns are compiled on first use, not at package init, which every Lambda
// function's cold start pays (docs/PERFORMANCE.md, "Cold start").

// token68 is what a bearer token may hold (RFC 6750's b64token), so it travels in a header
// as it is.
var token68 = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`) })

// hostName is a DNS name or an IPv4 address, or an IPv6 address in brackets, without a port.
var hostName = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.?)+$|^\[[0-9A-Fa-f:.]+\]$`)
})

func (s Server) validate(conns []Connection) error {
	for k, t := range s.ReadTokens {
		if len(t) < MinReadToken || !token68().MatchString(t) {
			return fmt.Errorf("read_tokens[%d]: a token is at least %d characters of letters, digits and -._~+/", k, MinReadToken)
		}
	}
	for k, h := range s.Hosts {
		if !hostName().MatchString(h) {
			return fmt.Errorf("hosts[%d]: %q is not a host name (no scheme or port; IPv6 in brackets)", k, h)
		}
	}
	if s.MaxConnections < 0 {
		return errors.New("max_connections: must be positive (default 512)")
	}
	if s.MaxBodyBytesInFlight < 0 {
		return errors.New("max_body_bytes_in_flight: must be positive (default 64 MiB)")
	}
	for _, c := range conns {
		if n := int64(c.Webhook.BodyLimit()); n > s.BodyBytesInFlight() {
			return fmt.Errorf("max_body_bytes_in_flight: %d is less than connection %s's max_body_bytes %d; no delivery that large could be read", s.BodyBytesInFlight(), c.ID, n)
		}
	}
	return nil
}

// minSecret is the shortest secret accepted for any scheme.
const minSecret = 8

func checkSecrets(scheme, field string, secrets []string) error {
	if len(secrets) == 0 {
		return fmt.Errorf("%s: %s lists none", scheme, field)
	}
	for k, p := range secrets {
		if len(p) < minSecret {
			return fmt.Errorf("%s: %s[%d] is shorter than %d characters", scheme, field, k, minSecret)
		}
	}
	return nil
}

var headerName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`) })

func (a AuthScheme) validate() error {
	switch a.Scheme {
	case "header", "hmac":
		if !headerName().MatchString(a.Header) {
			return fmt.Errorf("%s: header %q is not a header name", a.Scheme, a.Header)
		}
		if a.Scheme == "header" {
			return checkSecrets(a.Scheme, "tokens", a.Tokens)
		}
		switch strings.ToLower(a.Encoding) {
		case "", "base64", "hex":
		default:
			return fmt.Errorf("hmac: encoding %q (base64 or hex)", a.Encoding)
		}
		return checkSecrets(a.Scheme, "secrets", a.Secrets)
	case "signed-timestamp":
		if a.ToleranceSeconds < 0 || a.ToleranceSeconds > 3600 {
			return fmt.Errorf("signed-timestamp: tolerance_seconds must be between 1 and 3600")
		}
		for k, s := range a.Secrets {
			if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_")); err != nil {
				return fmt.Errorf("signed-timestamp: secrets[%d] is not a whsec_ base64 secret", k)
			}
		}
		return checkSecrets(a.Scheme, "secrets", a.Secrets)
	case "path-secret":
		for k, s := range a.Secrets {
			if strings.ContainsAny(s, "/?#%") {
				return fmt.Errorf("path-secret: secrets[%d] must be one URL path segment (no / ? # %%)", k)
			}
		}
		if err := checkSecrets(a.Scheme, "secrets", a.Secrets); err != nil {
			return err
		}
		for k, s := range a.Secrets {
			if len(s) < 16 {
				return fmt.Errorf("path-secret: secrets[%d] is shorter than 16 characters", k)
			}
		}
		return nil
	case "basic":
		if a.Username == "" {
			return errors.New("basic: username is empty")
		}
		if strings.Contains(a.Username, ":") {
			return errors.New("basic: username cannot contain ':'")
		}
		return checkSecrets(a.Scheme, "passwords", a.Passwords)
	case "":
		return errors.New("scheme is missing")
	default:
		return fmt.Errorf("unknown scheme %q (basic, header, hmac, signed-timestamp or path-secret)", a.Scheme)
	}
}

// knownKinds are the names a configuration may give a kind: its own or the key Halo nests
// it under ("user" for contacts), singular or plural, as change.ParseKind takes them.
var knownKinds = func() map[string]bool {
	m := map[string]bool{}
	for _, s := range change.Kinds() {
		for _, name := range []string{string(s.Kind), s.PayloadKey} {
			m[name], m[name+"s"] = true, true
		}
	}
	return m
}()

// polledKinds names the kinds the poller reads on their own, for messages: a kind stored
// under a parent (notes) is read with it.
func polledKinds() string {
	var names []string
	for _, s := range change.Kinds() {
		if s.Parent == "" {
			names = append(names, string(s.Kind))
		}
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (h Halo) validate() error {
	if h.BaseURL == "" {
		if h.ClientID != "" || h.ClientSecret != "" {
			return errors.New("client_id and client_secret need a base_url")
		}
		return nil
	}
	u, err := url.Parse(h.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("base_url %q is not an http(s) URL", h.BaseURL)
	}
	if h.AuthURL != "" {
		if u, err := url.Parse(h.AuthURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("auth_url %q is not an http(s) URL", h.AuthURL)
		}
	}
	if h.ClientID == "" || h.ClientSecret == "" {
		return errors.New("client_id and client_secret are needed with a base_url")
	}
	if h.Budget.Requests < 0 || h.Budget.WindowSeconds < 0 || h.TimeoutSeconds < 0 {
		return errors.New("budget and timeout_seconds cannot be negative")
	}
	return nil
}

// Fraction reads verify.share: 0 for "unused" (or absent), else the fraction.
func (v Verify) Fraction() (float64, error) {
	switch strings.TrimSpace(v.Share) {
	case "", "unused":
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v.Share), 64)
	if err != nil || f <= 0 || f > 1 {
		return 0, fmt.Errorf("verify.share %q: \"unused\" or a fraction of poll.share above 0 and at most 1", v.Share)
	}
	return f, nil
}

func (v Verify) validate() error {
	if _, err := v.Fraction(); err != nil {
		return err
	}
	if v.WindowHours < 0 || v.WindowHours > 24*31 {
		return fmt.Errorf("verify.window_hours %d: whole hours from 1 to 744 (0 or absent: 24)", v.WindowHours)
	}
	if v.AlarmBelow < 0 || v.AlarmBelow > 100 {
		return fmt.Errorf("verify.alarm_below %g: a percent from 0 to 100 (0 or absent: 99)", v.AlarmBelow)
	}
	return nil
}
