package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/queuetest"
)

// The queue contract holds while a consumer in this process receives straight from sends.
func TestQueueContractWhileConsumed(t *testing.T) {
	queuetest.Run(t, func(t *testing.T, o queuetest.Options) (queuetest.Queue, queuetest.Queue) {
		db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
		claim(t, db)
		main := db.Queue("changes", QueueOptions{Visibility: o.Visibility, MaxReceive: o.MaxReceive, DeadLetter: "changes-dlq"})
		dlq := db.Queue("changes-dlq", QueueOptions{Visibility: o.Visibility})
		t.Cleanup(main.Consume())
		return main, dlq
	})
}

func claim(t *testing.T, db *DB) {
	t.Helper()
	if _, err := db.Claim(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func consumedQueue(t *testing.T, visibility time.Duration) (*DB, *Queue, func()) {
	t.Helper()
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	claim(t, db)
	q := db.Queue("changes", QueueOptions{Visibility: visibility, MaxReceive: 5, DeadLetter: "changes-dlq"})
	stop := q.Consume()
	t.Cleanup(stop)
	return db, q, stop
}

func TestConsumeHandsSentMessagesToReceive(t *testing.T) {
	_, q, _ := consumedQueue(t, time.Minute)
	sendBodies(t, q, "a", "b", "c")
	// Handed on: in flight from the send, so no receive from the table can return them.
	if v, f := stats(t, q); v != 0 || f != 3 {
		t.Fatalf("after the send: %d visible, %d in flight; want 0 and 3", v, f)
	}
	got, err := q.Receive(context.Background(), 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b := bodiesOf(got); strings.Join(b, ",") != "a,b,c" {
		t.Fatalf("received %v, want a, b and c", b)
	}
	for _, m := range got {
		if m.ReceiveCount != 1 || m.Attributes["body"] != string(m.Body) || m.ID == "" || m.SentAt.IsZero() {
			t.Errorf("received %+v: want receive count 1, its attributes, an id and its sent time", m)
		}
	}
	if more, err := q.Receive(context.Background(), 10, 0); err != nil || len(more) != 0 {
		t.Fatalf("a second receive got %d messages (%v), want none", len(more), err)
	}
	var handles []string
	for _, m := range got {
		handles = append(handles, m.ReceiptHandle)
	}
	if err := q.Delete(context.Background(), handles...); err != nil {
		t.Fatal(err)
	}
	if v, f := stats(t, q); v != 0 || f != 0 {
		t.Fatalf("after the delete: %d visible, %d in flight; want none", v, f)
	}
}

func TestConsumeStopPutsHandedMessagesBack(t *testing.T) {
	_, q, stop := consumedQueue(t, time.Minute)
	sendBodies(t, q, "a", "b")
	stop()
	if v, f := stats(t, q); v != 2 || f != 0 {
		t.Fatalf("after stop: %d visible, %d in flight; want 2 and 0", v, f)
	}
	got := receiveAll(t, q, 2, 10*time.Second)
	for _, m := range got {
		if m.ReceiveCount != 1 {
			t.Errorf("%s received %d times, want once: the hand-off's receive is not counted", m.Body, m.ReceiveCount)
		}
	}
	// A send without a consumer leaves its message visible.
	sendBodies(t, q, "c")
	if v, _ := stats(t, q); v != 1 {
		t.Fatalf("a send after stop left %d visible, want 1", v)
	}
}

func TestAHandedMessageNotDeletedIsReceivedAgain(t *testing.T) {
	_, q, _ := consumedQueue(t, 300*time.Millisecond)
	sendBodies(t, q, "a")
	first := receiveAll(t, q, 1, 10*time.Second)
	// Not deleted: after its visibility timeout the table's receive returns it.
	again := receiveAll(t, q, 1, 10*time.Second)
	if again[0].ID != first[0].ID || again[0].ReceiveCount != 2 {
		t.Fatalf("received again %+v, want message %s with receive count 2", again[0], first[0].ID)
	}
	// The first receipt is stale now.
	if err := q.Delete(context.Background(), first[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if _, f := stats(t, q); f != 1 {
		t.Fatalf("a stale receipt deleted the message (%d in flight, want 1)", f)
	}
}

func TestHandedMessagesOutliveACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "halosync.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	claim(t, db)
	q := db.Queue("changes", QueueOptions{Visibility: time.Hour})
	q.Consume() // never stopped: the process dies with the messages handed
	sendBodies(t, q, "a", "b")
	if got, err := q.Receive(context.Background(), 10, 0); err != nil || len(got) != 2 {
		t.Fatalf("received %d messages (%v), want both", len(got), err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTestDB(t, path)
	if n, err := db.Claim(context.Background()); err != nil || n != 2 {
		t.Fatalf("the next claim released %d messages (%v), want both", n, err)
	}
	q = db.Queue("changes", QueueOptions{Visibility: time.Hour})
	if b := bodiesOf(receiveAll(t, q, 2, 10*time.Second)); strings.Join(b, ",") != "a,b" {
		t.Fatalf("after the restart received %v, want a and b", b)
	}
}

func TestHandedMessagesWaitingTooLongArePutBack(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Minute)
	db.handoff(q.name, false).maxWait = -1 // every handed message has waited too long
	sendBodies(t, q, "a", "b")
	got := receiveAll(t, q, 2, 10*time.Second)
	for _, m := range got {
		if m.ReceiveCount != 1 {
			t.Errorf("%s: receive count %d, want 1 (put back uncounted, then received from the table)", m.Body, m.ReceiveCount)
		}
	}
	if _, f := stats(t, q); f != 2 {
		t.Fatalf("%d in flight, want the 2 received", f)
	}
}

func TestAFullHandOffSendsToTheTable(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Minute)
	db.handoff(q.name, false).fullWait = 0 // no receive comes to make room
	n := handoffCapacity + 40
	for i := range n {
		sendBodies(t, q, fmt.Sprint(i))
	}
	if v, f := stats(t, q); v != 40 || f != handoffCapacity {
		t.Fatalf("%d visible, %d in flight; want the 40 beyond the hand-off's %d visible", v, f, handoffCapacity)
	}
	seen := map[string]int{}
	first := ""
	for _, m := range receiveAll(t, q, n, 30*time.Second) {
		seen[string(m.Body)]++
		if first == "" {
			first = string(m.Body)
		}
		if m.ReceiveCount != 1 {
			t.Errorf("%s: receive count %d, want 1", m.Body, m.ReceiveCount)
		}
	}
	if len(seen) != n {
		t.Fatalf("received %d distinct messages, want %d", len(seen), n)
	}
	// The table's visible messages go first, so that they are not passed by newer ones.
	if first != fmt.Sprint(handoffCapacity) {
		t.Errorf("first received %s, want %d, the oldest visible one", first, handoffCapacity)
	}
}

// A send that finds the hand-off full waits for a receive to make room, and is handed on.
func TestASendWaitsForRoomInTheHandOff(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Minute)
	db.handoff(q.name, false).fullWait = time.Minute
	for i := range handoffCapacity {
		sendBodies(t, q, fmt.Sprint(i))
	}
	sent := make(chan error, 1)
	go func() {
		sent <- q.Send(context.Background(), []message.Message{{Body: []byte("late")}})
	}()
	select {
	case err := <-sent:
		t.Fatalf("a send into a full hand-off returned (%v) before a receive made room", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := q.Receive(context.Background(), 10, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if v, f := stats(t, q); v != 0 || f != handoffCapacity+1 {
		t.Fatalf("%d visible, %d in flight; want the late message handed on too", v, f)
	}
}
