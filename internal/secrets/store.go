package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/halosync/halosync/internal/secretref"
)

// WriteAPI is the part of the Secrets Manager client a Store uses.
type WriteAPI interface {
	API
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// Store reads and writes secretsmanager: references: `halosync webhooks apply` keeps the
// webhook secret it generates where the configuration reads it. It reads afresh every
// time (no cache) and never creates a secret: the secret must exist (the stack's
// WebhookSecretArn does). A key is written into the secret's JSON document, keeping its
// other keys. Errors name the secret, never a value.
type Store struct {
	api WriteAPI
}

// NewStore returns a store over api.
func NewStore(api WriteAPI) *Store { return &Store{api: api} }

// Lookup returns the value at ref; found is false when the secret or its key is empty.
func (s *Store) Lookup(ctx context.Context, ref string) (string, bool, error) {
	id, key, err := secretref.Parse(ref)
	if err != nil {
		return "", false, err
	}
	value, err := s.read(ctx, id)
	if err != nil {
		return "", false, err
	}
	if key == "" {
		return value, value != "", nil
	}
	doc, err := document(id, value)
	if err != nil {
		return "", false, err
	}
	v, ok := doc[key]
	if !ok || v == nil {
		return "", false, nil
	}
	str, ok := v.(string)
	if !ok {
		return "", false, fmt.Errorf("secret %s: key %q is not a string", id, key)
	}
	return str, str != "", nil
}

// Store writes value at ref: the whole secret, or one key of its JSON document.
func (s *Store) Store(ctx context.Context, ref, value string) error {
	id, key, err := secretref.Parse(ref)
	if err != nil {
		return err
	}
	out := value
	if key != "" {
		current, err := s.read(ctx, id)
		if err != nil {
			return err
		}
		doc, err := document(id, current)
		if err != nil {
			return err
		}
		doc[key] = value
		b, err := json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("secret %s: %w", id, err)
		}
		out = string(b)
	}
	if _, err := s.api.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(id), SecretString: aws.String(out)}); err != nil {
		return fmt.Errorf("write secret %s: %w", id, err)
	}
	return nil
}

func (s *Store) read(ctx context.Context, id string) (string, error) {
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return "", fmt.Errorf("secret %s does not exist (or has no value yet): create it first, halosync does not create secrets: %w", id, err)
		}
		return "", fmt.Errorf("read secret %s: %w", id, err)
	}
	return aws.ToString(out.SecretString), nil
}

// document reads a secret's JSON document; an empty secret is an empty document.
func document(id, value string) (map[string]any, error) {
	if strings.TrimSpace(value) == "" {
		return map[string]any{}, nil
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(value), &doc); err != nil || doc == nil {
		return nil, fmt.Errorf("secret %s is not a JSON document, so a key cannot be kept in it", id)
	}
	return doc, nil
}
