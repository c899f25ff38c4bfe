package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// writeFake is a Secrets Manager that can be written.
type writeFake struct {
	secrets map[string]string
	puts    int
}

func (f *writeFake) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := f.secrets[aws.ToString(in.SecretId)]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
}

func (f *writeFake) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	id := aws.ToString(in.SecretId)
	if _, ok := f.secrets[id]; !ok {
		return nil, &types.ResourceNotFoundException{}
	}
	f.puts++
	f.secrets[id] = aws.ToString(in.SecretString)
	return &secretsmanager.PutSecretValueOutput{}, nil
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	f := &writeFake{secrets: map[string]string{arn: `{"password":"old-password","other":"keep-me"}`, "plain": "", "text": "not json"}}
	s := NewStore(f)
	if v, found, err := s.Lookup(ctx, "secretsmanager:"+arn+"#password"); err != nil || !found || v != "old-password" {
		t.Fatalf("lookup: %q %v %v", v, found, err)
	}
	if _, found, err := s.Lookup(ctx, "secretsmanager:"+arn+"#password_next"); err != nil || found {
		t.Fatalf("missing key: %v %v", found, err)
	}
	if err := s.Store(ctx, "secretsmanager:"+arn+"#password_next", "new-password"); err != nil {
		t.Fatal(err)
	}
	var doc map[string]string
	if err := json.Unmarshal([]byte(f.secrets[arn]), &doc); err != nil || doc["password_next"] != "new-password" || doc["password"] != "old-password" || doc["other"] != "keep-me" {
		t.Fatalf("document %v %v", doc, err)
	}
	// The resolver the functions use reads what the store wrote.
	if v, err := NewResolver(f).Resolve(ctx, "secretsmanager:"+arn+"#password_next"); err != nil || v != "new-password" {
		t.Fatalf("resolve: %q %v", v, err)
	}
	if _, found, err := s.Lookup(ctx, "secretsmanager:plain"); err != nil || found {
		t.Fatalf("empty secret: %v %v", found, err)
	}
	if err := s.Store(ctx, "secretsmanager:plain#k", "v1"); err != nil || f.secrets["plain"] != `{"k":"v1"}` {
		t.Fatalf("key in an empty secret: %q %v", f.secrets["plain"], err)
	}
	if err := s.Store(ctx, "secretsmanager:plain", "whole-value"); err != nil || f.secrets["plain"] != "whole-value" {
		t.Fatalf("whole: %v", err)
	}
	err := s.Store(ctx, "secretsmanager:text#k", "v")
	if err == nil || !strings.Contains(err.Error(), "not a JSON document") || strings.Contains(err.Error(), "not json") {
		t.Fatalf("non-JSON: %v", err)
	}
	_, _, err = s.Lookup(ctx, "secretsmanager:absent#k")
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "halosync does not create secrets") {
		t.Fatalf("absent: %v", err)
	}
	if _, _, err := s.Lookup(ctx, "env:X"); err == nil {
		t.Fatal("env: accepted")
	}
	if err := s.Store(ctx, "secretsmanager:#k", "v"); err == nil {
		t.Fatal("no secret named: accepted")
	}
}
