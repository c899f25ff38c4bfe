package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"gopkg.in/yaml.v3"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
)

// localEnvFile is the file `sam local invoke --env-vars` reads: variables per function.
const localEnvFile = "local-env.json"

// taskRoot is where `sam local invoke` mounts a function's build (LAMBDA_TASK_ROOT).
const taskRoot = "/var/task"

// readLocalEnv decodes the env file: function logical id -> variable -> value.
func readLocalEnv(t *testing.T) map[string]map[string]string {
	t.Helper()
	var env map[string]map[string]string
	decodeStrict(t, localEnvFile, &env)
	return env
}

// declaredVariables reads template.yaml: the environment variables each function declares,
// its own and Globals' (SAM merges them), by logical id.
func declaredVariables(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		t.Fatalf("template.yaml: %v", err)
	}
	root := doc.Content[0]
	global := keys(child(root, "Globals", "Function", "Environment", "Variables"))
	out := map[string][]string{}
	for _, id := range keys(child(root, "Resources")) {
		res := child(root, "Resources", id)
		if typ := child(res, "Type"); typ == nil || typ.Value != "AWS::Serverless::Function" {
			continue
		}
		out[id] = append(slices.Clone(global), keys(child(res, "Properties", "Environment", "Variables"))...)
	}
	if len(out) == 0 {
		t.Fatal("template.yaml declares no AWS::Serverless::Function")
	}
	return out
}

// child is the value under the path of keys in a YAML mapping, or nil.
func child(n *yaml.Node, path ...string) *yaml.Node {
	for _, p := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == p {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

// keys are a YAML mapping's keys.
func keys(n *yaml.Node) []string {
	var out []string
	for i := 0; n != nil && n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// TestLocalEnvFileDeclaredVariables: every function of the template has its entry in the
// env file, and every variable the file sets is one the template declares for that function:
// SAM silently ignores any other, so a misspelt or undeclared one would leave the function
// reading its configuration from SSM.
func TestLocalEnvFileDeclaredVariables(t *testing.T) {
	env := readLocalEnv(t)
	declared := declaredVariables(t)
	for fn := range env {
		if _, ok := declared[fn]; !ok {
			t.Errorf("%s names %s, which is no AWS::Serverless::Function of template.yaml (SAM would ignore it)", localEnvFile, fn)
		}
	}
	for fn, names := range declared {
		vars, ok := env[fn]
		if !ok {
			t.Errorf("%s has no entry for %s", localEnvFile, fn)
			continue
		}
		for name := range vars {
			if !slices.Contains(names, name) {
				t.Errorf("%s: %s sets %s, which template.yaml does not declare for it (SAM overrides only declared variables)", localEnvFile, fn, name)
			}
		}
		if vars["HALOSYNC_CONFIG_FILE"] == "" && slices.Contains(names, "HALOSYNC_CONFIG_FILE") {
			t.Errorf("%s: %s sets no HALOSYNC_CONFIG_FILE: it would read the SSM parameter", localEnvFile, fn)
		}
	}
}

// artifactFiles runs the Makefile target sam build runs for fn into a new directory, with the
// go command replaced by true: what the target puts there besides the bootstrap.
func artifactFiles(t *testing.T, fn string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build-"+fn, "ARTIFACTS_DIR="+dir, "GO=true")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-%s: %v\n%s", fn, err, out)
	}
	return dir
}

// refuseReferences resolves no reference: the local configuration must need neither
// Secrets Manager nor SSM nor the container's environment.
type refuseReferences struct{}

func (refuseReferences) Resolve(_ context.Context, ref string) (string, error) {
	return "", fmt.Errorf("the local configuration refers to %q; it must hold its sample values inline", ref)
}

// TestLocalEnvConfigIsInTheBuild: the configuration file each function's HALOSYNC_CONFIG_FILE
// names is under /var/task, and the function's Makefile target (what sam build runs) puts it
// into the build there; it holds inline sample values only, and accepts the sample events'
// credentials. A function that reads no configuration (the template declares no
// HALOSYNC_CONFIG_FILE for it: the read function) has none to check.
func TestLocalEnvConfigIsInTheBuild(t *testing.T) {
	env := readLocalEnv(t)
	declared := declaredVariables(t)
	for _, fn := range slices.Sorted(maps.Keys(env)) {
		if !slices.Contains(declared[fn], "HALOSYNC_CONFIG_FILE") {
			continue
		}
		t.Run(fn, func(t *testing.T) {
			file := env[fn]["HALOSYNC_CONFIG_FILE"]
			rel, ok := strings.CutPrefix(file, taskRoot+"/")
			if !ok || rel != path.Clean(rel) || strings.HasPrefix(rel, "../") {
				t.Fatalf("HALOSYNC_CONFIG_FILE %q is not a file under %s, where sam local invoke mounts the build", file, taskRoot)
			}
			data, err := os.ReadFile(filepath.Join(artifactFiles(t, fn), filepath.FromSlash(rel)))
			if err != nil {
				t.Fatalf("the build of %s lacks %s: %v", fn, file, err)
			}
			cfg, err := config.Parse(context.Background(), data, refuseReferences{})
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			// The sample delivery is accepted with this configuration (its Authorization
			// header carries the configuration's credentials).
			var e events.APIGatewayV2HTTPRequest
			decodeStrict(t, "ingest-ticket-full.json", &e)
			conns, err := connection.CompileAll(cfg)
			if err != nil {
				t.Fatal(err)
			}
			q := &sent{}
			h := ingest.New(conns, q, metrics.Discard{}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
			resp, err := awslambda.Ingest(h)(context.Background(), e)
			if err != nil || resp.StatusCode != 200 || len(q.msgs) != 1 {
				t.Fatalf("ingest-ticket-full.json with %s: status %d body %s err %v, %d changes; want 200 and 1", file, resp.StatusCode, resp.Body, err, len(q.msgs))
			}
		})
	}
}

// localTableFile is the table the env file names, as `aws dynamodb create-table
// --cli-input-json` reads it.
const localTableFile = "local-table.json"

// TestLocalTableIsTheTemplates: the table README creates in DynamoDB Local from
// local-table.json is the one the functions use (dynamo.TableInput, which template.yaml's
// Table matches), under the name the env file gives the worker and the poller.
func TestLocalTableIsTheTemplates(t *testing.T) {
	env := readLocalEnv(t)
	var got dynamodb.CreateTableInput
	decodeStrict(t, localTableFile, &got)
	for _, fn := range []string{"WorkerFunction", "PollerFunction"} {
		if name := env[fn]["TABLE_NAME"]; name != aws.ToString(got.TableName) {
			t.Errorf("%s: TABLE_NAME %q, %s creates %q", fn, name, localTableFile, aws.ToString(got.TableName))
		}
	}
	if want := dynamo.TableInput(aws.ToString(got.TableName)); !reflect.DeepEqual(&got, want) {
		gotJSON, _ := json.Marshal(&got)
		wantJSON, _ := json.Marshal(want)
		t.Errorf("%s creates\n%s\nthe functions' table is\n%s", localTableFile, gotJSON, wantJSON)
	}
}

// notAnEvent are the files in events/ that are not sample events.
var notAnEvent = []string{localEnvFile, localTableFile}
