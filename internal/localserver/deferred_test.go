package localserver_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/sqlite"
)

// commitsLost is the SQLite store, but every batch's commit is reported lost after it.
type commitsLost struct{ *sqlite.Store }

func (s commitsLost) DeferCommits(ctx context.Context) (context.Context, func() error) {
	deferred, wait := s.Store.DeferCommits(ctx)
	return deferred, func() error {
		if err := wait(); err != nil {
			return err
		}
		return errors.New("the commit was lost")
	}
}

// TestABatchWhoseCommitIsLostKeepsItsMessages: the pump deletes a batch's messages only
// once its writes are on disk; when the commit is reported lost, the messages stay queued
// (in flight, to come back after their visibility timeout) and the loss is logged.
func TestABatchWhoseCommitIsLostKeepsItsMessages(t *testing.T) {
	s := startServer(t, testConfig(), wrappingStore(func(st *sqlite.Store) localserver.Store { return commitsLost{st} }))
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	eventually(t, 10*time.Second, "the lost commit logged", func() (bool, string) {
		return strings.Contains(s.logs.String(), "were not committed"), "no such log line"
	})
	visible, inFlight, err := s.queue.Stats(context.Background())
	if err != nil || visible+inFlight != 1 {
		t.Fatalf("queue holds %d visible and %d in flight (err %v); want the message kept", visible, inFlight, err)
	}
}
