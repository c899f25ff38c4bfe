package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/sqlite"
)

// TestErrorsSayWhatToDoNext: an unknown kind lists the kinds, an unknown connection the
// connections (with or without --config), a missing configuration file the example to
// start from, an unknown key the nearest one and its line, broken YAML its line; each
// exits non-zero and changes nothing. Kinds are taken singular or plural wherever one is
// typed.
func TestErrorsSayWhatToDoNext(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := twoConnections(t, dir, filepath.Join(data, "halosync.db"))
	typo := filepath.Join(dir, "typo.yaml")
	writeFile(t, typo, "connections:\n  - id: acme\n    webhok: {}\n")
	indent := filepath.Join(dir, "indent.yaml")
	writeFile(t, indent, "connections:\n  - id: acme\n    webhook:\n      auth:\n        - scheme: basic\n         username: halo\n")
	badKind := filepath.Join(dir, "kind.yaml")
	writeFile(t, badKind, "connections:\n  - id: acme\n    webhook:\n      auth: [{scheme: basic, username: halo, passwords: [\"long-enough-password\"]}]\n    stored_fields:\n      tickts: {exclude: [details]}\n")
	missing := filepath.Join(dir, "missing.yaml")

	const conns = `no connection "nope": the configuration has "acme", "globex"; pass one of them with --connection`
	const noDefault = `no connection "nope": the configuration has "default"; pass one of them with --connection (without --config, serve's default`
	const kinds = `unknown kind "tickts": the kinds are action, asset, client, contact, ticket (singular or plural)`
	example := "cp halosync.example.yaml " + missing
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "--data", data, "tickts", "1"}, kinds},
		{[]string{"sync", "--full", "--data", data, "--kind", "tickts"}, kinds},
		{[]string{"dlq", "list", "--data", data, "--kind", "tickts"}, kinds},
		{[]string{"dlq", "purge", "--yes", "--data", data, "--kind", "tickts"}, kinds},
		{[]string{"get", "--config", badKind, "ticket", "1"}, `stored_fields: unknown kind "tickts" (action, asset, client, contact, ticket)`},

		{[]string{"get", "--data", data, "tickets", "1"}, "no halosync database"},
		{[]string{"get", "--data", data, "ticket", "1"}, "no halosync database"},
		{[]string{"sync", "--full", "--data", data, "--kind", "tickets"}, "no halosync database at " + filepath.Join(data, "halosync.db")},
		{[]string{"dlq", "list", "--data", data}, "no halosync database at " + filepath.Join(data, "halosync.db")},

		{[]string{"get", "--config", cfg, "--connection", "nope", "ticket", "1"}, conns},
		{[]string{"get", "--config", cfg, "ticket", "1"}, `no connection "default": the configuration has "acme", "globex"; pass one of them with --connection`},
		{[]string{"sync", "--full", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"webhooks", "status", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"webhooks", "apply", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"dlq", "list", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"dlq", "redrive", "--config", cfg, "--connection", "nope"}, conns},
		{[]string{"get", "--data", data, "--connection", "nope", "ticket", "1"}, noDefault},
		{[]string{"sync", "--full", "--data", data, "--connection", "nope"}, noDefault},
		{[]string{"dlq", "list", "--data", data, "--connection", "nope"}, noDefault},

		{[]string{"serve", "--config", missing, "--data", data}, example},
		{[]string{"get", "--config", missing, "ticket", "1"}, example},
		{[]string{"sync", "--full", "--config", missing}, example},
		{[]string{"status", "--config", missing}, example},
		{[]string{"dlq", "list", "--config", missing}, example},
		{[]string{"webhooks", "status", "--config", missing}, example},

		{[]string{"serve", "--config", typo, "--data", data}, `line 3: unknown key "webhok" under connections[0]; did you mean "webhook"?`},
		{[]string{"serve", "--config", indent, "--data", data}, "line 6: not valid YAML (did not find expected '-' indicator); look at its indentation"},
		{[]string{"serve", "--data", data, "--log-level", "loud"}, "--log-level"},
		{[]string{"serve", "--data", data, "--log-format", "yaml"}, "text, json or auto"},
		{[]string{"get", "--data", data, "--bogus"}, "flag provided but not defined: -bogus (halosync get --help lists the flags)"},
		{[]string{"bogus"}, `unknown command "bogus"`},
	} {
		out, errOut, code := runCLI(t, nil, c.args...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("halosync %s: exit %d, stdout %q, stderr %q; want non-zero and %q", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("the data directory was made (%v): a refused command wrote to it", err)
	}

	// Over a database serve made: the plural kinds are taken wherever a kind is typed.
	db, err := sqlite.Open(filepath.Join(dir, "served", "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	served := filepath.Join(dir, "served")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"get", "--data", served, "tickets", "1"}, 2, "no ticket 1 in connection default"},
		{[]string{"get", "--data", served, "contacts", "80"}, 2, "no contact 80 in connection default"},
		{[]string{"sync", "--full", "--data", served, "--kind", "contacts"}, 0, "connection default: the next poll reads every contact again"},
		{[]string{"sync", "--full", "--data", served}, 0, "connection default: the next poll reads every object again"},
		{[]string{"dlq", "list", "--data", served, "--kind", "tickets", "--connection", "default"}, 0, "no messages in the dead-letter queue"},
	} {
		out, errOut, code := runCLI(t, nil, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("halosync %s: exit %d, stdout %q, stderr %q; want %d and %q", strings.Join(c.args, " "), code, out, errOut, c.code, c.want)
		}
	}
}

// twoConnections writes a configuration of connections acme and globex, storing in db, in
// dir and returns its path.
func twoConnections(t *testing.T, dir, db string) string {
	t.Helper()
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
  path: `+db+"\n")
	return cfg
}
