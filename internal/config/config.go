// Package config is halosync's one configuration schema: connections to Halo tenants, how
// their webhooks authenticate, and where the copy is kept. Locally it is a YAML file with
// secrets in environment variables or files; in AWS the same document lives in SSM
// Parameter Store with secrets in Secrets Manager. It is read once, at start.
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole document.
type Config struct {
	Connections []Connection `yaml:"connections"`
	Store       Store        `yaml:"store"`
	Queue       Queue        `yaml:"queue"`
}

// Connection is one Halo tenant.
type Connection struct {
	ID      string  `yaml:"id"`
	Webhook Webhook `yaml:"webhook"`
}

// Webhook configures the inbound webhook endpoint of a connection.
type Webhook struct {
	// Auth lists the accepted authentication schemes; a delivery passes if any accepts it.
	Auth []AuthScheme `yaml:"auth"`
	// MaxBodyBytes caps a delivery's size; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int `yaml:"max_body_bytes"`
}

// AuthScheme is one accepted way of authenticating a delivery.
type AuthScheme struct {
	Scheme string `yaml:"scheme"` // basic
	// basic
	Username  string   `yaml:"username"`
	Passwords []string `yaml:"passwords"` // several at once, for rotation; may be secret references
}

// Store names where the copy is kept.
type Store struct {
	Driver string `yaml:"driver"` // sqlite (default) or dynamodb
	Path   string `yaml:"path"`   // sqlite: the database file; default <data dir>/halosync.db
	Table  string `yaml:"table"`  // dynamodb: the table name
	Region string `yaml:"region"` // dynamodb: optional
}

// Queue tunes the embedded queue of the local server.
type Queue struct {
	VisibilitySeconds int `yaml:"visibility_seconds"` // default 30
	MaxReceive        int `yaml:"max_receive"`        // default 5: then the dead-letter queue
}

// Visibility is how long a received message stays hidden: 30 s unless set.
func (q Queue) Visibility() time.Duration {
	if q.VisibilitySeconds > 0 {
		return time.Duration(q.VisibilitySeconds) * time.Second
	}
	return 30 * time.Second
}

// Receives is how many times a message is received before it moves to the dead-letter
// queue: 5 unless set.
func (q Queue) Receives() int {
	if q.MaxReceive > 0 {
		return q.MaxReceive
	}
	return 5
}

const (
	// DefaultMaxBodyBytes is the body limit when a connection sets none.
	DefaultMaxBodyBytes = 1 << 20
	// MaxBodyCeiling stays below Lambda's 6 MB synchronous payload limit.
	MaxBodyCeiling = 5 << 20
)

// ErrInvalid marks a configuration that cannot be used; the message says what to fix.
var ErrInvalid = errors.New("invalid configuration")

// Resolver turns a secret reference ("env:NAME", "file:/path", "secretsmanager:arn#key")
// into its value.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

// Parse reads a YAML document, rejects unknown keys, resolves secret references and
// validates the result.
func Parse(ctx context.Context, data []byte, r Resolver) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the document is empty", ErrInvalid)
		}
		// The YAML library quotes the offending value, which may be a secret: keep the
		// place and the types, drop the value.
		return nil, fmt.Errorf("%w: %s", ErrInvalid, quotedValue.ReplaceAllString(err.Error(), "a value"))
	}
	if err := c.resolve(ctx, r); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads a YAML file.
func Load(ctx context.Context, path string, r Resolver) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(ctx, data, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

var quotedValue = regexp.MustCompile("`[^`]*`")

var connectionID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate checks the document is usable.
func (c *Config) Validate() error {
	if len(c.Connections) == 0 {
		return fmt.Errorf("%w: no connections: list at least one under \"connections\"", ErrInvalid)
	}
	seen := map[string]bool{}
	for i, conn := range c.Connections {
		where := fmt.Sprintf("connections[%d]", i)
		if !connectionID.MatchString(conn.ID) {
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
		if len(conn.Webhook.Auth) == 0 {
			return fmt.Errorf("%w: %s: webhook.auth lists no scheme; every delivery would be refused", ErrInvalid, where)
		}
		for j, a := range conn.Webhook.Auth {
			if err := a.validate(); err != nil {
				return fmt.Errorf("%w: %s: webhook.auth[%d]: %w", ErrInvalid, where, j, err)
			}
		}
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
	return nil
}

func (a AuthScheme) validate() error {
	switch a.Scheme {
	case "basic":
		if a.Username == "" {
			return errors.New("basic: username is empty")
		}
		if strings.Contains(a.Username, ":") {
			return errors.New("basic: username cannot contain ':'")
		}
		if len(a.Passwords) == 0 {
			return errors.New("basic: passwords lists none")
		}
		for k, p := range a.Passwords {
			if len(p) < 8 {
				return fmt.Errorf("basic: passwords[%d] is shorter than 8 characters", k)
			}
		}
		return nil
	case "":
		return errors.New("scheme is missing")
	default:
		return fmt.Errorf("unknown scheme %q (basic)", a.Scheme)
	}
}

// Connection returns the connection with the given id.
func (c *Config) Connection(id string) (*Connection, bool) {
	for i := range c.Connections {
		if c.Connections[i].ID == id {
			return &c.Connections[i], true
		}
	}
	return nil, false
}

// BodyLimit is the connection's delivery size limit.
func (w Webhook) BodyLimit() int {
	if w.MaxBodyBytes > 0 {
		return w.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

func (c *Config) resolve(ctx context.Context, r Resolver) error {
	for i := range c.Connections {
		for j := range c.Connections[i].Webhook.Auth {
			a := &c.Connections[i].Webhook.Auth[j]
			for k, p := range a.Passwords {
				v, err := resolveValue(ctx, r, p)
				if err != nil {
					return fmt.Errorf("connection %s: webhook.auth[%d].passwords[%d]: %w", c.Connections[i].ID, j, k, err)
				}
				a.Passwords[k] = v
			}
		}
	}
	return nil
}

// IsReference reports whether a value names a secret instead of being one.
func IsReference(v string) bool {
	for _, p := range []string{"env:", "file:", "secretsmanager:"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

func resolveValue(ctx context.Context, r Resolver, v string) (string, error) {
	if !IsReference(v) {
		return v, nil
	}
	if r == nil {
		return "", fmt.Errorf("%w: secret reference %s but no resolver", ErrInvalid, refKind(v))
	}
	out, err := r.Resolve(ctx, v)
	if err != nil {
		return "", fmt.Errorf("resolve %s reference: %w", refKind(v), err)
	}
	return out, nil
}

func refKind(v string) string {
	k, _, _ := strings.Cut(v, ":")
	return k
}

// LocalResolver resolves env: and file: references; Next, if set, handles the rest.
type LocalResolver struct {
	Next Resolver
}

// Resolve implements Resolver.
func (l LocalResolver) Resolve(ctx context.Context, ref string) (string, error) {
	kind, rest, _ := strings.Cut(ref, ":")
	switch kind {
	case "env":
		v, ok := os.LookupEnv(rest)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", rest)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(rest)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if l.Next != nil {
		return l.Next.Resolve(ctx, ref)
	}
	return "", fmt.Errorf("%s references are resolved only in AWS", kind)
}
