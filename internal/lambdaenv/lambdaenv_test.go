package lambdaenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/metrics"
)

type fakeSM struct {
	secrets map[string]string
	calls   []string
}

func (f *fakeSM) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls = append(f.calls, aws.ToString(in.SecretId))
	v, ok := f.secrets[aws.ToString(in.SecretId)]
	if !ok {
		return nil, errors.New("ResourceNotFoundException")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
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

func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"QUEUE_URL", "TABLE_NAME", "EVENT_BUS_NAME", "HALOSYNC_CONFIG_PARAMETER", "HALOSYNC_CONFIG_FILE", "LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"} {
		t.Setenv(k, "")
	}
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
	env := Read()
	ssmAPI, smAPI := &awstest.SSM{}, &fakeSM{}
	c, err := env.LoadConfig(context.Background(), ssmAPI, smAPI)
	if err != nil {
		t.Fatal(err)
	}
	if c.Connections[0].ID != "local" || c.Connections[0].Webhook.Auth[0].Passwords[0] != "env-secret-value" {
		t.Fatalf("config %+v", c.Connections)
	}
	if len(ssmAPI.Calls) != 0 || len(smAPI.calls) != 0 {
		t.Fatalf("AWS called: ssm %v sm %v", ssmAPI.Calls, smAPI.calls)
	}
}

func TestLoadConfigFromSSM(t *testing.T) {
	clearEnv(t)
	t.Setenv("HALOSYNC_CONFIG_PARAMETER", "/halosync/config")
	t.Setenv("HALOSYNC_CONFIG_FILE", "") // declared empty in template.yaml: unset
	ssmAPI := &awstest.SSM{Parameters: map[string]string{"/halosync/config": ssmDoc}}
	smAPI := &fakeSM{secrets: map[string]string{secretARN: `{"password":"sm-secret-new","previous":"sm-secret-old"}`}}
	c, err := Read().LoadConfig(context.Background(), ssmAPI, smAPI)
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
	if names, decrypted := ssmAPI.Names(); len(names) != 1 || names[0] != "/halosync/config" || !decrypted[0] {
		t.Fatalf("SSM calls %v decryption %v", names, decrypted)
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
	env := Env{ConfigParameter: "/p"}
	params := &awstest.SSM{Parameters: map[string]string{"/p": doc}}
	denied := &fakeSM{secrets: map[string]string{secretARN: `{"password":"password-1","previous":"password-0"}`}}
	c, err := env.LoadConfigFor(ctx, Ingest, params, denied)
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
	if _, err := env.LoadConfigFor(ctx, Worker, params, denied); err == nil || !strings.Contains(err.Error(), "halo") {
		t.Errorf("worker without the Halo secret: %v", err)
	}
	allowed := &fakeSM{secrets: map[string]string{secretARN: `{"password":"password-1","previous":"password-0"}`, haloARN: `{"client_secret":"cs"}`}}
	c, err = env.LoadConfigFor(ctx, Worker, params, allowed)
	if err != nil || c.Connections[1].Halo.ClientSecret != "cs" {
		t.Fatalf("worker: %v", err)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := (Env{}).LoadConfig(ctx, &awstest.SSM{}, &fakeSM{}); err == nil ||
		!strings.Contains(err.Error(), "HALOSYNC_CONFIG_PARAMETER") || !strings.Contains(err.Error(), "HALOSYNC_CONFIG_FILE") {
		t.Fatalf("neither set: %v", err)
	}

	ssmErr := errors.New("AccessDeniedException")
	if _, err := (Env{ConfigParameter: "/p"}).LoadConfig(ctx, &awstest.SSM{Err: ssmErr}, &fakeSM{}); !errors.Is(err, ssmErr) {
		t.Fatalf("SSM failure: %v", err)
	}

	bad := &awstest.SSM{Parameters: map[string]string{"/p": "connections: []\n"}}
	if _, err := (Env{ConfigParameter: "/p"}).LoadConfig(ctx, bad, &fakeSM{}); !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), "SSM parameter /p") {
		t.Fatalf("invalid document: %v", err)
	}

	missingSecret := &awstest.SSM{Parameters: map[string]string{"/p": ssmDoc}}
	_, err := (Env{ConfigParameter: "/p"}).LoadConfig(ctx, missingSecret, &fakeSM{secrets: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), "passwords[0]") {
		t.Fatalf("unresolvable secret: %v", err)
	}

	if _, err := (Env{ConfigFile: filepath.Join(t.TempDir(), "absent.yaml")}).LoadConfig(ctx, &awstest.SSM{}, &fakeSM{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestRead(t *testing.T) {
	clearEnv(t)
	t.Setenv("QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/halosync")
	t.Setenv("TABLE_NAME", "halosync")
	t.Setenv("HALOSYNC_CONFIG_PARAMETER", "/halosync/config")
	t.Setenv("HALOSYNC_CONFIG_FILE", "/etc/halosync.yaml")
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "DEBUG")
	want := Env{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/halosync", TableName: "halosync",
		ConfigParameter: "/halosync/config", ConfigFile: "/etc/halosync.yaml", LogLevel: "DEBUG", FilterLevel: "DEBUG"}
	if got := Read(); got != want {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}
	t.Setenv("LOG_LEVEL", "warn") // LOG_LEVEL wins over Lambda's
	if got := Read(); got.LogLevel != "warn" || got.FilterLevel != "DEBUG" {
		t.Fatalf("LogLevel, FilterLevel = %q, %q, want warn, DEBUG", got.LogLevel, got.FilterLevel)
	}
}

// TestMetricsPassTheLogFilter: metric lines wait for the invocation's end and carry a
// level that Lambda's application log level keeps.
func TestMetricsPassTheLogFilter(t *testing.T) {
	tests := []struct {
		env  Env
		want string
	}{
		{Env{}, "INFO"},
		{Env{LogLevel: "debug", FilterLevel: "DEBUG"}, "INFO"},
		{Env{LogLevel: "WARN", FilterLevel: "WARN"}, "WARN"},
		{Env{LogLevel: "debug", FilterLevel: "ERROR"}, "ERROR"},
		{Env{LogLevel: "error"}, "ERROR"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		m := tt.env.Metrics(&buf)
		m.Count(metrics.Metric{Name: metrics.ChangesEnqueued, Connection: "c"}, 1)
		if buf.Len() != 0 {
			t.Fatalf("%+v: written before the flush: %s", tt.env, buf.String())
		}
		m.Flush()
		var line struct {
			Level string `json:"level"`
		}
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line.Level != tt.want {
			t.Errorf("%+v: level %q (%v), want %q: %s", tt.env, line.Level, err, tt.want, buf.String())
		}
	}
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name    string
		env     Env
		names   []string
		missing []string
	}{
		{"all set", Env{QueueURL: "q", TableName: "t"}, []string{"QUEUE_URL", "TABLE_NAME"}, nil},
		{"nothing required", Env{}, nil, nil},
		{"both missing", Env{}, []string{"TABLE_NAME", "QUEUE_URL"}, []string{"TABLE_NAME", "QUEUE_URL"}},
		{"table missing", Env{QueueURL: "q"}, []string{"QUEUE_URL", "TABLE_NAME"}, []string{"TABLE_NAME"}},
		{"queue missing", Env{TableName: "t"}, []string{"QUEUE_URL"}, []string{"QUEUE_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.env.Require(tt.names...)
			if tt.missing == nil {
				if err != nil {
					t.Fatalf("Require = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Require = nil")
			}
			for _, n := range tt.missing {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
			for _, n := range tt.names {
				if !contains(tt.missing, n) && strings.Contains(err.Error(), n) {
					t.Errorf("error %q names %s, which is set", err, n)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestLoggerLevel(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		level string
		debug bool
		info  bool
	}{
		{"", false, true},
		{"debug", true, true},
		{"DEBUG", true, true},
		{"warn", false, false},
		{"nonsense", false, true},
	}
	for _, tt := range tests {
		l := Env{LogLevel: tt.level}.Logger()
		if got := l.Enabled(ctx, slog.LevelDebug); got != tt.debug {
			t.Errorf("level %q: debug enabled %v, want %v", tt.level, got, tt.debug)
		}
		if got := l.Enabled(ctx, slog.LevelInfo); got != tt.info {
			t.Errorf("level %q: info enabled %v, want %v", tt.level, got, tt.info)
		}
	}
}

// TestWorkerNeedsItsConfiguration: the worker refuses changes for connections it does not
// know, so it does not start without the configuration.
// noAWSProfile clears the functions' variables and leaves the SDK no profile to read, in
// one region.
func noAWSProfile(t *testing.T) {
	t.Helper()
	clearEnv(t)
	home := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "none"))
	t.Setenv("AWS_REGION", "eu-west-1")
}

func TestWorkerNeedsItsConfiguration(t *testing.T) {
	noAWSProfile(t)
	env := Env{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/halosync", TableName: "halosync"}
	_, err := env.build(context.Background(), Worker, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "HALOSYNC_CONFIG_PARAMETER") {
		t.Fatalf("worker without configuration: %v, want an error naming HALOSYNC_CONFIG_PARAMETER", err)
	}
}

// TestReaderNeedsTheTableOnly: the read function starts with TABLE_NAME alone (no queue, no
// configuration), with the settle window READ_SETTLE gives or ReadSettle.
func TestReaderNeedsTheTableOnly(t *testing.T) {
	noAWSProfile(t)
	log := slog.New(slog.DiscardHandler)
	if _, err := (Env{}).build(context.Background(), Reader, log); err == nil || !strings.Contains(err.Error(), "TABLE_NAME") {
		t.Fatalf("reader without a table: %v, want an error naming TABLE_NAME", err)
	}
	f, err := Env{TableName: "halosync"}.build(context.Background(), Reader, log)
	if err != nil || f.Store == nil || f.Pipeline != nil || f.Queue != nil || f.Settle != ReadSettle {
		t.Fatalf("reader: %+v, %v; want a store, no pipeline or queue, settle %v", f, err, ReadSettle)
	}
	if f, err := (Env{TableName: "halosync", ReadSettle: "250ms"}).build(context.Background(), Reader, log); err != nil || f.Settle != 250*time.Millisecond {
		t.Fatalf("READ_SETTLE=250ms: %+v, %v", f, err)
	}
	for _, bad := range []string{"5", "-1s", "soon"} {
		if _, err := (Env{TableName: "halosync", ReadSettle: bad}).build(context.Background(), Reader, log); err == nil || !strings.Contains(err.Error(), "READ_SETTLE") {
			t.Errorf("READ_SETTLE=%s: %v, want an error naming it", bad, err)
		}
	}
}

// TestThePublisherNeedsItsBusOnly: the publisher starts with EVENT_BUS_NAME and nothing
// else (no queue, table or configuration), and not without it.
func TestThePublisherNeedsItsBusOnly(t *testing.T) {
	noAWSProfile(t)
	log := slog.New(slog.DiscardHandler)
	if _, err := (Env{}).build(context.Background(), Publisher, log); err == nil || !strings.Contains(err.Error(), "EVENT_BUS_NAME") {
		t.Fatalf("publisher without a bus: %v, want an error naming EVENT_BUS_NAME", err)
	}
	t.Setenv("EVENT_BUS_NAME", "halosync-changes")
	f, err := Read().build(context.Background(), Publisher, log)
	if err != nil || f.Publisher == nil || f.Pipeline != nil || f.Queue != nil {
		t.Fatalf("publisher: %+v, %v", f, err)
	}
}
