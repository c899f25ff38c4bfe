package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
)

// SaveStatus keeps what the local server's status shows, in one transaction: counters
// replace the stored value of each counter they name (one row per connection, name and
// label), recent are appended to the newest delivery records, and all but the newest keep
// of those are deleted. The local server calls it every so often, not on every count.
func (db *DB) SaveStatus(ctx context.Context, counters []metrics.Entry, recent []change.Delivery, keep int) error {
	const what = "save status"
	records := make([]string, 0, len(recent))
	for _, d := range recent {
		r, err := encodeJSON(d)
		if err != nil {
			return fmt.Errorf("sqlite: %s: encode delivery record: %w", what, err)
		}
		records = append(records, r)
	}
	return db.inWriteTx(ctx, what, func(tx *sql.Tx) error {
		for _, e := range counters {
			if _, err := tx.ExecContext(ctx, `
INSERT INTO status_counters (connection, name, label, value, observations) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (connection, name, label) DO UPDATE SET value = excluded.value, observations = excluded.observations`,
				e.Connection, e.Name, e.Label, e.Value, e.Observations); err != nil {
				return fmt.Errorf("sqlite: %s: counter %s %s: %w", what, e.Connection, e.Name, err)
			}
		}
		for _, r := range records {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recent_deliveries (record) VALUES (?)`, r); err != nil {
				return fmt.Errorf("sqlite: %s: delivery record: %w", what, err)
			}
		}
		if len(records) > 0 {
			if _, err := tx.ExecContext(ctx, `
DELETE FROM recent_deliveries WHERE seq NOT IN (SELECT seq FROM recent_deliveries ORDER BY seq DESC LIMIT ?)`, max(keep, 0)); err != nil {
				return fmt.Errorf("sqlite: %s: prune delivery records: %w", what, err)
			}
		}
		return nil
	})
}

// LoadStatus returns what SaveStatus kept: every counter (a timing with its observations
// and their mean), and the newest keep delivery
// records, oldest first.
func (db *DB) LoadStatus(ctx context.Context, keep int) ([]metrics.Entry, []change.Delivery, error) {
	const what = "load status"
	if db.isClosed() {
		return nil, nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT connection, name, label, value, observations FROM status_counters ORDER BY connection, name, label`)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var counters []metrics.Entry
	for rows.Next() {
		var e metrics.Entry
		if err := rows.Scan(&e.Connection, &e.Name, &e.Label, &e.Value, &e.Observations); err != nil {
			return nil, nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		if e.Observations > 0 {
			e.AvgMS = metrics.Average(e.Value, e.Observations)
		}
		counters = append(counters, e)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	recs, err := db.read.QueryContext(ctx, `SELECT record FROM (SELECT seq, record FROM recent_deliveries ORDER BY seq DESC LIMIT ?) ORDER BY seq`, max(keep, 0))
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer recs.Close()
	var recent []change.Delivery
	for recs.Next() {
		var record string
		if err := recs.Scan(&record); err != nil {
			return nil, nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		dec := json.NewDecoder(strings.NewReader(record))
		dec.UseNumber()
		var d change.Delivery
		if err := dec.Decode(&d); err != nil {
			return nil, nil, fmt.Errorf("sqlite: %s: decode delivery record: %w", what, err)
		}
		recent = append(recent, d)
	}
	if err := recs.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return counters, recent, nil
}
