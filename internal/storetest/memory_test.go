package storetest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/poller"

	"github.com/halosync/halosync/internal/storetest"
)

// The contract's port is the poller's: every store that passes it serves the poller.
var (
	_ poller.Cursors   = storetest.Store(nil)
	_ poller.StoredIDs = storetest.Store(nil)
	_ poller.Copy      = storetest.Store(nil)
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		m := storetest.NewMemory()
		m.PageSize = 64 // so that the contract's listing needs several pages
		return m
	})
}

func TestMemoryStoredIDsPages(t *testing.T) {
	m := storetest.NewMemory()
	m.PageSize = 7
	ctx := context.Background()
	for i := range 30 {
		c := change.Change{Connection: "c", Kind: change.Ticket, ID: fmt.Sprint(i), Op: change.OpUpsert, Version: 1, Fields: map[string]any{}}
		if _, err := m.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	if err := m.StoredIDs(ctx, "c", change.Ticket, func(ids []change.StoredID) error { sizes = append(sizes, len(ids)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[7 7 7 7 2]" {
		t.Fatalf("pages %v, want [7 7 7 7 2]", sizes)
	}
}
