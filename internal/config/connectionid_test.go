package config

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidConnectionIDIsThePattern: the written-out check accepts exactly what the
// documented pattern does.
func TestValidConnectionIDIsThePattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	ids := []string{"", "a", "0", "-", "_", "a-", "a_", "-a", "_a", "default", "acme-eu_1", "Acme", "acmé", "a b", "a.b",
		"a\n", strings.Repeat("a", 63), strings.Repeat("a", 64), "a" + strings.Repeat("-", 62), "a" + strings.Repeat("-", 63)}
	for c := range 256 {
		ids = append(ids, string(rune(c)), "a"+string(rune(c)), "a"+string([]byte{byte(c)}))
	}
	for _, id := range ids {
		if got, want := validConnectionID(id), pattern.MatchString(id); got != want {
			t.Errorf("validConnectionID(%q) = %v, the pattern %v", id, got, want)
		}
	}
}
