package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Store is the object store: the state of every mirrored Halo object, keyed like the
// DynamoDB table. It is safe for concurrent use.
type Store struct {
	db       *DB
	pageSize int // ids per StoredIDs page
}

// storedIDsPage is how many ids StoredIDs hands its callback at a time.
const storedIDsPage = 1000

// Store returns the object store kept in db.
func (db *DB) Store() *Store { return &Store{db: db, pageSize: storedIDsPage} }

// objectColumns are the columns scanObject reads, in its order.
const objectColumns = `connection, kind, id, parent_id, version, pending_version, deleted, fields,
	client_id, synced_at, source, delivery_id, event`

// Apply applies c to the stored object by the rule change.Apply, in one transaction: a
// newer version is written (fields merged), a duplicate or older one changes nothing, an
// event without a snapshot records a pending version. The previous values of the fields
// an applied change carries come from the row read in the transaction. An invalid change
// is an error wrapping change.ErrInvalid.
func (s *Store) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	if err := c.Validate(); err != nil {
		return change.Result{}, err
	}
	// Built without fmt: Apply and RecordDelivery run for every change, and this is
	// needed only in an error.
	what := "apply " + c.Connection + " " + string(c.Kind) + " " + c.ID + " v" + strconv.FormatInt(c.Version, 10)
	pk, sk := change.PartitionKey(c.Connection, c.Kind, c.ID, c.ParentID), change.SortKey(c.Kind, c.ID)
	var result change.Result
	err := s.db.hotWriteTx(ctx, what, func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		var stored *change.Object
		o, err := scanObject(s.db.queryRow(ctx, tx, selectObject, pk, sk))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("sqlite: %s: read stored object: %w", what, err)
		default:
			stored = &o
		}
		next, res := change.Apply(stored, c, time.Now())
		result = res
		if res.Outcome != change.Applied && res.Outcome != change.Pending {
			return nil
		}
		// Everything that may fail is encoded before the first write (hotWriteTx).
		ev, err := newStoredEvent(what, c, res, next.SyncedAt)
		if err != nil {
			return err
		}
		if err := s.db.putObject(ctx, tx, what, pk, sk, next); err != nil {
			return err
		}
		return s.db.addChangeEvent(ctx, tx, what, c.Connection, ev)
	})
	if err != nil {
		return change.Result{}, err
	}
	return result, nil
}

// putObject writes o under pk, sk, replacing what is there.
func (db *DB) putObject(ctx context.Context, tx *sql.Tx, what, pk, sk string, o change.Object) error {
	fields, err := encodeFields(o.Fields)
	if err != nil {
		// A value JSON cannot hold will never fit, however often it is retried.
		return fmt.Errorf("sqlite: %s: encode fields: %w: %w", what, change.ErrInvalid, err)
	}
	var gsi1pk, gsi1sk sql.NullString
	if o.ClientID != "" {
		gsi1pk = sql.NullString{String: change.ClientIndexKey(o.Connection, o.ClientID), Valid: true}
		gsi1sk = sql.NullString{String: change.ClientIndexSort(o.Kind, o.ID), Valid: true}
	}
	synced := ""
	var changed sql.NullString
	if !o.SyncedAt.IsZero() {
		synced = o.SyncedAt.UTC().Format(time.RFC3339Nano)
		changed = sql.NullString{String: change.ChangedIndexSort(o.SyncedAt, o.Kind, o.ID, o.ParentID), Valid: true}
	}
	_, err = db.exec(ctx, tx, upsertObject,
		pk, sk, o.Connection, string(o.Kind), o.ID, o.ParentID, o.Version, o.PendingVersion, o.Deleted, fields,
		o.ClientID, gsi1pk, gsi1sk, synced, string(o.Source), o.DeliveryID, o.Event, changed)
	if err != nil {
		return fmt.Errorf("sqlite: %s: write object: %w", what, err)
	}
	return nil
}

// Get returns the stored state of one object (a tombstone included: see Object.Deleted),
// and false when nothing is stored. parentID is the ticket of an action and ignored for
// other kinds.
func (s *Store) Get(ctx context.Context, conn string, kind change.Kind, id, parentID string) (change.Object, bool, error) {
	if s.db.isClosed() {
		return change.Object{}, false, fmt.Errorf("sqlite: get %s %s %s: %w", conn, kind, id, ErrClosed)
	}
	pk, sk := change.PartitionKey(conn, kind, id, parentID), change.SortKey(kind, id)
	row := s.db.read.QueryRowContext(ctx, selectObject, pk, sk)
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) {
		return change.Object{}, false, nil
	}
	if err != nil {
		return change.Object{}, false, fmt.Errorf("sqlite: get %s %s %s: %w", conn, kind, id, err)
	}
	return o, true, nil
}

// ListByClient returns every object of connection conn that belongs to client clientID,
// the client itself included, ordered like the DynamoDB by-client index (by
// "<kind>#<id>", as text). Tombstones are included, as the index holds them too.
func (s *Store) ListByClient(ctx context.Context, conn, clientID string) ([]change.Object, error) {
	what := fmt.Sprintf("list %s client %s", conn, clientID)
	if s.db.isClosed() {
		return nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	return s.objects(ctx, what, `SELECT `+objectColumns+` FROM objects
		WHERE gsi1pk = ? ORDER BY gsi1sk`, change.ClientIndexKey(conn, clientID))
}

// Changed returns up to limit objects of kind in conn whose by-change key
// (change.ChangedIndexSort: when the store wrote them, then their id) sorts above after,
// ascending: what changed since a position, in write order. Pending markers, never
// written, are not listed; tombstones are.
func (s *Store) Changed(ctx context.Context, conn string, kind change.Kind, after string, limit int) ([]change.Object, error) {
	if err := change.ValidateChangedListing(conn, kind, after, limit); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("list %s %s changed after %q", conn, kind, after)
	if s.db.isClosed() {
		return nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	return s.objects(ctx, what, `SELECT `+objectColumns+` FROM objects INDEXED BY objects_changed
		WHERE connection = ? AND kind = ? AND changed_sk > ? ORDER BY changed_sk LIMIT ?`, conn, string(kind), after, limit)
}

// objects runs a query of objectColumns and reads its rows.
func (s *Store) objects(ctx context.Context, what, query string, args ...any) ([]change.Object, error) {
	rows, err := s.db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []change.Object
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanObject reads one row of objectColumns.
func scanObject(r scanner) (change.Object, error) {
	var (
		o                    change.Object
		kind, source, fields string
		synced               string
	)
	err := r.Scan(&o.Connection, &kind, &o.ID, &o.ParentID, &o.Version, &o.PendingVersion, &o.Deleted, &fields,
		&o.ClientID, &synced, &source, &o.DeliveryID, &o.Event)
	if err != nil {
		return change.Object{}, err
	}
	o.Kind, o.Source = change.Kind(kind), change.Source(source)
	if o.Fields, err = decodeFields(fields); err != nil {
		return change.Object{}, fmt.Errorf("stored %s %s: %w", kind, o.ID, err)
	}
	if synced != "" {
		if o.SyncedAt, err = time.Parse(time.RFC3339Nano, synced); err != nil {
			return change.Object{}, fmt.Errorf("stored %s %s: synced_at: %w", kind, o.ID, err)
		}
	}
	return o, nil
}

// encodeFields writes fields as a JSON object. Numbers held as json.Number are written
// exactly as Halo sent them; HTML characters are left unescaped for readability.
func encodeFields(fields map[string]any) (string, error) {
	if fields == nil {
		return "{}", nil
	}
	if s, ok := plainFields(fields); ok {
		return s, nil
	}
	return encodeJSON(fields)
}

// plainFields writes fields as encodeJSON does (keys sorted, HTML characters unescaped)
// when every key and value is plain: a string of printable ASCII without quotes or
// backslashes, a json.Number, a bool or null. Those are written as they are, without
// reflection, into one allocation; false for anything else (nested values, other
// characters), which encodeJSON writes.
func plainFields(fields map[string]any) (string, bool) {
	keys := make([]string, 0, len(fields))
	size := 2
	for k, v := range fields {
		if !plainString(k) {
			return "", false
		}
		keys = append(keys, k)
		size += len(k) + 4 // quotes, colon, comma
		switch v := v.(type) {
		case string:
			if !plainString(v) {
				return "", false
			}
			size += len(v) + 2
		case json.Number:
			if !plainNumber(string(v)) {
				return "", false
			}
			size += len(v)
		case bool, nil:
			size += 5
		default:
			return "", false
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(k)
		b.WriteString(`":`)
		switch v := fields[k].(type) {
		case string:
			b.WriteByte('"')
			b.WriteString(v)
			b.WriteByte('"')
		case json.Number:
			b.WriteString(string(v))
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case nil:
			b.WriteString("null")
		}
	}
	b.WriteByte('}')
	return b.String(), true
}

// plainString: every byte is printable ASCII other than a quote or a backslash, which
// JSON writes as they are.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// plainNumber: s is a JSON number (encoding/json refuses a json.Number that is not).
func plainNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, n = i+1, n+1
		}
		return n
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// encodeJSON writes v as encodeFields does.
func encodeJSON(v any) (string, error) {
	buf := encodeBuffers.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		encodeBuffers.Put(buf)
	}()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// encodeBuffers are encodeJSON's buffers, reused: every applied change and delivery
// record is encoded, a few KB each.
var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeFields reads a JSON object written by encodeFields, numbers as json.Number.
func decodeFields(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("decode fields: %w", err)
	}
	if fields == nil {
		fields = map[string]any{}
	}
	return fields, nil
}

// expiredCleanupEvery is how often RecordDelivery deletes expired delivery records: on
// the first write after the database is opened and every this many writes after, in the
// same transaction. Deliveries never returns an expired record, so the cleanup only
// bounds the table: at the worker's pace it holds about a week of records plus those of
// this many writes.
const expiredCleanupEvery = 256

// RecordDelivery stores what one delivery did to one object, replacing the record stored
// for the same delivery and object as change.Delivery.Replaces allows. The record expires
// change.DeliveryRetention after d.ProcessedAt.
func (s *Store) RecordDelivery(ctx context.Context, d change.Delivery) error {
	if err := d.Validate(); err != nil {
		return err
	}
	what := "record delivery " + d.Connection + " " + d.DeliveryID + " " + string(d.Kind) + " " + d.ID
	if !d.ReceivedAt.IsZero() {
		d.ReceivedAt = d.ReceivedAt.UTC()
	}
	d.ProcessedAt = d.ProcessedAt.UTC()
	record, err := encodeJSON(d)
	if err != nil {
		return fmt.Errorf("sqlite: %s: encode: %w: %w", what, change.ErrInvalid, err)
	}
	now := time.Now()
	weak := d.Conditional()
	cleanup := s.db.deliveryWrites.Add(1)%expiredCleanupEvery == 1
	return s.db.hotWriteTx(ctx, what, func(tx *sql.Tx) error {
		ctx := inGroup(ctx)
		if cleanup {
			if _, err := s.db.exec(ctx, tx, `DELETE FROM deliveries WHERE expires_at <= ?`, now.Unix()); err != nil {
				return fmt.Errorf("sqlite: %s: delete expired records: %w", what, err)
			}
		}
		_, err := s.db.exec(ctx, tx, upsertDelivery,
			change.DeliveryPartitionKey(d.Connection, d.DeliveryID), change.DeliverySortKey(d.Kind, d.ID),
			string(d.Outcome), d.Version, d.ExpiresAt().Unix(), record,
			weak, d.ProcessedAt.Unix(), string(change.Applied), string(change.Pending))
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		return nil
	})
}

// Deliveries returns the unexpired records of one delivery, one per object it carried,
// ordered by sort key (<kind>#<id>); none when the delivery is unknown.
func (s *Store) Deliveries(ctx context.Context, conn, deliveryID string) ([]change.Delivery, error) {
	what := fmt.Sprintf("read delivery %s %s", conn, deliveryID)
	if s.db.isClosed() {
		return nil, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	rows, err := s.db.read.QueryContext(ctx, `SELECT record FROM deliveries WHERE pk = ? AND expires_at > ? ORDER BY sk`,
		change.DeliveryPartitionKey(conn, deliveryID), time.Now().Unix())
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	var out []change.Delivery
	for rows.Next() {
		var record string
		if err := rows.Scan(&record); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		dec := json.NewDecoder(strings.NewReader(record))
		dec.UseNumber()
		var d change.Delivery
		if err := dec.Decode(&d); err != nil {
			return nil, fmt.Errorf("sqlite: %s: decode record: %w", what, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// LoadCursor returns the poller document saved under conn and name, byte for byte, and
// false when none is.
func (s *Store) LoadCursor(ctx context.Context, conn, name string) ([]byte, bool, error) {
	what := fmt.Sprintf("load cursor %s %s", conn, name)
	if err := change.ValidateCursorKey(conn, name); err != nil {
		return nil, false, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	if s.db.isClosed() {
		return nil, false, fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
	}
	var doc string
	err := s.db.read.QueryRowContext(ctx, `SELECT doc FROM cursors WHERE pk = ? AND sk = ?`,
		change.CursorPartitionKey(conn), change.CursorSortKey(name)).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return []byte(doc), true, nil
}

// SaveCursor stores doc under conn and name, replacing what is there (a plain put: one
// connection's poller runs alone), with the time it was saved. doc must be valid JSON
// (change.ValidateCursor).
func (s *Store) SaveCursor(ctx context.Context, conn, name string, doc []byte) error {
	what := fmt.Sprintf("save cursor %s %s", conn, name)
	if err := change.ValidateCursor(conn, name, doc); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return s.db.inWriteTx(ctx, what, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
INSERT INTO cursors (pk, sk, doc, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (pk, sk) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at`,
			change.CursorPartitionKey(conn), change.CursorSortKey(name), string(doc), time.Now().UTC().Format(time.RFC3339Nano))
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		return nil
	})
}

// StoredIDs calls fn with every object of kind stored in conn, tombstones (Deleted) and
// pending markers included, a page at a time, ordered by parent id and id as text (the
// order of DynamoDB's by-kind index for Halo's numeric ids). Each page is its own read
// (keyset paging on the objects_kind index), so no read stays open while fn runs: fn may
// write to the database, and an object written meanwhile may or may not be listed. An
// error from fn ends the listing and is returned as it is.
func (s *Store) StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func(ids []change.StoredID) error) error {
	what := fmt.Sprintf("list %s %s ids", conn, kind)
	if err := change.ValidateKindListing(conn, kind); err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	size := s.pageSize
	if size <= 0 {
		size = storedIDsPage
	}
	var afterParent, afterID string
	first := true
	for {
		if s.db.isClosed() {
			return fmt.Errorf("sqlite: %s: %w", what, ErrClosed)
		}
		page, err := s.storedIDsPage(ctx, conn, kind, first, afterParent, afterID, size)
		if err != nil {
			return fmt.Errorf("sqlite: %s: %w", what, err)
		}
		if len(page) == 0 {
			return nil
		}
		last := page[len(page)-1]
		if err := fn(page); err != nil {
			return err
		}
		if len(page) < size {
			return nil
		}
		first, afterParent, afterID = false, last.ParentID, last.ID
	}
}

// The two page queries of StoredIDs; both seek in the objects_kind index.
const (
	storedIDsFirst = `SELECT id, parent_id, deleted FROM objects WHERE connection = ? AND kind = ?
		ORDER BY parent_id, id LIMIT ?`
	storedIDsNext = `SELECT id, parent_id, deleted FROM objects WHERE connection = ? AND kind = ? AND (parent_id, id) > (?, ?)
		ORDER BY parent_id, id LIMIT ?`
)

// storedIDsPage reads up to size ids after (afterParent, afterID), or from the start.
func (s *Store) storedIDsPage(ctx context.Context, conn string, kind change.Kind, first bool, afterParent, afterID string, size int) ([]change.StoredID, error) {
	q, args := storedIDsFirst, []any{conn, string(kind), size}
	if !first {
		q, args = storedIDsNext, []any{conn, string(kind), afterParent, afterID, size}
	}
	rows, err := s.db.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	page := make([]change.StoredID, 0, size)
	for rows.Next() {
		var id change.StoredID
		if err := rows.Scan(&id.ID, &id.ParentID, &id.Deleted); err != nil {
			return nil, err
		}
		page = append(page, id)
	}
	return page, rows.Err()
}
