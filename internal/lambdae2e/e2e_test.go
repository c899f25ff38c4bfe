package lambdae2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// conn is the connection of the sample events (halosync.example.yaml's only one).
const conn = "default"

// ingestWant is, for each sample API Gateway event, the status ingest must answer and the
// number of changes it must enqueue. A new sample file must be added here.
var ingestWant = map[string]struct {
	status  int
	changes int
}{
	"ingest-ticket-base64.json":     {http.StatusOK, 1}, // ticket 4242, the same delivery as -full
	"ingest-ticket-batch.json":      {http.StatusOK, 3}, // 4250 logged, 4250 reassigned, 4251 event only
	"ingest-ticket-event-only.json": {http.StatusOK, 1}, // 4244, no snapshot
	"ingest-ticket-full.json":       {http.StatusOK, 1}, // 4242, full snapshot
	// 4242 again, the same delivery through the function URL (the backup endpoint)
	"ingest-ticket-function-url.json": {http.StatusOK, 1},
	"ingest-ticket-small.json":        {http.StatusOK, 1}, // 4243, small snapshot without last_update
	"ingest-wrong-password.json":      {http.StatusUnauthorized, 0},
}

// sampleEvent reads events/<name>.
func sampleEvent(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// post plays API Gateway: it invokes ingest with an API Gateway HTTP API (payload 2.0)
// event, checks the answer's status and, for an accepted delivery, the number of changes
// it reports, and that the queue grew by exactly that many messages.
func (s *stack) post(t *testing.T, label string, event []byte, status, changes int) {
	t.Helper()
	before := s.depth(t, s.qURL)
	resp := invokeAs[events.APIGatewayV2HTTPResponse](t, s.ingest, event)
	if resp.StatusCode != status {
		t.Fatalf("%s: ingest answered %d %s, want %d", label, resp.StatusCode, resp.Body, status)
	}
	if ct := resp.Headers["content-type"]; ct != "application/json" {
		t.Fatalf("%s: content-type %q", label, ct)
	}
	if status == http.StatusOK {
		var body struct {
			Status  string `json:"status"`
			Changes int    `json:"changes"`
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil || body.Status != "accepted" || body.Changes != changes {
			t.Fatalf("%s: ingest answered %s, want {\"status\":\"accepted\",\"changes\":%d}", label, resp.Body, changes)
		}
	}
	if grew := s.depth(t, s.qURL) - before; grew != changes {
		t.Fatalf("%s: the queue grew by %d messages, want %d", label, grew, changes)
	}
}

// ticket reads a ticket's stored state from DynamoDB Local.
func (s *stack) ticket(t *testing.T, id string) change.Object {
	t.Helper()
	o, ok, err := s.store.Get(t.Context(), conn, change.Ticket, id, "")
	if err != nil {
		t.Fatalf("ticket %s: %v", id, err)
	}
	if !ok {
		t.Fatalf("ticket %s is not in table %s", id, s.table)
	}
	return o
}

// nanos is the version of a Halo time stamp (UTC).
func nanos(t *testing.T, ts string) int64 {
	t.Helper()
	v, err := time.Parse("2006-01-02T15:04:05.999999999Z07:00", ts)
	if err != nil {
		t.Fatal(err)
	}
	return v.UnixNano()
}

// wantStored checks a stored object: its version, client, provenance and the given
// fields (compared in their JSON form, so a stored json.Number 12 equals 12).
func wantStored(t *testing.T, o change.Object, version int64, clientID, deliveryID, event string, fields map[string]any) {
	t.Helper()
	if o.Version != version || o.Deleted || o.IsPending() {
		t.Errorf("ticket %s: version %d deleted %v pending %v (pending version %d); want version %d, not deleted, not pending",
			o.ID, o.Version, o.Deleted, o.IsPending(), o.PendingVersion, version)
	}
	if o.ClientID != clientID || o.Source != change.SourceWebhook || o.DeliveryID != deliveryID || o.Event != event {
		t.Errorf("ticket %s: client %q source %q delivery %q event %q; want %q webhook %q %q",
			o.ID, o.ClientID, o.Source, o.DeliveryID, o.Event, clientID, deliveryID, event)
	}
	if o.SyncedAt.IsZero() || time.Since(o.SyncedAt) > 5*time.Minute {
		t.Errorf("ticket %s: synced at %v", o.ID, o.SyncedAt)
	}
	for k, want := range fields {
		got, ok := o.Fields[k]
		if !ok {
			t.Errorf("ticket %s: field %s missing; stored fields %v", o.ID, k, o.Fields)
			continue
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			t.Errorf("ticket %s: field %s = %s, want %s", o.ID, k, g, w)
		}
	}
}

// wantPending checks a pending marker: an event-only delivery recorded, no fields.
func wantPending(t *testing.T, o change.Object, pendingVersion int64) {
	t.Helper()
	if o.Version != 0 || o.PendingVersion != pendingVersion || !o.IsPending() || len(o.Fields) != 0 || o.Deleted {
		t.Errorf("ticket %s: version %d pending version %d fields %v deleted %v; want a pending marker at %d without fields",
			o.ID, o.Version, o.PendingVersion, o.Fields, o.Deleted, pendingVersion)
	}
}

// olderTicketFull is ingest-ticket-full.json as Halo would have sent it for an earlier
// version of ticket 4242: another delivery, an earlier last_update and summary.
func olderTicketFull(t *testing.T) []byte {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(sampleEvent(t, "ingest-ticket-full.json"), &ev); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(ev.Body)))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		t.Fatal(err)
	}
	tk := body["ticket"].(map[string]any)
	tk["summary"] = "Printer jammed (an older version)"
	tk["status_id"] = json.Number("1")
	tk["last_update"] = "2026-09-25T06:35:00.000"
	body["id"] = "6f1c2a4e-3b7d-4e0a-9a51-000000000000"
	body["timestamp"] = "2026-09-25T06:35:01.0000000Z"
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ev.Body = string(b)
	ev.RequestContext.RequestID = "req-ticket-older"
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWebhooksReachDynamoDB sends every sample event through ingest, plays the event
// source mapping into the worker and checks DynamoDB: snapshots stored and merged,
// event-only deliveries recorded as pending, duplicates and older versions acknowledged
// without changing anything, and each outcome counted in the worker's EMF output.
func TestWebhooksReachDynamoDB(t *testing.T) {
	t.Parallel()
	s := newStack(t, "hooks")

	files, err := filepath.Glob(filepath.Join(root, "events", "ingest-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sample ingest events (%v)", err)
	}
	total := 0
	for _, path := range files {
		name := filepath.Base(path)
		w, ok := ingestWant[name]
		if !ok {
			t.Fatalf("%s has no expected answer in ingestWant", name)
		}
		s.post(t, name, sampleEvent(t, name), w.status, w.changes)
		total += w.changes
	}
	if total != 8 {
		t.Fatalf("the sample events enqueue %d changes; the assertions below expect 8", total)
	}

	p := s.player
	p.runUntil(30*time.Second, "the 8 changes of the sample events applied", func() bool { return len(p.deleted) == total })
	for id, n := range p.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, p.bodies[id])
	}
	if d := s.depth(t, s.qURL); d != 0 {
		t.Fatalf("%d messages left on the queue after every change was applied", d)
	}

	wantStored(t, s.ticket(t, "4242"), nanos(t, "2026-09-25T06:41:07.523Z"), "12",
		"6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10", "ticket status changed", map[string]any{
			"id": 4242, "summary": "Printer on the 3rd floor is jammed", "status_id": 2, "client_id": 12,
			"agent_id": 7, "last_update": "2026-09-25T06:41:07.523", "hasbeenclosed": false,
			"customfields": []any{map[string]any{"id": 150, "name": "CFAssetTag", "value": "PRN-0031"}},
		})
	// No last_update in the small snapshot: the delivery's timestamp is the version.
	wantStored(t, s.ticket(t, "4243"), nanos(t, "2026-09-25T07:02:11.1Z"), "12",
		"a1b2c3d4-0000-4000-8000-000000000002", "ticket updated", map[string]any{
			"id": 4243, "summary": "VPN drops every hour", "status_id": 1, "client_id": 12, "agent_id": 9,
		})
	wantPending(t, s.ticket(t, "4244"), nanos(t, "2026-09-25T07:05:00Z"))
	// The batch's two snapshots of 4250 merge: the newer one's version and fields win,
	// the older one's other fields stay. (This relies on the two messages being applied
	// in the order sent, which the SQS stand-in keeps for a batch; a standard SQS queue
	// does not promise it.)
	wantStored(t, s.ticket(t, "4250"), nanos(t, "2026-09-25T08:02:58.9Z"), "14",
		"b0000000-0000-4000-8000-000000000002", "ticket reassigned", map[string]any{
			"summary": "New starter laptop", "status_id": 1, "client_id": 14, "agent_id": 11, "team_id": 3,
			"last_update": "2026-09-25T08:02:58.900",
		})
	wantPending(t, s.ticket(t, "4251"), nanos(t, "2026-09-25T08:04:00Z"))
	if t.Failed() {
		t.FailNow()
	}

	// Halo sends the same delivery again (five times) and an older version arrives late.
	full := sampleEvent(t, "ingest-ticket-full.json")
	for i := range 5 {
		s.post(t, fmt.Sprintf("ingest-ticket-full.json again (%d)", i+1), full, http.StatusOK, 1)
	}
	s.post(t, "an older version of ticket 4242", olderTicketFull(t), http.StatusOK, 1)
	total += 6
	p.runUntil(30*time.Second, "the duplicates and the older version processed", func() bool { return len(p.deleted) == total })
	for id, n := range p.failures {
		t.Errorf("message %s was reported failed %d times: %s", id, n, p.bodies[id])
	}
	if d := s.depth(t, s.qURL); d != 0 {
		t.Fatalf("%d messages left on the queue", d)
	}
	wantStored(t, s.ticket(t, "4242"), nanos(t, "2026-09-25T06:41:07.523Z"), "12",
		"6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10", "ticket status changed", map[string]any{
			"summary": "Printer on the 3rd floor is jammed", "status_id": 2, "last_update": "2026-09-25T06:41:07.523",
		})

	// What the worker counted, from its EMF lines: 4242 (its base64 and function URL
	// twins are duplicates), 4243 and 4250 twice applied; 4244 and 4251 pending; five
	// more duplicates and one stale.
	applied := func(label string) metrics.Metric {
		return metrics.Metric{Name: metrics.ChangesApplied, Connection: conn, Label: label}
	}
	awaitCounts(t, s.worker, metrics.ChangesApplied, counts{
		applied(string(change.Applied)): 4, applied(string(change.Pending)): 2,
		applied(string(change.Duplicate)): 7, applied(string(change.Stale)): 1,
	})
	awaitCounts(t, s.worker, metrics.ChangesFailed, counts{})
	if errs := logRecords(t, s.worker, "ERROR"); len(errs) > 0 {
		t.Errorf("the worker logged %d errors, the first: %s", len(errs), mustJSON(errs[0]))
	}
	// And what ingest counted: the warm-up GET, the wrong password, 12 deliveries, one
	// of them through the function URL.
	awaitCounts(t, s.ingest, metrics.DeliveriesRejected, counts{
		{Name: metrics.DeliveriesRejected, Connection: "_unknown", Label: "method_not_allowed"}: 1,
		{Name: metrics.DeliveriesRejected, Connection: conn, Label: "credentials_wrong"}:        1,
	})
	awaitCounts(t, s.ingest, metrics.DeliveriesAccepted, counts{{Name: metrics.DeliveriesAccepted, Connection: conn}: 12})
	awaitCounts(t, s.ingest, metrics.DeliveriesByEndpoint, counts{
		{Name: metrics.DeliveriesByEndpoint, Connection: conn, Label: change.EndpointPrimary}: 11,
		{Name: metrics.DeliveriesByEndpoint, Connection: conn, Label: change.EndpointBackup}:  1,
	})
	awaitCounts(t, s.ingest, metrics.ChangesEnqueued, counts{{Name: metrics.ChangesEnqueued, Connection: conn}: 14})
}

// TestPoisonMessageGoesToTheDLQ puts a message the worker cannot decode on the queue
// among good ones, with a worker deployed without DEAD_LETTER_QUEUE_URL (or whose send
// there fails): it reports it in batchItemFailures on each delivery (and makes it visible
// again at once; alone in a batch, it fails the invocation), the good ones are applied,
// and after maxReceiveCount receives the queue's redrive policy moves it to the
// dead-letter queue.
func TestPoisonMessageGoesToTheDLQ(t *testing.T) {
	t.Parallel()
	s := newStack(t, "poison")
	ctx := t.Context()

	s.post(t, "ingest-ticket-full.json", sampleEvent(t, "ingest-ticket-full.json"), http.StatusOK, 1)
	poison := `{"change": {"connection": "default", "kind": "ticket", "id": 4242` // cut short
	if err := s.queue.Send(ctx, []message.Message{{Body: []byte(poison), Attributes: map[string]string{message.AttrConnection: conn}}}); err != nil {
		t.Fatal(err)
	}
	s.post(t, "ingest-ticket-batch.json", sampleEvent(t, "ingest-ticket-batch.json"), http.StatusOK, 3)
	const good = 4

	var inDLQ []message.Received
	p := s.player
	p.runUntil(60*time.Second, "the poison message in the dead-letter queue and the good changes applied", func() bool {
		// SQS moves a message to the dead-letter queue when a receive from the main
		// queue finds it over maxReceiveCount; so the player keeps polling the main queue
		// while this looks at the dead-letter queue.
		msgs, err := s.dlq.Receive(ctx, 10, 0)
		if err != nil {
			t.Fatalf("receive from the dead-letter queue: %v", err)
		}
		inDLQ = append(inDLQ, msgs...)
		return len(inDLQ) > 0 && len(p.deleted) == good
	})

	var poisonID string
	for id, body := range p.bodies {
		if body == poison {
			poisonID = id
		}
	}
	switch {
	case poisonID == "":
		t.Fatal("the poison message was never delivered to the worker")
	case p.deliveries[poisonID] != maxReceive || p.failures[poisonID] != maxReceive || p.deleted[poisonID]:
		t.Fatalf("poison message: delivered %d times, reported failed %d times, deleted %v; want %d, %d, false",
			p.deliveries[poisonID], p.failures[poisonID], p.deleted[poisonID], maxReceive, maxReceive)
	case !slices.Equal(p.counts[poisonID], []int{1, 2, 3}):
		t.Fatalf("poison message: ApproximateReceiveCount of its deliveries %v, want [1 2 3]", p.counts[poisonID])
	}
	// Received again alone, the poison message is a batch whose every message failed:
	// the invocation returns an error (the function's Errors metric).
	if p.errors == 0 {
		t.Error("no invocation returned an error, though the poison message came back alone")
	}
	for id := range p.bodies {
		if id != poisonID && (p.failures[id] != 0 || !p.deleted[id]) {
			t.Errorf("good message %s: reported failed %d times, deleted %v: %s", id, p.failures[id], p.deleted[id], p.bodies[id])
		}
	}
	if len(inDLQ) != 1 || string(inDLQ[0].Body) != poison {
		var bodies []string
		for _, m := range inDLQ {
			bodies = append(bodies, string(m.Body))
		}
		t.Fatalf("the dead-letter queue holds %q; want exactly the poison message %q", bodies, poison)
	}
	if inDLQ[0].ID != poisonID {
		t.Errorf("the dead-letter queue's message has id %s; SQS keeps a message's id when it moves it, want %s", inDLQ[0].ID, poisonID)
	}
	if d := s.depth(t, s.dlqURL); d != 1 {
		t.Fatalf("the dead-letter queue holds %d messages, want 1", d)
	}
	if d := s.depth(t, s.qURL); d != 0 {
		t.Fatalf("%d messages left on the main queue", d)
	}

	wantStored(t, s.ticket(t, "4242"), nanos(t, "2026-09-25T06:41:07.523Z"), "12",
		"6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10", "ticket status changed", map[string]any{"summary": "Printer on the 3rd floor is jammed"})
	wantStored(t, s.ticket(t, "4250"), nanos(t, "2026-09-25T08:02:58.9Z"), "14",
		"b0000000-0000-4000-8000-000000000002", "ticket reassigned", map[string]any{"summary": "New starter laptop", "agent_id": 11})
	wantPending(t, s.ticket(t, "4251"), nanos(t, "2026-09-25T08:04:00Z"))

	awaitCounts(t, s.worker, metrics.ChangesFailed, counts{
		{Name: metrics.ChangesFailed, Connection: "_unknown", Label: "undecodable"}: maxReceive,
	})
	awaitCounts(t, s.worker, metrics.ChangesApplied, counts{
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Applied)}: 3,
		{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Pending)}: 1,
	})
	// Each failure is logged, and the worker's ChangeMessageVisibility with the receipt
	// handle the player passed it worked (it logs a warning when it does not).
	var undecodable int
	for _, r := range logRecords(t, s.worker, "ERROR") {
		var msg string
		_ = json.Unmarshal(r["msg"], &msg)
		if msg == "change message undecodable" {
			undecodable++
		}
	}
	if undecodable != maxReceive {
		t.Errorf("the worker logged %d undecodable messages, want %d", undecodable, maxReceive)
	}
	if warns := logRecords(t, s.worker, "WARN"); len(warns) > 0 {
		t.Errorf("the worker logged %d warnings, the first: %s", len(warns), mustJSON(warns[0]))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// TestPermanentFailureIsMovedWithItsReason: deployed as template.yaml deploys it, the
// worker moves a message it cannot decode to the dead-letter queue on its first delivery,
// with the reason in its failure_reason attribute, and the mapping deletes it from the
// changes queue; the good changes around it are applied.
func TestPermanentFailureIsMovedWithItsReason(t *testing.T) {
	t.Parallel()
	s := newStack(t, "deadletter", deadLettersDirect)
	ctx := t.Context()

	s.post(t, "ingest-ticket-full.json", sampleEvent(t, "ingest-ticket-full.json"), http.StatusOK, 1)
	poison := `{"change": {"connection": "default"` // cut short
	if err := s.queue.Send(ctx, []message.Message{{Body: []byte(poison), Attributes: map[string]string{message.AttrConnection: conn}}}); err != nil {
		t.Fatal(err)
	}
	var inDLQ []message.Received
	p := s.player
	p.runUntil(60*time.Second, "the poison message in the dead-letter queue and the good change applied", func() bool {
		msgs, err := s.dlq.Receive(ctx, 10, 0)
		if err != nil {
			t.Fatalf("receive from the dead-letter queue: %v", err)
		}
		inDLQ = append(inDLQ, msgs...)
		return len(inDLQ) > 0 && len(p.deleted) == 2
	})
	for id, body := range p.bodies {
		if p.deliveries[id] != 1 || p.failures[id] != 0 || !p.deleted[id] {
			t.Errorf("message %s (%.40s): delivered %d times, reported failed %d times, deleted %v; want once, never, deleted",
				id, body, p.deliveries[id], p.failures[id], p.deleted[id])
		}
	}
	if len(inDLQ) != 1 || string(inDLQ[0].Body) != poison || inDLQ[0].Attributes[message.AttrFailureReason] != "undecodable" ||
		inDLQ[0].Attributes[message.AttrConnection] != conn {
		t.Fatalf("the dead-letter queue holds %+v; want the poison message with failure_reason undecodable and its connection", inDLQ)
	}
}
