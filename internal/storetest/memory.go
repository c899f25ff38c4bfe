package storetest

import (
	"context"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Memory is an in-memory store for tests of the packages that use a store. It passes the
// same contract as the real adapters.
type Memory struct {
	mu      sync.Mutex
	objects map[[2]string]change.Object
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{objects: map[[2]string]change.Object{}} }

func key(conn string, kind change.Kind, id, parent string) [2]string {
	return [2]string{change.PartitionKey(conn, kind, id, parent), change.SortKey(kind, id)}
}

// Apply implements the store port with change.Apply.
func (m *Memory) Apply(_ context.Context, c change.Change) (change.Outcome, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := key(c.Connection, c.Kind, c.ID, c.ParentID)
	var stored *change.Object
	if o, ok := m.objects[k]; ok {
		stored = &o
	}
	next, outcome := change.Apply(stored, c, time.Now())
	if outcome == change.Applied || outcome == change.Pending {
		m.objects[k] = next
	}
	return outcome, nil
}

// Get implements the store port.
func (m *Memory) Get(_ context.Context, conn string, kind change.Kind, id, parent string) (change.Object, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key(conn, kind, id, parent)]
	return o, ok, nil
}

// Len is the number of stored objects.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.objects)
}
