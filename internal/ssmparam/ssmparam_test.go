package ssmparam

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/halosync/halosync/internal/awstest"
)

// TestGetSendsWhatTheSDKSends: the request is the SDK client's GetParameter, decrypted,
// and the value is read from its answer.
func TestGetSendsWhatTheSDKSends(t *testing.T) {
	fake, cfg := awstest.NewJSONAPI(t, 200, `{"Parameter":{"Name":"/halosync/config","Type":"SecureString","Value":"connections: []\n","Version":3}}`)
	value, err := New(cfg).Get(context.Background(), "/halosync/config")
	if err != nil || string(value) != "connections: []\n" {
		t.Fatalf("Get = %q, %v", value, err)
	}
	if _, err := ssm.NewFromConfig(cfg).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String("/halosync/config"), WithDecryption: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	got := fake.Requests()
	if len(got) != 2 || got[0] != got[1] {
		t.Fatalf("requests %+v: want ours the same as the SDK's", got)
	}
	if r := got[0]; r.Target != "AmazonSSM.GetParameter" || !strings.Contains(r.Body, `"WithDecryption":true`) {
		t.Fatalf("request %+v", r)
	}
}

func TestGetEmptyValueIsReturned(t *testing.T) {
	_, cfg := awstest.NewJSONAPI(t, 200, `{"Parameter":{"Value":""}}`)
	got, err := New(cfg).Get(context.Background(), "p")
	if err != nil || len(got) != 0 {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

func TestGetError(t *testing.T) {
	_, cfg := awstest.NewJSONAPI(t, 400, `{"__type":"ParameterNotFound","message":"Parameter /halosync/config not found."}`)
	_, err := New(cfg).Get(context.Background(), "/halosync/config")
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ParameterNotFound" || !strings.Contains(err.Error(), "read SSM parameter /halosync/config") {
		t.Fatalf("err = %v, want ParameterNotFound wrapped with the parameter's name", err)
	}
}

func TestGetNoValue(t *testing.T) {
	for name, body := range map[string]string{
		"nil parameter": `{}`,
		"nil value":     `{"Parameter":{"Name":"/halosync/config"}}`,
	} {
		_, cfg := awstest.NewJSONAPI(t, 200, body)
		got, err := New(cfg).Get(context.Background(), "/halosync/config")
		if err == nil || got != nil || !strings.Contains(err.Error(), "/halosync/config") {
			t.Errorf("%s: Get = %q, %v; want an error naming the parameter", name, got, err)
		}
	}
}
