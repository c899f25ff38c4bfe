package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/queuetest"
)

func TestQueueContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queuetest.Options) (queuetest.Queue, queuetest.Queue) {
		db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
		main := db.Queue("changes", QueueOptions{Visibility: o.Visibility, MaxReceive: o.MaxReceive, DeadLetter: "changes-dlq"})
		dlq := db.Queue("changes-dlq", QueueOptions{Visibility: o.Visibility})
		return main, dlq
	})
}

func TestQueueAdminContract(t *testing.T) {
	queuetest.RunAdmin(t, func(t *testing.T, o queuetest.Options) (*Queue, *Queue) {
		db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
		main := db.Queue("changes", QueueOptions{Visibility: o.Visibility, MaxReceive: o.MaxReceive, DeadLetter: "changes-dlq"})
		dlq := db.Queue("changes-dlq", QueueOptions{Visibility: o.Visibility})
		return main, dlq
	})
}

func sendBodies(t *testing.T, q *Queue, bodies ...string) {
	t.Helper()
	var msgs []message.Message
	for _, b := range bodies {
		msgs = append(msgs, message.Message{Body: []byte(b), Attributes: map[string]string{"body": b}})
	}
	if err := q.Send(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
}

// receiveAll long-polls q until it has received n messages or within has passed.
func receiveAll(t *testing.T, q *Queue, n int, within time.Duration) []message.Received {
	t.Helper()
	var got []message.Received
	deadline := time.Now().Add(within)
	for len(got) < n && time.Now().Before(deadline) {
		msgs, err := q.Receive(context.Background(), 10, 500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msgs...)
	}
	if len(got) != n {
		t.Fatalf("received %d messages within %v, want %d", len(got), within, n)
	}
	return got
}

func bodiesOf(msgs []message.Received) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Body))
	}
	sort.Strings(out)
	return out
}

func stats(t *testing.T, q *Queue) (visible, inFlight int) {
	t.Helper()
	v, f, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return v, f
}

func TestQueueSurvivesCloseAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "halosync.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sendBodies(t, db.Queue("changes", QueueOptions{}), "one", "two")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	q := openTestDB(t, path).Queue("changes", QueueOptions{})
	got := receiveAll(t, q, 2, 5*time.Second)
	if b := bodiesOf(got); b[0] != "one" || b[1] != "two" {
		t.Fatalf("after reopen: %q", b)
	}
	for _, m := range got {
		if m.Attributes["body"] != string(m.Body) || m.ReceiveCount != 1 || m.SentAt.IsZero() {
			t.Fatalf("after reopen: %+v", m)
		}
	}
}

func TestQueueInFlightMessageReturnsAfterReopen(t *testing.T) {
	const visibility = 1500 * time.Millisecond
	path := filepath.Join(t.TempDir(), "halosync.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	q := db.Queue("changes", QueueOptions{Visibility: visibility})
	sendBodies(t, q, "in flight")
	first := receiveAll(t, q, 1, 5*time.Second)[0]
	receivedAt := time.Now()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	q = openTestDB(t, path).Queue("changes", QueueOptions{Visibility: visibility})
	if time.Since(receivedAt) < visibility/2 { // only meaningful while surely still in flight
		if v, f := stats(t, q); v != 0 || f != 1 {
			t.Fatalf("after reopen: %d visible, %d in flight; want 0, 1", v, f)
		}
		if msgs, err := q.Receive(context.Background(), 10, 0); err != nil || len(msgs) != 0 {
			t.Fatalf("in-flight message received again early: %d, err %v", len(msgs), err)
		}
	}
	again := receiveAll(t, q, 1, 10*time.Second)[0]
	if again.ID != first.ID || again.ReceiveCount != 2 || again.ReceiptHandle == first.ReceiptHandle || string(again.Body) != "in flight" {
		t.Fatalf("redelivery %+v, first %+v", again, first)
	}
	if err := q.Delete(context.Background(), first.ReceiptHandle); err != nil {
		t.Fatalf("stale handle: %v", err)
	}
	if v, f := stats(t, q); v != 0 || f != 1 {
		t.Fatalf("a stale handle deleted the message: %d visible, %d in flight", v, f)
	}
	if err := q.Delete(context.Background(), again.ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if v, f := stats(t, q); v != 0 || f != 0 {
		t.Fatalf("after delete: %d visible, %d in flight", v, f)
	}
}

// TestQueueSendSurvivesKill9 sends from a child process, kills it with SIGKILL as soon as
// Send has returned, and finds every message in the file.
func TestQueueSendSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "halosync.db")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HALOSYNC_SQLITE_KILL_HELPER="+path)
	stdin, err := cmd.StdinPipe() // held open: the child blocks reading it until killed
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	sent := false
	for lines.Scan() {
		if lines.Text() == "sent" {
			sent = true
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !sent {
		t.Fatal("child exited without sending")
	}

	q := openTestDB(t, path).Queue("changes", QueueOptions{})
	got := receiveAll(t, q, 5, 10*time.Second)
	if b := bodiesOf(got); strings.Join(b, ",") != "m0,m1,m2,m3,m4" {
		t.Fatalf("after kill -9: %q", b)
	}
}

// TestMain runs the child of TestQueueSendSurvivesKill9 when asked to, and the tests
// otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv("HALOSYNC_SQLITE_KILL_HELPER"); path != "" {
		if err := sendUntilKilled(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// sendUntilKilled sends five messages, says so, and waits to be killed.
func sendUntilKilled(path string) error {
	db, err := Open(path)
	if err != nil {
		return err
	}
	q := db.Queue("changes", QueueOptions{})
	for i := range 5 {
		if err := q.Send(context.Background(), []message.Message{{Body: []byte(fmt.Sprint("m", i))}}); err != nil {
			return err
		}
	}
	fmt.Println("sent")
	_, _ = bufio.NewReader(os.Stdin).ReadByte() // wait for SIGKILL
	return fmt.Errorf("stdin closed before the kill")
}

func TestQueueRedriveKeepsTheMessage(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	q := db.Queue("changes", QueueOptions{Visibility: time.Minute, MaxReceive: 1, DeadLetter: "changes-dlq"})
	dlq := db.Queue("changes-dlq", QueueOptions{Visibility: time.Minute})
	sendBodies(t, q, "poison")
	first := receiveAll(t, q, 1, 5*time.Second)[0]
	if err := q.ChangeVisibility(context.Background(), first.ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}

	// A receiver of the dead-letter queue waiting in this process is woken by the move.
	done := make(chan []message.Received, 1)
	go func() {
		msgs, _ := dlq.Receive(context.Background(), 10, 10*time.Second)
		done <- msgs
	}()
	if msgs, err := q.Receive(context.Background(), 10, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("message received beyond MaxReceive: %d, err %v", len(msgs), err)
	}
	dead := <-done
	if len(dead) == 0 {
		dead = receiveAll(t, dlq, 1, 5*time.Second)
	}
	d := dead[0]
	if d.ID != first.ID || string(d.Body) != "poison" || d.Attributes["body"] != "poison" || !d.SentAt.Equal(first.SentAt) || d.ReceiveCount != 1 {
		t.Fatalf("dead letter %+v, original %+v", d, first)
	}
	if err := q.ChangeVisibility(context.Background(), first.ReceiptHandle, 0); !errors.Is(err, ErrUnknownReceipt) {
		t.Fatalf("ChangeVisibility with the handle of a moved message: %v, want ErrUnknownReceipt", err)
	}
	if err := q.Delete(context.Background(), first.ReceiptHandle, "no-such-handle"); err != nil {
		t.Fatalf("Delete of unknown handles: %v", err)
	}
	if err := dlq.Delete(context.Background(), d.ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if v, f := stats(t, dlq); v != 0 || f != 0 {
		t.Fatalf("dead-letter queue after delete: %d visible, %d in flight", v, f)
	}
}

func TestQueueWithoutDeadLetterKeepsRedelivering(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	q := db.Queue("changes", QueueOptions{Visibility: time.Minute, MaxReceive: 1})
	sendBodies(t, q, "stays")
	for want := 1; want <= 3; want++ {
		m := receiveAll(t, q, 1, 5*time.Second)[0]
		if m.ReceiveCount != want {
			t.Fatalf("receive count %d, want %d", m.ReceiveCount, want)
		}
		if err := q.ChangeVisibility(context.Background(), m.ReceiptHandle, 0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueReceiveClampsAndOrders(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	q := db.Queue("changes", QueueOptions{})
	var bodies []string
	for i := range 15 {
		bodies = append(bodies, fmt.Sprintf("m%02d", i))
	}
	sendBodies(t, q, bodies...)
	ctx := context.Background()
	one, err := q.Receive(ctx, 0, 0)
	if err != nil || len(one) != 1 || string(one[0].Body) != "m00" {
		t.Fatalf("Receive(0) = %d messages, err %v", len(one), err)
	}
	ten, err := q.Receive(ctx, 100, 0)
	if err != nil || len(ten) != 10 {
		t.Fatalf("Receive(100) = %d messages, err %v; want 10", len(ten), err)
	}
	for i, m := range ten {
		if want := fmt.Sprintf("m%02d", i+1); string(m.Body) != want {
			t.Fatalf("message %d = %s, want %s (oldest first)", i, m.Body, want)
		}
	}
	if v, f := stats(t, q); v != 4 || f != 11 {
		t.Fatalf("stats = %d visible, %d in flight; want 4, 11", v, f)
	}
	other := db.Queue("other", QueueOptions{})
	if msgs, err := other.Receive(ctx, 10, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("another queue sees %d messages, err %v", len(msgs), err)
	}
}

func TestQueueRejectsOversizedMessages(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	q := db.Queue("changes", QueueOptions{})
	big := make([]byte, message.MaxMessageBytes+1)
	err := q.Send(context.Background(), []message.Message{{Body: []byte("fine")}, {Body: big}})
	if !errors.Is(err, message.ErrTooLarge) {
		t.Fatalf("Send of %d bytes: %v, want message.ErrTooLarge", len(big), err)
	}
	if v, f := stats(t, q); v != 0 || f != 0 {
		t.Fatalf("a rejected batch was partly sent: %d visible, %d in flight", v, f)
	}
	if err := q.ChangeVisibility(context.Background(), "x", -time.Second); err == nil {
		t.Fatal("negative visibility accepted")
	}
}

func TestQueueCloseEndsALongPoll(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	q := db.Queue("changes", QueueOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := q.Receive(context.Background(), 10, time.Minute)
		errc <- err
	}()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Receive after Close: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll still waiting 10s after Close")
	}
	if err := q.Send(context.Background(), []message.Message{{Body: []byte("x")}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
}

func TestQueueCancelledLongPollReturnsPromptly(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	q := db.Queue("changes", QueueOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := q.Receive(ctx, 10, time.Minute)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Receive: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll still waiting 10s after cancel")
	}
}

// BenchmarkQueueSendReceiveDelete sends a batch, receives it and deletes it; each op is one
// batch (three durable transactions, plus one receive per ten messages).
func BenchmarkQueueSendReceiveDelete(b *testing.B) {
	for _, batch := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			db := openTestDB(b, filepath.Join(b.TempDir(), "bench.db"))
			q := db.Queue("changes", QueueOptions{Visibility: time.Minute})
			ctx := context.Background()
			msgs := make([]message.Message, batch)
			for i := range msgs {
				msgs[i] = message.Message{Body: []byte(`{"change":{"connection":"default","kind":"ticket","id":"4242","op":"upsert","version":1}}`),
					Attributes: map[string]string{"connection": "default", "kind": "ticket", "source": "webhook"}}
			}
			for b.Loop() {
				if err := q.Send(ctx, msgs); err != nil {
					b.Fatal(err)
				}
				got, err := q.Receive(ctx, batch, time.Second)
				if err != nil || len(got) != batch {
					b.Fatalf("Receive = %d, %v", len(got), err)
				}
				handles := make([]string, len(got))
				for i, m := range got {
					handles[i] = m.ReceiptHandle
				}
				if err := q.Delete(ctx, handles...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
		})
	}
}

// TestQueueRefusesSendsBeyondItsBacklog: once the queue holds MaxBacklog messages, visible
// or in flight, a send is refused with message.ErrBacklogFull and nothing is written;
// deleting or redriving messages makes room, and a reopened database counts what it holds.
func TestQueueRefusesSendsBeyondItsBacklog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	opts := QueueOptions{MaxBacklog: 3, MaxReceive: 1, DeadLetter: "dlq", Visibility: time.Millisecond}
	db := openTestDB(t, path)
	q := db.Queue("changes", opts)
	sendBodies(t, q, "a", "b")
	sendBodies(t, q, "c", "d") // under the limit when sent: a delivery goes whole
	err := q.Send(ctx, []message.Message{{Body: []byte("e")}})
	if !errors.Is(err, message.ErrBacklogFull) {
		t.Fatalf("send to a full queue: %v, want ErrBacklogFull", err)
	}
	got, err := q.Receive(ctx, 2, 0) // in flight still counts
	if err != nil || len(got) != 2 {
		t.Fatalf("received %d, err %v; want 2", len(got), err)
	}
	if err := q.Send(ctx, []message.Message{{Body: []byte("e")}}); !errors.Is(err, message.ErrBacklogFull) {
		t.Fatalf("send with messages in flight: %v, want ErrBacklogFull", err)
	}
	if err := q.Delete(ctx, got[0].ReceiptHandle, got[1].ReceiptHandle, "no such handle"); err != nil {
		t.Fatal(err)
	}
	sendBodies(t, q, "e") // 3 held: c, d, e
	if v, f := stats(t, q); v+f != 3 {
		t.Fatalf("queue holds %d messages, want 3", v+f)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTestDB(t, path)
	q = db.Queue("changes", opts)
	if err := q.Send(ctx, []message.Message{{Body: []byte("f")}}); !errors.Is(err, message.ErrBacklogFull) {
		t.Fatalf("send after reopening a full queue: %v, want ErrBacklogFull", err)
	}
	// Each message has had its one receive: the next receive moves them to the
	// dead-letter queue, which makes room.
	for {
		v, f := stats(t, q)
		if v+f == 0 {
			break
		}
		if _, err := q.Receive(ctx, 10, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	sendBodies(t, q, "f")
}

// TestMigrationKeepsQueuedMessages opens a file written by schema 7, with its queue's
// unique indexes: its messages are received in the order they were sent, with their ids,
// bodies and attributes, and a message sent after takes a seq above every earlier one,
// deleted ones included.
func TestMigrationKeepsQueuedMessages(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	raw, err := sql.Open("sqlite", dsn(path, writerParams()))
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range migrations()[:7] {
		if _, err := raw.ExecContext(ctx, step); err != nil {
			t.Fatalf("schema step %d: %v", i+1, err)
		}
	}
	for _, q := range []string{
		`INSERT INTO queue_messages (queue, id, body, attributes, sent_at, visible_at) VALUES ('q', 'm1', 'one', '{"a":"1"}', 1, 1)`,
		`INSERT INTO queue_messages (queue, id, body, attributes, sent_at, visible_at) VALUES ('q', 'm2', 'two', NULL, 2, 2)`,
		`INSERT INTO queue_messages (queue, id, body, attributes, sent_at, visible_at) VALUES ('q', 'm3', 'three', NULL, 3, 3)`,
		`DELETE FROM queue_messages WHERE id = 'm3'`,
		`PRAGMA user_version = 7`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	db := openTestDB(t, path)
	q := db.Queue("q", QueueOptions{})
	if err := q.Send(ctx, []message.Message{{Body: []byte("four")}}); err != nil {
		t.Fatal(err)
	}
	got, err := q.Receive(ctx, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range got {
		bodies = append(bodies, string(m.Body))
	}
	if strings.Join(bodies, ",") != "one,two,four" || got[0].ID != "m1" || got[0].Attributes["a"] != "1" {
		t.Fatalf("received %v (%+v)", bodies, got)
	}
	var seq int64
	if err := db.queue.read.QueryRowContext(ctx, `SELECT seq FROM queue_messages WHERE CAST(body AS TEXT) = 'four'`).Scan(&seq); err != nil || seq != 4 {
		t.Fatalf("the message sent after the migration has seq %d (%v), want 4", seq, err)
	}
	if err := q.Delete(ctx, got[0].ReceiptHandle, got[1].ReceiptHandle, got[2].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if visible, inFlight, err := q.Stats(ctx); err != nil || visible+inFlight != 0 {
		t.Fatalf("after deleting everything: %d visible, %d in flight, %v", visible, inFlight, err)
	}
}
