package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// AWS returns the SDK configuration a function's clients use, read from Lambda's
// environment alone: the region from AWS_REGION (or AWS_DEFAULT_REGION), the credentials
// from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, which Lambda sets
// from the function's role (and sam local invoke from the local profile). It does what
// config.LoadDefaultConfig does with those variables, without the shared config files,
// SSO, STS and instance metadata it links and initialises at every cold start
// (docs/PERFORMANCE.md, "Cold start"). Configured endpoints are honoured as the SDK's
// clients honour them: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, unless
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true; so are AWS_USE_FIPS_ENDPOINT,
// AWS_USE_DUALSTACK_ENDPOINT, AWS_MAX_ATTEMPTS, AWS_RETRY_MODE and AWS_SDK_UA_APP_ID. The
// clients' retryer is the SDK's default (standard, 3 attempts).
func AWS() (aws.Config, error) {
	src := envSource{}
	var err error
	if src.ignoreEndpoints, err = envBool("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"); err != nil {
		return aws.Config{}, err
	}
	if src.fips, err = envBool("AWS_USE_FIPS_ENDPOINT"); err != nil {
		return aws.Config{}, err
	}
	if src.dualStack, err = envBool("AWS_USE_DUALSTACK_ENDPOINT"); err != nil {
		return aws.Config{}, err
	}
	cfg := aws.Config{
		Region:        firstEnv("AWS_REGION", "AWS_DEFAULT_REGION"),
		Credentials:   envCredentials(),
		ConfigSources: []any{src},
		AppID:         os.Getenv("AWS_SDK_UA_APP_ID"),
	}
	if v := os.Getenv("AWS_ENDPOINT_URL"); v != "" && src.ignoreEndpoints != "true" {
		cfg.BaseEndpoint = aws.String(v)
	}
	if v := os.Getenv("AWS_MAX_ATTEMPTS"); v != "" {
		if cfg.RetryMaxAttempts, err = strconv.Atoi(v); err != nil {
			return aws.Config{}, fmt.Errorf("environment: AWS_MAX_ATTEMPTS %q is not a number", v)
		}
	}
	if v := os.Getenv("AWS_RETRY_MODE"); v != "" {
		if cfg.RetryMode, err = aws.ParseRetryMode(v); err != nil {
			return aws.Config{}, fmt.Errorf("environment: AWS_RETRY_MODE: %w", err)
		}
	}
	return cfg, nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// envCredentials are the static credentials in the environment, read as the SDK reads
// them; without them every call fails saying so.
func envCredentials() aws.CredentialsProvider {
	creds := aws.Credentials{
		AccessKeyID:     firstEnv("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"),
		SecretAccessKey: firstEnv("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
		AccountID:       os.Getenv("AWS_ACCOUNT_ID"),
		Source:          "EnvConfigCredentials",
	}
	if !creds.HasKeys() {
		return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
		})
	}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
}

// envBool reads a true/false variable as the SDK does (any case); "" when unset.
func envBool(name string) (string, error) {
	switch v := strings.ToLower(os.Getenv(name)); v {
	case "", "true", "false":
		return v, nil
	default:
		return "", fmt.Errorf("environment: %s %q is neither true nor false", name, os.Getenv(name))
	}
}

// envSource answers the SDK's clients' questions about configured endpoints from the
// environment, as config.EnvConfig does: each client asks cfg.ConfigSources for its
// service's endpoint (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS, ...) and whether
// to use FIPS or dual-stack endpoints.
type envSource struct {
	ignoreEndpoints, fips, dualStack string
}

// GetServiceBaseEndpoint returns AWS_ENDPOINT_URL_<sdkID>, upper case, spaces as
// underscores.
func (s envSource) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	if s.ignoreEndpoints == "true" {
		return "", false, nil
	}
	v := os.Getenv("AWS_ENDPOINT_URL_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_"))
	return v, v != "", nil
}

// GetIgnoreConfiguredEndpoints is AWS_IGNORE_CONFIGURED_ENDPOINT_URLS.
func (s envSource) GetIgnoreConfiguredEndpoints(context.Context) (bool, bool, error) {
	return s.ignoreEndpoints == "true", s.ignoreEndpoints != "", nil
}

// GetUseFIPSEndpoint is AWS_USE_FIPS_ENDPOINT.
func (s envSource) GetUseFIPSEndpoint(context.Context) (aws.FIPSEndpointState, bool, error) {
	switch s.fips {
	case "true":
		return aws.FIPSEndpointStateEnabled, true, nil
	case "false":
		return aws.FIPSEndpointStateDisabled, true, nil
	}
	return aws.FIPSEndpointStateUnset, false, nil
}

// GetUseDualStackEndpoint is AWS_USE_DUALSTACK_ENDPOINT.
func (s envSource) GetUseDualStackEndpoint(context.Context) (aws.DualStackEndpointState, bool, error) {
	switch s.dualStack {
	case "true":
		return aws.DualStackEndpointStateEnabled, true, nil
	case "false":
		return aws.DualStackEndpointStateDisabled, true, nil
	}
	return aws.DualStackEndpointStateUnset, false, nil
}
