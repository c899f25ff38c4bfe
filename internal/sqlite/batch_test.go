package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/halosync/halosync/internal/change"
)

// holdSyncer makes db's syncer stop before its next fsync until the returned release is
// called, which makes that fsync fail with fail (nil: it happens); held is closed once it
// has stopped. Later fsyncs run as usual.
func holdSyncer(t *testing.T, db *DB) (held <-chan struct{}, release func(fail error)) {
	t.Helper()
	stopped, gate := make(chan struct{}), make(chan error, 1)
	var once, first sync.Once
	release = func(fail error) { once.Do(func() { gate <- fail }) }
	t.Cleanup(func() { release(nil) })
	db.onSync = func() error {
		var err error
		first.Do(func() {
			close(stopped)
			err = <-gate
		})
		return err
	}
	return stopped, release
}

// syncHeld commits one write and waits until the syncer holds it (holdSyncer), so that
// the next writes wait for the commit after it. The returned channel answers that write.
func syncHeld(t *testing.T, db *DB, held <-chan struct{}) <-chan error {
	t.Helper()
	first := make(chan error, 1)
	go func() { first <- db.Store().SaveCursor(context.Background(), "c", "held", []byte(`{}`)) }()
	<-held
	return first
}

// TestDeferredWritesAreAnsweredBeforeTheirCommit: a write with a context from
// DeferCommits is answered once it has run, before its commit is on disk (the read pool
// does not see it yet); wait returns once it is.
func TestDeferredWritesAreAnsweredBeforeTheirCommit(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "q.db"))
	store := db.Store()
	held, release := holdSyncer(t, db)
	first := syncHeld(t, db, held)

	ctx, wait := store.DeferCommits(context.Background())
	c := change.Change{Connection: "c", Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 10,
		Source: change.SourceWebhook, Fields: map[string]any{"summary": "s"}}
	if r, err := store.Apply(ctx, c); err != nil || r.Outcome != change.Applied {
		t.Fatalf("deferred Apply = %v, %v; want applied", r.Outcome, err)
	}
	if _, found, err := store.Get(context.Background(), "c", change.Ticket, "1", ""); err != nil || found {
		t.Fatalf("the read pool sees the write before its commit (found %v, err %v)", found, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- wait() }()
	select {
	case err := <-waited:
		t.Fatalf("wait returned %v while the commit before it is still being synced", err)
	default:
	}
	release(nil)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("wait = %v", err)
	}
	if o, found, err := store.Get(context.Background(), "c", change.Ticket, "1", ""); err != nil || !found || o.Version != 10 {
		t.Fatalf("after wait: found %v, version %d, err %v; want the write", found, o.Version, err)
	}
}

// TestAFailedSyncIsTheErrorOfEveryWriteInIt: when the fsync of a commit fails, a caller
// waiting for that commit is answered with the error, and the wait of a deferred write
// in it returns the error: the pump then keeps the batch's messages.
func TestAFailedSyncIsTheErrorOfEveryWriteInIt(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "q.db"))
	store := db.Store()
	failFirst, failSecond := errors.New("first sync failed"), errors.New("second sync failed")
	stopped, gate := make(chan struct{}), make(chan struct{})
	syncs := 0 // the syncer's alone
	db.onSync = func() error {
		syncs++
		switch syncs {
		case 1:
			close(stopped)
			<-gate
			return failFirst
		case 2:
			return failSecond
		}
		return nil
	}
	durable := make(chan error, 1)
	go func() { durable <- store.SaveCursor(context.Background(), "c", "durable", []byte(`{}`)) }()
	<-stopped // its commit is being synced: the next write goes into the next commit

	ctx, wait := store.DeferCommits(context.Background())
	c := change.Change{Connection: "c", Kind: change.Ticket, ID: "1", Op: change.OpUpsert, Version: 10,
		Source: change.SourceWebhook, Fields: map[string]any{"summary": "s"}}
	if _, err := store.Apply(ctx, c); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if err := <-durable; !errors.Is(err, failFirst) {
		t.Fatalf("durable write = %v, want the failed sync", err)
	}
	if err := wait(); !errors.Is(err, failSecond) {
		t.Fatalf("wait = %v, want the failed sync of the deferred write's commit", err)
	}
}

// TestAHotWriteFailingAfterWritingRollsBackItsGroup: a write run without a savepoint
// (hotWriteTx) that fails after changing a row takes its group's transaction with it:
// every write of the group is answered with an error and none is kept. One that fails
// before writing leaves the others alone.
func TestAHotWriteFailingAfterWritingRollsBackItsGroup(t *testing.T) {
	for _, afterWriting := range []bool{true, false} {
		name := map[bool]string{true: "after writing", false: "before writing"}[afterWriting]
		t.Run(name, func(t *testing.T) {
			db := openTestDB(t, filepath.Join(t.TempDir(), "q.db"))
			ctx := context.Background()
			_, held, release := holdWriter(t, db.file)
			insert := func(name string) func(tx *sql.Tx) error {
				return func(tx *sql.Tx) error {
					_, err := db.exec(ctx, tx, `INSERT INTO cursors (pk, sk, doc, updated_at) VALUES ('t', ?, '{}', '')`, name)
					return err
				}
			}
			refused := errors.New("refused")
			first := make(chan error, 1)
			go func() { first <- db.hotWriteTx(ctx, "held", insert("held")) }()
			<-held
			failing, other := make(chan error, 1), make(chan error, 1)
			go func() {
				failing <- db.hotWriteTx(ctx, "failing", func(tx *sql.Tx) error {
					if afterWriting {
						if err := insert("failing")(tx); err != nil {
							return err
						}
					}
					return refused
				})
			}()
			waitWaiting(t, db.file, 1)
			go func() { other <- db.hotWriteTx(ctx, "other", insert("other")) }()
			waitWaiting(t, db.file, 2)
			release()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if err := <-failing; !errors.Is(err, refused) {
				t.Fatalf("failing write = %v, want its own error", err)
			}
			err := <-other
			var n int
			if qerr := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM cursors WHERE pk = 't' AND sk != 'held'`).Scan(&n); qerr != nil {
				t.Fatal(qerr)
			}
			if afterWriting && (err == nil || n != 0) {
				t.Fatalf("other write = %v, %d rows kept; want an error and none", err, n)
			}
			if !afterWriting && (err != nil || n != 1) {
				t.Fatalf("other write = %v, %d rows kept; want it committed alone", err, n)
			}
		})
	}
}
