// Package sqlite holds the embedded adapters of the local all-in-one server (`halosync
// serve`): the object store and the durable queues, in two SQLite database files side by
// side (QueuePath), on the pure-Go driver modernc.org/sqlite so that CGO_ENABLED=0 builds
// keep working.
//
// The store lays objects out with the DynamoDB keys (change.PartitionKey, change.SortKey
// and the by-client index keys), so the local and the AWS copies look alike; the poller's
// documents are kept under the cursor keys (change.CursorPartitionKey), and an index on
// (connection, kind, parent_id, id) plays DynamoDB's by-kind index GSI2. The queues
// behave like SQS: at-least-once delivery, visibility timeouts, receipt handles, and
// redrive to a dead-letter queue after a maximum number of receives.
//
// Each file's writes go through one connection and BEGIN IMMEDIATE transactions (the busy
// timeout covers other processes on the same file); reads use a separate pool and run
// concurrently with writes thanks to WAL mode. Every commit is synced before its caller
// is answered: once Apply or Send returns, the write survives a crash of the process or
// the machine.
//
// The writes of concurrent callers to a file are committed together (group commit): the
// file's writer goroutine takes every write waiting, runs each in its own savepoint of
// one transaction and commits it; a write that fails is rolled back to its savepoint
// alone. The commit only writes the WAL (synchronous=NORMAL); a second goroutine, the
// syncer, fsyncs the WAL file once for every commit made meanwhile and then answers their
// callers, while the writer goes on with the next group; while writes come in crowds, a
// commit waits a moment for more (lingering). The queues have their file, so a send
// neither waits for the worker's writes nor takes the store's writer from them
// (docs/PERFORMANCE.md, "The local pipeline under load", "The local pipeline with group
// commit" and its "Fifth pass"); while this process consumes a queue, its sends skip the
// file altogether for the hand-off log (handedlog.go, "Sixth pass").
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrClosed is returned by operations on a DB after Close, and by a Receive waiting when
// the DB is closed.
var ErrClosed = errors.New("sqlite: database is closed")

// busyTimeoutMillis is how long a connection waits for a lock another process holds
// before giving up with SQLITE_BUSY.
const busyTimeoutMillis = 10000

// DB is the embedded database: the store's file (objects, delivery records, the outbox,
// cursors, the status) and the queues' file beside it (queueFile), each written by its own
// writer goroutine. A send so commits without waiting for the worker's writes, which
// linger to be committed in crowds, and the two writers run on two cores
// (docs/PERFORMANCE.md, "Fifth pass"). It is safe for concurrent use.
type DB struct {
	*file       // the store's
	queue *file // the queues'

	closeOnce sync.Once
	closed    chan struct{}

	mu       sync.Mutex
	signals  map[string]chan struct{}  // per queue name, closed and replaced on every send
	handoffs map[string]*handoff       // per queue name with a consumer in this process (Queue.Consume)
	depths   map[string]*atomic.Int64  // per queue name: messages held, counted at open, then by this process's writes
	lock     *os.File                  // held by Claim until Close
	handed   atomic.Pointer[handedLog] // the hand-off log, opened by Claim

	deliveryWrites atomic.Uint64 // RecordDelivery calls, to delete expired records every so often
	eventWrites    atomic.Uint64 // change events written, to trim the outbox every so often
}

// file is one SQLite database file: its write connection with the writer and syncer
// goroutines that commit on it, and its pool of readers.
type file struct {
	path   string
	write  *sql.DB         // exactly one connection: writes are serialised here
	read   *sql.DB         // concurrent readers (query_only)
	closed <-chan struct{} // the DB's: closed by Close
	linger lingering       // how its commits wait for crowds of writes

	hotList    []string               // the statements prepared at open
	hot        map[string]*sql.Stmt   // hotList, prepared on the write connection at Open
	groupTx    atomic.Pointer[sql.Tx] // the writer's transaction the statements below belong to
	groupStmts map[string]*sql.Stmt   // hot statements bound to groupTx; only the writer goroutine uses them
	opWrote    bool                   // a statement run by exec in groupTx changed a row; the writer's

	writes     chan *writeOp // to the writer goroutine; unbuffered, so every op taken is answered
	writerDone chan struct{}
	syncReady  chan struct{} // the syncer is free to sync the next commit
	syncs      chan group    // the commit the syncer syncs next
	syncStop   chan struct{} // closed by the writer when it ends
	syncerDone chan struct{}
	dirSynced  bool         // the syncer has synced the directory holding the WAL since Open
	waiting    atomic.Int64 // writes handed to the writer and not yet taken
	onGroup    func(n int)  // tests: called by the writer before it runs a round of n writes
	onSync     func() error // tests: called by the syncer before each fsync; an error fails it
}

// Open opens (creating it and its parent directories if needed) the database at path and
// brings its schema up to date.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: create parent directory: %w", abs, err)
	}

	db := &DB{closed: make(chan struct{}), signals: map[string]chan struct{}{}, handoffs: map[string]*handoff{},
		depths: map[string]*atomic.Int64{}}
	store, err := openFile(abs, db.closed, migrations(), storeStatements, storeLinger)
	var queue *file
	if err == nil {
		if queue, err = openFile(QueuePath(abs), db.closed, queueMigrations(), queueStatements, queueLinger); err != nil {
			err = fmt.Errorf("%s: %w", QueuePath(abs), err)
		}
	}
	if err != nil {
		close(db.closed) // ends the writers of the files opened
		for _, f := range []*file{store, queue} {
			if f != nil {
				_ = f.close()
			}
		}
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	db.file, db.queue = store, queue
	err = db.moveQueuedMessages(context.Background())
	if err == nil {
		err = db.countQueues(context.Background())
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	return db, nil
}

// QueuePath is the file of the queues of the database at path: "halosync.queue.db"
// beside "halosync.db".
func QueuePath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".queue" + ext
}

// openFile opens the database file at path with its writer and syncer, which run until
// closed is closed, brings its schema up to date with steps and prepares hot. When it
// fails after starting them, it returns the file with the error: the caller closes
// closed, then the file.
func openFile(path string, closed <-chan struct{}, steps, hot []string, linger lingering) (*file, error) {
	write, err := sql.Open("sqlite", dsn(path, writerParams()))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	f := &file{path: path, write: write, closed: closed, linger: linger, hotList: hot,
		writes: make(chan *writeOp), writerDone: make(chan struct{}),
		syncReady: make(chan struct{}), syncs: make(chan group), syncStop: make(chan struct{}), syncerDone: make(chan struct{})}
	go f.syncer()
	go f.writer()
	if err := f.migrate(context.Background(), steps); err != nil {
		return f, err
	}
	if err := f.prepareHot(context.Background()); err != nil {
		return f, err
	}
	read, err := sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeoutMillis),
			"foreign_keys(1)",
			"query_only(1)",
		},
	}))
	if err != nil {
		return f, err
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers)
	f.read = read
	return f, nil
}

// close waits for f's writer (the group being committed is synced and answered first)
// once the DB is closed, and closes its connections.
func (f *file) close() error {
	<-f.writerDone
	var err error
	if f.read != nil {
		err = f.read.Close()
	}
	return errors.Join(err, f.write.Close())
}

// writerParams are the writing connection's driver parameters: WAL, commits that write
// the WAL without syncing it (synchronous NORMAL: the syncer does, before any caller is
// answered), a checkpoint once the WAL holds 8,000 pages (32 MB with 4 KB pages, rather
// than SQLite's 1,000: the pages every delivery touches, the ends of the tables and
// indexes, are copied into the database once per checkpoint, whatever number of commits
// wrote them) and transactions that take the write lock at BEGIN.
func writerParams() url.Values {
	return url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", busyTimeoutMillis),
			"journal_mode(WAL)",
			"synchronous(NORMAL)",
			"wal_autocheckpoint(8000)",
			"foreign_keys(1)",
		},
		"_txlock": {"immediate"},
	}
}

// dsn builds a file: URI for path, escaped so that any file name works, with the
// driver's parameters.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	return u.String()
}

// Path is the absolute path of the store's database file (QueuePath: the queues').
func (db *DB) Path() string { return db.path }

// Close closes the database. A Receive waiting on one of its queues returns ErrClosed.
// Closing twice is harmless.
func (db *DB) Close() error {
	var err error
	db.closeOnce.Do(func() {
		close(db.closed)
		err = errors.Join(db.file.close(), db.queue.close())
		if l := db.handedLog(); l != nil {
			err = errors.Join(err, l.close())
		}
		db.mu.Lock()
		if db.lock != nil {
			err = errors.Join(err, db.lock.Close()) // releases the claim
		}
		db.mu.Unlock()
		if err != nil {
			err = fmt.Errorf("sqlite: close %s: %w", db.path, err)
		}
	})
	return err
}

// handedLog is the hand-off log, nil before Claim.
func (db *DB) handedLog() *handedLog { return db.handed.Load() }

// reserveSeqs sets n seqs of the queues' table aside for the hand-off log, as if n
// messages had been inserted, and returns the first.
func (db *DB) reserveSeqs(ctx context.Context, n int64) (int64, error) {
	var first int64
	err := db.queue.inWriteTx(ctx, "set message seqs aside", func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		var last int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = 'queue_messages'`).Scan(&last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('queue_messages', ?)`, n)
		case err == nil:
			_, err = tx.ExecContext(ctx, `UPDATE sqlite_sequence SET seq = ? WHERE name = 'queue_messages'`, last+n)
		}
		first = last + 1
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: set message seqs aside: %w", err)
	}
	return first, nil
}

// isClosed reports whether Close was called.
func (f *file) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

// queueMigrations are the schema steps of the queues' file, as migrations are the
// store's. Its table is the store's queue_messages as of step 8 there.
func queueMigrations() []string {
	return []string{
		`
CREATE TABLE IF NOT EXISTS queue_messages (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT, -- send order: oldest first
	queue         TEXT    NOT NULL,
	id            TEXT    NOT NULL,                  -- random (newMessageID)
	body          BLOB    NOT NULL,
	attributes    TEXT,                              -- JSON object of strings, NULL = none
	sent_at       INTEGER NOT NULL,                  -- Unix ms
	visible_at    INTEGER NOT NULL,                  -- Unix ms; receivable when <= now
	receive_count INTEGER NOT NULL DEFAULT 0,
	receipt       TEXT                               -- token of the latest receive's handle, NULL before
);
CREATE INDEX IF NOT EXISTS queue_messages_order ON queue_messages (queue, seq, visible_at);
`,
	}
}

// moveQueuedMessages moves the messages a store file written before the queues had a
// file of their own still holds into the queues' file, keeping their seq, and carries the
// store's count of seq over, so that a later message comes after every earlier one. Each
// chunk is on disk in the queues' file before it is deleted from the store's, and a
// message moved twice (a crash in between) is inserted once: none is lost or repeated.
// The store's table stays, empty, so that its schema steps keep applying.
func (db *DB) moveQueuedMessages(ctx context.Context) error {
	const chunk = 500
	type row struct {
		seq                      int64
		queue, id                string
		body                     []byte
		attrs                    sql.NullString
		sentAt, visibleAt, count int64
	}
	for {
		var rows []row
		err := func() error {
			rs, err := db.read.QueryContext(ctx, `SELECT seq, queue, id, body, attributes, sent_at, visible_at, receive_count
				FROM queue_messages ORDER BY seq LIMIT ?`, chunk)
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				var r row
				if err := rs.Scan(&r.seq, &r.queue, &r.id, &r.body, &r.attrs, &r.sentAt, &r.visibleAt, &r.count); err != nil {
					return err
				}
				rows = append(rows, r)
			}
			return rs.Err()
		}()
		if err != nil {
			return fmt.Errorf("move the queued messages: read: %w", err)
		}
		if len(rows) == 0 {
			break
		}
		err = db.queue.inWriteTx(ctx, "move the queued messages", func(tx *sql.Tx) error {
			for _, r := range rows {
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO queue_messages
					(seq, queue, id, body, attributes, sent_at, visible_at, receive_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
					r.seq, r.queue, r.id, r.body, r.attrs, r.sentAt, r.visibleAt, r.count); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			err = db.inWriteTx(ctx, "delete the moved messages", func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `DELETE FROM queue_messages WHERE seq <= ?`, rows[len(rows)-1].seq)
				return err
			})
		}
		if err != nil {
			return fmt.Errorf("move the queued messages: %w", err)
		}
	}
	var was, is sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'queue_messages'`).Scan(&was); err != nil {
		return fmt.Errorf("move the queued messages: %w", err)
	}
	if err := db.queue.read.QueryRowContext(ctx, `SELECT MAX(seq) FROM sqlite_sequence WHERE name = 'queue_messages'`).Scan(&is); err != nil {
		return fmt.Errorf("move the queued messages: %w", err)
	}
	if was.Int64 <= is.Int64 {
		return nil
	}
	return db.queue.inWriteTx(ctx, "carry the queue's sequence over", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sqlite_sequence WHERE name = 'queue_messages'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES ('queue_messages', ?)`, was.Int64)
		return err
	})
}

// migrations are the schema steps, in order; step i brings user_version from i to i+1.
// Each is idempotent (IF NOT EXISTS), so a half-known state is repaired too.
func migrations() []string {
	return []string{
		// 1: objects and queue messages.
		`
CREATE TABLE IF NOT EXISTS objects (
	pk              TEXT    NOT NULL,            -- change.PartitionKey
	sk              TEXT    NOT NULL,            -- change.SortKey
	connection      TEXT    NOT NULL,
	kind            TEXT    NOT NULL,
	id              TEXT    NOT NULL,
	parent_id       TEXT    NOT NULL DEFAULT '',
	version         INTEGER NOT NULL DEFAULT 0,  -- Unix ns of Halo's change marker; 0 = pending marker only
	pending_version INTEGER NOT NULL DEFAULT 0,
	deleted         INTEGER NOT NULL DEFAULT 0,  -- tombstone flag
	fields          TEXT    NOT NULL DEFAULT '{}', -- JSON object, numbers as Halo wrote them
	client_id       TEXT    NOT NULL DEFAULT '',
	gsi1pk          TEXT,                        -- change.ClientIndexKey, NULL without a client
	gsi1sk          TEXT,                        -- change.ClientIndexSort
	synced_at       TEXT    NOT NULL DEFAULT '', -- RFC 3339 UTC, '' = never
	source          TEXT    NOT NULL DEFAULT '',
	delivery_id     TEXT    NOT NULL DEFAULT '',
	event           TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (pk, sk)
);
CREATE INDEX IF NOT EXISTS objects_gsi1 ON objects (gsi1pk, gsi1sk) WHERE gsi1pk IS NOT NULL;

CREATE TABLE IF NOT EXISTS queue_messages (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT, -- send order: oldest first
	queue         TEXT    NOT NULL,
	id            TEXT    NOT NULL UNIQUE,
	body          BLOB    NOT NULL,
	attributes    TEXT,                              -- JSON object of strings, NULL = none
	sent_at       INTEGER NOT NULL,                  -- Unix ms
	visible_at    INTEGER NOT NULL,                  -- Unix ms; receivable when <= now
	receive_count INTEGER NOT NULL DEFAULT 0,
	receipt       TEXT    UNIQUE                     -- handle of the latest receive, NULL before
);
CREATE INDEX IF NOT EXISTS queue_messages_order ON queue_messages (queue, seq);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at);
`,
		// 2: delivery records (change.Delivery), keyed like the DynamoDB items.
		`
CREATE TABLE IF NOT EXISTS deliveries (
	pk         TEXT    NOT NULL, -- change.DeliveryPartitionKey
	sk         TEXT    NOT NULL, -- change.DeliverySortKey
	outcome    TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	expires_at INTEGER NOT NULL, -- Unix seconds; the row is not read after, and deleted by a later write
	record     TEXT    NOT NULL, -- change.Delivery as JSON, numbers as Halo wrote them
	PRIMARY KEY (pk, sk)
);
CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at);
`,
		// 3: the poller's documents, and listing a kind's ids for its reconcile.
		`
CREATE TABLE IF NOT EXISTS cursors (
	pk         TEXT NOT NULL, -- change.CursorPartitionKey
	sk         TEXT NOT NULL, -- change.CursorSortKey: the document's name
	doc        TEXT NOT NULL, -- the poller's JSON document, byte for byte
	updated_at TEXT NOT NULL, -- RFC 3339 UTC
	PRIMARY KEY (pk, sk)
);
CREATE INDEX IF NOT EXISTS objects_kind ON objects (connection, kind, parent_id, id, deleted); -- covers StoredIDs
`,
		// 4: what the local server's status shows, kept across restarts (status.go).
		`
CREATE TABLE IF NOT EXISTS status_counters (
	connection TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	label      TEXT    NOT NULL DEFAULT '',
	value      INTEGER NOT NULL,
	PRIMARY KEY (connection, name, label)
);
CREATE TABLE IF NOT EXISTS recent_deliveries (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT, -- write order: oldest first
	record TEXT    NOT NULL                   -- change.Delivery as JSON
);
`,
		// 5: a timing's observations beside its sum, the per-minute trends, and when
		// something last happened (status.go). ADD COLUMN has no IF NOT EXISTS; the step
		// runs in the transaction that records it, so it never runs twice.
		`
ALTER TABLE status_counters ADD COLUMN observations INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS status_minutes (
	connection     TEXT    NOT NULL,
	minute         INTEGER NOT NULL, -- Unix seconds of the minute's start
	deliveries     INTEGER NOT NULL DEFAULT 0,
	rejected       INTEGER NOT NULL DEFAULT 0,
	applied        INTEGER NOT NULL DEFAULT 0,
	latency_count  INTEGER NOT NULL DEFAULT 0,
	latency_sum_ms INTEGER NOT NULL DEFAULT 0,
	latency_max_ms INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (connection, minute)
);
CREATE INDEX IF NOT EXISTS status_minutes_age ON status_minutes (minute);
CREATE TABLE IF NOT EXISTS status_marks (
	connection TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	at         INTEGER NOT NULL, -- Unix ms
	PRIMARY KEY (connection, name)
);
`,
		// 6: listing what changed of a kind, in the order it was written (the by-change
		// index, change.ChangedIndexSort). Rows written before take their key from
		// synced_at, as RFC 3339 in UTC with up to nine fractional digits.
		`
ALTER TABLE objects ADD COLUMN changed_sk TEXT; -- change.ChangedIndexSort, NULL while never written
UPDATE objects SET changed_sk =
	substr(synced_at, 1, 19) || '.' ||
	substr(CASE WHEN substr(synced_at, 20, 1) = '.' THEN substr(synced_at, 21, length(synced_at) - 21) ELSE '' END || '000000000', 1, 9) ||
	'Z#' || CASE WHEN parent_id != '' THEN parent_id || '#' || id ELSE id END
	WHERE synced_at != '';
CREATE INDEX IF NOT EXISTS objects_changed ON objects (connection, kind, changed_sk) WHERE changed_sk IS NOT NULL;
`,
		// 7: the outbox of change events (outbox.go), written with the change it tells of.
		`
CREATE TABLE IF NOT EXISTS change_events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- write order: oldest first
	connection TEXT    NOT NULL,
	event_id   TEXT    NOT NULL,                  -- changeevent.ID
	created_at INTEGER NOT NULL,                  -- Unix ms
	event      TEXT    NOT NULL                   -- changeevent.Event as JSON
);
CREATE INDEX IF NOT EXISTS change_events_connection ON change_events (connection, seq);
CREATE INDEX IF NOT EXISTS change_events_id ON change_events (event_id);
CREATE INDEX IF NOT EXISTS change_events_age ON change_events (created_at);
`,
		// 8: the queue's messages are found by their seq alone (a receipt handle starts
		// with it), so the unique indexes on id (random, never looked up) and on receipt
		// go, and the order index holds visible_at, so that a receive skips the messages
		// in flight at the head of the queue without reading their rows; it also answers
		// when the next one becomes visible, so the index on (queue, visible_at) goes too.
		// A send, a receive and a delete write two b-trees each, not four
		// (docs/PERFORMANCE.md, "Second pass"). The counter of seq carries over.
		`
CREATE TABLE queue_messages_v8 (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT, -- send order: oldest first
	queue         TEXT    NOT NULL,
	id            TEXT    NOT NULL,                  -- random (newMessageID)
	body          BLOB    NOT NULL,
	attributes    TEXT,                              -- JSON object of strings, NULL = none
	sent_at       INTEGER NOT NULL,                  -- Unix ms
	visible_at    INTEGER NOT NULL,                  -- Unix ms; receivable when <= now
	receive_count INTEGER NOT NULL DEFAULT 0,
	receipt       TEXT                               -- handle of the latest receive ("<seq>.<random>"), NULL before
);
INSERT INTO sqlite_sequence (name, seq) SELECT 'queue_messages_v8', seq FROM sqlite_sequence WHERE name = 'queue_messages';
INSERT INTO queue_messages_v8 (seq, queue, id, body, attributes, sent_at, visible_at, receive_count, receipt)
	SELECT seq, queue, id, body, attributes, sent_at, visible_at, receive_count, receipt FROM queue_messages;
DROP TABLE queue_messages;
ALTER TABLE queue_messages_v8 RENAME TO queue_messages;
CREATE INDEX queue_messages_order ON queue_messages (queue, seq, visible_at);
`,
		// 9: a change event's id is looked up only when a consumer resumes a stream
		// (Last-Event-ID), among one connection's events, which the outbox bounds; the
		// index on it put every applied change's write on a random page of its own
		// (docs/PERFORMANCE.md, "Fifth pass").
		`DROP INDEX IF EXISTS change_events_id;`,
		// 10: the outbox is trimmed by seq (trimChangeEvents), never looked up by age.
		`DROP INDEX IF EXISTS change_events_age;`,
		// 11: a connection's events are read from a consumer's place onwards in seq order,
		// which the table's own key gives: the events of the other connections in between
		// are passed over, and the outbox bounds them. One b-tree less per applied change.
		`DROP INDEX IF EXISTS change_events_connection;`,
	}
}

// migrate brings the schema up to date in one transaction. The schema version is kept in
// PRAGMA user_version; a file with a newer version than this code knows is refused rather
// than misread.
func (f *file) migrate(ctx context.Context, steps []string) error {
	return f.inWriteTx(ctx, "migrate schema", func(tx *sql.Tx) error {
		var current int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(steps) {
			return fmt.Errorf("schema version %d is newer than this halosync knows (%d); upgrade halosync", current, len(steps))
		}
		for i := current; i < len(steps); i++ {
			if _, err := tx.ExecContext(ctx, steps[i]); err != nil {
				return fmt.Errorf("schema step %d: %w", i+1, err)
			}
		}
		if current != len(steps) {
			// PRAGMA takes no parameters; the value is our own constant.
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(steps))); err != nil {
				return fmt.Errorf("write schema version: %w", err)
			}
		}
		return nil
	})
}

// inWriteTx runs fn in an immediate transaction on the write connection and commits it;
// what names the operation in errors. fn's own errors are returned as they are. fn may
// share its transaction with other callers' (group commit: see the package comment), each
// in its own savepoint: when it returns an error, only its own statements are rolled back.
// Once the writer has taken fn, inWriteTx waits for the commit whatever ctx does, so its
// answer always says whether fn's writes are on disk.
func (f *file) inWriteTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return f.submit(ctx, &writeOp{ctx: ctx, what: what, fn: fn})
}

// hotWriteTx is inWriteTx for a write run for every delivery (the file's hot statements),
// run without a savepoint of its own: fn writes only through f.exec, and fails after writing only
// when a statement does (the database's own failure: full, I/O), in which case the whole
// group's transaction is rolled back and every caller answered with an error. A failure
// before any write (a stale receipt, a value that cannot be encoded) leaves the others'
// writes alone, as a savepoint would. Saving the savepoint saves its statements and the
// copies of every page the write touches (docs/PERFORMANCE.md, "The local pipeline with
// group commit").
func (f *file) hotWriteTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return f.submit(ctx, &writeOp{ctx: ctx, what: what, fn: fn, bare: true})
}

func (f *file) submit(ctx context.Context, op *writeOp) error {
	if f.isClosed() {
		return fmt.Errorf("sqlite: %s: %w", op.what, ErrClosed)
	}
	op.done = make(chan error, 1)
	if b := batchOf(ctx); b != nil {
		op.early, op.batch = true, b
	}
	op.batch.add()
	f.waiting.Add(1)
	select {
	case f.writes <- op:
	case <-f.closed:
		f.waiting.Add(-1)
		op.batch.settle(nil) // never run: nothing to commit
		return fmt.Errorf("sqlite: %s: %w", op.what, ErrClosed)
	case <-ctx.Done():
		f.waiting.Add(-1)
		op.batch.settle(nil)
		return fmt.Errorf("sqlite: %s: %w", op.what, ctx.Err())
	}
	return <-op.done
}

// writeOp is one caller's write, waiting for the writer.
type writeOp struct {
	ctx      context.Context
	what     string
	fn       func(tx *sql.Tx) error
	done     chan error // buffered: the writer never blocks on an answer
	early    bool       // answered once fn has run, before the commit: a write of a batch (DeferCommits)
	batch    *batch     // an early write's batch, told of its commit; nil: none
	answered bool       // the writer has answered done
	bare     bool       // run without a savepoint (hotWriteTx)
}

// ran answers an early write once its fn has run with result err.
func (op *writeOp) ran(err error) {
	if op.early && !op.answered {
		op.answered = true
		op.done <- err
	}
}

// finish answers a write once its group's transaction has ended: err is the write's own
// error, or the commit's. An early write answered before is told to its batch instead.
func (op *writeOp) finish(err error, ranErr error) {
	if op.answered {
		if ranErr != nil {
			err = nil // its own failure was answered, and it left nothing to commit
		}
		op.batch.settle(err)
		return
	}
	op.answered = true
	op.done <- err
	op.batch.settle(nil)
}

// maxGroup bounds the writes one commit carries, so a group's transaction stays short.
const maxGroup = 256

// lingering is how a file's commits wait for more writes: while the writes come in crowds
// (the recent commits carried after writes or more on average), a commit waits until it
// holds writes writes, or until its transaction has been open wait, even when the syncer
// is free. Every commit writes the pages its writes touched into the WAL, and the pages every write touches
// (the ends of the tables and indexes) are the same for every write of a commit, so a
// commit of 128 writes writes about as many of them as one of 20. A lone write (the
// recent commits were small) is committed as soon as the syncer is free
// (docs/PERFORMANCE.md, "Second pass" and "Third pass").
type lingering struct {
	after  float64
	writes int
	wait   time.Duration
}

// The store's writes (the worker's) linger long: a batch's writes are answered before
// their commit, and a delivery touches several tables and indexes. The queues' writes
// are sends, each waited for by a webhook's answer, and a commit of them writes little
// more than the messages, so they linger briefly (docs/PERFORMANCE.md, "Fifth pass").
var (
	storeLinger = lingering{after: 16, writes: 256, wait: 8 * time.Millisecond}
	queueLinger = lingering{after: 16, writes: 64, wait: 2 * time.Millisecond}
)

// writer runs the writes handed to inWriteTx and hotWriteTx until the database is
// closed, in rounds: each round takes every write waiting at that moment (at most
// maxGroup) and runs them in the open transaction (beginning one if none is open). The
// transaction is committed once the syncer is free to sync it and it is ready
// (lingering), or once it holds maxGroup writes; while the syncer is syncing the last
// commit, the writes arriving meanwhile are run into the next one. So commits come at most
// as fast as the disk syncs them, each carrying whatever arrived during the last sync,
// and a write that need not wait for its commit (a batch's, DeferCommits) is answered
// within a round, whatever the disk does.
func (f *file) writer() {
	defer close(f.writerDone)
	w := groupWriter{f: f}
	defer func() {
		if w.g != nil {
			w.commit()
		}
		close(f.syncStop)
		<-f.syncerDone
	}()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var round []*writeOp
		var ready <-chan struct{}
		var lingered <-chan time.Time
		switch {
		case w.g == nil:
		case !w.syncFree:
			ready = f.syncReady
		default: // the syncer waits for a transaction not ready yet
			left := f.linger.wait - time.Since(w.g.began)
			if left <= 0 {
				w.commit()
				continue
			}
			linger.Reset(left)
			lingered = linger.C
		}
		select {
		case op := <-f.writes:
			round = append(round, op)
		case <-ready:
			w.syncFree = true
			w.commitIfReady()
			continue
		case <-lingered:
			w.commit()
			continue
		case <-f.closed:
			return
		}
		linger.Stop()
	more:
		for len(round) < maxGroup {
			select {
			case op := <-f.writes:
				round = append(round, op)
			default:
				break more
			}
		}
		f.waiting.Add(-int64(len(round)))
		if f.onGroup != nil {
			f.onGroup(len(round))
		}
		if w.g = f.run(w.g, round); w.g == nil {
			continue
		}
		if len(w.g.ops) >= maxGroup {
			w.commit()
			continue
		}
		if !w.syncFree {
			select {
			case <-f.syncReady:
				w.syncFree = true
			default: // the syncer is busy: the next round joins this transaction
			}
		}
		w.commitIfReady()
	}
}

// groupWriter is the writer goroutine's state: its open transaction and whether the
// syncer has said it is free (syncReady) and waits for the next commit.
type groupWriter struct {
	f        *file
	g        *group // the open transaction; nil when none is
	syncFree bool
	recent   float64 // moving average of the writes per commit
}

// commitIfReady commits the open transaction when the syncer is free and the transaction
// need not linger for more writes (lingering).
func (w *groupWriter) commitIfReady() {
	l := w.f.linger
	if w.g != nil && w.syncFree && (w.recent < l.after || len(w.g.ops) >= l.writes) {
		w.commit()
	}
}

// commit commits the open transaction, waiting for the syncer when it is busy.
func (w *groupWriter) commit() {
	if !w.syncFree {
		<-w.f.syncReady
	}
	w.recent += (float64(len(w.g.ops)) - w.recent) / 4
	w.f.commit(w.g)
	w.g, w.syncFree = nil, false
}

// group is the writer's open transaction and the writes run in it, each with its own
// error (nil: its write is in the transaction).
type group struct {
	began time.Time // when its transaction began
	tx    *sql.Tx
	ops   []*writeOp
	errs  []error
}

// run runs round's writes in g, beginning a transaction when g is nil, each in a savepoint
// (but for a lone write in a new transaction, which rolls the transaction back when it
// fails, and a hotWriteTx's, which rolls back every write when it fails after writing),
// and answers each early write once it has run. A caller whose context ended
// before its turn is answered with its context's error and its write is not run. The
// transaction uses no caller's context, so a caller leaving cannot roll back the others'
// writes. It returns the open transaction, nil when there is none (nothing was run, or
// the transaction broke and every caller was answered).
func (f *file) run(g *group, round []*writeOp) *group {
	live := round[:0]
	for _, op := range round {
		if err := op.ctx.Err(); err != nil {
			op.finish(fmt.Errorf("sqlite: %s: %w", op.what, err), nil)
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return g
	}
	ctx := context.Background()
	if g == nil {
		tx, err := f.write.BeginTx(ctx, nil)
		if err != nil {
			for _, op := range live {
				op.finish(fmt.Errorf("sqlite: %s: begin: %w", op.what, err), nil)
			}
			return nil
		}
		f.beginGroup(tx)
		g = &group{tx: tx, began: time.Now()}
		if len(live) == 1 { // alone: no savepoint needed
			op := live[0]
			if err := op.fn(tx); err != nil {
				_ = tx.Rollback()
				op.finish(err, err)
				return nil
			}
			op.ran(nil)
			g.ops, g.errs = append(g.ops, op), append(g.errs, nil)
			return g
		}
	}
	start := len(g.ops)
	g.ops, g.errs = append(g.ops, live...), append(g.errs, make([]error, len(live))...)
	for i := start; i < len(g.ops); i++ {
		op := g.ops[i]
		if op.bare {
			f.opWrote = false
			if g.errs[i] = op.fn(g.tx); g.errs[i] != nil && f.opWrote {
				f.abort(g, g.errs[i])
				return nil
			}
			op.ran(g.errs[i])
			continue
		}
		if _, err := f.exec(ctx, g.tx, savepoint); err != nil {
			f.abort(g, err)
			return nil
		}
		if g.errs[i] = op.fn(g.tx); g.errs[i] != nil {
			if _, err := f.exec(ctx, g.tx, rollbackToSavepoint); err != nil {
				f.abort(g, err)
				return nil
			}
		}
		if _, err := f.exec(ctx, g.tx, releaseSavepoint); err != nil {
			f.abort(g, err)
			return nil
		}
		op.ran(g.errs[i])
	}
	return g
}

// abort rolls the whole transaction back after it broke (a savepoint could not be set,
// rolled back to or released): every caller is answered with an error, its own if its
// write failed, else cause (the writes of the round not yet run too).
func (f *file) abort(g *group, cause error) {
	_ = g.tx.Rollback()
	for i, op := range g.ops {
		if g.errs[i] == nil {
			op.finish(fmt.Errorf("sqlite: %s: group transaction rolled back: %w", op.what, cause), nil)
			continue
		}
		op.finish(g.errs[i], g.errs[i])
	}
}

// commit commits g and hands it to the syncer, which has just said it is free (syncReady):
// it must be sent a round, empty when the commit failed and every caller was answered.
func (f *file) commit(g *group) {
	if err := g.tx.Commit(); err != nil {
		for i, op := range g.ops {
			result := g.errs[i]
			if result == nil {
				result = fmt.Errorf("sqlite: %s: commit: %w", op.what, err)
			}
			op.finish(result, g.errs[i])
		}
		f.syncs <- group{}
		return
	}
	f.syncs <- *g
}

// syncer makes the writer's commits durable, one at a time: it says it is free
// (syncReady), takes the commit the writer then makes, fsyncs the WAL, and answers the
// commit's callers (a failed fsync is each write's error). It ends once the writer has
// closed syncStop, after the last commit is answered.
//
// Syncing the WAL file after SQLite has written a commit's frames to it makes the commit
// as durable as synchronous=FULL does (which syncs the same file at the same point), and
// a commit is not answered before: in WAL mode the database file is only written by
// checkpoints, which sync the WAL before and the database after (synchronous=NORMAL).
// Readers may see a commit a moment before it is synced; a crash in that moment takes it
// away again, unanswered, so no caller was told it was kept.
func (f *file) syncer() {
	defer close(f.syncerDone)
	for {
		select {
		case f.syncReady <- struct{}{}:
		case <-f.syncStop:
			return
		}
		g := <-f.syncs
		if len(g.ops) == 0 {
			continue
		}
		var err error
		if f.onSync != nil {
			err = f.onSync()
		}
		if err == nil {
			err = f.syncWAL()
		}
		for i, op := range g.ops {
			result := g.errs[i]
			if result == nil && err != nil {
				result = fmt.Errorf("sqlite: %s: sync the write-ahead log: %w", op.what, err)
			}
			op.finish(result, g.errs[i])
		}
	}
}

// syncWAL fsyncs the WAL file, opened afresh each time so that a WAL SQLite has deleted
// and created again is the one synced, and once after Open the directory holding it, so
// that the file's name is durable too (as SQLite does when it syncs a WAL it created).
func (f *file) syncWAL() error {
	wal, err := os.OpenFile(f.path+"-wal", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = wal.Sync()
	if cerr := wal.Close(); err == nil {
		err = cerr
	}
	if err == nil && !f.dirSynced {
		err = syncDir(filepath.Dir(f.path))
		f.dirSynced = err == nil
	}
	return err
}

// syncDir fsyncs directory dir, making the names in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// countQueues reads how many messages each queue holds, for depth.
func (db *DB) countQueues(ctx context.Context) error {
	return db.queue.inWriteTx(ctx, "count queued messages", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT queue, COUNT(*) FROM queue_messages GROUP BY queue`)
		if err != nil {
			return fmt.Errorf("count queued messages: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				name string
				n    int64
			)
			if err := rows.Scan(&name, &n); err != nil {
				return fmt.Errorf("count queued messages: %w", err)
			}
			db.depth(name).Store(n)
		}
		return rows.Err()
	})
}

// depth is the number of messages queue name holds (visible and in flight), kept in
// memory: counted when the database is opened, then moved by each committed send, delete
// and redrive of this process. Another process writing the same queue is not seen; the
// embedded queue has one consumer process (Claim), and only it and ingest in the same
// process send.
func (db *DB) depth(name string) *atomic.Int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	d, ok := db.depths[name]
	if !ok {
		d = new(atomic.Int64)
		db.depths[name] = d
	}
	return d
}

// signal returns the channel that is closed at the next notify of queue name. Take it
// before looking at the queue, so a send in between is not missed.
func (db *DB) signal(name string) <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	ch, ok := db.signals[name]
	if !ok {
		ch = make(chan struct{})
		db.signals[name] = ch
	}
	return ch
}

// notify wakes every receiver of queue name waiting in this process.
func (db *DB) notify(name string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if ch, ok := db.signals[name]; ok {
		close(ch)
		delete(db.signals, name)
	}
}
