package connection_test

import (
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
)

func TestVersionsSkewIsCompiledWithItsDefault(t *testing.T) {
	auth := config.Webhook{Auth: []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"first-secret"}}}}
	set := connection.MustCompileAll(&config.Config{Connections: []config.Connection{
		{ID: "a", Webhook: auth},
		{ID: "b", Webhook: auth, Versions: config.Versions{MaxSkewSeconds: 90}},
	}})
	for id, want := range map[string]time.Duration{"a": change.DefaultMaxVersionSkew, "b": 90 * time.Second} {
		if c, _ := set.Get(id); c.Versions.MaxSkew != want {
			t.Errorf("connection %s: skew %v, want %v", id, c.Versions.MaxSkew, want)
		}
	}
}
