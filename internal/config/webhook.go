package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Webhook configures the inbound webhook endpoint of a connection.
type Webhook struct {
	// Auth lists the accepted authentication schemes; a delivery passes if any accepts it.
	Auth []AuthScheme `yaml:"auth"`
	// AllowIPs, when set, lists the CIDRs deliveries may come from.
	AllowIPs []string `yaml:"allow_ips"`
	// MaxBodyBytes caps a delivery's size, as received and after gzip decoding; 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// Filters drop unwanted deliveries before they are queued (the poller applies the same).
	Filters Filters `yaml:"filters"`
	// RoutingHeaders names request headers whose values travel with each queued change as
	// message attributes (for example a team or urgency marker set in Halo).
	RoutingHeaders []string `yaml:"routing_headers"`
	// Manage, when set, has `halosync webhooks` create and keep this connection's webhook
	// in Halo (docs/WEBHOOKS.md).
	Manage *WebhookManage `yaml:"manage"`
	// AuthThrottle bounds failed authentications per source (docs/ARCHITECTURE.md,
	// "Authentication").
	AuthThrottle AuthThrottle `yaml:"auth_throttle"`
}

// AuthThrottle refuses a source, for a window, once it has failed to authenticate this
// many times within one.
type AuthThrottle struct {
	Failures      int `yaml:"failures"`       // 0: DefaultAuthFailures
	WindowSeconds int `yaml:"window_seconds"` // 0: DefaultAuthWindow
}

// Defaults and ceilings of auth_throttle.
const (
	DefaultAuthFailures = 20
	DefaultAuthWindow   = time.Minute
	maxAuthWindow       = 24 * time.Hour
)

// Limit is how many failures a source may make within a window.
func (a AuthThrottle) Limit() int {
	if a.Failures > 0 {
		return a.Failures
	}
	return DefaultAuthFailures
}

// Window is the throttle's window, and how long a throttled source is refused.
func (a AuthThrottle) Window() time.Duration {
	if a.WindowSeconds > 0 {
		return time.Duration(a.WindowSeconds) * time.Second
	}
	return DefaultAuthWindow
}

// AuthScheme is one accepted way of authenticating a delivery. Every secret list holds
// several secrets at once, for rotation; each may be a secret reference.
type AuthScheme struct {
	Scheme string `yaml:"scheme"` // basic, header, hmac, signed-timestamp, path-secret

	// basic
	Username  string   `yaml:"username"`
	Passwords []string `yaml:"passwords"`

	// header: a static token in Header (after Prefix, e.g. "Bearer "); hmac: the signature
	// in Header (after Prefix, e.g. "sha256=")
	Header string   `yaml:"header"`
	Prefix string   `yaml:"prefix"`
	Tokens []string `yaml:"tokens"`

	// hmac: Encoding of the signature, base64 (default) or hex
	Encoding string `yaml:"encoding"`
	// hmac, signed-timestamp and path-secret
	Secrets []string `yaml:"secrets"`

	// signed-timestamp: how far webhook-timestamp may be from now, either way (default 300)
	ToleranceSeconds int `yaml:"tolerance_seconds"`
}

// Filters select which deliveries are wanted. An allow list, when set, admits only what it
// names; a deny list refuses what it names. Values are Halo ids (client, ticket type,
// priority, status) or event names (case-insensitive).
type Filters struct {
	Clients     IDFilter `yaml:"clients"`
	TicketTypes IDFilter `yaml:"ticket_types"`
	Priorities  IDFilter `yaml:"priorities"`
	Statuses    IDFilter `yaml:"statuses"`
	Events      IDFilter `yaml:"events"`
	// StatusChangesOnly keeps, of ticket events, only status changes.
	StatusChangesOnly bool `yaml:"status_changes_only"`
	// SkipInactive drops objects Halo marks inactive (clients, contacts, assets).
	SkipInactive bool `yaml:"skip_inactive"`
}

// IDFilter is an allow and a deny list.
type IDFilter struct {
	Allow []string `yaml:"allow"`
	Deny  []string `yaml:"deny"`
}

const (
	// DefaultMaxBodyBytes is the body limit when a connection sets none.
	DefaultMaxBodyBytes = 1 << 20
	// MaxBodyCeiling stays below Lambda's 6 MB synchronous payload limit.
	MaxBodyCeiling = 5 << 20
)

// BodyLimit is the connection's delivery size limit.
func (w Webhook) BodyLimit() int {
	if w.MaxBodyBytes > 0 {
		return w.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

// DefaultTolerance is the signed-timestamp window when none is set.
const DefaultTolerance = 5 * time.Minute

// Tolerance is the signed-timestamp window.
func (a AuthScheme) Tolerance() time.Duration {
	if a.ToleranceSeconds > 0 {
		return time.Duration(a.ToleranceSeconds) * time.Second
	}
	return DefaultTolerance
}

// ParseCIDRs parses a list of CIDRs; a bare address stands for itself alone.
func ParseCIDRs(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("[%d] %q is not a CIDR or an address", i, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
