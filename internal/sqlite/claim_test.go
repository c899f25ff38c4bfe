package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestClaimMakesADeadConsumersMessagesVisibleAtOnce: a message received by a process that
// then died is received again as soon as the next process claims the queue, not after
// the rest of its visibility timeout.
func TestClaimMakesADeadConsumersMessagesVisibleAtOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	opts := QueueOptions{Visibility: time.Hour}
	dead, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dead.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	q := dead.Queue("changes", opts)
	sendBodies(t, q, "held", "waiting")
	held, err := q.Receive(ctx, 1, 0)
	if err != nil || len(held) != 1 {
		t.Fatalf("received %d, err %v", len(held), err)
	}
	if err := dead.Close(); err != nil { // as the kernel closes a killed process's files
		t.Fatal(err)
	}

	db := openTestDB(t, path)
	q = db.Queue("changes", opts)
	if got, err := q.Receive(ctx, 10, 0); err != nil || len(got) != 1 || string(got[0].Body) != "waiting" {
		t.Fatalf("before the claim: received %v, err %v; want only the waiting message", bodiesOf(got), err)
	}
	released, err := db.Claim(ctx)
	if err != nil || released != 2 {
		t.Fatalf("Claim released %d, err %v; want both messages in flight", released, err)
	}
	got, err := q.Receive(ctx, 10, 0)
	if err != nil || len(got) != 2 {
		t.Fatalf("after the claim: received %v, err %v; want both messages at once", bodiesOf(got), err)
	}
	for _, m := range got {
		if m.ID == held[0].ID && m.ReceiveCount != 2 {
			t.Fatalf("the dead consumer's message came back with receive count %d, want 2", m.ReceiveCount)
		}
	}
}

// TestClaimIsExclusive: while one DB holds the claim on a file, another cannot take it
// (and so cannot release the first one's messages); closing the first frees it.
func TestClaimIsExclusive(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "halosync.db")
	first, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Claim(ctx); err != nil {
		t.Fatal(err)
	}
	q := first.Queue("changes", QueueOptions{Visibility: time.Hour})
	sendBodies(t, q, "in flight")
	if got, err := q.Receive(ctx, 1, 0); err != nil || len(got) != 1 {
		t.Fatalf("received %d, err %v", len(got), err)
	}

	second := openTestDB(t, path)
	if _, err := second.Claim(ctx); !errors.Is(err, ErrClaimed) {
		t.Fatalf("second Claim: %v, want ErrClaimed", err)
	}
	if v, f := stats(t, second.Queue("changes", QueueOptions{})); v != 0 || f != 1 {
		t.Fatalf("after the refused claim: %d visible, %d in flight; want the message still in flight", v, f)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := second.Claim(ctx); err != nil || n != 1 {
		t.Fatalf("Claim after the first closed: released %d, err %v; want 1", n, err)
	}
}
