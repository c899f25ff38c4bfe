package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkFloorStoreApply is the least work a durable newest-wins write needs, beside
// BenchmarkStoreApply with the same tickets and the writer's pragmas: one plain upsert
// of a row holding the fields as JSON, guarded by the version. "one-per-tx" commits each
// upsert in its own transaction (an fsync each, as Apply does); "group-commit" has 64
// goroutines hand upserts to one writer that commits up to 100 per transaction, so the
// fsync is shared. Neither reads the stored row, merges fields, keeps secondary keys or
// writes a change event.
func BenchmarkFloorStoreApply(b *testing.B) {
	const tickets = 1000
	fields := make([][]byte, tickets)
	for i := range fields {
		fields[i], _ = json.Marshal(benchTicketFields(i))
	}
	for _, c := range []struct {
		name    string
		prefill bool
	}{{"new", false}, {"update", true}} {
		b.Run(c.name+"/one-per-tx", func(b *testing.B) {
			db, up := openFloorDB(b)
			if c.prefill {
				floorPrefill(b, db, up, fields)
			}
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				id, version := i%tickets, int64(2+i/tickets)
				if !c.prefill {
					id, version = i, 1
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, up, fmt.Sprint(id), version, fields[id%tickets]); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/group-commit", func(b *testing.B) {
			db, up := openFloorDB(b)
			if c.prefill {
				floorPrefill(b, db, up, fields)
			}
			type write struct {
				id      int
				version int64
				done    chan error
			}
			writes := make(chan write)
			stop := make(chan struct{})
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
					for len(group) < 100 {
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
							_, err = tx.ExecContext(ctx, up, fmt.Sprint(w.id), w.version, fields[w.id%tickets])
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
			defer close(stop)
			var n atomic.Int64
			b.SetParallelism(32) // 64 writers on 2 cores, like a busy worker pool
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				done := make(chan error, 1)
				for pb.Next() {
					i := int(n.Add(1))
					id, version := i%tickets, int64(2+i/tickets)
					if !c.prefill {
						id, version = i, 1
					}
					writes <- write{id: id, version: version, done: done}
					if err := <-done; err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// openFloorDB opens a fresh database with the writer's parameters, one connection, and a
// table of objects keyed by id; it returns the newest-wins upsert.
func openFloorDB(b *testing.B) (*sql.DB, string) {
	db, err := sql.Open("sqlite", dsn(filepath.Join(b.TempDir(), "floor.db"), writerParams()))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	b.Cleanup(func() { _ = db.Close() })
	if _, err := db.Exec(`CREATE TABLE objects (id TEXT PRIMARY KEY, version INTEGER NOT NULL, fields TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	return db, `INSERT INTO objects (id, version, fields) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, fields = excluded.fields
		WHERE excluded.version > objects.version`
}

// floorPrefill stores every ticket at version 1, so that the updates replace rows.
func floorPrefill(b *testing.B, db *sql.DB, up string, fields [][]byte) {
	for i, f := range fields {
		if _, err := db.Exec(up, fmt.Sprint(i), 1, f); err != nil {
			b.Fatal(err)
		}
	}
}
