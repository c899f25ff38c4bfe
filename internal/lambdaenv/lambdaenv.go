// Package lambdaenv starts a Lambda function: it reads the function's settings from its
// environment once, loads the configuration document from where they say (SSM Parameter
// Store, secrets from Secrets Manager; or a file), and builds the pipeline over SQS and
// DynamoDB.
//
// The configuration comes from HALOSYNC_CONFIG_FILE when that is set, else from the SSM
// parameter HALOSYNC_CONFIG_PARAMETER names; an empty variable counts as unset. template.yaml
// declares HALOSYNC_CONFIG_FILE empty, so a deployed function reads the parameter, and
// `sam local invoke --env-vars events/local-env.json` sets it (SAM overrides only declared
// variables) to the local configuration the build copies to /var/task. The AWS SDK takes
// AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_DYNAMODB, declared empty the same way, as the
// endpoints of local stand-ins.
package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"gopkg.in/yaml.v3"

	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/eventbridgebus"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/pipeline"
	"github.com/halosync/halosync/internal/secrets"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/ssmparam"
)

// Env is everything the functions read from their environment.
type Env struct {
	QueueURL        string // QUEUE_URL
	DeadLetterURL   string // DEAD_LETTER_QUEUE_URL: where the worker moves permanent failures (optional)
	TableName       string // TABLE_NAME
	EventBusName    string // EVENT_BUS_NAME: the bus the publisher puts change events on
	ConfigParameter string // HALOSYNC_CONFIG_PARAMETER: the SSM parameter holding the config
	ConfigFile      string // HALOSYNC_CONFIG_FILE: a config file, which wins (sam local invoke, the emulator tests)
	LogLevel        string // LOG_LEVEL, or AWS_LAMBDA_LOG_LEVEL as Lambda sets it
	ReadSettle      string // READ_SETTLE: the read function's settle window (ReadSettle when empty)
	// FilterLevel is AWS_LAMBDA_LOG_LEVEL: the application log level below which Lambda
	// drops the function's JSON lines.
	FilterLevel string
}

// Read reads the environment.
func Read() Env {
	level := os.Getenv("LOG_LEVEL")
	if level == "" {
		level = os.Getenv("AWS_LAMBDA_LOG_LEVEL")
	}
	return Env{
		QueueURL:        os.Getenv("QUEUE_URL"),
		DeadLetterURL:   os.Getenv("DEAD_LETTER_QUEUE_URL"),
		TableName:       os.Getenv("TABLE_NAME"),
		EventBusName:    os.Getenv("EVENT_BUS_NAME"),
		ConfigParameter: os.Getenv("HALOSYNC_CONFIG_PARAMETER"),
		ConfigFile:      os.Getenv("HALOSYNC_CONFIG_FILE"),
		LogLevel:        level,
		ReadSettle:      os.Getenv("READ_SETTLE"),
		FilterLevel:     os.Getenv("AWS_LAMBDA_LOG_LEVEL"),
	}
}

// Require fails naming every missing variable.
func (e Env) Require(names ...string) error {
	values := map[string]string{
		"QUEUE_URL": e.QueueURL, "TABLE_NAME": e.TableName, "EVENT_BUS_NAME": e.EventBusName,
		"HALOSYNC_CONFIG_PARAMETER": e.ConfigParameter, "HALOSYNC_CONFIG_FILE": e.ConfigFile,
	}
	var missing []string
	for _, n := range names {
		if values[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("environment: %s not set", strings.Join(missing, ", "))
	}
	return nil
}

// Logger returns the function's logger at the configured level: JSON lines, as the
// template's log format says, each carrying the invocation's request id, and cold_start
// within the process's first invocation.
func (e Env) Logger() *slog.Logger {
	return e.loggerTo(os.Stdout)
}

func (e Env) loggerTo(w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(e.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(invocationHandler{Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), first: &firstInvocation{}})
}

// Metrics returns the function's counter: embedded-metric-format lines on w, kept until
// the invocation ends (awslambda.Flushed), each with a level that passes both the
// function's log level and Lambda's filter (metrics.LineLevel).
func (e Env) Metrics(w io.Writer) *metrics.EMF {
	return metrics.NewEMF(w, metrics.EMFOptions{Level: metrics.LineLevel(e.LogLevel, e.FilterLevel), Buffered: true})
}

// LoadConfig loads the configuration document: from HALOSYNC_CONFIG_FILE if set (not
// empty), else from the SSM parameter, which is then not read; "secretsmanager:" references
// resolve through sm, "env:" and "file:" locally, and a document with inline values only
// needs neither SSM nor Secrets Manager.
func (e Env) LoadConfig(ctx context.Context, ssm ssmparam.API, sm secrets.API) (*config.Config, error) {
	return e.load(ctx, ssm, sm, false)
}

// LoadConfigFor loads the configuration as a role needs it. A role without a store builds no
// Halo API client (pipeline.Build), so it leaves the connections' halo: credentials unread:
// the internet-facing ingest function may not read the Halo API's secret (template.yaml,
// HaloApiSecret).
func (e Env) LoadConfigFor(ctx context.Context, r Role, ssm ssmparam.API, sm secrets.API) (*config.Config, error) {
	return e.load(ctx, ssm, sm, !r.Store)
}

func (e Env) load(ctx context.Context, ssm ssmparam.API, sm secrets.API, withholdHalo bool) (*config.Config, error) {
	var data []byte
	var where string
	var err error
	switch {
	case e.ConfigFile != "":
		if data, err = os.ReadFile(e.ConfigFile); err != nil {
			return nil, fmt.Errorf("read config (HALOSYNC_CONFIG_FILE): %w", err)
		}
		where = e.ConfigFile
	case e.ConfigParameter != "":
		if data, err = ssmparam.Get(ctx, ssm, e.ConfigParameter); err != nil {
			return nil, err
		}
		where = "SSM parameter " + e.ConfigParameter
	default:
		return nil, errors.New("environment: HALOSYNC_CONFIG_PARAMETER and HALOSYNC_CONFIG_FILE are both empty: set the SSM parameter's name, or a configuration file's path (which wins)")
	}
	var resolver config.Resolver = config.LocalResolver{Next: secrets.NewResolver(sm)}
	if withholdHalo {
		resolver = withheld{refs: haloOnlyRefs(data), next: resolver}
	}
	c, err := config.Parse(ctx, data, resolver)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return c, nil
}

// withheldValue stands for a Halo API credential a role does not read.
const withheldValue = "withheld: this function makes no Halo API call"

// withheld resolves every reference but refs, which it leaves unread.
type withheld struct {
	refs map[string]bool
	next config.Resolver
}

func (w withheld) Resolve(ctx context.Context, ref string) (string, error) {
	if w.refs[ref] {
		return withheldValue, nil
	}
	return w.next.Resolve(ctx, ref)
}

// haloOnlyRefs lists the secret references of the connections' halo: credentials that
// nothing else in the document uses. A document that does not read is left to config.Parse.
func haloOnlyRefs(data []byte) map[string]bool {
	var doc struct {
		Connections []struct {
			Halo struct {
				ClientID     string `yaml:"client_id"`
				ClientSecret string `yaml:"client_secret"`
			} `yaml:"halo"`
			Webhook struct {
				Auth []struct {
					Passwords []string `yaml:"passwords"`
					Tokens    []string `yaml:"tokens"`
					Secrets   []string `yaml:"secrets"`
				} `yaml:"auth"`
			} `yaml:"webhook"`
		} `yaml:"connections"`
		Server struct {
			ReadTokens []string `yaml:"read_tokens"`
		} `yaml:"server"`
	}
	refs := map[string]bool{}
	if yaml.Unmarshal(data, &doc) != nil {
		return refs
	}
	used := map[string]bool{}
	for _, t := range doc.Server.ReadTokens {
		used[t] = true
	}
	for _, c := range doc.Connections {
		for _, a := range c.Webhook.Auth {
			for _, list := range [][]string{a.Passwords, a.Tokens, a.Secrets} {
				for _, v := range list {
					used[v] = true
				}
			}
		}
	}
	for _, c := range doc.Connections {
		for _, v := range []string{c.Halo.ClientID, c.Halo.ClientSecret} {
			if config.IsReference(v) && !used[v] {
				refs[v] = true
			}
		}
	}
	return refs
}

// apiInstances is how many processes may call a tenant's API at once: the worker's SQS
// event source runs at most 5 (template.yaml, ScalingConfig.MaximumConcurrency), and the
// poller one (ReservedConcurrentExecutions: 1). Each spends an equal share of the budget.
const apiInstances = 6

// Role is what one function needs of its environment.
type Role struct {
	Name string
	// Store: the function reads and writes the copy (TABLE_NAME).
	Store bool
	// ReadOnly: the function only reads the copy (TABLE_NAME); it needs no queue, no
	// configuration and no secret, and builds no pipeline.
	ReadOnly bool
	// Publish: the function publishes change events (EVENT_BUS_NAME) from the table's
	// stream; it needs neither the configuration nor the queue.
	Publish bool
}

// The functions. Each but the read function needs the configuration (HALOSYNC_CONFIG_PARAMETER or
// HALOSYNC_CONFIG_FILE): the worker too, since it applies changes only for the connections
// it names, with their filters, stored fields and Halo API settings.
var (
	Ingest = Role{Name: "ingest"}
	Worker = Role{Name: "worker", Store: true}
	Poller = Role{Name: "poller", Store: true}
	// Reader serves the read routes: it reads the table by the connection ids in the path.
	Reader = Role{Name: "read", ReadOnly: true}
	// Publisher reads the table's stream, which its event source mapping hands it.
	Publisher = Role{Name: "publisher", Publish: true}
)

// ReadSettle is how long the read function leaves a write out of the changed listing
// (readapi.Options.Settle): the worker stamps a write a moment before DynamoDB has it, and
// GSI3 shows it a moment later still (usually well under a second); READ_SETTLE, a Go
// duration, overrides it.
const ReadSettle = 5 * time.Second

// Function is one function's wiring, built once per cold start.
type Function struct {
	Env      Env
	Log      *slog.Logger
	Queue    *sqsqueue.Queue
	Pipeline *pipeline.Pipeline
	// Metrics holds the invocation's counts until awslambda.Flushed writes them.
	Metrics *metrics.EMF
	// Store is the copy, for a ReadOnly role (its pipeline is nil).
	Store *dynamo.Store
	// Settle is the read function's settle window (ReadSettle, or READ_SETTLE).
	Settle time.Duration
	// Publisher puts change events on the bus (the publisher role only).
	Publisher *changeevent.Publisher
}

// Start reads the environment, loads the configuration and builds the role's pipeline
// over SQS and, for roles with a store, DynamoDB, counting in CloudWatch's embedded metric
// format on stdout (ColdStarts counted once, here). A function that cannot start logs why and exits: Lambda reports the
// failed init and retries it.
func Start(r Role) *Function {
	env := Read()
	log := env.Logger()
	f, err := env.build(context.Background(), r, log)
	if err != nil {
		log.Error("configuration", "function", r.Name, "error", err.Error())
		os.Exit(1)
	}
	f.Metrics.Count(metrics.Metric{Name: metrics.ColdStarts, Connection: metrics.FunctionConnection, Label: r.Name}, 1)
	slog.SetDefault(log)
	return f
}

func (e Env) build(ctx context.Context, r Role, log *slog.Logger) (*Function, error) {
	if r.ReadOnly {
		return e.buildReader(ctx, log)
	}
	if r.Publish {
		return e.buildPublisher(ctx, log)
	}
	required := []string{"QUEUE_URL"}
	if r.Store {
		required = append(required, "TABLE_NAME")
	}
	if err := e.Require(required...); err != nil {
		return nil, err
	}
	aws, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	cfg, err := e.LoadConfigFor(ctx, r, ssm.NewFromConfig(aws), secretsmanager.NewFromConfig(aws))
	if err != nil {
		return nil, err
	}
	sqsClient := sqs.NewFromConfig(aws)
	f := &Function{Env: e, Log: log, Queue: sqsqueue.New(sqsClient, e.QueueURL), Metrics: e.Metrics(os.Stdout)}
	ports := pipeline.Ports{Queue: f.Queue, Count: f.Metrics, Log: log, APIInstances: apiInstances}
	if e.DeadLetterURL != "" {
		ports.DeadLetters = sqsqueue.New(sqsClient, e.DeadLetterURL)
	}
	if r.Store {
		ports.Store = dynamo.New(dynamodb.NewFromConfig(aws), e.TableName)
	}
	if f.Pipeline, err = pipeline.Build(cfg, ports); err != nil {
		return nil, err
	}
	return f, nil
}

// buildReader wires a ReadOnly role: the table, nothing else.
func (e Env) buildReader(ctx context.Context, log *slog.Logger) (*Function, error) {
	if err := e.Require("TABLE_NAME"); err != nil {
		return nil, err
	}
	settle := ReadSettle
	if e.ReadSettle != "" {
		d, err := time.ParseDuration(e.ReadSettle)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("environment: READ_SETTLE %q is not a duration such as 5s", e.ReadSettle)
		}
		settle = d
	}
	aws, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	return &Function{Env: e, Log: log, Metrics: e.Metrics(os.Stdout), Store: dynamo.New(dynamodb.NewFromConfig(aws), e.TableName), Settle: settle}, nil
}

// buildPublisher wires the publisher: stream records read as the table's object items
// (dynamo.StreamEvent), events put on EVENT_BUS_NAME.
func (e Env) buildPublisher(ctx context.Context, log *slog.Logger) (*Function, error) {
	if err := e.Require("EVENT_BUS_NAME"); err != nil {
		return nil, err
	}
	aws, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	f := &Function{Env: e, Log: log, Metrics: e.Metrics(os.Stdout)}
	bus := eventbridgebus.New(eventbridge.NewFromConfig(aws), e.EventBusName)
	f.Publisher = changeevent.NewPublisher(dynamo.StreamEvent, bus, f.Metrics, log)
	return f, nil
}
