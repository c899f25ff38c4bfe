package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqlite"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// listDLQ runs `halosync dlq list --json` with args and decodes its answer.
func listDLQ(t *testing.T, env []string, args ...string) []deadLetter {
	t.Helper()
	out, errOut, code := runCLI(t, env, append([]string{"dlq", "list", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, errOut)
	}
	var got []deadLetter
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("dlq list --json printed %q: %v", out, err)
	}
	return got
}

// waitDLQ lists the dead-letter queue until it holds n messages.
func waitDLQ(t *testing.T, env []string, n int, args ...string) []deadLetter {
	t.Helper()
	deadline := time.Now().Add(applyTimeout)
	for {
		got := listDLQ(t, env, args...)
		if len(got) == n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dead-letter queue holds %d messages, want %d: %+v", len(got), n, got)
		}
		time.Sleep(pollInterval)
	}
}

// TestDeadLetterRoundTrip: events of no known kind reach the embedded dead-letter queue
// through halosync serve; dlq list and show tell why; purge refuses without a terminal or
// --yes and deletes what it is told with it; once the event is mapped in the
// configuration, dlq redrive moves the rest back and the restarted server applies them.
func TestDeadLetterRoundTrip(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "halosync.yaml")
	base := `
connections:
  - id: default
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["long-enough-password"]
`
	writeFile(t, cfg, base)
	auth := authtest.Basic("halo", "long-enough-password")
	p := startServe(t, nil, "--config", cfg, "--data", data)
	for _, body := range []string{
		`{"id":"dl-1","event":"frobnicated","object_id":71}`,
		`{"id":"dl-2","event":"frobnicated","object_id":72}`,
		`{"id":"dl-3","event":"polished","object_id":73}`,
	} {
		mustPost(t, p.url, "default", auth, []byte(body), http.StatusOK)
	}
	at := []string{"--config", cfg, "--data", data}
	listed := waitDLQ(t, nil, 3, at...)
	var polished string
	for _, m := range listed {
		if m.Reason != "unknown_event" || m.Connection != "default" || !strings.Contains(m.Change, "of no known kind") || m.AgeSeconds > 60 {
			t.Errorf("listed %+v; want reason unknown_event, connection default, the event, its age", m)
		}
		if strings.Contains(m.Change, `"polished"`) {
			polished = m.ID
		}
	}
	if polished == "" {
		t.Fatalf("no listed change names the event polished: %+v", listed)
	}
	out, errOut, code := runCLI(t, nil, append([]string{"dlq", "list"}, at...)...)
	if code != 0 || !strings.Contains(out, "unknown_event") || !strings.Contains(out, polished) || !strings.Contains(out, "3 message(s)") {
		t.Errorf("dlq list: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = runCLI(t, nil, append([]string{"dlq", "show", polished}, at...)...)
	if code != 0 || !strings.Contains(out, "failure_reason: unknown_event") || !strings.Contains(out, `"event": "polished"`) {
		t.Errorf("dlq show: exit %d, stdout %q, stderr %q; want the attributes and the body pretty-printed", code, out, errOut)
	}
	_, errOut, code = runCLI(t, nil, append([]string{"dlq", "show", "no-such-id"}, at...)...)
	if code == 0 || !strings.Contains(errOut, "halosync dlq list") {
		t.Errorf("dlq show of an unknown id: exit %d, stderr %q", code, errOut)
	}

	// Purge: refused without a terminal and --yes; with --yes, only the named message goes.
	_, errOut, code = runCLI(t, nil, append([]string{"dlq", "purge", polished}, at...)...)
	if code == 0 || !strings.Contains(errOut, "--yes") {
		t.Errorf("dlq purge without a terminal or --yes: exit %d, stderr %q", code, errOut)
	}
	waitDLQ(t, nil, 3, at...)
	out, errOut, code = runCLI(t, nil, append([]string{"dlq", "purge", polished, "--yes"}, at...)...)
	if code != 0 || !strings.Contains(out, "deleted 1 message(s) (unknown_event 1)") {
		t.Errorf("dlq purge --yes: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, m := range waitDLQ(t, nil, 2, at...) {
		if m.ID == polished {
			t.Errorf("the purged message is still listed")
		}
	}

	// The fix: the event mapped; the server restarted with it; the dead letters moved back.
	if c := p.stop(t, syscall.SIGTERM); c != 0 {
		t.Fatalf("serve exited %d on SIGTERM", c)
	}
	writeFile(t, cfg, base+"    events:\n      frobnicated: {kind: ticket, op: delete}\n")
	startServe(t, nil, "--config", cfg, "--data", data)
	out, errOut, code = runCLI(t, nil, append([]string{"dlq", "redrive", "--reason", "unknown_event"}, at...)...)
	if code != 0 || !strings.Contains(out, "moved 2 message(s) (unknown_event 2)") || !strings.Contains(errOut, "moved 2/2") {
		t.Fatalf("dlq redrive: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, id := range []string{"71", "72"} {
		deadline := time.Now().Add(applyTimeout)
		for {
			out, _, code := runCLI(t, nil, append([]string{"get", "ticket", id}, at...)...)
			if m, err := decode([]byte(out)); code == 0 && err == nil && m["deleted"] == true {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ticket %s not applied after the redrive: exit %d, %s", id, code, out)
			}
			time.Sleep(pollInterval)
		}
	}
	if left := listDLQ(t, nil, at...); len(left) != 0 {
		t.Fatalf("after the redrive the dead-letter queue holds %+v", left)
	}
	_, errOut, code = runCLI(t, nil, append([]string{"dlq", "redrive", "no-such-id"}, at...)...)
	if code == 0 || !strings.Contains(errOut, "no-such-id") || !strings.Contains(errOut, "nothing was done") {
		t.Errorf("dlq redrive of an unknown id: exit %d, stderr %q", code, errOut)
	}
}

// TestDeadLetterOnSQS: a change for a connection the configuration does not name is
// moved to the SQS dead-letter queue by the worker with its reason; dlq list tells it
// (and a message the redrive policy moved, without a reason, as such), without consuming
// them; once the connection is configured, dlq redrive moves it back to the changes queue,
// where the worker applies it; purge --yes deletes the rest.
func TestDeadLetterOnSQS(t *testing.T) {
	ctx := context.Background()
	client := sqsqueue.NewClient(awstest.SQSConfig(t))
	env := awstest.ProcessEnv(t)
	name := "halosync-cli-" + strings.ReplaceAll(time.Now().UTC().Format("150405.000000000"), ".", "")
	mainURL, dlqURL, err := sqsqueue.CreateQueuePair(ctx, client, name, 30*time.Second, 5)
	if err != nil {
		t.Fatal(err)
	}
	changes, dlq := sqsqueue.New(client, mainURL), sqsqueue.New(client, dlqURL)

	elsewhere, err := message.Encode(message.Envelope{Change: change.Change{Connection: "acme", Kind: change.Ticket, ID: "81",
		Op: change.OpUpsert, Version: 1, Fields: map[string]any{"id": 81, "summary": "kept"}}})
	if err != nil {
		t.Fatal(err)
	}
	store := storetest.NewMemory()
	log := slog.New(slog.DiscardHandler)
	before := worker.New(store, metrics.Discard{}, log, connection.Set{{ID: "default"}}, nil)
	before.SendDeadLettersTo(dlq)
	if failed := before.HandleBatch(ctx, []message.Received{{ID: "m-acme", Body: elsewhere.Body, Attributes: elsewhere.Attributes, ReceiveCount: 1}}, nil); len(failed) != 0 {
		t.Fatalf("failed %v; want the change moved to the dead-letter queue", failed)
	}
	// As the redrive policy leaves one: no reason.
	if err := dlq.Send(ctx, []message.Message{{Body: []byte("{not json")}}); err != nil {
		t.Fatal(err)
	}

	at := []string{"--dlq-url", dlqURL, "--queue-url", mainURL}
	var listed []deadLetter
	for deadline := time.Now().Add(10 * time.Second); len(listed) < 2 && time.Now().Before(deadline); {
		listed = listDLQ(t, env, at...)
	}
	if len(listed) != 2 {
		t.Fatalf("listed %+v, want 2", listed)
	}
	var acme, poison deadLetter
	for _, m := range listed {
		switch m.Reason {
		case "unknown_connection":
			acme = m
		case unknownReason:
			poison = m
		}
	}
	if acme.Connection != "acme" || acme.Kind != "ticket" || acme.Change != "upsert ticket 81" || poison.Change != "(not a change message)" {
		t.Fatalf("listed %+v", listed)
	}
	// Listing consumed nothing: both can be listed again at once.
	if again := listDLQ(t, env, at...); len(again) != 2 {
		t.Fatalf("a second list shows %d messages, want 2", len(again))
	}

	out, errOut, code := runCLI(t, env, append([]string{"dlq", "redrive", "--reason", "unknown_connection"}, at...)...)
	if code != 0 || !strings.Contains(out, "moved 1 message(s) (unknown_connection 1)") {
		t.Fatalf("dlq redrive: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	after := worker.New(store, metrics.Discard{}, log, connection.Set{{ID: "default"}, {ID: "acme"}}, nil)
	got := receiveSQS(t, changes, 1)
	if _, ok := got[0].Attributes[message.AttrFailureReason]; ok || !bytes.Equal(got[0].Body, elsewhere.Body) {
		t.Fatalf("redriven message: attributes %v, body %s", got[0].Attributes, got[0].Body)
	}
	if failed := after.HandleBatch(ctx, got, nil); len(failed) != 0 {
		t.Fatalf("the redriven change failed again: %v", failed)
	}
	if o, ok, err := store.Get(ctx, "acme", change.Ticket, "81", ""); err != nil || !ok || o.Fields["summary"] != "kept" {
		t.Fatalf("ticket 81 after the redrive: %+v, %v, %v", o, ok, err)
	}

	out, errOut, code = runCLI(t, env, append([]string{"dlq", "purge", "--yes"}, at...)...)
	if code != 0 || !strings.Contains(out, "deleted 1 message(s) (unknown 1)") {
		t.Fatalf("dlq purge --yes: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if left := listDLQ(t, env, at...); len(left) != 0 {
		t.Fatalf("after purging, the dead-letter queue holds %+v", left)
	}
}

// receiveSQS receives n messages from q.
func receiveSQS(t *testing.T, q *sqsqueue.Queue, n int) []message.Received {
	t.Helper()
	var got []message.Received
	for deadline := time.Now().Add(10 * time.Second); len(got) < n && time.Now().Before(deadline); {
		msgs, err := q.Receive(context.Background(), 10, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs...)
	}
	if len(got) != n {
		t.Fatalf("received %d messages, want %d", len(got), n)
	}
	return got
}

// TestPurgeConfirmation: purge deletes only on a yes.
func TestPurgeConfirmation(t *testing.T) {
	for answer, want := range map[string]bool{"y\n": true, "YES\n": true, "yes": true, "n\n": false, "\n": false, "": false, "sure\n": false} {
		var asked bytes.Buffer
		got, err := confirm(strings.NewReader(answer), &asked, "Delete? ")
		if err != nil || got != want || asked.String() != "Delete? " {
			t.Errorf("answer %q: %v, %v (asked %q); want %v", answer, got, err, asked.String(), want)
		}
	}
}

func TestDLQUsage(t *testing.T) {
	for _, c := range []string{"list", "show", "redrive", "purge"} {
		out, errOut, code := runCLI(t, nil, "dlq", c, "--help")
		if code != 0 || !strings.Contains(out, "Usage: halosync dlq "+c) || !strings.Contains(out, "Example:") || !strings.Contains(out, "-dlq-url") || errOut != "" {
			t.Errorf("halosync dlq %s --help: exit %d, stdout %q, stderr %q", c, code, out, errOut)
		}
	}
	_, errOut, code := runCLI(t, nil, "dlq", "list", "--data", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "no halosync database") || !strings.Contains(errOut, "--data") {
		t.Errorf("dlq list without a database: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runCLI(t, nil, "dlq", "frob")
	if code == 0 || !strings.Contains(errOut, `unknown dlq command "frob"`) {
		t.Errorf("dlq frob: exit %d, stderr %q", code, errOut)
	}
}

// TestDeadLetterFilters: list, redrive and purge pick by --connection and --kind (singular
// or plural) besides --reason.
func TestDeadLetterFilters(t *testing.T) {
	dir := t.TempDir()
	cfg := twoConnections(t, dir, filepath.Join(dir, "halosync.db"))
	db, err := sqlite.Open(filepath.Join(dir, "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	_, dlq := localserver.Queues(db, config.Queue{})
	var msgs []message.Message
	for _, c := range []change.Change{
		{Connection: "acme", Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 1},
		{Connection: "acme", Kind: change.Client, ID: "12", Op: change.OpUpsert, Version: 1},
		{Connection: "globex", Kind: change.Ticket, ID: "2", Op: change.OpUpsert, Version: 1},
	} {
		m, err := message.Encode(message.Envelope{Change: c})
		if err != nil {
			t.Fatal(err)
		}
		m.Attributes[message.AttrFailureReason] = "invalid"
		msgs = append(msgs, m)
	}
	if err := dlq.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	db.Close()

	at := []string{"--config", cfg}
	ids := func(args ...string) string {
		var out []string
		for _, m := range listDLQ(t, nil, append(args, at...)...) {
			out = append(out, m.Connection+"/"+m.Kind)
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "acme/client acme/ticket globex/ticket"},
		{[]string{"--connection", "acme"}, "acme/client acme/ticket"},
		{[]string{"--kind", "tickets"}, "acme/ticket globex/ticket"},
		{[]string{"--kind", "ticket", "--connection", "globex"}, "globex/ticket"},
		{[]string{"--kind", "contacts"}, ""},
	} {
		if got := ids(c.args...); got != c.want {
			t.Errorf("dlq list %v: %q, want %q", c.args, got, c.want)
		}
	}
	out, errOut, code := runCLI(t, nil, append([]string{"dlq", "purge", "--yes", "--connection", "acme", "--kind", "clients"}, at...)...)
	if code != 0 || !strings.Contains(out, "deleted 1 message(s) (invalid 1)") {
		t.Errorf("dlq purge --connection acme --kind clients: exit %d, %q %q", code, out, errOut)
	}
	if got := ids(); got != "acme/ticket globex/ticket" {
		t.Errorf("after the purge: %q", got)
	}
}
