package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
)

// SaveTrends keeps the local server's per-minute trends, in one transaction: each minute
// replaces the stored one of its connection and start (the caller saves its running
// totals), and every minute that started before prune is deleted, so the table holds a
// bounded window whatever the uptime.
func (db *DB) SaveTrends(ctx context.Context, minutes []metrics.Minute, prune time.Time) error {
	const what = "save trends"
	return db.inWriteTx(ctx, what, func(tx *sql.Tx) error {
		for _, m := range minutes {
			if _, err := tx.ExecContext(ctx, `
INSERT INTO status_minutes (connection, minute, deliveries, rejected, applied, latency_count, latency_sum_ms, latency_max_ms)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (connection, minute) DO UPDATE SET deliveries = excluded.deliveries, rejected = excluded.rejected,
	applied = excluded.applied, latency_count = excluded.latency_count, latency_sum_ms = excluded.latency_sum_ms,
	latency_max_ms = excluded.latency_max_ms`,
				m.Connection, m.Start.Unix(), m.Deliveries, m.Rejected, m.Applied, m.LatencyCount, m.LatencySumMS, m.LatencyMaxMS); err != nil {
				return fmt.Errorf("sqlite: %s: %s %s: %w", what, m.Connection, m.Start.Format(time.RFC3339), err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM status_minutes WHERE minute < ?`, prune.Unix()); err != nil {
			return fmt.Errorf("sqlite: %s: prune: %w", what, err)
		}
		return nil
	})
}

// LoadTrends returns the minutes SaveTrends kept that started at since or later, by
// connection, oldest first.
func (db *DB) LoadTrends(ctx context.Context, since time.Time) ([]metrics.Minute, error) {
	const what = "load trends"
	if db.isClosed() {
		return nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	rows, err := db.read.QueryContext(ctx, `
SELECT connection, minute, deliveries, rejected, applied, latency_count, latency_sum_ms, latency_max_ms
FROM status_minutes WHERE minute >= ? ORDER BY connection, minute`, since.Unix())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []metrics.Minute
	for rows.Next() {
		var m metrics.Minute
		var start int64
		if err := rows.Scan(&m.Connection, &start, &m.Deliveries, &m.Rejected, &m.Applied, &m.LatencyCount, &m.LatencySumMS, &m.LatencyMaxMS); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		m.Start = time.Unix(start, 0).UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// Mark is when something last happened on a connection, as the local server's status
// shows it (its last webhook delivery).
type Mark struct {
	Connection string
	Name       string
	At         time.Time
}

// SaveMarks replaces the stored time of each mark.
func (db *DB) SaveMarks(ctx context.Context, marks []Mark) error {
	const what = "save marks"
	return db.inWriteTx(ctx, what, func(tx *sql.Tx) error {
		for _, m := range marks {
			if _, err := tx.ExecContext(ctx, `
INSERT INTO status_marks (connection, name, at) VALUES (?, ?, ?)
ON CONFLICT (connection, name) DO UPDATE SET at = excluded.at`, m.Connection, m.Name, m.At.UnixMilli()); err != nil {
				return fmt.Errorf("sqlite: %s: %s %s: %w", what, m.Connection, m.Name, err)
			}
		}
		return nil
	})
}

// LoadMarks returns every mark SaveMarks kept.
func (db *DB) LoadMarks(ctx context.Context) ([]Mark, error) {
	const what = "load marks"
	if db.isClosed() {
		return nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT connection, name, at FROM status_marks ORDER BY connection, name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []Mark
	for rows.Next() {
		var m Mark
		var at int64
		if err := rows.Scan(&m.Connection, &m.Name, &at); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		m.At = time.UnixMilli(at).UTC()
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// ObjectCount is how many objects of one kind a connection's copy holds.
type ObjectCount struct {
	Connection string
	Kind       change.Kind
	Count      int64
}

// CountObjects counts the objects of every connection and kind, tombstones left out,
// sorted by connection and kind. It reads the objects_kind index only (connection and
// kind lead it, deleted is in it), never a row's fields.
func (s *Store) CountObjects(ctx context.Context) ([]ObjectCount, error) {
	const what = "count objects"
	if s.db.isClosed() {
		return nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT connection, kind, count(*) FROM objects INDEXED BY objects_kind
		WHERE deleted = 0 GROUP BY connection, kind ORDER BY connection, kind`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []ObjectCount
	for rows.Next() {
		var c ObjectCount
		if err := rows.Scan(&c.Connection, &c.Kind, &c.Count); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}
