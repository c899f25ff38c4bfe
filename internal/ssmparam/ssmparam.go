// Package ssmparam reads halosync's configuration document from SSM Parameter Store: one
// signed GetParameter call (internal/signedjson), not the SDK's SSM client, whose package
// alone would add 1.4 MB and a millisecond of initialisation to each function's cold
// start (docs/PERFORMANCE.md, "Cold start").
package ssmparam

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/halosync/halosync/internal/signedjson"
)

// Service is SSM's JSON API.
var Service = signedjson.Service{ID: "SSM", SigningName: "ssm", TargetPrefix: "AmazonSSM"}

// Client reads parameters.
type Client struct {
	api *signedjson.Client
}

// New returns a client in cfg's region, at SSM's endpoint for cfg (AWS_ENDPOINT_URL_SSM,
// else AWS_ENDPOINT_URL, else the region's).
func New(cfg aws.Config) *Client { return &Client{api: signedjson.New(cfg, Service)} }

// Get returns a parameter's value, decrypted if it is a SecureString.
func (c *Client) Get(ctx context.Context, name string) ([]byte, error) {
	in := struct {
		Name           string
		WithDecryption bool
	}{name, true}
	var out struct {
		Parameter *struct {
			Value *string
		}
	}
	if err := c.api.Call(ctx, "GetParameter", in, &out); err != nil {
		return nil, fmt.Errorf("read SSM parameter %s: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, fmt.Errorf("read SSM parameter %s: no value", name)
	}
	return []byte(*out.Parameter.Value), nil
}
