package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestCheckWrite: the probe passes on a writable database and leaves nothing behind, and
// fails when the write connection takes no write or the database is closed.
func TestCheckWrite(t *testing.T) {
	ctx := context.Background()
	db := openTestDB(t, filepath.Join(t.TempDir(), "halosync.db"))
	for range 2 {
		if err := db.CheckWrite(ctx); err != nil {
			t.Fatalf("CheckWrite on a writable database: %v", err)
		}
	}
	var rows int
	if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM cursors").Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the probe left %d rows behind (%v)", rows, err)
	}

	// query_only makes the one write connection refuse writes, as a read-only file would.
	if _, err := db.write.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckWrite(ctx); err == nil {
		t.Fatal("CheckWrite passed on a database that takes no write")
	}
	if _, err := db.write.ExecContext(ctx, "PRAGMA query_only = 0"); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckWrite(ctx); err != nil {
		t.Fatalf("CheckWrite once writable again: %v", err)
	}

	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.CheckWrite(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("CheckWrite after Close = %v, want ErrClosed", err)
	}
}
