package faulttest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/faultproxy"
	"github.com/halosync/halosync/internal/halotest/converge"
	"github.com/halosync/halosync/internal/metrics"
)

// scenario is one fault on one service.
type scenario struct {
	name    string
	adapter adapter
	rule    faultproxy.Rule
	// minFaults is how many requests must have been faulted before the fault is cleared:
	// a scenario whose fault never struck proves nothing.
	minFaults int
}

// halo429 is Halo's rate limit with a Retry-After of a second.
var halo429 = faultproxy.HaloRateLimited(1)

// scenarios are latency, connection resets, requests held until the client gives up,
// throttling and server errors, on each service. A reset on an AWS service loses the
// answer of a request the service carried out (the worse case: a retried write finds
// its own effect); Halo's reads are the same either way.
var scenarios = []scenario{
	{"latency", dynamoDB, faultproxy.Rule{Fault: faultproxy.Latency(40 * time.Millisecond)}, 30},
	{"reset", dynamoDB, faultproxy.Rule{Fault: faultproxy.LoseAnswer(), Every: 3}, 6},
	{"hang", dynamoDB, faultproxy.Rule{Fault: faultproxy.Hang(), Every: 5}, 3},
	{"throughput exceeded", dynamoDB, faultproxy.Rule{Fault: faultproxy.DynamoDBThroughputExceeded(), Every: 2}, 10},
	{"throttling", dynamoDB, faultproxy.Rule{Fault: faultproxy.DynamoDBThrottling()}, 10},
	{"500", dynamoDB, faultproxy.Rule{Fault: faultproxy.DynamoDBInternalError(), Every: 2}, 10},

	{"latency", sqsQueue, faultproxy.Rule{Fault: faultproxy.Latency(40 * time.Millisecond)}, 20},
	{"reset", sqsQueue, faultproxy.Rule{Fault: faultproxy.LoseAnswer(), Every: 3}, 6},
	{"hang", sqsQueue, faultproxy.Rule{Fault: faultproxy.Hang(), Every: 4}, 3},
	{"throttled", sqsQueue, faultproxy.Rule{Fault: faultproxy.SQSThrottled()}, 10},
	{"500", sqsQueue, faultproxy.Rule{Fault: faultproxy.SQSInternalError(), Every: 2}, 10},

	{"latency", haloAPI, faultproxy.Rule{Fault: faultproxy.Latency(60 * time.Millisecond)}, 10},
	{"reset", haloAPI, faultproxy.Rule{Fault: faultproxy.Reset(), Every: 2}, 5},
	{"hang", haloAPI, faultproxy.Rule{Fault: faultproxy.Hang(), Every: 3}, 3},
	{"429", haloAPI, faultproxy.Rule{Fault: halo429}, 6},
	{"502", haloAPI, faultproxy.Rule{Fault: faultproxy.GatewayError(http.StatusBadGateway), Every: 2}, 6},
}

// TestFaults runs every scenario, each on its own queue pair, tenant and proxies, all on
// one table (every key starts with the connection id, so scenarios never meet).
func TestFaults(t *testing.T) {
	ddb := awstest.DynamoDB(t)
	table := fmt.Sprintf("halosync-faults-%d", time.Now().UnixNano())
	if err := dynamo.CreateTable(t.Context(), ddb, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("delete table %s: %v", table, err)
		}
	})
	for i, sc := range scenarios {
		t.Run(string(sc.adapter)+"/"+sc.name, func(t *testing.T) {
			t.Parallel()
			conn := string(sc.adapter) + "-" + strings.ReplaceAll(sc.name, " ", "-")
			run(t, newHarness(t, table, conn, uint64(20261001+i)), sc)
		})
	}
}

// run turns the scenario's fault on while the tenant changes and its webhooks deliver,
// clears it after its window, lets everything settle and checks the copy.
func run(t *testing.T, h *harness, sc scenario) {
	start := time.Now()
	p := h.proxy[sc.adapter]
	p.Set(sc.rule)
	windowEnd := make(chan error, 1)
	go func() {
		pause(t.Context(), window)
		ctx, cancel := context.WithTimeout(t.Context(), windowMax-window)
		defer cancel()
		err := p.WaitFaulted(ctx, sc.minFaults)
		p.Clear()
		windowEnd <- err
	}()
	h.plant()
	h.change()
	if err := <-windowEnd; err != nil {
		t.Errorf("%s on %s: %v; the scenario needs at least %d", sc.rule.Fault.Name, sc.adapter, err, sc.minFaults)
	}
	h.redeliver(t.Context())
	h.drain(planted)

	stats := p.Stats()
	t.Logf("%s on %s: %d requests faulted, %d forwarded; %d batches past their deadline, %d receives or deletes failed; ChangesFailed %v; settled in %s",
		sc.rule.Fault.Name, sc.adapter, stats.Faulted, stats.Forwarded, h.timedOut.Load(), h.failures.Load(),
		failedByReason(h.counts, h.conn), time.Since(start).Round(10*time.Millisecond))

	// Every adapter went through its proxy, and event-only deliveries were fetched
	// through Halo's.
	for a, q := range h.proxy {
		if q.Stats().Forwarded == 0 {
			t.Errorf("no request to %s went through its proxy", a)
		}
	}
	if n := h.counts.Value(metrics.Metric{Name: metrics.ChangesFetched, Connection: h.conn, Label: "found"}); n == 0 {
		t.Error("the worker fetched nothing from Halo; the scenario needs event-only deliveries")
	}

	exps := converge.Expectations(t, h.tenant, h.sent)
	converge.WantConverged(t, exps, h.sent, func(kind change.Kind, id, parentID string) (change.Object, bool, error) {
		return h.copy.Get(t.Context(), h.conn, kind, id, parentID)
	})
	h.wantNothingElse(exps)
	h.wantAcknowledgedApplied()
	h.wantDeadLetters()
}

// failedByReason reads the ChangesFailed counters of conn.
func failedByReason(c *metrics.Memory, conn string) map[string]int64 {
	out := map[string]int64{}
	for _, e := range c.Snapshot() {
		if e.Metric.Name == metrics.ChangesFailed && (e.Metric.Connection == conn || e.Metric.Connection == "_unknown") {
			out[e.Metric.Label] += e.Value
		}
	}
	return out
}
