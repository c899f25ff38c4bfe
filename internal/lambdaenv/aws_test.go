package lambdaenv

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/halosync/halosync/internal/secretref"
	"github.com/halosync/halosync/internal/signedjson"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/ssmparam"
)

// awsVars are the variables AWS reads; each test starts with all of them unset.
var awsVars = []string{
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY",
	"AWS_SECRET_KEY", "AWS_SESSION_TOKEN", "AWS_ACCOUNT_ID", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS",
	"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_EVENTBRIDGE", "AWS_ENDPOINT_URL_SSM",
	"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_USE_FIPS_ENDPOINT",
	"AWS_USE_DUALSTACK_ENDPOINT", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_SDK_UA_APP_ID",
}

func clearAWS(t *testing.T) {
	t.Helper()
	for _, k := range awsVars {
		t.Setenv(k, "")
	}
}

// TestAWSCredentialsAndRegion: the region and the credentials Lambda sets.
func TestAWSCredentialsAndRegion(t *testing.T) {
	clearAWS(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_DEFAULT_REGION", "us-east-1") // AWS_REGION wins
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	cfg, err := AWS()
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || cfg.Region != "eu-west-1" || creds.AccessKeyID != "AKIDEXAMPLE" ||
		creds.SecretAccessKey != "secret-key" || creds.SessionToken != "session-token" {
		t.Fatalf("region %q, credentials %+v, %v", cfg.Region, creds, err)
	}

	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	if cfg, err = AWS(); err != nil || cfg.Region != "us-east-1" {
		t.Fatalf("AWS_DEFAULT_REGION: %q, %v", cfg.Region, err)
	}
	if _, err := cfg.Credentials.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("no credentials: %v, want an error naming AWS_ACCESS_KEY_ID", err)
	}
}

// TestAWSEndpoints: each client, the SDK's and signedjson's, goes where the SDK's
// configured-endpoint variables say: its service's variable, else AWS_ENDPOINT_URL, else
// the region's endpoint; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true ignores both.
func TestAWSEndpoints(t *testing.T) {
	endpoints := func(t *testing.T) map[string]string {
		t.Helper()
		cfg, err := AWS()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{
			"sqs":            sqsqueue.NewClient(cfg).Endpoint(),
			"dynamodb":       aws.ToString(dynamodb.NewFromConfig(cfg).Options().BaseEndpoint),
			"eventbridge":    aws.ToString(eventbridge.NewFromConfig(cfg).Options().BaseEndpoint),
			"ssm":            signedjson.New(cfg, ssmparam.Service).Endpoint(),
			"secretsmanager": signedjson.New(cfg, secretref.Service).Endpoint(),
		}
	}
	check := func(t *testing.T, got, want map[string]string) {
		t.Helper()
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: endpoint %q, want %q", k, got[k], w)
			}
		}
	}
	clearAWS(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	check(t, endpoints(t), map[string]string{"sqs": "https://sqs.eu-west-1.amazonaws.com", "dynamodb": "", "eventbridge": "",
		"ssm": "https://ssm.eu-west-1.amazonaws.com", "secretsmanager": "https://secretsmanager.eu-west-1.amazonaws.com"})

	t.Setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
	check(t, endpoints(t), map[string]string{"sqs": "http://localhost:4566"})
	t.Setenv("AWS_ENDPOINT_URL_SQS", "http://localhost:9324")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:8000")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://localhost:9000")
	check(t, endpoints(t), map[string]string{"sqs": "http://localhost:9324", "dynamodb": "http://localhost:8000",
		"eventbridge": "http://localhost:4566", "ssm": "http://localhost:4566", "secretsmanager": "http://localhost:9000"})

	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE")
	check(t, endpoints(t), map[string]string{"sqs": "https://sqs.eu-west-1.amazonaws.com", "dynamodb": "", "eventbridge": "",
		"ssm": "https://ssm.eu-west-1.amazonaws.com", "secretsmanager": "https://secretsmanager.eu-west-1.amazonaws.com"})

	clearAWS(t)
	t.Setenv("AWS_REGION", "cn-north-1")
	t.Setenv("AWS_USE_FIPS_ENDPOINT", "true")
	check(t, endpoints(t), map[string]string{"ssm": "https://ssm-fips.cn-north-1.amazonaws.com.cn"})
	t.Setenv("AWS_USE_FIPS_ENDPOINT", "false")
	t.Setenv("AWS_USE_DUALSTACK_ENDPOINT", "true")
	check(t, endpoints(t), map[string]string{"secretsmanager": "https://secretsmanager.cn-north-1.api.amazonwebservices.com.cn"})
}

// TestAWSRetrySettings: AWS_MAX_ATTEMPTS and AWS_RETRY_MODE reach the clients as they do
// through the SDK's own configuration; malformed values stop the start.
func TestAWSRetrySettings(t *testing.T) {
	clearAWS(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg, err := AWS()
	if err != nil || cfg.RetryMaxAttempts != 0 || cfg.RetryMode != "" || cfg.Retryer != nil {
		t.Fatalf("defaults: %+v, %v; want the SDK's retryer", cfg, err)
	}
	sameRetryer(t, cfg)
	t.Setenv("AWS_MAX_ATTEMPTS", "5")
	t.Setenv("AWS_RETRY_MODE", "adaptive")
	if cfg, err = AWS(); err != nil || cfg.RetryMaxAttempts != 5 || cfg.RetryMode != aws.RetryModeAdaptive {
		t.Fatalf("set: %+v, %v", cfg, err)
	}
	sameRetryer(t, cfg)
	for name, value := range map[string]string{"AWS_MAX_ATTEMPTS": "many", "AWS_RETRY_MODE": "eager", "AWS_USE_FIPS_ENDPOINT": "yes"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, value)
			if _, err := AWS(); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("%s=%s: %v, want an error naming it", name, value, err)
			}
		})
	}
}

// sameRetryer: the clients get the retryer they get from config.LoadDefaultConfig.
func sameRetryer(t *testing.T, cfg aws.Config) {
	t.Helper()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	sdk, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, attempts := range map[string][2]int{
		"dynamodb": {dynamodb.NewFromConfig(cfg).Options().Retryer.MaxAttempts(), dynamodb.NewFromConfig(sdk).Options().Retryer.MaxAttempts()},
		"sqs":      {sqs.NewFromConfig(cfg).Options().Retryer.MaxAttempts(), sqs.NewFromConfig(sdk).Options().Retryer.MaxAttempts()},
	} {
		if attempts[0] != attempts[1] {
			t.Errorf("%s: %d attempts, the SDK's configuration %d", name, attempts[0], attempts[1])
		}
	}
	if cfg.RetryMode != sdk.RetryMode || cfg.RetryMaxAttempts != sdk.RetryMaxAttempts {
		t.Errorf("retry mode %q, attempts %d; the SDK's configuration %q, %d", cfg.RetryMode, cfg.RetryMaxAttempts, sdk.RetryMode, sdk.RetryMaxAttempts)
	}
}
