package config

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// Resolver turns a secret reference ("env:NAME", "file:/path", "secretsmanager:arn#key")
// into its value.
type Resolver interface {
	Resolve(ctx context.Context, ref string) (string, error)
}

func (c *Config) resolve(ctx context.Context, r Resolver) error {
	for i := range c.Connections {
		h := &c.Connections[i].Halo
		for _, f := range []*string{&h.ClientID, &h.ClientSecret} {
			v, err := resolveValue(ctx, r, *f)
			if err != nil {
				return fmt.Errorf("connection %s: halo: %w", c.Connections[i].ID, err)
			}
			*f = v
		}
		for j := range c.Connections[i].Webhook.Auth {
			a := &c.Connections[i].Webhook.Auth[j]
			for field, list := range map[string][]string{"passwords": a.Passwords, "tokens": a.Tokens, "secrets": a.Secrets} {
				for k, p := range list {
					v, err := resolveValue(ctx, r, p)
					if err != nil {
						return fmt.Errorf("connection %s: webhook.auth[%d].%s[%d]: %w", c.Connections[i].ID, j, field, k, err)
					}
					list[k] = v
				}
			}
		}
	}
	for k, t := range c.Server.ReadTokens {
		v, err := resolveValue(ctx, r, t)
		if err != nil {
			return fmt.Errorf("server.read_tokens[%d]: %w", k, err)
		}
		c.Server.ReadTokens[k] = v
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
