// Package webhooks manages halosync's webhook in Halo for each connection that configures
// webhook.manage: plan and apply, status, the poller's check and repair, test deliveries,
// replay from Halo's delivery log, removal (docs/WEBHOOKS.md). Only the webhooks named
// "<name_prefix>:<connection>" and, with a backup endpoint, "<name_prefix>:<connection>
// (backup)" are ever changed; secrets show by fingerprint only.
package webhooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/haloapi"
)

// API is what this package needs of Halo's webhook management API.
type API interface {
	Webhooks(ctx context.Context) ([]haloapi.Webhook, error)
	SaveWebhook(ctx context.Context, s haloapi.WebhookSpec) (haloapi.Webhook, error)
	EnableWebhook(ctx context.Context, id string) (haloapi.Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	TestWebhook(ctx context.Context, id string) error
	Notifications(ctx context.Context, webhookID string) ([]haloapi.Notification, error)
	Subscribe(ctx context.Context, webhookID string, events []haloapi.NotificationSpec) ([]haloapi.Notification, error)
	DeleteNotification(ctx context.Context, id string) error
	WebhookEvents(ctx context.Context, webhookID string, fn func(page []haloapi.WebhookEvent) error) error
}

var _ API = (*haloapi.Client)(nil)

// Auth methods of the managed webhook.
const (
	AuthBasic = "basic" // HTTP Basic (Halo's authentication_type 1)
	AuthHMAC  = "hmac"  // signed body: base64 HMAC-SHA256 of the body in a header (type 3)
)

// Auth is how Halo authenticates the managed webhook's deliveries, secret included.
type Auth struct {
	Method   string // AuthBasic or AuthHMAC
	Username string // basic
	Header   string // hmac: the header carrying the signature (Token)
	Secret   string // the password or signing secret; never printed
}

// String describes the authentication without its secret.
func (a Auth) String() string {
	if a.Method == AuthHMAC {
		return fmt.Sprintf("signed body in %s", a.Header)
	}
	return fmt.Sprintf("Basic, user %q", a.Username)
}

// GoString leaves the secret out of %#v too.
func (a Auth) GoString() string { return "webhooks.Auth{" + a.String() + "}" }

// haloType is Halo's authentication_type for the method.
func (a Auth) haloType() int {
	if a.Method == AuthHMAC {
		return haloapi.WebhookAuthSignedBody
	}
	return haloapi.WebhookAuthBasic
}

// Fingerprint identifies the secret without revealing it: 12 hex digits of an HMAC keyed
// with the secret. It is written into the webhook's note, so that a changed secret shows
// even when Halo does not answer the password.
func (a Auth) Fingerprint() string {
	mac := hmac.New(sha256.New, []byte(a.Secret))
	mac.Write([]byte("halosync webhook secret fingerprint"))
	return hex.EncodeToString(mac.Sum(nil))[:12]
}

// Headers are the headers that authenticate body as Halo sends it: Basic credentials, or
// the body's signature.
func (a Auth) Headers(body []byte) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if a.Method == AuthHMAC {
		mac := hmac.New(sha256.New, []byte(a.Secret))
		mac.Write(body)
		h.Set(a.Header, base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		return h
	}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Secret)))
	return h
}

// Event is one event subscription: a name for people and Halo's event number.
type Event struct {
	Name string `json:"name"`
	No   int    `json:"eventno"`
}

// Spec is the managed webhook as a connection's configuration wants it.
type Spec struct {
	Connection string
	// Endpoint is the endpoint the webhook delivers to: change.EndpointPrimary (url), or
	// change.EndpointBackup (backup_url).
	Endpoint string
	Name     string // <prefix>:<connection>, or with " (backup)", how ours is recognised
	URL      string
	Auth     Auth
	Events   []Event
	// PayloadType and AutoDisableAttempts are set in Halo only when configured.
	PayloadType         *int
	AutoDisableAttempts *int
	BatchMethod         int
	BatchDelaySeconds   int
	BatchLimit          int
	// Repair is the periodic check's mode (config.RepairReEnable, RepairReapply,
	// RepairOff) and CheckPeriod the least time between two checks.
	Repair      string
	CheckPeriod time.Duration
}

// String describes the Spec without its secret.
func (s Spec) String() string {
	return fmt.Sprintf("webhooks.Spec{Connection: %q, Endpoint: %q, Name: %q, URL: %q, Auth: %s, Events: %v}", s.Connection, s.Endpoint, s.Name, s.URL, s.Auth, s.Events)
}

// GoString leaves the secret out of %#v too.
func (s Spec) GoString() string { return s.String() }

// Note is the webhook's note in Halo: who manages it, and the secret's fingerprint.
func (s Spec) Note() string {
	of := "connection " + s.Connection
	if s.Endpoint == change.EndpointBackup {
		of += ", backup endpoint"
	}
	return fmt.Sprintf("Managed by halosync for %s: changes made here are undone by `halosync webhooks apply`. secret-fingerprint=%s",
		of, s.Auth.Fingerprint())
}

// noteFingerprint is compiled on first use, not at package init, which every Lambda
// function's cold start pays (docs/PERFORMANCE.md, "Cold start").
var noteFingerprint = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`secret-fingerprint=([0-9a-f]{8,64})`) })

// fingerprintIn reads the secret fingerprint a note carries ("" without one).
func fingerprintIn(note string) string {
	if m := noteFingerprint().FindStringSubmatch(note); m != nil {
		return m[1]
	}
	return ""
}

// haloSpec is the Halo write that makes a webhook match s (id "" creates it).
func (s Spec) haloSpec(id string) haloapi.WebhookSpec {
	hs := haloapi.WebhookSpec{
		ID: id, Name: s.Name, URL: s.URL, Note: s.Note(),
		AuthenticationType: s.Auth.haloType(),
		BasicPassword:      s.Auth.Secret,
		PayloadType:        s.PayloadType, AutoDisableAttempts: s.AutoDisableAttempts,
		BatchMethod: s.BatchMethod, BatchDelaySeconds: s.BatchDelaySeconds, BatchLimit: s.BatchLimit,
	}
	if s.Auth.Method == AuthHMAC {
		hs.AuthenticationHeader = s.Auth.Header
	} else {
		hs.BasicUsername = s.Auth.Username
	}
	return hs
}

// ErrNotManaged: the connection has no webhook.manage block.
var ErrNotManaged = errors.New("the connection does not manage its webhook (no webhook.manage)")

// SpecFromConfig builds a connection's Spec from its (resolved) configuration. The secret
// is the last one of the auth scheme the webhook uses (see ManagedSecretRef).
func SpecFromConfig(conn config.Connection) (Spec, error) {
	m := conn.Webhook.Manage
	if m == nil {
		return Spec{}, fmt.Errorf("connection %s: %w", conn.ID, ErrNotManaged)
	}
	scheme, secret, ok := managedEntry(conn)
	if !ok {
		return Spec{}, fmt.Errorf("connection %s: webhook.manage.auth %s: webhook.auth has no usable %s scheme", conn.ID, m.AuthMethod(), m.AuthMethod())
	}
	if secret == "" || config.IsReference(secret) {
		return Spec{}, fmt.Errorf("connection %s: the webhook secret is empty or an unresolved reference", conn.ID)
	}
	s := Spec{
		Connection: conn.ID, Endpoint: change.EndpointPrimary, Name: m.WebhookName(conn.ID), URL: strings.TrimSpace(m.URL),
		PayloadType: m.PayloadType, AutoDisableAttempts: m.AutoDisableAttempts,
		BatchMethod: m.Batching.BatchCode(), Repair: m.RepairMode(), CheckPeriod: m.CheckPeriod(),
	}
	if s.BatchMethod != 0 {
		s.BatchDelaySeconds, s.BatchLimit = m.Batching.DelaySeconds, m.Batching.Limit
	}
	if m.AuthMethod() == AuthHMAC {
		header := scheme.Header
		if header == "" {
			header = "Token"
		}
		s.Auth = Auth{Method: AuthHMAC, Header: header, Secret: secret}
	} else {
		s.Auth = Auth{Method: AuthBasic, Username: scheme.Username, Secret: secret}
	}
	for _, e := range m.EventList() {
		s.Events = append(s.Events, Event{Name: strings.ToLower(strings.Join(strings.Fields(e.Name), " ")), No: e.EventNo})
	}
	return s, nil
}

// SpecsFromConfig builds the Specs of every webhook a connection manages: the primary
// (SpecFromConfig) and, with webhook.manage.backup_url, the backup, which differs only by
// its name ("<prefix>:<connection> (backup)"), its URL and its note: same events, same
// authentication, same settings, so Halo delivers every change to both endpoints.
func SpecsFromConfig(conn config.Connection) ([]Spec, error) {
	primary, err := SpecFromConfig(conn)
	if err != nil {
		return nil, err
	}
	out := []Spec{primary}
	if u := strings.TrimSpace(conn.Webhook.Manage.BackupURL); u != "" {
		backup := primary
		backup.Endpoint, backup.Name, backup.URL = change.EndpointBackup, conn.Webhook.Manage.BackupWebhookName(conn.ID), u
		backup.Events = slices.Clone(primary.Events)
		out = append(out, backup)
	}
	return out, nil
}

// ManagedSecretRef is where the managed webhook's secret is read from, as the
// configuration writes it (a reference such as file:PATH or secretsmanager:ID#KEY, or a
// literal): the last password of the first basic scheme, or the last secret of the first
// hmac scheme Halo can sign for. Rotating means adding a new last entry. Pass the
// configuration as written (unresolved) to learn the reference.
func ManagedSecretRef(conn config.Connection) (string, bool) {
	_, ref, ok := managedEntry(conn)
	return ref, ok
}

func managedEntry(conn config.Connection) (config.AuthScheme, string, bool) {
	m := conn.Webhook.Manage
	if m == nil {
		return config.AuthScheme{}, "", false
	}
	for _, a := range conn.Webhook.Auth {
		switch {
		case m.AuthMethod() == AuthBasic && a.Scheme == "basic" && len(a.Passwords) > 0:
			return a, a.Passwords[len(a.Passwords)-1], true
		case m.AuthMethod() == AuthHMAC && a.Scheme == "hmac" && a.Prefix == "" &&
			(a.Encoding == "" || strings.EqualFold(a.Encoding, "base64")) && len(a.Secrets) > 0:
			return a, a.Secrets[len(a.Secrets)-1], true
		}
	}
	return config.AuthScheme{}, "", false
}
