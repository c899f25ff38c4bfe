package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrClaimed is returned by Claim when another process already consumes the database's
// queues.
var ErrClaimed = errors.New("sqlite: another process consumes this database's queues")

// Claim makes this process the one consumer of the database's queues, until Close, and
// returns how many messages it made visible.
//
// The embedded queue belongs to one process: the local server that receives from it. A
// message that server had received and not deleted when it died (kill -9, a crash, a lost
// machine) would otherwise stay invisible for the rest of its visibility timeout (30 s by
// default). Since no other consumer can hold it, Claim makes every invisible message
// visible at once, so a restarted server applies them within moments. Retries delayed by
// the worker's backoff are made visible too: after a restart they are tried once at once,
// their receive count still counting towards the dead-letter queue. Every message the
// hand-off log (handedLog) still holds is put into the table, visible, and counted with
// them; Claim then opens the log for this process's sends.
//
// What makes this safe is that there is one consumer: Claim takes an exclusive lock on
// the file <database>.lock (flock), which the kernel releases when the process ends,
// however it ends; a second Claim, from another process or another DB of the same file,
// fails with ErrClaimed. Opening the database without claiming it (`halosync get`,
// `halosync sync`) neither takes the lock nor touches the queues' messages. On systems
// without flock (anything but Unix) no lock is taken: running two servers on one data
// directory is then the operator's mistake to avoid.
func (db *DB) Claim(ctx context.Context) (int, error) {
	if db.isClosed() {
		return 0, fmt.Errorf("sqlite: claim %s: %w", db.path, ErrClosed)
	}
	f, err := os.OpenFile(db.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("sqlite: claim %s: %w", db.path, err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return 0, fmt.Errorf("sqlite: claim %s: %w", db.path, err)
	}
	db.mu.Lock()
	db.lock = f
	db.mu.Unlock()
	l, left, err := openHandedLog(QueuePath(db.path), db.reserveSeqs)
	if err != nil {
		return 0, fmt.Errorf("sqlite: claim %s: %w", db.path, err)
	}
	var released int64
	recovered := map[string]int64{}
	err = db.queue.inWriteTx(ctx, "release the messages of a previous consumer", func(tx *sql.Tx) error {
		now := time.Now().UnixMilli()
		res, err := tx.ExecContext(ctx, `UPDATE queue_messages SET visible_at = ? WHERE visible_at > ?`, now, now)
		if err != nil {
			return fmt.Errorf("sqlite: claim %s: %w", db.path, err)
		}
		if released, err = res.RowsAffected(); err != nil {
			return err
		}
		// What the hand-off log holds, as received once: a message moved to the table
		// before (its mark lost) is there already.
		for _, e := range left {
			res, err := tx.ExecContext(ctx, insertHanded, e.seq, e.queue, e.ID, e.Body, e.attrs, e.SentAt.UnixMilli(), now, 1, nil)
			if err != nil {
				return fmt.Errorf("sqlite: claim %s: recover handed message %s: %w", db.path, e.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			recovered[e.queue] += n
			released += n
		}
		return nil
	})
	if err == nil {
		err = l.dropRecovered()
	}
	if err != nil {
		_ = l.close()
		return 0, err
	}
	db.handed.Store(l)
	for name, n := range recovered {
		db.depth(name).Add(n)
		db.notify(name)
	}
	return int(released), nil
}
