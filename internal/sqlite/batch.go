package sqlite

import (
	"context"
	"sync"
)

// batch is a unit of work whose store writes are answered before their commit and
// committed together later: the worker's batch of messages. The pump deletes a batch's
// messages only once Wait says every write of the batch is on disk, so a write answered
// and then lost (a failed commit, a crash) is a message delivered again, never a change
// dropped (docs/ARCHITECTURE.md, "Local mode").
type batch struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error // the first failed commit of one of the batch's writes
}

type batchKey struct{}

// DeferCommits returns a context whose writes to s's database (the store's and the
// queues') are answered as soon as they have run in the writer's transaction, without
// waiting for its commit, and wait, which waits until every such write is committed and
// returns the first commit that failed (nil when all are on disk). Reads do not see a
// write before its commit. A batch of writes so costs the caller no fsync of its own:
// many batches' writes share each commit.
func (s *Store) DeferCommits(ctx context.Context) (context.Context, func() error) {
	b := &batch{}
	return context.WithValue(ctx, batchKey{}, b), b.wait
}

// batchOf is ctx's batch, nil when it has none.
func batchOf(ctx context.Context) *batch {
	b, _ := ctx.Value(batchKey{}).(*batch)
	return b
}

// undeferred is ctx without its batch (DeferCommits): a write made with it is answered
// once it is on disk.
func undeferred(ctx context.Context) context.Context {
	if batchOf(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, batchKey{}, (*batch)(nil))
}

// wait waits until every write of the batch has been committed or has failed, and
// returns the first commit error.
func (b *batch) wait() error {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// add counts a write handed to the writer; nil-safe.
func (b *batch) add() {
	if b != nil {
		b.wg.Add(1)
	}
}

// settle records the end of a write: err is its commit's failure, nil when it is on disk
// or never ran; nil-safe.
func (b *batch) settle(err error) {
	if b == nil {
		return
	}
	if err != nil {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	b.wg.Done()
}
