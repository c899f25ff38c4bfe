package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestErrorsSayWhatToDoNext: an unknown kind lists the kinds, an unknown connection the
// connections, a missing configuration file the example to start from, an unknown key the
// nearest one; each exits non-zero and changes nothing.
func TestErrorsSayWhatToDoNext(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "halosync.yaml")
	writeFile(t, cfg, `
connections:
  - id: acme
    webhook:
      auth: [{scheme: basic, username: halo, passwords: ["long-enough-password"]}]
  - id: globex
    webhook:
      auth: [{scheme: basic, username: halo, passwords: ["long-enough-password"]}]
store:
  path: `+filepath.Join(data, "halosync.db")+"\n")
	typo := filepath.Join(dir, "typo.yaml")
	writeFile(t, typo, "connections:\n  - id: acme\n    webhok: {}\n")
	const conns = `no connection "nope": the configuration has "acme", "globex"`
	const noDefault = `no connection "nope": the configuration has "default" (without --config, serve's default; pass the --config serve runs with`
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "--data", data, "tickts", "1"}, `unknown kind "tickts": the kinds are action, asset, client, contact, ticket (singular or plural)`},
		{[]string{"get", "--data", data, "tickets", "1"}, "no halosync database"},
		{[]string{"get", "--data", data, "ticket", "1"}, "no halosync database"},
		{[]string{"get", "--config", cfg, "--connection", "nope", "ticket", "1"}, conns},
		{[]string{"sync", "--full", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"webhooks", "status", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"webhooks", "apply", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"dlq", "list", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"dlq", "redrive", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"get", "--data", data, "--connection", "nope", "ticket", "1"}, noDefault},
		{[]string{"sync", "--full", "--data", data, "--connection", "nope"}, noDefault},
		{[]string{"dlq", "list", "--data", data, "--connection", "nope"}, noDefault},
		{[]string{"sync", "--full", "--data", data, "--kind", "tickts"}, `unknown kind "tickts": the kinds are`},
		{[]string{"dlq", "list", "--data", data, "--kind", "tickts"}, `unknown kind "tickts": the kinds are`},
		{[]string{"sync", "--full", "--data", data, "--kind", "tickets"}, "no halosync database at " + filepath.Join(data, "halosync.db")},
		{[]string{"get", "--config", filepath.Join(dir, "missing.yaml"), "ticket", "1"}, "cp halosync.example.yaml " + filepath.Join(dir, "missing.yaml")},
		{[]string{"serve", "--config", typo, "--data", data}, `line 3: unknown key "webhok" under connections[0]; did you mean "webhook"?`},
	} {
		out, errOut, code := runCLI(t, nil, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("halosync %s: exit %d, stdout %q, stderr %q; want non-zero and %q", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data directory was made (%v): a refused command wrote to it", err)
	}
}
