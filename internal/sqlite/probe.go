package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// CheckWrite commits a write that leaves nothing behind (a row put into the cursors table
// and deleted in the same transaction), through the write connection every store write
// and queue send uses: an error means those would fail too (closed, read-only, locked by
// another process, disk full). It is a readiness probe; callers keep it rare.
func (db *DB) CheckWrite(ctx context.Context) error {
	return db.inWriteTx(ctx, "check write", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO cursors (pk, sk, doc, updated_at) VALUES ('_probe', 'write', '{}', '')`); err != nil {
			return fmt.Errorf("sqlite: check write: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM cursors WHERE pk = '_probe'`); err != nil {
			return fmt.Errorf("sqlite: check write: %w", err)
		}
		return nil
	})
}
