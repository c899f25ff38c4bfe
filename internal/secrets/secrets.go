// Package secrets reads and writes "secretsmanager:" references in the configuration
// through the SDK's Secrets Manager client, for the halosync command. The Lambda functions
// resolve them without the SDK's client (internal/secretref).
package secrets

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/halosync/halosync/internal/secretref"
)

// API is the part of the Secrets Manager client used.
type API interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Prefix starts a Secrets Manager reference: secretsmanager:<secret id or ARN>[#<json key>].
const Prefix = secretref.Prefix

// Resolver resolves references, fetching each secret once.
type Resolver = secretref.Resolver

// NewResolver returns a resolver over api.
func NewResolver(api API) *Resolver { return secretref.NewResolver(reader{api}) }

// reader reads secrets through the SDK's client.
type reader struct{ api API }

func (r reader) SecretString(ctx context.Context, id string) (string, bool, error) {
	out, err := r.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", false, err
	}
	if out.SecretString == nil {
		return "", false, nil
	}
	return *out.SecretString, true, nil
}
