// Package signedjson calls one operation of an AWS JSON 1.0 or 1.1 API (SQS; SSM, Secrets Manager): a
// POST signed with the SDK's SigV4 signer, retried as the SDK's standard retryer says,
// without the service's SDK client. The Lambda functions read their configuration and
// secrets, and use their queues (internal/sqsqueue), through it: a service's SDK client
// package costs a bootstrap its size and its package initialisation at every cold start
// (docs/PERFORMANCE.md, "Cold start").
package signedjson

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Service names an AWS JSON API.
type Service struct {
	// ID is the SDK's service id, as in AWS_ENDPOINT_URL_<ID> (upper case, spaces as
	// underscores): "SSM", "Secrets Manager".
	ID string
	// SigningName is SigV4's service name and the endpoint's first label: "ssm",
	// "secretsmanager".
	SigningName string
	// TargetPrefix starts X-Amz-Target: "AmazonSSM", "secretsmanager".
	TargetPrefix string
	// JSONVersion is the protocol's version, "1.0" (SQS) or "1.1"; empty means 1.1.
	JSONVersion string
	// QueryCompatible marks an API that moved from AWS Query to JSON (SQS): its requests
	// say X-Amzn-Query-Mode, as the SDK's client says it. Errors keep the JSON code
	// (__type), which for such an API's modelled errors is the code its SDK client reports.
	QueryCompatible bool
}

// Client calls one service's operations.
type Client struct {
	svc      Service
	cfg      aws.Config
	endpoint string
	signer   *v4.Signer

	// The HTTP client and the retryer are made at the first call: a function whose
	// configuration is a file never calls (docs/PERFORMANCE.md, "Cold start").
	once    sync.Once
	http    aws.HTTPClient
	retryer aws.Retryer
}

// New returns a client for svc in cfg's region, with cfg's credentials, HTTP client and
// retry settings, at the endpoint the SDK's client would use: the service's configured
// endpoint (AWS_ENDPOINT_URL_<ID>, through cfg.ConfigSources), else cfg.BaseEndpoint
// (AWS_ENDPOINT_URL), else the region's.
func New(cfg aws.Config, svc Service) *Client {
	return &Client{svc: svc, cfg: cfg, endpoint: endpoint(cfg, svc), signer: v4.NewSigner()}
}

func (c *Client) init() {
	c.once.Do(func() {
		if c.http == nil {
			c.http = c.cfg.HTTPClient
		}
		if c.http == nil {
			c.http = awshttp.NewBuildableClient()
		}
		if c.cfg.Retryer != nil {
			c.retryer = c.cfg.Retryer()
			return
		}
		c.retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			if c.cfg.RetryMaxAttempts > 0 {
				o.MaxAttempts = c.cfg.RetryMaxAttempts
			}
		})
	})
}

// The questions the SDK's clients ask of cfg.ConfigSources about endpoints.
type (
	serviceEndpoint interface {
		GetServiceBaseEndpoint(ctx context.Context, sdkID string) (string, bool, error)
	}
	fipsEndpoint interface {
		GetUseFIPSEndpoint(ctx context.Context) (aws.FIPSEndpointState, bool, error)
	}
	dualStackEndpoint interface {
		GetUseDualStackEndpoint(ctx context.Context) (aws.DualStackEndpointState, bool, error)
	}
)

// endpoint is the endpoint the SDK's client would resolve for svc: a configured one, else
// the region's, FIPS and dual-stack as configured (the common rule of SSM's and Secrets
// Manager's endpoint rule sets).
func endpoint(cfg aws.Config, svc Service) string {
	ctx := context.Background()
	var fips, dualStack bool
	for _, src := range cfg.ConfigSources {
		if p, ok := src.(serviceEndpoint); ok {
			if v, found, err := p.GetServiceBaseEndpoint(ctx, svc.ID); err == nil && found {
				return v
			}
		}
		if p, ok := src.(fipsEndpoint); ok {
			if v, found, err := p.GetUseFIPSEndpoint(ctx); err == nil && found {
				fips = fips || v == aws.FIPSEndpointStateEnabled
			}
		}
		if p, ok := src.(dualStackEndpoint); ok {
			if v, found, err := p.GetUseDualStackEndpoint(ctx); err == nil && found {
				dualStack = dualStack || v == aws.DualStackEndpointStateEnabled
			}
		}
	}
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		return *cfg.BaseEndpoint
	}
	suffix, dualStackSuffix := "amazonaws.com", "api.aws"
	if strings.HasPrefix(cfg.Region, "cn-") {
		suffix, dualStackSuffix = "amazonaws.com.cn", "api.amazonwebservices.com.cn"
	}
	host := svc.SigningName
	if fips {
		host += "-fips"
	}
	if dualStack {
		suffix = dualStackSuffix
	}
	return "https://" + host + "." + cfg.Region + "." + suffix
}

// Endpoint is where the client sends its requests.
func (c *Client) Endpoint() string { return c.endpoint }

// Call sends operation with in as its JSON body and decodes the answer into out. An
// answer the service refuses is an *APIError; one that never arrives, the transport's
// error. Errors the SDK's retryer holds retryable (throttling, 5xx, a failed connection)
// are retried as it says.
func (c *Client) Call(ctx context.Context, operation string, in, out any) error {
	c.init()
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.svc.ID, operation, err)
	}
	release := c.retryer.GetInitialToken()
	for attempt := 1; ; attempt++ {
		err = c.send(ctx, operation, body, out)
		if err == nil {
			_ = release(nil)
			return nil
		}
		if ctx.Err() != nil || attempt >= c.retryer.MaxAttempts() || !c.retryer.IsErrorRetryable(err) {
			break
		}
		// A retry is taken from the retryer's quota; once it is spent, the operation's
		// error is returned, not the quota's.
		next, qerr := c.retryer.GetRetryToken(ctx, err)
		if qerr != nil {
			break
		}
		release = next
		delay, derr := c.retryer.RetryDelay(attempt, err)
		if derr != nil {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %s: %w", c.svc.ID, operation, ctx.Err())
		case <-t.C:
		}
	}
	return fmt.Errorf("%s %s: %w", c.svc.ID, operation, err)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func (c *Client) send(ctx context.Context, operation string, body []byte, out any) error {
	if c.cfg.Credentials == nil {
		return errors.New("no credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
	}
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	version := c.svc.JSONVersion
	if version == "" {
		version = "1.1"
	}
	req.Header.Set("Content-Type", "application/x-amz-json-"+version)
	req.Header.Set("X-Amz-Target", c.svc.TargetPrefix+"."+operation)
	if c.svc.QueryCompatible {
		req.Header.Set("X-Amzn-Query-Mode", "true")
	}
	if err := c.signer.SignHTTP(ctx, creds, req, sha256Hex(string(body)), c.svc.SigningName, c.cfg.Region, time.Now()); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// As the SDK wraps it: a request that got no answer is a connection error, which
		// its retryer retries.
		return &smithyhttp.RequestSendError{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
