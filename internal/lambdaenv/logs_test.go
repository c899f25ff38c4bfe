package lambdaenv

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// TestLogLinesCarryTheInvocation: a line logged within an invocation carries its request
// id, and cold_start only within the first; a line outside any invocation carries
// neither; the level setting still holds.
func TestLogLinesCarryTheInvocation(t *testing.T) {
	var buf bytes.Buffer
	log := Env{LogLevel: "info"}.loggerTo(&buf).With("function", "worker")
	invocation := func(id string) context.Context {
		return lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: id})
	}
	log.Info("starting")
	log.InfoContext(invocation("r-1"), "first")
	log.InfoContext(invocation("r-1"), "first again")
	log.InfoContext(invocation("r-2"), "second")
	log.DebugContext(invocation("r-2"), "not shown")

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		lines = append(lines, m)
	}
	want := []struct {
		id   any
		cold any
	}{{nil, nil}, {"r-1", true}, {"r-1", true}, {"r-2", nil}}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if lines[i]["request_id"] != w.id || lines[i]["cold_start"] != w.cold || lines[i]["function"] != "worker" {
			t.Errorf("line %d %v: want request_id %v, cold_start %v, function worker", i, lines[i], w.id, w.cold)
		}
	}
}
