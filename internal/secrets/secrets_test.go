package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// fakeAPI is an SDK-shaped Secrets Manager: secrets by id, an optional error, and a count
// of calls per id.
type fakeAPI struct {
	mu      sync.Mutex
	secrets map[string]*string
	err     error
	calls   map[string]int
}

func newFake(secrets map[string]*string) *fakeAPI {
	return &fakeAPI{secrets: secrets, calls: map[string]int{}}
}

func (f *fakeAPI) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := aws.ToString(in.SecretId)
	f.calls[id]++
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.secrets[id]
	if !ok {
		return nil, errors.New("ResourceNotFoundException: Secrets Manager can't find the specified secret")
	}
	return &secretsmanager.GetSecretValueOutput{Name: aws.String(id), SecretString: v}, nil
}

func (f *fakeAPI) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:halosync/webhook-AbCdEf"

func TestResolve(t *testing.T) {
	fake := newFake(map[string]*string{
		"halosync/plain": aws.String("plain-secret-value"),
		arn:              aws.String(`{"username":"halo","password":"json-secret-value","port":8443}`),
		"halosync/text":  aws.String("not-json-secret-value"),
	})
	r := NewResolver(fake)
	ctx := context.Background()
	tests := []struct {
		name    string
		ref     string
		want    string
		wantErr []string // substrings of the error; nil when it must succeed
	}{
		{"plain value", "secretsmanager:halosync/plain", "plain-secret-value", nil},
		{"key from JSON by ARN", "secretsmanager:" + arn + "#password", "json-secret-value", nil},
		{"other key", "secretsmanager:" + arn + "#username", "halo", nil},
		{"whole JSON without key", "secretsmanager:" + arn, `{"username":"halo","password":"json-secret-value","port":8443}`, nil},
		{"missing key", "secretsmanager:" + arn + "#token", "", []string{arn, `"token"`}},
		{"non-string key", "secretsmanager:" + arn + "#port", "", []string{arn, `"port"`}},
		{"non-JSON with key", "secretsmanager:halosync/text#password", "", []string{"halosync/text", "not a JSON document"}},
		{"unknown secret", "secretsmanager:halosync/absent", "", []string{"halosync/absent"}},
		{"not a reference", "env:X", "", []string{"not a Secrets Manager reference"}},
		{"no secret named", "secretsmanager:#password", "", []string{"names no secret"}},
		{"empty", "secretsmanager:", "", []string{"names no secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(ctx, tt.ref)
			if tt.wantErr == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.ref, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%q) = %q, nil; want an error", tt.ref, got)
			}
			if got != "" {
				t.Errorf("Resolve returned %q with an error", got)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, secret := range []string{"plain-secret-value", "json-secret-value", "not-json-secret-value"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the secret value", err)
				}
			}
		})
	}
	if n := fake.calls["halosync/text"]; n != 1 {
		t.Errorf("halosync/text fetched %d times", n)
	}
	if _, ok := fake.calls[""]; ok {
		t.Error("a reference naming no secret reached the API")
	}
}

func TestResolveCachesEachSecret(t *testing.T) {
	fake := newFake(map[string]*string{arn: aws.String(`{"password":"pw-1","previous":"pw-0"}`)})
	r := NewResolver(fake)
	ctx := context.Background()
	a, err1 := r.Resolve(ctx, "secretsmanager:"+arn+"#password")
	b, err2 := r.Resolve(ctx, "secretsmanager:"+arn+"#previous")
	c, err3 := r.Resolve(ctx, "secretsmanager:"+arn+"#password")
	if err1 != nil || err2 != nil || err3 != nil || a != "pw-1" || b != "pw-0" || c != "pw-1" {
		t.Fatalf("resolutions %q %q %q, errors %v %v %v", a, b, c, err1, err2, err3)
	}
	if n := fake.calls[arn]; n != 1 {
		t.Fatalf("API called %d times for one secret, want 1", n)
	}
	// A second resolver has its own cache.
	if _, err := NewResolver(fake).Resolve(ctx, "secretsmanager:"+arn); err != nil {
		t.Fatal(err)
	}
	if n := fake.calls[arn]; n != 2 {
		t.Fatalf("API called %d times after a new resolver, want 2", n)
	}
}

func TestResolveConcurrentCallsFetchOnce(t *testing.T) {
	fake := newFake(map[string]*string{"s": aws.String("v")})
	r := NewResolver(fake)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := r.Resolve(context.Background(), "secretsmanager:s"); err != nil || v != "v" {
				t.Errorf("Resolve = %q, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if n := fake.total(); n != 1 {
		t.Fatalf("API called %d times, want 1", n)
	}
}

func TestResolveAPIError(t *testing.T) {
	apiErr := errors.New("AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue")
	fake := newFake(map[string]*string{arn: aws.String("api-secret-value")})
	fake.err = apiErr
	r := NewResolver(fake)
	got, err := r.Resolve(context.Background(), "secretsmanager:"+arn+"#password")
	if !errors.Is(err, apiErr) || got != "" {
		t.Fatalf("Resolve = %q, %v; want the API error wrapped", got, err)
	}
	if !strings.Contains(err.Error(), arn) || strings.Contains(err.Error(), "api-secret-value") {
		t.Fatalf("error %q: want the secret named and its value absent", err)
	}
	// Failures are not cached: once the API recovers, the secret resolves.
	fake.mu.Lock()
	fake.err = nil
	fake.mu.Unlock()
	if got, err := r.Resolve(context.Background(), "secretsmanager:"+arn); err != nil || got != "api-secret-value" {
		t.Fatalf("after recovery: %q, %v", got, err)
	}
	if n := fake.calls[arn]; n != 2 {
		t.Fatalf("API called %d times, want 2", n)
	}
}

func TestResolveBinarySecret(t *testing.T) {
	fake := newFake(map[string]*string{"bin": nil})
	_, err := NewResolver(fake).Resolve(context.Background(), "secretsmanager:bin")
	if err == nil || !strings.Contains(err.Error(), "no string value") {
		t.Fatalf("err = %v", err)
	}
}
