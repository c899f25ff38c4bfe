package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// BenchmarkFloorStoreApply is the least work a durable newest-wins write needs, beside
// BenchmarkStoreApply with the same tickets and the writer's pragmas: one plain upsert of
// a row holding the fields as JSON, guarded by the version. "new" and "update" commit each
// upsert in its own transaction (an fsync each); the "-64-writers" variants hand the
// upserts of 64 goroutines to one writer that commits all that wait in one transaction
// (group commit, as the store's writer does). None reads the stored row, merges fields,
// keeps secondary keys or writes a change event.
func BenchmarkFloorStoreApply(b *testing.B) {
	fields := make([][]byte, benchTickets)
	for i := range fields {
		fields[i], _ = json.Marshal(benchTicketFields(i))
	}
	for _, update := range []bool{false, true} {
		name := map[bool]string{false: "new", true: "update"}[update]
		b.Run(name, func(b *testing.B) {
			db, upsert := openFloorDB(b, update, fields)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				id, version := i, int64(1)
				if update {
					id, version = i%benchTickets, int64(2+i/benchTickets)
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, upsert, fmt.Sprint(id), version, fields[id%benchTickets]); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"-64-writers", func(b *testing.B) {
			db, upsert := openFloorDB(b, update, fields)
			type write struct {
				id      int
				version int64
				done    chan error
			}
			writes := make(chan write)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				ctx := context.Background()
				for {
					var group []write
					select {
					case w := <-writes:
						group = append(group, w)
					case <-stop:
						return
					}
				more:
					for len(group) < maxGroup {
						select {
						case w := <-writes:
							group = append(group, w)
						default:
							break more
						}
					}
					tx, err := db.BeginTx(ctx, nil)
					for _, w := range group {
						if err == nil {
							_, err = tx.ExecContext(ctx, upsert, fmt.Sprint(w.id), w.version, fields[w.id%benchTickets])
						}
					}
					if err == nil {
						err = tx.Commit()
					} else if tx != nil {
						_ = tx.Rollback()
					}
					for _, w := range group {
						w.done <- err
					}
				}
			}()
			parallelWriters(b, update, func(id int, version int64) error {
				done := make(chan error, 1)
				writes <- write{id: id, version: version, done: done}
				return <-done
			})
		})
	}
}

// openFloorDB opens a fresh database with the writer's parameters, but commits synced by
// SQLite (synchronous FULL), and one connection,
// with a table of objects keyed by id (every ticket stored at version 1 for update); it
// returns the newest-wins upsert.
func openFloorDB(b *testing.B, update bool, fields [][]byte) (*sql.DB, string) {
	params := writerParams()
	params["_pragma"] = slices.DeleteFunc(params["_pragma"], func(p string) bool { return strings.HasPrefix(p, "synchronous") })
	params.Add("_pragma", "synchronous(FULL)") // each commit synced by SQLite itself
	db, err := sql.Open("sqlite", dsn(filepath.Join(b.TempDir(), "floor.db"), params))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE objects (id TEXT PRIMARY KEY, version INTEGER NOT NULL, fields TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	const upsert = `INSERT INTO objects (id, version, fields) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, fields = excluded.fields
		WHERE excluded.version > objects.version`
	for i := 0; update && i < len(fields); i++ {
		if _, err := db.Exec(upsert, fmt.Sprint(i), 1, fields[i]); err != nil {
			b.Fatal(err)
		}
	}
	return db, upsert
}
