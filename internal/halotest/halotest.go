// Package halotest holds test helpers around the simulated Halo tenant (internal/halosim).
package halotest

import (
	"testing"

	"github.com/halosync/halosync/internal/halosim"
)

// Start starts a simulated tenant for a test and closes it when the test ends.
func Start(tb testing.TB, opts halosim.Options) *halosim.Tenant {
	tb.Helper()
	t := halosim.New(opts)
	tb.Cleanup(t.Close)
	return t
}
