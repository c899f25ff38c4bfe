// Package secretref resolves "secretsmanager:" references in the configuration, once per
// secret per process, over any reader of a secret's string value: the Lambda functions'
// Client here (one signed GetSecretValue call, internal/signedjson, without the SDK's
// Secrets Manager client and its cost at each cold start: docs/PERFORMANCE.md, "Cold
// start"), or the SDK's client (internal/secrets, for the halosync command).
package secretref

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Prefix starts a Secrets Manager reference: secretsmanager:<secret id or ARN>[#<json key>].
const Prefix = "secretsmanager:"

// Parse splits a reference into the secret's id (or ARN) and the JSON key, if any.
func Parse(ref string) (id, key string, err error) {
	rest, ok := strings.CutPrefix(ref, Prefix)
	if !ok {
		return "", "", errors.New("not a Secrets Manager reference")
	}
	id, key, _ = strings.Cut(rest, "#")
	if id == "" {
		return "", "", errors.New("secretsmanager reference names no secret")
	}
	return id, key, nil
}

// Reader reads a secret's string value; ok is false when the secret has none (a binary
// secret).
type Reader interface {
	SecretString(ctx context.Context, id string) (value string, ok bool, err error)
}

// Resolver resolves references, reading each secret once.
type Resolver struct {
	r     Reader
	mu    sync.Mutex
	cache map[string]string
}

// NewResolver returns a resolver over r.
func NewResolver(r Reader) *Resolver { return &Resolver{r: r, cache: map[string]string{}} }

// Resolve returns the secret's string value or, with #key, the key's value in the secret's
// JSON document. Errors name the secret, never its value.
func (r *Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	id, key, err := Parse(ref)
	if err != nil {
		return "", err
	}
	value, err := r.get(ctx, id)
	if err != nil {
		return "", err
	}
	if key == "" {
		return value, nil
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(value), &doc); err != nil {
		return "", fmt.Errorf("secret %s is not a JSON document, so key %q cannot be read", id, key)
	}
	v, ok := doc[key].(string)
	if !ok {
		return "", fmt.Errorf("secret %s has no string key %q", id, key)
	}
	return v, nil
}

func (r *Resolver) get(ctx context.Context, id string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.cache[id]; ok {
		return v, nil
	}
	v, ok, err := r.r.SecretString(ctx, id)
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", id, err)
	}
	if !ok {
		return "", fmt.Errorf("secret %s has no string value", id)
	}
	r.cache[id] = v
	return v, nil
}
