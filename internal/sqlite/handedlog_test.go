package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// crashImage copies the files of the database at path as they are now, as a machine that
// stopped at this moment would leave them, and returns the copy's path.
func crashImage(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Dir(path))); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, filepath.Base(path))
}

// claimCrashImage claims a crash image of the database at path (crashImage), checks that
// the claim released want messages and returns the image's queue of changes.
func claimCrashImage(t *testing.T, path string, want int) (*DB, *Queue) {
	t.Helper()
	db := openTestDB(t, crashImage(t, path))
	if n, err := db.Claim(context.Background()); err != nil || n != want {
		t.Fatalf("the claim after the crash released %d messages (%v), want %d", n, err, want)
	}
	return db, db.Queue("changes", QueueOptions{Visibility: time.Hour})
}

func handedLogFiles(t *testing.T, path string) []string {
	t.Helper()
	files, err := filepath.Glob(handedLogPrefix(QueuePath(path)) + "*.log")
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func handles(msgs []message.Received) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ReceiptHandle)
	}
	return out
}

// What a crash leaves in the hand-off log comes back at the next Claim, visible, but for
// what was deleted before a later send wrote its marks.
func TestAKilledConsumersHandedMessagesComeBack(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Hour)
	sendBodies(t, q, "a", "b", "c")
	got := receiveAll(t, q, 3, 10*time.Second)
	var deleted, kept []message.Received
	for _, m := range got {
		if string(m.Body) == "b" {
			deleted = append(deleted, m)
		} else {
			kept = append(kept, m)
		}
	}
	if err := q.Delete(context.Background(), handles(deleted)...); err != nil {
		t.Fatal(err)
	}
	sendBodies(t, q, "d") // its write takes b's mark along
	if len(handedLogFiles(t, db.Path())) == 0 {
		t.Fatal("no hand-off log file: the messages were not handed")
	}

	copied, after := claimCrashImage(t, db.Path(), 3) // a, c and d
	again := receiveAll(t, after, 3, 10*time.Second)
	if b := bodiesOf(again); strings.Join(b, ",") != "a,c,d" {
		t.Fatalf("after the crash received %v, want a, c and d", b)
	}
	for _, m := range again {
		if m.Attributes["body"] != string(m.Body) || m.SentAt.IsZero() {
			t.Errorf("recovered %+v: want its attributes and sent time", m)
		}
		for _, k := range kept {
			if k.Body[0] == m.Body[0] && (k.ID != m.ID || !k.SentAt.Equal(m.SentAt)) {
				t.Errorf("%s came back as id %s sent %v, want id %s sent %v", m.Body, m.ID, m.SentAt, k.ID, k.SentAt)
			}
		}
	}
	if files := handedLogFiles(t, copied.Path()); len(files) != 0 {
		t.Errorf("after the claim the log's files %v remain, want them gone once their messages are in the table", files)
	}
}

// A record cut short by a crash in the middle of a write was never acknowledged: the log
// is read up to it.
func TestATornRecordEndsTheLog(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Hour)
	sendBodies(t, q, "a")
	sendBodies(t, q, "b")
	image := crashImage(t, db.Path())
	files := handedLogFiles(t, image)
	if len(files) != 1 {
		t.Fatalf("log files %v, want one", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	// b's record is the last written, ending with its body "b", zeros after it: zero
	// its last 10 bytes, as a write torn in its middle would leave it.
	end := len(strings.TrimRight(string(b), "\x00"))
	if end < 10 || b[end-1] != 'b' {
		t.Fatal("b's record not found at the end of the log")
	}
	if err := os.WriteFile(files[0], append(b[:end-10:end-10], make([]byte, len(b)-end+10)...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, after := claimCrashImage(t, image, 1) // a alone
	got := receiveAll(t, after, 1, 10*time.Second)
	if string(got[0].Body) != "a" {
		t.Fatalf("received %s, want a", got[0].Body)
	}
}

// A message moved to the table (its visibility changed) whose mark a crash lost is not
// recovered twice.
func TestAMovedMessageIsRecoveredOnce(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Hour)
	sendBodies(t, q, "a")
	got := receiveAll(t, q, 1, 10*time.Second)
	if err := q.ChangeVisibility(context.Background(), got[0].ReceiptHandle, time.Hour); err != nil {
		t.Fatal(err)
	}
	_, after := claimCrashImage(t, db.Path(), 1) // the mark is not written yet
	if v, f := stats(t, after); v != 1 || f != 0 {
		t.Fatalf("%d visible, %d in flight; want a once", v, f)
	}
}

// A handed message whose visibility changes moves to the table and keeps its receipt
// handle; so does one whose visibility timeout ends before a delete.
func TestAHandedMessagesReceiptOutlivesItsMove(t *testing.T) {
	ctx := context.Background()
	_, q, _ := consumedQueue(t, time.Hour)
	sendBodies(t, q, "a", "b")
	got := receiveAll(t, q, 2, 10*time.Second)
	for _, m := range got {
		if err := q.ChangeVisibility(ctx, m.ReceiptHandle, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if v, f := stats(t, q); v != 0 || f != 2 {
		t.Fatalf("after the changes: %d visible, %d in flight; want 2 in flight", v, f)
	}
	if err := q.ChangeVisibility(ctx, got[1].ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	if v, f := stats(t, q); v != 1 || f != 1 {
		t.Fatalf("after one was made visible: %d visible, %d in flight; want 1 and 1", v, f)
	}
	if err := q.Delete(ctx, got[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	again := receiveAll(t, q, 1, 10*time.Second)
	if again[0].ID != got[1].ID || again[0].ReceiveCount != 2 {
		t.Fatalf("received %+v, want %s a second time", again[0], got[1].ID)
	}
	if err := q.ChangeVisibility(ctx, got[1].ReceiptHandle, 0); !errors.Is(err, ErrUnknownReceipt) {
		t.Fatalf("changing the visibility with a receipt received again since: %v, want ErrUnknownReceipt", err)
	}
	if err := q.Delete(ctx, again[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	if v, f := stats(t, q); v != 0 || f != 0 {
		t.Fatalf("after the deletes: %d visible, %d in flight; want none", v, f)
	}
}

// The log's files are reused once their messages are gone, and a reused file's earlier
// records are not read as its own.
func TestTheLogReusesItsFiles(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Hour)
	db.handedLog().segmentBytes = 4 << 10 // a file holds a few messages
	body := strings.Repeat("x", 1000)
	for i := range 40 {
		sendBodies(t, q, body+string(rune('A'+i)))
		got := receiveAll(t, q, 1, 10*time.Second)
		if err := q.Delete(context.Background(), got[0].ReceiptHandle); err != nil {
			t.Fatal(err)
		}
	}
	files := handedLogFiles(t, db.Path())
	if len(files) > 1+maxSpares {
		t.Errorf("%d log files after 40 messages, want at most %d: %v", len(files), 1+maxSpares, files)
	}
	if made := db.handedLog().made; made < 10 {
		t.Errorf("%d log files made for 40 KB of messages, want one every 4 KB", made)
	}
	sendBodies(t, q, "last")
	_, after := claimCrashImage(t, db.Path(), 1) // the last alone
	got := receiveAll(t, after, 1, 10*time.Second)
	if string(got[0].Body) != "last" {
		t.Fatalf("received %.20s, want last", got[0].Body)
	}
}

// When the log cannot be written, sends go to the table as without a consumer.
func TestAFailingLogSendsToTheTable(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Hour)
	// The log's first file cannot be made: a directory has its name.
	if err := os.Mkdir(handedLogPrefix(QueuePath(db.Path()))+"1.log", 0o700); err != nil {
		t.Fatal(err)
	}
	sendBodies(t, q, "a")
	if v, f := stats(t, q); v != 1 || f != 0 {
		t.Fatalf("%d visible, %d in flight; want the message in the table, visible", v, f)
	}
	sendBodies(t, q, "b")
	if b := bodiesOf(receiveAll(t, q, 2, 10*time.Second)); strings.Join(b, ",") != "a,b" {
		t.Fatalf("received %v, want a and b", b)
	}
}

// Messages handed and put back keep the order they were sent in, before those sent to
// the table after them: a handed message's seq is set aside in the table's sequence.
func TestPutBackMessagesKeepTheirPlace(t *testing.T) {
	_, q, stop := consumedQueue(t, time.Hour)
	sendBodies(t, q, "1", "2")
	stop()
	sendBodies(t, q, "3")
	var order []string
	for _, m := range receiveAll(t, q, 3, 10*time.Second) {
		order = append(order, string(m.Body))
	}
	if strings.Join(order, ",") != "1,2,3" {
		t.Fatalf("received in the order %v, want 1, 2, 3", order)
	}
}

// A delete's mark is written soon even when no send follows to take it along, so a quiet
// server's crash does not deliver again what it had finished.
func TestMarksAreWrittenWithoutASend(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Hour)
	sendBodies(t, q, "a")
	got := receiveAll(t, q, 1, 10*time.Second)
	if err := q.Delete(context.Background(), got[0].ReceiptHandle); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for db.handedLog().marked() {
		if time.Now().After(deadline) {
			t.Fatal("the delete's mark is still not written after 10 s")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with no event to wait on
	}
	claimCrashImage(t, db.Path(), 0)
}

// Under concurrent sends, with a consumer that deletes some messages, lets others' short
// visibility timeouts end and makes others visible again, every message is delivered until
// deleted, none is lost, and the queue ends empty.
func TestHandedMessagesUnderChurn(t *testing.T) {
	const senders, each = 8, 50
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	claim(t, db)
	// Small files, filled and reused during the run; no dead-letter queue, so nothing
	// leaves but by a delete.
	db.handedLog().segmentBytes = 16 << 10
	q := db.Queue("changes", QueueOptions{Visibility: 100 * time.Millisecond})
	t.Cleanup(q.Consume())
	ctx := context.Background()
	sent := make(chan error, senders)
	for s := range senders {
		go func() {
			for i := range each {
				b := fmt.Sprintf("%d-%d", s, i)
				if err := q.Send(ctx, []message.Message{{Body: []byte(b), Attributes: map[string]string{"body": b}}}); err != nil {
					sent <- err
					return
				}
			}
			sent <- nil
		}()
	}
	deleted := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; len(deleted) < senders*each; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages deleted after 30 s", len(deleted), senders*each)
		}
		msgs, err := q.Receive(ctx, 10, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			if m.Attributes["body"] != string(m.Body) {
				t.Fatalf("received %q with attributes %v", m.Body, m.Attributes)
			}
			switch (n + i) % 5 {
			case 0: // left alone: its visibility timeout ends
			case 1:
				if err := q.ChangeVisibility(ctx, m.ReceiptHandle, 0); err != nil && !errors.Is(err, ErrUnknownReceipt) {
					t.Fatal(err)
				}
			default:
				if err := q.Delete(ctx, m.ReceiptHandle); err != nil {
					t.Fatal(err)
				}
				deleted[string(m.Body)] = true
			}
		}
	}
	for range senders {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	if more, err := q.Receive(ctx, 10, 300*time.Millisecond); err != nil || len(more) != 0 {
		t.Fatalf("after every message was deleted a receive got %d (%v), want none", len(more), err)
	}
	if v, f := stats(t, q); v != 0 || f != 0 {
		t.Fatalf("%d visible, %d in flight at the end; want none", v, f)
	}
	if d := db.depth(q.name).Load(); d != 0 {
		t.Fatalf("the queue counts %d messages at the end, want 0", d)
	}
}

// A move out of the log waits for the table's commit even in a batch whose writes are
// answered before theirs (DeferCommits): the log marks a moved message gone once the move
// is answered, so a commit that then failed would lose it.
func TestAMoveOutOfTheLogWaitsForItsCommit(t *testing.T) {
	db, q, _ := consumedQueue(t, time.Hour)
	sendBodies(t, q, "a")
	got := receiveAll(t, q, 1, 10*time.Second)
	db.queue.onSync = func() error { return errors.New("the disk is gone") }
	deferred, _ := db.Store().DeferCommits(context.Background())
	if err := q.ChangeVisibility(deferred, got[0].ReceiptHandle, 0); err == nil {
		t.Fatal("a move whose commit failed was answered as done")
	}
	if _, f := stats(t, q); f != 1 {
		t.Fatalf("%d in flight, want a still in the log", f)
	}
	db.queue.onSync = nil
	if err := q.ChangeVisibility(context.Background(), got[0].ReceiptHandle, 0); err != nil {
		t.Fatal(err)
	}
	if again := receiveAll(t, q, 1, 10*time.Second); again[0].ID != got[0].ID {
		t.Fatalf("received %s, want %s again", again[0].ID, got[0].ID)
	}
}
