package worker_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/storetest"
	"github.com/halosync/halosync/internal/worker"
)

// cursorStore is a store that keeps cursors, as the real adapters do.
type cursorStore struct {
	*storetest.Memory
	mu   sync.Mutex
	docs map[string][]byte
}

func (c *cursorStore) LoadCursor(_ context.Context, conn, name string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[conn+"/"+name]
	return d, ok, nil
}

func (c *cursorStore) SaveCursor(_ context.Context, conn, name string, doc []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.docs[conn+"/"+name] = doc
	return nil
}

func TestWebhookChangesLeaveAHeartbeat(t *testing.T) {
	store := &cursorStore{Memory: storetest.NewMemory(), docs: map[string][]byte{}}
	w := worker.New(store, metrics.Discard{}, slog.New(slog.DiscardHandler), connection.Set{{ID: "default"}}, nil)
	ctx := context.Background()
	send := func(source change.Source, id string) {
		m, _ := message.Encode(message.Envelope{Change: change.Change{Connection: "default", Kind: change.Ticket, ID: id, Op: change.OpUpsert,
			Version: 5, Source: source, Fields: map[string]any{"id": id}}})
		if _, err := w.Process(ctx, "m", m.Body); err != nil {
			t.Fatal(err)
		}
	}
	send(change.SourcePoll, "1")
	if at, err := poller.LastWebhook(ctx, store, "default"); err != nil || !at.IsZero() {
		t.Fatalf("a poll result left a heartbeat: %v %v", at, err)
	}
	send(change.SourceWebhook, "2")
	if at, err := poller.LastWebhook(ctx, store, "default"); err != nil || at.IsZero() {
		t.Fatalf("a webhook change left no heartbeat: %v %v", at, err)
	}
}
