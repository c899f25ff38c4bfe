// Package halotest holds test helpers around the simulated Halo tenant (internal/halosim).
package halotest

import (
	"net"
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

// RefusedURL is an http URL with path on a loopback port nothing listens on: a webhook
// endpoint that is down, every connection to it refused.
func RefusedURL(tb testing.TB, path string) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	return "http://" + addr + path
}
