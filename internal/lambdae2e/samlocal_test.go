package lambdae2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/sqsqueue"
)

// What `sam local invoke` gives every function besides the template's variables: its
// placeholder credentials and region when no AWS credentials are configured
// (samcli/local/lambdafn/env_vars.py), and the task root it mounts the build at.
const (
	samRegion    = "us-east-1"
	samAccessKey = "defaultkey"
	samSecretKey = "defaultsecret"
	samTaskRoot  = "/var/task"
)

// The container's view of this machine, as events/local-env.json writes it: the host is
// host.docker.internal, its SQS stand-in listens on 4566 and DynamoDB Local on 8000.
const (
	containerHost = "host.docker.internal"
	sqsPort       = "4566"
	dynamoPort    = "8000"
)

// readLocalEnv decodes events/local-env.json: function logical id -> variable -> value.
func readLocalEnv(t *testing.T) map[string]map[string]string {
	t.Helper()
	var env map[string]map[string]string
	dec := json.NewDecoder(bytes.NewReader(sampleEvent(t, "local-env.json")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("events/local-env.json: %v", err)
	}
	return env
}

// samBuild runs the Makefile target sam build runs for the function, for the host's
// architecture (GOARCH_LAMBDA, as README says for an x86_64 machine), into a new directory:
// what `sam local invoke` mounts at /var/task.
func samBuild(t *testing.T, logicalID string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build-"+logicalID, "ARTIFACTS_DIR="+dir, "GOARCH_LAMBDA="+runtime.GOARCH)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-%s: %v\n%s", logicalID, err, out)
	}
	return dir
}

// portOf is the port of an http URL.
func portOf(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil || u.Port() == "" {
		t.Fatalf("stand-in endpoint %q has no port: %v", endpoint, err)
	}
	return u.Port()
}

// hostView maps the env file's values from the container's view to this machine's: /var/task
// is the function's build directory, host.docker.internal is loopback, and the stand-ins'
// default ports are the running stand-ins' ports. The endpoints it yields must be the
// stand-ins'.
func hostView(t *testing.T, vars map[string]string, buildDir string) map[string]string {
	t.Helper()
	sqsEndpoint, dynamoEndpoint := awstest.SQSEndpoint(t), awstest.DynamoDBEndpoint(t)
	r := strings.NewReplacer(
		samTaskRoot, buildDir,
		containerHost, "127.0.0.1",
		":"+sqsPort, ":"+portOf(t, sqsEndpoint),
		":"+dynamoPort, ":"+portOf(t, dynamoEndpoint),
	)
	out := map[string]string{}
	for k, v := range vars {
		out[k] = r.Replace(v)
	}
	for name, want := range map[string]string{"AWS_ENDPOINT_URL_SQS": sqsEndpoint, "AWS_ENDPOINT_URL_DYNAMODB": dynamoEndpoint} {
		if got, ok := out[name]; ok && got != want {
			t.Fatalf("%s is %q in the env file: not the %s stand-in on the host's port %s", name, vars[name], name, map[string]string{sqsEndpoint: sqsPort, dynamoEndpoint: dynamoPort}[want])
		}
	}
	return out
}

// samLocalEnv is the whole environment `sam local invoke --env-vars events/local-env.json`
// gives the function without AWS credentials: SAM's own variables and the env file's, in this
// machine's view, and nothing of the developer's AWS setup.
func samLocalEnv(t *testing.T, logicalID string, vars map[string]string) []string {
	t.Helper()
	env := append(lambdaEnv(t, logicalID),
		"AWS_SAM_LOCAL=true",
		"AWS_REGION="+samRegion,
		"AWS_DEFAULT_REGION="+samRegion,
		"AWS_ACCESS_KEY_ID="+samAccessKey,
		"AWS_SECRET_ACCESS_KEY="+samSecretKey,
	)
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// TestSamLocalInvokeWithTheEnvFile runs what README's `sam local invoke ... --env-vars
// events/local-env.json` runs, without Docker: each function's build from its Makefile target,
// under the emulator with the env file's variables (in this machine's view) and SAM's
// placeholder credentials, on the stand-ins' queue and table the env file names. The ingest
// function accepts events/ingest-ticket-full.json (200, one change on the queue) with the
// local configuration's credentials and refuses events/ingest-wrong-password.json (401), the
// worker applies events/worker-sqs-batch.json to the table, and the poller answers
// events/poller-schedule.json, and the publisher puts events/publisher-stream-batch.json's
// two events on its bus (a fake EventBridge). None needs SSM or Secrets Manager: with placeholder
// credentials and no endpoint for them, a call would fail.
func TestSamLocalInvokeWithTheEnvFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Lambda runtime interface emulator runs on Linux only")
	}
	ddb := awstest.DynamoDB(t)
	sq := sqs.NewFromConfig(awstest.Config(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(awstest.SQSEndpoint(t))
		o.Region = samRegion // the region SAM gives the functions, part of the stand-in's queue URLs
	})
	bins := build(t)
	ctx := t.Context()
	file := readLocalEnv(t)

	builds := map[string]string{}
	vars := map[string]map[string]string{}
	for _, fn := range []string{"IngestFunction", "WorkerFunction", "PollerFunction", "PublisherFunction"} {
		builds[fn] = samBuild(t, fn)
		vars[fn] = hostView(t, file[fn], builds[fn])
	}

	// The queue pair and the table the env file names, new for this test.
	queueURL, dlqURL, table := vars["IngestFunction"]["QUEUE_URL"], vars["WorkerFunction"]["DEAD_LETTER_QUEUE_URL"], vars["WorkerFunction"]["TABLE_NAME"]
	for _, fn := range []string{"WorkerFunction", "PollerFunction"} {
		if vars[fn]["QUEUE_URL"] != queueURL || vars[fn]["TABLE_NAME"] != table {
			t.Fatalf("%s: queue %s table %s; the ingest function's queue is %s, the worker's table %s", fn, vars[fn]["QUEUE_URL"], vars[fn]["TABLE_NAME"], queueURL, table)
		}
	}
	name := path.Base(queueURL)
	deleteQueues(t, sq, queueURL, dlqURL) // left by an interrupted run, if any
	queuesCfg := awstest.SQSConfig(t)
	queuesCfg.Region = samRegion
	gotQueue, gotDLQ, err := sqsqueue.CreateQueuePair(ctx, sqsqueue.NewClient(queuesCfg), name, visibility, maxReceive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteQueues(t, sq, gotQueue, gotDLQ) })
	if gotQueue != queueURL || gotDLQ != dlqURL {
		t.Fatalf("the SQS stand-in names the queues %s and %s; the env file says %s and %s", gotQueue, gotDLQ, queueURL, dlqURL)
	}
	deleteTable(t, ddb, table)
	if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTable(t, ddb, table) })

	start := func(fn, short string, warmup any) *function {
		f, _ := startFunction(t, bins.rie, short+"-sam-local", filepath.Join(builds[fn], "bootstrap"), samLocalEnv(t, fn, vars[fn]), warmup)
		return f
	}

	t.Run("ingest", func(t *testing.T) {
		f := start("IngestFunction", "ingest", warmupIngest)
		resp := invokeAs[events.APIGatewayV2HTTPResponse](t, f, sampleEvent(t, "ingest-ticket-full.json"))
		if resp.StatusCode != http.StatusOK || resp.Body != `{"status":"accepted","changes":1}` {
			t.Fatalf("ingest-ticket-full.json: %d %s, want 200 with one change accepted", resp.StatusCode, resp.Body)
		}
		out, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 1 || !strings.Contains(aws.ToString(out.Messages[0].Body), `"id":"4242"`) {
			t.Fatalf("the queue holds %d messages %v, want the change of ticket 4242", len(out.Messages), out.Messages)
		}
		resp = invokeAs[events.APIGatewayV2HTTPResponse](t, f, sampleEvent(t, "ingest-wrong-password.json"))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("ingest-wrong-password.json: %d %s, want 401", resp.StatusCode, resp.Body)
		}
	})

	t.Run("worker", func(t *testing.T) {
		f := start("WorkerFunction", "worker", events.SQSEvent{Records: []events.SQSMessage{}})
		resp := invokeAs[events.SQSEventResponse](t, f, sampleEvent(t, "worker-sqs-batch.json"))
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("worker-sqs-batch.json: failures %v", resp.BatchItemFailures)
		}
		o, ok, err := dynamo.New(ddb, table).Get(ctx, "default", change.Ticket, "4242", "")
		if err != nil || !ok || o.Fields["summary"] != "Printer on the 3rd floor is jammed" {
			t.Fatalf("ticket 4242 in %s: %+v found %v err %v", table, o, ok, err)
		}
	})

	t.Run("poller", func(t *testing.T) {
		f := start("PollerFunction", "poller", json.RawMessage(sampleEvent(t, "poller-schedule.json")))
		res := invokeAs[awslambda.PollResult](t, f, sampleEvent(t, "poller-schedule.json"))
		// The local configuration's connection has no halo: settings: nothing to poll.
		if res.EventID != "5e1c7f3a-9b2d-4c61-8a0e-2f4d6b8c1a90" || len(res.Connections) != 0 {
			t.Fatalf("poller-schedule.json: %+v, want the event's id and no connection polled", res)
		}
	})

	// No stand-in exists for EventBridge: as README says, the publisher's entry gets one
	// more variable, here a fake bus.
	t.Run("publisher", func(t *testing.T) {
		bus := awstest.NewEventBridge(t)
		vars["PublisherFunction"]["AWS_ENDPOINT_URL_EVENTBRIDGE"] = bus.URL
		f := start("PublisherFunction", "publisher", events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{}})
		resp := invokeAs[events.DynamoDBEventResponse](t, f, sampleEvent(t, "publisher-stream-batch.json"))
		if len(resp.BatchItemFailures) != 0 {
			t.Fatalf("publisher-stream-batch.json: failures %v", resp.BatchItemFailures)
		}
		got := bus.Accepted()
		if len(got) != 2 || got[0].DetailType != "ticket created" || got[1].DetailType != "ticket updated" || got[1].EventBusName != file["PublisherFunction"]["EVENT_BUS_NAME"] {
			t.Fatalf("published %+v, want ticket 4242 created and updated on the env file's bus", got)
		}
	})
}
