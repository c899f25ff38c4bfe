package awstest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestResolve(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	tests := []struct {
		name      string
		lookup    func(string) (string, bool)
		wantEP    string
		wantFatal bool
		wantErr   string
	}{
		{"set", env(SQSEndpointEnv, "http://127.0.0.1:4566"), "http://127.0.0.1:4566", false, ""},
		{"unset skips", env(), "", false, "make test"},
		{"empty skips", env(SQSEndpointEnv, ""), "", false, "make test"},
		{"unset under CI fails", env("CI", "true"), "", true, "make test"},
		{"CI=false is not CI", env("CI", "false"), "", false, "make test"},
		{"CI=0 is not CI", env("CI", "0"), "", false, "make test"},
		{"malformed fails", env(SQSEndpointEnv, "127.0.0.1:4566"), "", true, "not an http(s) URL"},
		{"no host fails", env(SQSEndpointEnv, "http://"), "", true, "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep, fatal, err := resolve(SQSEndpointEnv, tt.lookup)
			if ep != tt.wantEP || fatal != tt.wantFatal {
				t.Fatalf("resolve = %q fatal %v (err %v); want %q fatal %v", ep, fatal, err, tt.wantEP, tt.wantFatal)
			}
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("resolve err = %v; want one containing %q", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), SQSEndpointEnv) {
				t.Fatalf("error %q does not name the variable", err)
			}
		})
	}
}

func TestClientsReachTheStandIns(t *testing.T) {
	ctx := context.Background()
	t.Run("dynamodb", func(t *testing.T) {
		if _, err := DynamoDB(t).ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
			t.Fatalf("ListTables on %s: %v", DynamoDBEndpoint(t), err)
		}
	})
	t.Run("sqs", func(t *testing.T) {
		if _, err := SQS(t).ListQueues(ctx, &sqs.ListQueuesInput{}); err != nil {
			t.Fatalf("ListQueues on %s: %v", SQSEndpoint(t), err)
		}
	})
}

func TestProcessEnv(t *testing.T) {
	DynamoDBEndpoint(t) // skip without stand-ins, like the callers would
	SQSEndpoint(t)
	got := strings.Join(ProcessEnv(t), "\n")
	for _, want := range []string{"AWS_ENDPOINT_URL_DYNAMODB=http", "AWS_ENDPOINT_URL_SQS=http", "AWS_REGION=" + Region, "AWS_ACCESS_KEY_ID="} {
		if !strings.Contains(got, want) {
			t.Errorf("ProcessEnv lacks %q:\n%s", want, got)
		}
	}
}
