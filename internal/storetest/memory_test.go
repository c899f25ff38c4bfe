package storetest_test

import (
	"testing"

	"github.com/halosync/halosync/internal/storetest"
)

func TestMemoryStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return storetest.NewMemory() })
}
