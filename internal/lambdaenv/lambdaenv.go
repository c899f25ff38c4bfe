// Package lambdaenv starts a Lambda function: it reads the function's settings from its
// environment once, with the SDK configuration its clients use (AWS), its logger and its
// metrics. The functions that run the pipeline (ingest, worker, poller) then load the
// configuration and build it (internal/lambdapipeline); the read and publish functions
// open the clients they call. It links no SDK service client: each function's main opens
// those it calls (dynamo.Open, eventbridgebus.Open, sqsqueue.Open through
// lambdapipeline), so a bootstrap carries and initialises only those (docs/PERFORMANCE.md,
// "Cold start").
//
// template.yaml declares AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_EVENTBRIDGE empty, and `sam local invoke --env-vars
// events/local-env.json` sets them (SAM overrides only declared variables) to the
// endpoints of local stand-ins, which the clients take (AWS).
package lambdaenv

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/halosync/halosync/internal/metrics"
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

// The functions. Each but the read and publish functions needs the configuration
// (HALOSYNC_CONFIG_PARAMETER or HALOSYNC_CONFIG_FILE, internal/lambdapipeline): the
// worker too, since it applies changes only for the connections it names, with their
// filters, stored fields and Halo API settings.
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

// Function is one function's start, made once per cold start.
type Function struct {
	Env  Env
	Role Role
	Log  *slog.Logger
	// AWS is the SDK configuration from the environment (AWS), for the function's clients.
	AWS aws.Config
	// Metrics holds the invocation's counts until lambdaevent.Flushed writes them.
	Metrics *metrics.EMF
	// Settle is the read function's settle window (ReadSettle, or READ_SETTLE).
	Settle time.Duration
}

// Start reads the environment, the variables the role needs checked, counting in
// CloudWatch's embedded metric format on stdout (ColdStarts counted once, here). A
// function that cannot start logs why and exits (Fail).
func Start(r Role) *Function {
	env := Read()
	log := env.Logger()
	f, err := env.build(r, log)
	if err != nil {
		fail(log, r, err)
	}
	f.Metrics.Count(metrics.Metric{Name: metrics.ColdStarts, Connection: metrics.FunctionConnection, Label: r.Name}, 1)
	slog.SetDefault(log)
	return f
}

// Fail logs why the function cannot start and exits: Lambda reports the failed init and
// retries it.
func (f *Function) Fail(err error) { fail(f.Log, f.Role, err) }

func fail(log *slog.Logger, r Role, err error) {
	log.Error("configuration", "function", r.Name, "error", err.Error())
	os.Exit(1)
}

func (e Env) build(r Role, log *slog.Logger) (*Function, error) {
	var required []string
	switch {
	case r.ReadOnly:
		required = []string{"TABLE_NAME"}
	case r.Publish:
		required = []string{"EVENT_BUS_NAME"}
	case r.Store:
		required = []string{"QUEUE_URL", "TABLE_NAME"}
	default:
		required = []string{"QUEUE_URL"}
	}
	if err := e.Require(required...); err != nil {
		return nil, err
	}
	f := &Function{Env: e, Role: r, Log: log, Metrics: e.Metrics(os.Stdout)}
	if r.ReadOnly {
		f.Settle = ReadSettle
		if e.ReadSettle != "" {
			d, err := time.ParseDuration(e.ReadSettle)
			if err != nil || d < 0 {
				return nil, fmt.Errorf("environment: READ_SETTLE %q is not a duration such as 5s", e.ReadSettle)
			}
			f.Settle = d
		}
	}
	var err error
	if f.AWS, err = AWS(); err != nil {
		return nil, err
	}
	return f, nil
}
