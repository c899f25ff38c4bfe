package awstest

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSM fakes SSM Parameter Store's GetParameter, the one call halosync makes (no stand-in
// for it runs here): Parameters answers by name, a missing name failing as
// ParameterNotFound; Err fails every call; Output, when set, is answered as it is (for
// malformed answers). Calls records each request.
type SSM struct {
	Parameters map[string]string
	Output     *ssm.GetParameterOutput
	Err        error
	Calls      []*ssm.GetParameterInput
}

// GetParameter answers as the fields say.
func (f *SSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.Calls = append(f.Calls, in)
	switch {
	case f.Err != nil:
		return nil, f.Err
	case f.Output != nil:
		return f.Output, nil
	}
	v, ok := f.Parameters[aws.ToString(in.Name)]
	if !ok {
		return nil, errors.New("ParameterNotFound")
	}
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Name: in.Name, Value: aws.String(v)}}, nil
}

// Names lists the parameters asked for, in order, and whether each was asked decrypted.
func (f *SSM) Names() (names []string, decrypted []bool) {
	for _, in := range f.Calls {
		names = append(names, aws.ToString(in.Name))
		decrypted = append(decrypted, aws.ToBool(in.WithDecryption))
	}
	return names, decrypted
}
