// Package awstest gives tests AWS SDK clients wired to the local stand-ins that
// scripts/standins.sh starts (DynamoDB Local and the fauxqs SQS emulator), and a fake of
// an AWS JSON API (SSM, Secrets Manager), for which no stand-in exists.
//
// The stand-ins' addresses come from HALOSYNC_TEST_DYNAMODB_ENDPOINT and
// HALOSYNC_TEST_SQS_ENDPOINT (`bash scripts/standins.sh env` prints them; `make test` sets
// them). When a variable is unset a test needing it is skipped, except under CI (the CI
// environment variable is set), where it fails: CI must never pass by skipping.
package awstest

import (
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Region is the region every test client and launched process uses. The stand-ins accept
// any region; one fixed value keeps queue ARNs predictable.
const Region = "us-east-1"

// Names of the environment variables holding the stand-ins' endpoints.
const (
	DynamoDBEndpointEnv = "HALOSYNC_TEST_DYNAMODB_ENDPOINT"
	SQSEndpointEnv      = "HALOSYNC_TEST_SQS_ENDPOINT"
)

// Dummy credentials. Real AWS rejects them, so a misconfigured test cannot touch a real
// account. DynamoDB Local (2.0 and later) accepts only letters and digits in the access
// key id: a hyphen gets UnrecognizedClientException.
const (
	AccessKeyID     = "halosynctest"
	SecretAccessKey = "halosynctest"
)

// Config is the SDK configuration for the stand-ins: Region and static dummy credentials.
// It sets no endpoint: give each client its BaseEndpoint (DynamoDB and SQS do).
func Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
	}
}

// DynamoDBEndpoint is DynamoDB Local's URL, for tests that launch processes
// (pass it as AWS_ENDPOINT_URL_DYNAMODB). It skips or fails tb when it is not set.
func DynamoDBEndpoint(tb testing.TB) string {
	tb.Helper()
	return endpoint(tb, DynamoDBEndpointEnv)
}

// SQSEndpoint is the SQS stand-in's URL, for tests that launch processes
// (pass it as AWS_ENDPOINT_URL_SQS). It skips or fails tb when it is not set.
func SQSEndpoint(tb testing.TB) string {
	tb.Helper()
	return endpoint(tb, SQSEndpointEnv)
}

// DynamoDB is a DynamoDB client for DynamoDB Local. It skips or fails tb when the
// endpoint is not set.
func DynamoDB(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	ep := DynamoDBEndpoint(tb)
	return dynamodb.NewFromConfig(Config(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ep)
	})
}

// SQS is an SQS client for the SQS stand-in. It skips or fails tb when the endpoint is
// not set.
func SQS(tb testing.TB) *sqs.Client {
	tb.Helper()
	ep := SQSEndpoint(tb)
	return sqs.NewFromConfig(Config(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(ep)
	})
}

// SQSConfig is an SDK configuration whose clients call the SQS stand-in. It skips or
// fails tb when the endpoint is not set.
func SQSConfig(tb testing.TB) aws.Config {
	tb.Helper()
	cfg := Config()
	cfg.BaseEndpoint = aws.String(SQSEndpoint(tb))
	return cfg
}

// ProcessEnv is the environment a launched process (a Lambda bootstrap, the CLI) needs to
// reach both stand-ins through the SDK's own configuration: endpoint URLs, region and
// dummy credentials. Append it to os.Environ(). It skips or fails tb when either endpoint
// is not set.
func ProcessEnv(tb testing.TB) []string {
	tb.Helper()
	return []string{
		"AWS_ENDPOINT_URL_DYNAMODB=" + DynamoDBEndpoint(tb),
		"AWS_ENDPOINT_URL_SQS=" + SQSEndpoint(tb),
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
	}
}

func endpoint(tb testing.TB, name string) string {
	tb.Helper()
	ep, fatal, err := resolve(name, os.LookupEnv)
	switch {
	case err == nil:
		return ep
	case fatal:
		tb.Fatal(err)
	default:
		tb.Skip(err)
	}
	return ""
}

// resolve reads the endpoint variable name. A missing endpoint is an error that is fatal
// under CI (and only a reason to skip elsewhere); a malformed one is always fatal.
func resolve(name string, lookup func(string) (string, bool)) (ep string, fatal bool, err error) {
	ep, _ = lookup(name)
	if ep == "" {
		msg := fmt.Errorf("%s is not set: run `make test`, which starts the local AWS stand-ins "+
			"(or: bash scripts/standins.sh start && eval \"$(bash scripts/standins.sh env)\")", name)
		return "", inCI(lookup), msg
	}
	u, perr := url.Parse(ep)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", true, fmt.Errorf("%s=%q is not an http(s) URL", name, ep)
	}
	return ep, false, nil
}

// inCI reports whether the CI variable is set to anything but "", "0" or "false".
func inCI(lookup func(string) (string, bool)) bool {
	v, ok := lookup("CI")
	return ok && v != "" && v != "0" && v != "false"
}
