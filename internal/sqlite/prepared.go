package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// The statements every delivery's writes run: ingest's send, the pump's receive and
// delete, the worker's apply (with its change event) and delivery record, and the
// savepoints of a shared commit. They are prepared once on the write connection when the
// database is opened, and each group transaction binds them (database/sql's Tx.Stmt
// reuses a statement prepared on its connection) instead of parsing them again for every
// call (docs/PERFORMANCE.md, "The local pipeline with group commit").
const (
	selectObject = `SELECT ` + objectColumns + ` FROM objects WHERE pk = ? AND sk = ?`
	upsertObject = `
INSERT INTO objects (pk, sk, connection, kind, id, parent_id, version, pending_version, deleted, fields,
	client_id, gsi1pk, gsi1sk, synced_at, source, delivery_id, event, changed_sk)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (pk, sk) DO UPDATE SET
	connection = excluded.connection, kind = excluded.kind, id = excluded.id, parent_id = excluded.parent_id,
	version = excluded.version, pending_version = excluded.pending_version, deleted = excluded.deleted,
	fields = excluded.fields, client_id = excluded.client_id, gsi1pk = excluded.gsi1pk, gsi1sk = excluded.gsi1sk,
	synced_at = excluded.synced_at, source = excluded.source, delivery_id = excluded.delivery_id, event = excluded.event,
	changed_sk = excluded.changed_sk`
	insertChangeEvent = `INSERT INTO change_events (connection, event_id, created_at, event) VALUES (?, ?, ?, ?)`
	// upsertDelivery keeps a stored record as change.Delivery.Replaces says: a duplicate or
	// stale record (or an applied one whose changes are not known) keeps an unexpired
	// record of the same version that says the delivery applied it or marked it pending.
	upsertDelivery = `
INSERT INTO deliveries (pk, sk, outcome, version, expires_at, record) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (pk, sk) DO UPDATE SET
	outcome = excluded.outcome, version = excluded.version, expires_at = excluded.expires_at, record = excluded.record
WHERE NOT (? AND deliveries.expires_at > ? AND deliveries.version = excluded.version
	AND deliveries.outcome IN (?, ?))`
	insertMessage = `INSERT INTO queue_messages (queue, id, body, attributes, sent_at, visible_at, receive_count, receipt)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	selectVisible = `SELECT seq, id, body, attributes, sent_at, receive_count
		FROM queue_messages INDEXED BY queue_messages_order
		WHERE queue = ? AND visible_at <= ? ORDER BY seq LIMIT ?`
	markReceived = `UPDATE queue_messages
					SET receive_count = ?, visible_at = ?, receipt = ? WHERE seq = ?`
	deleteReceived    = `DELETE FROM queue_messages WHERE seq = ? AND queue = ? AND receipt = ?`
	selectNextVisible = `SELECT MIN(visible_at) FROM queue_messages INDEXED BY queue_messages_order
		WHERE queue = ? AND visible_at > ?`
	// insertHanded puts a handed message into the table with its seq (moveHanded, and
	// Claim's recovery); a row already there is a move before whose commit's fsync failed,
	// or one whose mark a crash lost.
	insertHanded = `INSERT OR IGNORE INTO queue_messages (seq, queue, id, body, attributes, sent_at, visible_at, receive_count, receipt)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	savepoint           = `SAVEPOINT write_op`
	rollbackToSavepoint = `ROLLBACK TO write_op`
	releaseSavepoint    = `RELEASE write_op`
)

// The hot statements of each file: the store's and the queues'.
var (
	storeStatements = []string{selectObject, upsertObject, insertChangeEvent, trimChangeEvents, upsertDelivery,
		savepoint, rollbackToSavepoint, releaseSavepoint}
	queueStatements = []string{insertMessage, selectVisible, markReceived, deleteReceived, selectNextVisible,
		savepoint, rollbackToSavepoint, releaseSavepoint}
)

// prepareHot prepares the file's hot statements on its write connection. It runs while the writer is
// idle (Open, after the schema is up to date): preparing takes the connection.
func (f *file) prepareHot(ctx context.Context) error {
	hot := make(map[string]*sql.Stmt, len(f.hotList))
	for _, q := range f.hotList {
		st, err := f.write.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", err)
		}
		hot[q] = st
	}
	f.hot, f.groupStmts = hot, make(map[string]*sql.Stmt, len(hot))
	return nil
}

// stmt is query's prepared statement bound to tx, nil when query is not a hot one or tx
// is not the writer's group transaction (a read transaction of the read pool).
func (f *file) stmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	parent := f.hot[query]
	if parent == nil || f.groupTx.Load() != tx {
		return nil
	}
	// Only the writer goroutine gets here: it runs every write of its transaction.
	st := f.groupStmts[query]
	if st == nil {
		st = tx.StmtContext(ctx, parent)
		f.groupStmts[query] = st
	}
	return st
}

// beginGroup makes tx the transaction the hot statements are bound to.
func (f *file) beginGroup(tx *sql.Tx) {
	clear(f.groupStmts)
	f.groupTx.Store(tx)
}

// exec runs query in tx, prepared when it is a hot statement. In the writer's group
// transaction it notes whether the statement changed a row (opWrote, for hotWriteTx).
func (f *file) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	var res sql.Result
	var err error
	if st := f.stmt(ctx, tx, query); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = tx.ExecContext(ctx, query, args...)
	}
	if err == nil && f.groupTx.Load() == tx {
		if n, _ := res.RowsAffected(); n > 0 {
			f.opWrote = true
		}
	}
	return res, err
}

// query runs query in tx, prepared when it is a hot statement.
func (f *file) query(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st := f.stmt(ctx, tx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, query, args...)
}

// queryRow runs query in tx for one row, prepared when it is a hot statement.
func (f *file) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := f.stmt(ctx, tx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}
