// Package secrets resolves "secretsmanager:" references in the configuration from AWS
// Secrets Manager, once per process.
package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// API is the part of the Secrets Manager client used.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Prefix starts a Secrets Manager reference: secretsmanager:<secret id or ARN>[#<json key>].
const Prefix = "secretsmanager:"

// Resolver resolves references, fetching each secret once.
type Resolver struct {
	api   API
	mu    sync.Mutex
	cache map[string]string
}

// NewResolver returns a resolver over api.
func NewResolver(api API) *Resolver { return &Resolver{api: api, cache: map[string]string{}} }

// Resolve returns the secret's string value or, with #key, the key's value in the secret's
// JSON document. Errors name the secret, never its value.
func (r *Resolver) Resolve(ctx context.Context, ref string) (string, error) {
	rest, ok := strings.CutPrefix(ref, Prefix)
	if !ok {
		return "", fmt.Errorf("not a Secrets Manager reference")
	}
	id, key, _ := strings.Cut(rest, "#")
	if id == "" {
		return "", fmt.Errorf("secretsmanager reference names no secret")
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
	out, err := r.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("read secret %s: %w", id, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("secret %s has no string value", id)
	}
	r.cache[id] = *out.SecretString
	return *out.SecretString, nil
}
