package ssmparam

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/halosync/halosync/internal/awstest"
)

func TestGet(t *testing.T) {
	fake := &awstest.SSM{Output: &ssm.GetParameterOutput{Parameter: &types.Parameter{
		Name: aws.String("/halosync/config"), Type: types.ParameterTypeSecureString, Value: aws.String("connections: []\n"),
	}}}
	got, err := Get(context.Background(), fake, "/halosync/config")
	if err != nil || string(got) != "connections: []\n" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if len(fake.Calls) != 1 {
		t.Fatalf("%d calls", len(fake.Calls))
	}
	in := fake.Calls[0]
	if aws.ToString(in.Name) != "/halosync/config" {
		t.Errorf("Name = %q", aws.ToString(in.Name))
	}
	if in.WithDecryption == nil || !*in.WithDecryption {
		t.Errorf("WithDecryption = %v, want true", in.WithDecryption)
	}
}

func TestGetEmptyValueIsReturned(t *testing.T) {
	fake := &awstest.SSM{Output: &ssm.GetParameterOutput{Parameter: &types.Parameter{Value: aws.String("")}}}
	got, err := Get(context.Background(), fake, "p")
	if err != nil || len(got) != 0 {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

func TestGetError(t *testing.T) {
	apiErr := errors.New("ParameterNotFound")
	_, err := Get(context.Background(), &awstest.SSM{Err: apiErr}, "/halosync/config")
	if !errors.Is(err, apiErr) || !strings.Contains(err.Error(), "/halosync/config") {
		t.Fatalf("err = %v, want the API error wrapped with the parameter's name", err)
	}
}

func TestGetNoValue(t *testing.T) {
	for name, out := range map[string]*ssm.GetParameterOutput{
		"nil parameter": {},
		"nil value":     {Parameter: &types.Parameter{Name: aws.String("/halosync/config")}},
	} {
		got, err := Get(context.Background(), &awstest.SSM{Output: out}, "/halosync/config")
		if err == nil || got != nil || !strings.Contains(err.Error(), "/halosync/config") {
			t.Errorf("%s: Get = %q, %v; want an error naming the parameter", name, got, err)
		}
	}
}
