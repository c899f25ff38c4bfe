package lambdae2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/sqsqueue"
)

// The queue pair's settings: a short visibility timeout and few receives before the
// dead-letter queue, so retries and redrive happen within the test.
const (
	visibility = 2 * time.Second
	maxReceive = 3
)

// stack is one deployment of halosync on the local stand-ins: a fresh table, a fresh
// queue and dead-letter queue, and the two functions running under the emulator with
// them as their AWS.
type stack struct {
	sqs    *sqs.Client
	table  string
	queue  *sqsqueue.Queue // the changes queue
	dlq    *sqsqueue.Queue
	qURL   string
	dlqURL string
	store  *dynamo.Store
	ingest *function
	worker *function
	player *esmPlayer
	// deadLetterDirect gives the worker DEAD_LETTER_QUEUE_URL, as template.yaml does: it
	// moves permanent failures there itself, with their reason.
	deadLetterDirect bool
	config           string // the functions' configuration file (the example's copy)
	// tableOptions shape the table before it is created (dynamo.WithStream).
	tableOptions []func(*dynamodb.CreateTableInput)
}

// stackOption shapes a stack before its functions start.
type stackOption func(*stack)

// deadLettersDirect deploys the worker as template.yaml does, with its dead-letter queue.
func deadLettersDirect(s *stack) { s.deadLetterDirect = true }

// streamed gives the stack's table its stream, as template.yaml does (only the tests that
// read it: DynamoDB Local's streams slow every write).
func streamed(s *stack) { s.tableOptions = append(s.tableOptions, dynamo.WithStream) }

var stackSeq atomic.Int64

// newStack deploys a stack for the test; everything is removed when the test ends. It
// skips (or under CI fails) when the stand-ins' endpoints are not set.
func newStack(t *testing.T, label string, opts ...stackOption) *stack {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the Lambda runtime interface emulator runs on Linux only")
	}
	ddb := awstest.DynamoDB(t)
	sq := awstest.SQS(t)
	bins := build(t)
	t.Logf("bootstraps and emulator built for %s/%s in %v (once per run)", runtime.GOOS, runtime.GOARCH, buildTook.Round(time.Millisecond))
	ctx := t.Context()
	s := &stack{sqs: sq}
	for _, o := range opts {
		o(s)
	}

	name := fmt.Sprintf("halosync-e2e-%s-%s-%d", label, strconv.FormatInt(time.Now().UnixNano(), 36), stackSeq.Add(1))
	s.table = name
	if err := dynamo.CreateTable(ctx, ddb, name, s.tableOptions...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTable(t, ddb, name) })
	var err error
	queues := sqsqueue.NewClient(awstest.SQSConfig(t))
	s.qURL, s.dlqURL, err = sqsqueue.CreateQueuePair(ctx, queues, name, visibility, maxReceive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteQueues(t, sq, s.qURL, s.dlqURL) })
	s.queue, s.dlq = sqsqueue.New(queues, s.qURL), sqsqueue.New(queues, s.dlqURL)
	s.store = dynamo.New(ddb, name)

	// The configuration document, as HALOSYNC_CONFIG_FILE: the example, copied.
	example, err := os.ReadFile(filepath.Join(root, "halosync.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, example, 0o600); err != nil {
		t.Fatal(err)
	}
	s.config = cfgFile
	fnEnv := func(fn string) []string { return s.env(t, fn, cfgFile, "debug") }

	// Warm-ups: a GET, which ingest refuses (405) before looking at anything else, and
	// an empty SQS batch.
	var out []byte
	s.ingest, out = startFunction(t, bins.rie, "ingest", bins.bootstrap["ingest"], fnEnv("ingest"), warmupIngest)
	if r := decodeAs[events.APIGatewayV2HTTPResponse](t, s.ingest, out); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("ingest answered a GET with %d %s, want 405", r.StatusCode, r.Body)
	}
	s.worker, out = startFunction(t, bins.rie, "worker", bins.bootstrap["worker"], fnEnv("worker"), events.SQSEvent{Records: []events.SQSMessage{}})
	if r := decodeAs[events.SQSEventResponse](t, s.worker, out); len(r.BatchItemFailures) != 0 {
		t.Fatalf("worker answered an empty batch with failures %v", r.BatchItemFailures)
	}

	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.qURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("queue ARN: %v", err)
	}
	arn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		t.Fatalf("the queue %s has no QueueArn attribute", s.qURL)
	}
	s.player = newPlayer(t, s.queue, s.worker, arn)
	return s
}

// startConfigured runs the named function's bootstrap under its own emulator on the
// stack's queue and table, configured by the document at cfgFile (HALOSYNC_CONFIG_FILE),
// as newStack runs its functions with the example configuration.
func startConfigured(t *testing.T, s *stack, fn, cfgFile string, warmup any) *function {
	t.Helper()
	bins := build(t)
	env := s.env(t, fn, cfgFile, "info")
	f, out := startFunction(t, bins.rie, fn+"-configured", bins.bootstrap[fn], env, warmup)
	switch fn {
	case "ingest":
		if r := decodeAs[events.APIGatewayV2HTTPResponse](t, f, out); r.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("ingest answered the warm-up GET with %d %s, want 405 (did the configuration load?)", r.StatusCode, r.Body)
		}
	case "worker":
		if r := decodeAs[events.SQSEventResponse](t, f, out); len(r.BatchItemFailures) != 0 {
			t.Fatalf("worker answered an empty batch with failures %v", r.BatchItemFailures)
		}
	}
	return f
}

// env is the whole environment of function fn on the stack's queue and table, configured
// by the document at cfgFile, logging at logLevel.
func (s *stack) env(t *testing.T, fn, cfgFile, logLevel string) []string {
	t.Helper()
	env := awstest.ProcessEnv(t)
	if s.deadLetterDirect && strings.HasPrefix(fn, "worker") {
		env = append(env, "DEAD_LETTER_QUEUE_URL="+s.dlqURL)
	}
	env = append(env,
		"QUEUE_URL="+s.qURL,
		"TABLE_NAME="+s.table,
		"HALOSYNC_CONFIG_FILE="+cfgFile,
		"LOG_LEVEL="+logLevel,
	)
	return append(env, lambdaEnv(t, "halosync-"+fn)...)
}

// lambdaEnv is what Lambda gives every function named name (its timeout, memory and name),
// and nothing from the developer's AWS setup: no shared config, no instance metadata.
func lambdaEnv(t testing.TB, name string) []string {
	home := t.TempDir()
	return []string{
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(int(functionTimeout/time.Second)),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_FUNCTION_NAME=" + name,
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"PATH=/usr/bin:/bin",
		"TZ=UTC",
	}
}

// warmupIngest is the ingest warm-up invoke: a GET to no connection.
var warmupIngest = events.APIGatewayV2HTTPRequest{
	Version:  "2.0",
	RouteKey: "GET " + ingest.PathPrefix,
	RawPath:  ingest.PathPrefix,
	RequestContext: events.APIGatewayV2HTTPRequestContext{
		RequestID: "warm-up",
		HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: ingest.PathPrefix, SourceIP: "127.0.0.1"},
	},
}

// depth is the number of messages in a queue: visible, in flight and delayed.
func (s *stack) depth(t *testing.T, queueURL string) int {
	t.Helper()
	names := []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
	}
	out, err := s.sqs.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL), AttributeNames: names})
	if err != nil {
		t.Fatalf("queue attributes of %s: %v", queueURL, err)
	}
	total := 0
	for _, n := range names {
		v, ok := out.Attributes[string(n)]
		if !ok {
			t.Fatalf("queue %s: no %s attribute in %v", queueURL, n, out.Attributes)
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("queue %s: %s = %q", queueURL, n, v)
		}
		total += i
	}
	return total
}

func deleteTable(t *testing.T, c *dynamodb.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
		t.Logf("cleanup: delete table %s: %v", name, err)
	}
}

func deleteQueues(t *testing.T, c *sqs.Client, urls ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, u := range urls {
		if _, err := c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(u)}); err != nil {
			t.Logf("cleanup: delete queue %s: %v", u, err)
		}
	}
}
