package secretref

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/halosync/halosync/internal/awstest"
)

const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:halosync/webhook-AbCdEf"

// TestClientSendsWhatTheSDKSends: the request is the SDK client's GetSecretValue, and a
// reference resolves through the client.
func TestClientSendsWhatTheSDKSends(t *testing.T) {
	fake, cfg := awstest.NewJSONAPI(t, 200, `{"ARN":"`+arn+`","Name":"halosync/webhook","SecretString":"{\"password\":\"pw-1\"}","VersionId":"v1"}`)
	value, err := NewResolver(NewClient(cfg)).Resolve(context.Background(), Prefix+arn+"#password")
	if err != nil || value != "pw-1" {
		t.Fatalf("Resolve = %q, %v", value, err)
	}
	if _, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	got := fake.Requests()
	if len(got) != 2 || got[0] != got[1] {
		t.Fatalf("requests %+v: want ours the same as the SDK's", got)
	}
	if r := got[0]; r.Target != "secretsmanager.GetSecretValue" || r.Body != `{"SecretId":"`+arn+`"}` {
		t.Fatalf("request %+v", r)
	}
}

func TestClientBinarySecret(t *testing.T) {
	_, cfg := awstest.NewJSONAPI(t, 200, `{"Name":"bin","SecretBinary":"AAEC"}`)
	_, ok, err := NewClient(cfg).SecretString(context.Background(), "bin")
	if err != nil || ok {
		t.Fatalf("binary secret: ok %v, %v; want no string value", ok, err)
	}
	_, err = NewResolver(NewClient(cfg)).Resolve(context.Background(), Prefix+"bin")
	if err == nil || !strings.Contains(err.Error(), "no string value") {
		t.Fatalf("Resolve: %v", err)
	}
}

func TestClientError(t *testing.T) {
	fake, cfg := awstest.NewJSONAPI(t, 400, `{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`)
	_, err := NewResolver(NewClient(cfg)).Resolve(context.Background(), Prefix+arn+"#password")
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ResourceNotFoundException" || !strings.Contains(err.Error(), arn) {
		t.Fatalf("err = %v, want ResourceNotFoundException naming the secret", err)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Fatalf("%d requests: a missing secret is not retried", n)
	}
}
