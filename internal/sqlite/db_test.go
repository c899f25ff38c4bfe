package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// openTestDB opens a database at path and closes it when the test ends.
func openTestDB(tb testing.TB, path string) *DB {
	tb.Helper()
	db, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

func TestOpenCreatesParentsAndConfiguresTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b c", "halo?sync#1%.db")
	db := openTestDB(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not at %s: %v", path, err)
	}
	if db.Path() != path {
		t.Fatalf("Path() = %q, want %q", db.Path(), path)
	}
	ctx := context.Background()
	var mode string
	if err := db.read.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		t.Fatalf("journal_mode = %q, err %v; want wal", mode, err)
	}
	var sync, version int
	// NORMAL: the commit writes the WAL, and the syncer syncs it before any caller is
	// answered.
	if err := db.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 1 {
		t.Fatalf("synchronous on the write connection = %d, err %v; want 1 (NORMAL)", sync, err)
	}
	var checkpointPages int
	if err := db.write.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&checkpointPages); err != nil || checkpointPages != 8000 {
		t.Fatalf("wal_autocheckpoint = %d, err %v; want 8000", checkpointPages, err)
	}
	if err := db.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil || version != len(migrations()) {
		t.Fatalf("user_version = %d, err %v; want %d", version, err, len(migrations()))
	}
	if _, err := db.read.ExecContext(ctx, "DELETE FROM objects"); err == nil {
		t.Fatal("the read pool accepted a write")
	}
}

func TestReopenKeepsSchemaAndRefusesANewerOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "halosync.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := db.Store().ListByClient(context.Background(), "c", "1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListByClient after Close: %v, want ErrClosed", err)
	}

	db, err = Open(path) // an up-to-date file opens again
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path); err == nil {
		_ = db.Close()
		t.Fatal("Open accepted a schema newer than it knows")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open error = %v; want it to say the schema is newer", err)
	}
}

func TestOpenRejectsAnEmptyPath(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

// writerLog is what a writer did while a test held it.
type writerLog struct {
	mu     sync.Mutex
	groups []int // per group: its writes
}

// sizes are the groups' sizes, in order.
func (l *writerLog) sizes() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.groups)
}

// holdWriter makes f's writer stop before its next group until the returned release is
// called, and logs every group it runs; held is closed once it has stopped.
func holdWriter(t *testing.T, f *file) (log *writerLog, held <-chan struct{}, release func()) {
	t.Helper()
	log = &writerLog{}
	gate, stopped := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	f.onGroup = func(n int) {
		log.mu.Lock()
		log.groups = append(log.groups, n)
		first := len(log.groups) == 1
		log.mu.Unlock()
		if first {
			close(stopped)
			<-gate
		}
	}
	return log, stopped, release
}

// waitWaiting waits until n writes are waiting for f's writer.
func waitWaiting(t *testing.T, f *file, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.waiting.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes waiting for the writer, want %d", f.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWaitingWritesShareOneCommit: writes that arrive while a commit is under way are
// committed together in the next one, however many there are (up to maxGroup), so a
// crowd of senders costs one fsync per turn, not one each, and a receive waits one turn.
func TestWaitingWritesShareOneCommit(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "q.db"))
	q := db.Queue("changes", QueueOptions{})
	ctx := context.Background()
	log, held, release := holdWriter(t, db.queue)

	errs := make(chan error, 21)
	send := func(i int) {
		errs <- q.Send(ctx, []message.Message{{Body: []byte(fmt.Sprint(i))}})
	}
	go send(0)
	<-held // the first send is the writer's, held before its commit
	for i := 1; i <= 20; i++ {
		go send(i)
	}
	waitWaiting(t, db.queue, 20)
	release()
	for range 21 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := log.sizes(); !slices.Equal(got, []int{1, 20}) {
		t.Fatalf("groups of %v writes, want [1 20]: the 20 waiting sends share one commit", got)
	}
	if v, _, err := q.Stats(ctx); err != nil || v != 21 {
		t.Fatalf("queue holds %d messages (err %v), want 21", v, err)
	}
}

// TestAFailedWriteRollsBackAloneInItsGroup: a write that fails in a shared commit is rolled
// back to its savepoint; the group's other writes are committed.
func TestAFailedWriteRollsBackAloneInItsGroup(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "q.db"))
	ctx := context.Background()
	log, held, release := holdWriter(t, db.file)
	insert := func(name string, fail bool) error {
		return db.inWriteTx(ctx, "test write "+name, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO cursors (pk, sk, doc, updated_at) VALUES ('t', ?, '{}', '')`, name); err != nil {
				return err
			}
			if fail {
				return errors.New("refused after writing")
			}
			return nil
		})
	}
	first := make(chan error, 1)
	go func() { first <- insert("held", false) }()
	<-held
	results := make(map[string]chan error)
	for _, w := range []struct {
		name string
		fail bool
	}{{"a", false}, {"b", true}, {"c", false}} {
		ch := make(chan error, 1)
		results[w.name] = ch
		go func() { ch <- insert(w.name, w.fail) }()
	}
	waitWaiting(t, db.file, 3)
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for name, ch := range results {
		err := <-ch
		if (err != nil) != (name == "b") {
			t.Errorf("write %s: err %v", name, err)
		}
	}
	if got := log.sizes(); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("groups of %v writes, want [1 3]", got)
	}
	var names []string
	rows, err := db.read.QueryContext(ctx, `SELECT sk FROM cursors WHERE pk = 't' ORDER BY sk`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if !slices.Equal(names, []string{"a", "c", "held"}) {
		t.Fatalf("stored %v, want [a c held]: b's write rolled back alone", names)
	}
}

// TestSendsDoNotWaitForTheStoresWrites: the queues have a file and a writer of their own,
// so a send is committed while the store's writer is busy (here: held), and the store's
// writes go on once it is free.
func TestSendsDoNotWaitForTheStoresWrites(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "q.db"))
	q := db.Queue("changes", QueueOptions{})
	ctx := context.Background()
	_, held, release := holdWriter(t, db.file)
	stored := make(chan error, 1)
	go func() { stored <- db.Store().SaveCursor(ctx, "c", "held", []byte(`{}`)) }()
	<-held
	for i := range 5 {
		if err := q.Send(ctx, []message.Message{{Body: []byte(fmt.Sprint(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if v, _, err := q.Stats(ctx); err != nil || v != 5 {
		t.Fatalf("queue holds %d messages (err %v), want 5", v, err)
	}
	release()
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	if _, ok, err := db.Store().LoadCursor(ctx, "c", "held"); err != nil || !ok {
		t.Fatalf("the store's write after the hold: found %v, err %v", ok, err)
	}
}
