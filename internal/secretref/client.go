package secretref

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/halosync/halosync/internal/signedjson"
)

// Service is Secrets Manager's JSON API.
var Service = signedjson.Service{ID: "Secrets Manager", SigningName: "secretsmanager", TargetPrefix: "secretsmanager"}

// Client reads secrets with Secrets Manager's GetSecretValue.
type Client struct {
	api *signedjson.Client
}

// NewClient returns a client in cfg's region, at Secrets Manager's endpoint for cfg
// (AWS_ENDPOINT_URL_SECRETS_MANAGER, else AWS_ENDPOINT_URL, else the region's).
func NewClient(cfg aws.Config) *Client { return &Client{api: signedjson.New(cfg, Service)} }

// SecretString reads the secret's current string value.
func (c *Client) SecretString(ctx context.Context, id string) (string, bool, error) {
	in := struct{ SecretId string }{id}
	var out struct{ SecretString *string }
	if err := c.api.Call(ctx, "GetSecretValue", in, &out); err != nil {
		return "", false, err
	}
	if out.SecretString == nil {
		return "", false, nil
	}
	return *out.SecretString, true, nil
}
