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
	mu         sync.Mutex
	objects    map[[2]string]change.Object
	deliveries map[[2]string]change.Delivery
}

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{objects: map[[2]string]change.Object{}, deliveries: map[[2]string]change.Delivery{}}
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
