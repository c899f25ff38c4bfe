package ssmparam

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type fakeSSM struct {
	out   *ssm.GetParameterOutput
	err   error
	calls []*ssm.GetParameterInput
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.calls = append(f.calls, in)
	return f.out, f.err
}

func TestGet(t *testing.T) {
	fake := &fakeSSM{out: &ssm.GetParameterOutput{Parameter: &types.Parameter{
		Name: aws.String("/halosync/config"), Type: types.ParameterTypeSecureString, Value: aws.String("connections: []\n"),
	}}}
	got, err := Get(context.Background(), fake, "/halosync/config")
	if err != nil || string(got) != "connections: []\n" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if len(fake.calls) != 1 {
		t.Fatalf("%d calls", len(fake.calls))
	}
	in := fake.calls[0]
	if aws.ToString(in.Name) != "/halosync/config" {
		t.Errorf("Name = %q", aws.ToString(in.Name))
	}
	if in.WithDecryption == nil || !*in.WithDecryption {
		t.Errorf("WithDecryption = %v, want true", in.WithDecryption)
	}
}

func TestGetEmptyValueIsReturned(t *testing.T) {
	fake := &fakeSSM{out: &ssm.GetParameterOutput{Parameter: &types.Parameter{Value: aws.String("")}}}
	got, err := Get(context.Background(), fake, "p")
	if err != nil || len(got) != 0 {
		t.Fatalf("Get = %q, %v", got, err)
	}
}

func TestGetError(t *testing.T) {
	apiErr := errors.New("ParameterNotFound")
	_, err := Get(context.Background(), &fakeSSM{err: apiErr}, "/halosync/config")
	if !errors.Is(err, apiErr) || !strings.Contains(err.Error(), "/halosync/config") {
		t.Fatalf("err = %v, want the API error wrapped with the parameter's name", err)
	}
}

func TestGetNoValue(t *testing.T) {
	for name, out := range map[string]*ssm.GetParameterOutput{
		"nil parameter": {},
		"nil value":     {Parameter: &types.Parameter{Name: aws.String("/halosync/config")}},
	} {
		got, err := Get(context.Background(), &fakeSSM{out: out}, "/halosync/config")
		if err == nil || got != nil || !strings.Contains(err.Error(), "/halosync/config") {
			t.Errorf("%s: Get = %q, %v; want an error naming the parameter", name, got, err)
		}
	}
}
