package main

import (
	"strings"
	"testing"
)

// TestEveryCommandHelps: help and version exit 0, and every command and subcommand's
// --help prints its usage with an example on stdout and exits 0.
func TestEveryCommandHelps(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "help")
	if code != 0 || !strings.Contains(out, "halosync version") || !strings.Contains(out, "Example:") || errOut != "" {
		t.Errorf("halosync help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "halosync ") || !strings.Contains(out, "revision ") || errOut != "" {
		t.Errorf("halosync version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, c := range []string{
		"serve", "get", "status", "sync", "verify",
		"webhooks", "webhooks apply", "webhooks status", "webhooks test", "webhooks replay",
		"webhooks remove", "webhooks events", "webhooks secret",
		"dlq", "dlq list", "dlq show", "dlq redrive", "dlq purge",
	} {
		for _, h := range []string{"--help", "-h"} {
			args := append(strings.Fields(c), h)
			out, errOut, code := runCLI(t, nil, args...)
			if code != 0 || !strings.Contains(out, "Usage: halosync "+c) || !strings.Contains(out, "Example:\n  halosync "+strings.Fields(c)[0]) || errOut != "" {
				t.Errorf("halosync %s %s: exit %d, stdout %q, stderr %q; want 0 and the usage with an example on stdout", c, h, code, out, errOut)
			}
		}
	}
}
