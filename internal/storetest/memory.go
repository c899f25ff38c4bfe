package storetest

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Memory is an in-memory store for tests of the packages that use a store. It passes the
// same contract as the real adapters.
type Memory struct {
	// PageSize is how many ids StoredIDs hands fn at a time (default 100). Set it before
	// use.
	PageSize int

	mu         sync.Mutex
	objects    map[[2]string]change.Object
	deliveries map[[2]string]change.Delivery
	cursors    map[[2]string][]byte
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{
		objects: map[[2]string]change.Object{}, deliveries: map[[2]string]change.Delivery{},
		cursors: map[[2]string][]byte{},
	}
}

func key(conn string, kind change.Kind, id, parent string) [2]string {
	return [2]string{change.PartitionKey(conn, kind, id, parent), change.SortKey(kind, id)}
}

// Apply implements the store port with change.Apply.
func (m *Memory) Apply(_ context.Context, c change.Change) (change.Result, error) {
	if err := c.Validate(); err != nil {
		return change.Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key(c.Connection, c.Kind, c.ID, c.ParentID)
	var stored *change.Object
	if o, ok := m.objects[k]; ok {
		stored = &o
	}
	next, res := change.Apply(stored, c, time.Now())
	if res.Outcome == change.Applied || res.Outcome == change.Pending {
		m.objects[k] = next
	}
	return res, nil
}

// Get implements the store port.
func (m *Memory) Get(_ context.Context, conn string, kind change.Kind, id, parent string) (change.Object, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key(conn, kind, id, parent)]
	return o, ok, nil
}

// RecordDelivery implements the store port: the record replaces the one stored for the
// same delivery and object as change.Delivery.Replaces allows.
func (m *Memory) RecordDelivery(_ context.Context, d change.Delivery) error {
	if err := d.Validate(); err != nil {
		return err
	}
	d.ReceivedAt, d.ProcessedAt = utc(d.ReceivedAt), d.ProcessedAt.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{change.DeliveryPartitionKey(d.Connection, d.DeliveryID), change.DeliverySortKey(d.Kind, d.ID)}
	if old, ok := m.deliveries[k]; ok && !d.Replaces(old) {
		return nil
	}
	m.deliveries[k] = d
	return nil
}

// Deliveries implements the store port: the unexpired records of one delivery, by sort
// key.
func (m *Memory) Deliveries(_ context.Context, conn, deliveryID string) ([]change.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pk, now := change.DeliveryPartitionKey(conn, deliveryID), time.Now()
	var keys []string
	byKey := map[string]change.Delivery{}
	for k, d := range m.deliveries {
		if k[0] == pk && !d.Expired(now) {
			keys = append(keys, k[1])
			byKey[k[1]] = d
		}
	}
	sort.Strings(keys)
	var out []change.Delivery
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out, nil
}

// LoadCursor implements the poller's cursor port: the document saved under conn and
// name, byte for byte, and false when none is.
func (m *Memory) LoadCursor(_ context.Context, conn, name string) ([]byte, bool, error) {
	if err := change.ValidateCursorKey(conn, name); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	doc, ok := m.cursors[[2]string{change.CursorPartitionKey(conn), change.CursorSortKey(name)}]
	if !ok {
		return nil, false, nil
	}
	return append([]byte(nil), doc...), true, nil
}

// SaveCursor implements the poller's cursor port: doc replaces what is saved under conn
// and name.
func (m *Memory) SaveCursor(_ context.Context, conn, name string, doc []byte) error {
	if err := change.ValidateCursor(conn, name, doc); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursors[[2]string{change.CursorPartitionKey(conn), change.CursorSortKey(name)}] = append([]byte(nil), doc...)
	return nil
}

// StoredIDs implements the reconcile's port: every object of kind stored in conn,
// tombstones and pending markers included, in pages of at most PageSize, ordered by the
// by-kind index sort key (change.KindIndexSort). The pages are taken from one snapshot.
func (m *Memory) StoredIDs(ctx context.Context, conn string, kind change.Kind, fn func(ids []change.StoredID) error) error {
	if err := change.ValidateKindListing(conn, kind); err != nil {
		return err
	}
	m.mu.Lock()
	var ids []change.StoredID
	for _, o := range m.objects {
		if o.Connection == conn && o.Kind == kind {
			ids = append(ids, change.StoredID{ID: o.ID, ParentID: o.ParentID, Deleted: o.Deleted})
		}
	}
	m.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool {
		return change.KindIndexSort(kind, ids[i].ID, ids[i].ParentID) < change.KindIndexSort(kind, ids[j].ID, ids[j].ParentID)
	})
	size := m.PageSize
	if size <= 0 {
		size = 100
	}
	for len(ids) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(size, len(ids))
		if err := fn(ids[:n:n]); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// Changed implements the read API's listing: the objects of kind written in conn (pending
// markers have never been), ordered by change.ChangedIndexSort, up to limit of those above
// after.
func (m *Memory) Changed(_ context.Context, conn string, kind change.Kind, after string, limit int) ([]change.Object, error) {
	if err := change.ValidateChangedListing(conn, kind, after, limit); err != nil {
		return nil, err
	}
	at := func(o change.Object) string { return change.ChangedIndexSort(o.SyncedAt, kind, o.ID, o.ParentID) }
	m.mu.Lock()
	var out []change.Object
	for _, o := range m.objects {
		if o.Connection == conn && o.Kind == kind && !o.SyncedAt.IsZero() && at(o) > after {
			out = append(out, o)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return at(out[i]) < at(out[j]) })
	return out[:min(limit, len(out))], nil
}

// Len is the number of stored objects.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
