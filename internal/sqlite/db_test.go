package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if err := db.write.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous on the write connection = %d, err %v; want 2 (FULL)", sync, err)
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
