package halotest

import "testing"

// Start starts a fake tenant for a test and closes it when the test ends.
func Start(tb testing.TB, opts Options) *Tenant {
	tb.Helper()
	t := New(opts)
	tb.Cleanup(t.Close)
	return t
}
