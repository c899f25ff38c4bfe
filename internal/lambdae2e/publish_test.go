package lambdae2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/metrics"
)

// publisherFilter is the filter pattern of the publisher's event source mapping, as
// template.yaml declares it.
func publisherFilter(t *testing.T) []byte {
	t.Helper()
	tpl, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*- Pattern: '(.*)'$`).FindSubmatch(tpl)
	if m == nil {
		t.Fatal("template.yaml declares no filter pattern")
	}
	return m[1]
}

// startPublisher runs the publisher's bootstrap under the emulator, its EventBridge the
// fake bus.
func startPublisher(t *testing.T, bus *awstest.EventBridge) *function {
	t.Helper()
	bins := build(t)
	env := append(awstest.ProcessEnv(t), "EVENT_BUS_NAME=halosync-changes", "AWS_ENDPOINT_URL_EVENTBRIDGE="+bus.URL, "LOG_LEVEL=debug")
	env = append(env, lambdaEnv(t, "halosync-publisher")...)
	f, out := startFunction(t, bins.rie, "publish", bins.bootstrap["publish"], env, events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{}})
	if r := decodeAs[events.DynamoDBEventResponse](t, f, out); len(r.BatchItemFailures) != 0 {
		t.Fatalf("the publisher answered an empty batch with failures %v", r.BatchItemFailures)
	}
	return f
}

// TestChangeEventsFromTheTablesStream plays the whole AWS path: deliveries through
// ingest and the worker into a table with a stream in DynamoDB Local; the stream's
// records, read with DynamoDB Streams' API and passed through the mapping's filter, into
// the publisher's bootstrap; its PutEvents to a fake EventBridge. One event per change
// that altered the copy; none for duplicates, a stale version or an event-only notice;
// an entry EventBridge refuses is the batch item failure, and the retry from it
// publishes it without repeating the others.
func TestChangeEventsFromTheTablesStream(t *testing.T) {
	t.Parallel()
	s := newStack(t, "events", streamed)
	bus := awstest.NewEventBridge(t)
	pub := startPublisher(t, bus)

	s.post(t, "ticket 4242", sampleEvent(t, "ingest-ticket-full.json"), http.StatusOK, 1)
	s.post(t, "4250 logged and reassigned, 4251 event only", sampleEvent(t, "ingest-ticket-batch.json"), http.StatusOK, 3)
	p := s.player
	p.runUntil(30*time.Second, "the first changes applied", func() bool { return len(p.deleted) == 4 })
	for i := range 2 {
		s.post(t, fmt.Sprintf("ticket 4242 again (%d)", i+1), sampleEvent(t, "ingest-ticket-full.json"), http.StatusOK, 1)
	}
	s.post(t, "an older version of 4242", olderTicketFull(t), http.StatusOK, 1)
	p.runUntil(30*time.Second, "the duplicates and the older version processed", func() bool { return len(p.deleted) == 7 })
	for id, n := range p.failures {
		t.Fatalf("message %s was reported failed %d times", id, n)
	}

	arn, all := awstest.StreamRecords(t, s.table)
	filter := publisherFilter(t)
	var passed []map[string]any
	var seqs []string // the passed records' sequence numbers
	objectWrites := map[string]int{}
	for _, r := range all {
		rec := r.Record(arn)
		doc, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := awstest.Matches(filter, doc)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			passed = append(passed, rec)
			seqs = append(seqs, r.Dynamodb.SequenceNumber)
			objectWrites[string(r.Dynamodb.Keys)]++
		}
	}
	// 4242 written once (its duplicates and the older version wrote nothing), 4250 twice,
	// 4251 once (its pending marker); the delivery records did not pass.
	if len(passed) != 4 || len(objectWrites) != 3 {
		t.Fatalf("%d of %d stream records passed the filter, of %d objects: %v", len(passed), len(all), len(objectWrites), objectWrites)
	}

	// EventBridge refuses the reassignment of 4250, whatever the publisher retries.
	reassigned := func(e awstest.PutEntry) bool {
		return strings.Contains(e.Detail, `"id":"4250"`) && strings.Contains(e.Detail, `"operation":"updated"`)
	}
	bus.Refuse(reassigned)
	batch := map[string]any{"Records": passed}
	r := invokeAs[events.DynamoDBEventResponse](t, pub, batch)
	if len(r.BatchItemFailures) != 1 {
		t.Fatalf("batch item failures %v, want the reassignment's record", r.BatchItemFailures)
	}
	failedSeq := r.BatchItemFailures[0].ItemIdentifier
	from := -1
	for i, seq := range seqs {
		if seq == failedSeq {
			from = i
		}
	}
	if from < 0 {
		t.Fatalf("the failure names %q, no record of the batch", failedSeq)
	}
	if n := len(bus.Accepted()); n != 2 {
		t.Fatalf("%d events accepted before the retry, want 2", n)
	}
	// The event source mapping retries from the failed record.
	bus.Refuse(nil)
	if r := invokeAs[events.DynamoDBEventResponse](t, pub, map[string]any{"Records": passed[from:]}); len(r.BatchItemFailures) != 0 {
		t.Fatalf("the retry failed %v", r.BatchItemFailures)
	}

	accepted := bus.Accepted()
	got := map[string]changeevent.Detail{}
	for _, e := range accepted {
		var d changeevent.Detail
		dec := json.NewDecoder(strings.NewReader(e.Detail))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			t.Fatalf("detail %s: %v", e.Detail, err)
		}
		if e.Source != "halosync" || e.EventBusName != "halosync-changes" || e.DetailType != string(d.Kind)+" "+d.Operation {
			t.Errorf("entry %+v", e)
		}
		if _, seen := got[d.EventID]; seen {
			t.Errorf("event %s published twice", d.EventID)
		}
		got[d.EventID] = d
	}
	if len(accepted) != 3 {
		t.Fatalf("%d events published, want 3 (4242 created, 4250 created and reassigned): %+v", len(accepted), accepted)
	}
	var update *changeevent.Detail
	for _, d := range got {
		if d.ID == "4250" && d.Operation == changeevent.Updated {
			update = &d
		}
		if d.ID == "4251" || d.Kind != change.Ticket || d.Connection != conn {
			t.Errorf("event %+v", d)
		}
	}
	if update == nil {
		t.Fatalf("no update of 4250 among %v", got)
	}
	if update.Changed["agent_id"].To != json.Number("11") || update.Changed["team_id"].To != json.Number("3") ||
		!strings.HasPrefix(update.Summary, "reassigned: ") || update.DeliveryID == "" {
		t.Errorf("the reassignment's event: changed %v, summary %q", update.Changed, update.Summary)
	}
	published := func(n int64) counts {
		return counts{{Name: metrics.EventsPublished, Connection: conn}: n}
	}
	awaitCounts(t, pub, metrics.EventsPublished, published(3))
	awaitCounts(t, pub, metrics.EventsFailed, counts{{Name: metrics.EventsFailed, Connection: conn, Label: "put_failed"}: 1})
}
