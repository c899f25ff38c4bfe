package lambdapipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/lambdaenv"
)

// fakeSM is Secrets Manager: secrets by id, each read recorded.
type fakeSM struct {
	secrets map[string]string
	calls   []string
}

func (f *fakeSM) SecretString(_ context.Context, id string) (string, bool, error) {
	f.calls = append(f.calls, id)
	v, ok := f.secrets[id]
	if !ok {
		return "", false, errors.New("ResourceNotFoundException")
	}
	return v, true, nil
}

// fakeSSM is SSM Parameter Store: values by name, a missing name failing as
// ParameterNotFound; err fails every read. Each read is recorded.
type fakeSSM struct {
	values map[string]string
	err    error
	calls  []string
}

func (f *fakeSSM) Get(_ context.Context, name string) ([]byte, error) {
	f.calls = append(f.calls, name)
	if f.err != nil {
		return nil, f.err
	}
	v, ok := f.values[name]
	if !ok {
		return nil, errors.New("ParameterNotFound")
	}
	return []byte(v), nil
}

const secretARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:halosync/webhook-AbCdEf"

const ssmDoc = `
connections:
  - id: default
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["secretsmanager:` + secretARN + `#password", "secretsmanager:` + secretARN + `#previous"]
store:
  driver: dynamodb
  table: halosync
`

// clearEnv leaves the configuration's location to each test.
func clearEnv(t *testing.T) {
	t.Helper()
	t.Setenv("HALOSYNC_CONFIG_PARAMETER", "")
	t.Setenv("HALOSYNC_CONFIG_FILE", "")
}

func TestLoadConfigFromFile(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "halosync.yaml")
	doc := "connections:\n  - id: local\n    webhook:\n      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"env:HALOSYNC_TEST_PW\"]\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HALOSYNC_CONFIG_FILE", path)
	t.Setenv("HALOSYNC_CONFIG_PARAMETER", "/halosync/config") // the file wins
	t.Setenv("HALOSYNC_TEST_PW", "env-secret-value")
	env := lambdaenv.Read()
	ssmAPI, smAPI := &fakeSSM{}, &fakeSM{}
	c, err := LoadConfig(context.Background(), env, ssmAPI, smAPI)
	if err != nil {
		t.Fatal(err)
	}
	if c.Connections[0].ID != "local" || c.Connections[0].Webhook.Auth[0].Passwords[0] != "env-secret-value" {
		t.Fatalf("config %+v", c.Connections)
	}
	if len(ssmAPI.calls) != 0 || len(smAPI.calls) != 0 {
		t.Fatalf("AWS called: ssm %v sm %v", ssmAPI.calls, smAPI.calls)
	}
}

func TestLoadConfigFromSSM(t *testing.T) {
	clearEnv(t)
	t.Setenv("HALOSYNC_CONFIG_PARAMETER", "/halosync/config")
	t.Setenv("HALOSYNC_CONFIG_FILE", "") // declared empty in template.yaml: unset
	ssmAPI := &fakeSSM{values: map[string]string{"/halosync/config": ssmDoc}}
	smAPI := &fakeSM{secrets: map[string]string{secretARN: `{"password":"sm-secret-new","previous":"sm-secret-old"}`}}
	c, err := LoadConfig(context.Background(), lambdaenv.Read(), ssmAPI, smAPI)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Connections[0].Webhook.Auth[0].Passwords
	if len(got) != 2 || got[0] != "sm-secret-new" || got[1] != "sm-secret-old" {
		t.Fatalf("passwords %q", got)
	}
	if c.Store.Driver != "dynamodb" || c.Store.Table != "halosync" {
		t.Fatalf("store %+v", c.Store)
	}
	if len(ssmAPI.calls) != 1 || ssmAPI.calls[0] != "/halosync/config" {
		t.Fatalf("SSM calls %v", ssmAPI.calls)
	}
	if len(smAPI.calls) != 1 || smAPI.calls[0] != secretARN {
		t.Fatalf("Secrets Manager calls %v, want one for the ARN without the key", smAPI.calls)
	}
}

// TestIngestLeavesHaloCredentialsUnread: the ingest role starts without reading the Halo
// API's secret, which its IAM role may not read; the worker reads it.
func TestIngestLeavesHaloCredentialsUnread(t *testing.T) {
	const haloARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:halosync/halo-GhIjKl"
	doc := `
connections:
  - id: default
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["secretsmanager:` + secretARN + `#password"]
  - id: other
    halo:
      base_url: https://tenant.halopsa.com
      client_id: api-client
      client_secret: "secretsmanager:` + haloARN + `#client_secret"
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["secretsmanager:` + secretARN + `#password"]
`
	ctx := context.Background()
	env := lambdaenv.Env{ConfigParameter: "/p"}
	params := &fakeSSM{values: map[string]string{"/p": doc}}
	denied := &fakeSM{secrets: map[string]string{secretARN: `{"password":"password-1","previous":"password-0"}`}}
	c, err := LoadConfigFor(ctx, env, lambdaenv.Ingest, params, denied)
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range denied.calls {
		if call == haloARN {
			t.Errorf("ingest read the Halo secret")
		}
	}
	if got := c.Connections[1].Webhook.Auth[0].Passwords; len(got) != 1 || got[0] != "password-1" {
		t.Errorf("passwords %q", got)
	}
	if got := c.Connections[1].Halo.ClientSecret; got != withheldValue {
		t.Errorf("client secret %q", got)
	}
	if _, err := LoadConfigFor(ctx, env, lambdaenv.Worker, params, denied); err == nil || !strings.Contains(err.Error(), "halo") {
		t.Errorf("worker without the Halo secret: %v", err)
	}
	allowed := &fakeSM{secrets: map[string]string{secretARN: `{"password":"password-1","previous":"password-0"}`, haloARN: `{"client_secret":"cs"}`}}
	c, err = LoadConfigFor(ctx, env, lambdaenv.Worker, params, allowed)
	if err != nil || c.Connections[1].Halo.ClientSecret != "cs" {
		t.Fatalf("worker: %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := LoadConfig(ctx, lambdaenv.Env{}, &fakeSSM{}, &fakeSM{}); err == nil ||
		!strings.Contains(err.Error(), "HALOSYNC_CONFIG_PARAMETER") || !strings.Contains(err.Error(), "HALOSYNC_CONFIG_FILE") {
		t.Fatalf("neither set: %v", err)
	}

	ssmErr := errors.New("AccessDeniedException")
	if _, err := LoadConfig(ctx, lambdaenv.Env{ConfigParameter: "/p"}, &fakeSSM{err: ssmErr}, &fakeSM{}); !errors.Is(err, ssmErr) {
		t.Fatalf("SSM failure: %v", err)
	}

	bad := &fakeSSM{values: map[string]string{"/p": "connections: []\n"}}
	if _, err := LoadConfig(ctx, lambdaenv.Env{ConfigParameter: "/p"}, bad, &fakeSM{}); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "SSM parameter /p") {
		t.Fatalf("invalid document: %v", err)
	}

	missingSecret := &fakeSSM{values: map[string]string{"/p": ssmDoc}}
	_, err := LoadConfig(ctx, lambdaenv.Env{ConfigParameter: "/p"}, missingSecret, &fakeSM{secrets: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), "passwords[0]") {
		t.Fatalf("unresolvable secret: %v", err)
	}

	if _, err := LoadConfig(ctx, lambdaenv.Env{ConfigFile: filepath.Join(t.TempDir(), "absent.yaml")}, &fakeSSM{}, &fakeSM{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestWorkerNeedsItsConfiguration: the worker refuses changes for connections it does not
// know, so it does not start without the configuration.
func TestWorkerNeedsItsConfiguration(t *testing.T) {
	clearEnv(t)
	env := lambdaenv.Env{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/halosync", TableName: "halosync"}
	_, err := start(context.Background(), &lambdaenv.Function{Env: env, Role: lambdaenv.Worker, Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "HALOSYNC_CONFIG_PARAMETER") {
		t.Fatalf("worker without configuration: %v, want an error naming HALOSYNC_CONFIG_PARAMETER", err)
	}
}

// TestIngestStartsWithoutAStore: the ingest function's pipeline is built from its
// configuration and queue alone (no DynamoDB client is linked into it), with the
// dead-letter queue when DEAD_LETTER_QUEUE_URL names one.
func TestIngestStartsWithoutAStore(t *testing.T) {
	clearEnv(t)
	env := lambdaenv.Env{
		QueueURL: "http://127.0.0.1:1/000000000000/halosync-changes", DeadLetterURL: "http://127.0.0.1:1/000000000000/halosync-changes-dlq",
		ConfigFile: filepath.Join("..", "..", "halosync.example.yaml"),
	}
	f, err := start(context.Background(), &lambdaenv.Function{Env: env, Role: lambdaenv.Ingest, Log: slog.New(slog.DiscardHandler), Metrics: env.Metrics(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	if f.Queue == nil || f.Queue.URL() != env.QueueURL || len(f.Config.Connections) == 0 {
		t.Fatalf("queue %v, configuration %+v", f.Queue, f.Config)
	}
	p, err := f.pipeline(nil)
	if err != nil || p.Ingest == nil {
		t.Fatalf("pipeline %+v, %v", p, err)
	}
}
