package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
)

const syncExample = `  halosync sync --full --config halosync.yaml                   # every connection with halo: settings
  halosync sync --full --config halosync.yaml --connection acme
`

// syncCmd forces a full sync: it resets the poller's cursors in the store the config
// names, so the next poll (halosync serve's, or the poller function's in AWS) reads every
// object again, resumably, and enqueues what is newer than the copy.
func syncCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file naming the store")
	dataDir := fs.String("data", ".halosync", "data directory of the embedded store")
	full := fs.Bool("full", false, "read every object again (required: the only kind of sync asked for by hand)")
	only := fs.String("connection", "", "the connection (default: every connection with halo: settings)")
	if err := parseFlags(fs, args, stdout, "halosync sync --full [--connection C] [--config FILE] [--data .halosync]", syncExample); err != nil {
		return err
	}
	if !*full || fs.NArg() > 0 {
		return fmt.Errorf("usage: halosync sync --full [--connection C] [--config FILE] [--data DIR]")
	}
	cfg := &config.Config{}
	if *configPath != "" {
		var err error
		if cfg, _, err = loadConfig(ctx, *configPath, *dataDir); err != nil {
			return err
		}
	}
	if *only != "" {
		if err := knownConnection(cfg, *only); err != nil {
			return err
		}
	}
	var conns []string
	for _, c := range cfg.Connections {
		if (*only == "" && c.Halo.Configured()) || c.ID == *only {
			conns = append(conns, c.ID)
		}
	}
	if *only != "" && len(conns) == 0 {
		conns = []string{*only}
	}
	if len(conns) == 0 {
		return fmt.Errorf("no connection has halo: settings to sync from; name one with --connection")
	}
	var db *sqlite.DB
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	store, err := openStore(ctx, cfg, func() (*sqlite.DB, error) {
		var err error
		db, err = sqlite.Open(dbPath(cfg, *dataDir))
		return db, err
	})
	if err != nil {
		return err
	}
	cursors, ok := store.(poller.Cursors)
	if !ok {
		return fmt.Errorf("the store keeps no poller cursors")
	}
	for _, conn := range conns {
		if err := poller.Restart(ctx, cursors, conn); err != nil {
			return fmt.Errorf("connection %s: %w", conn, err)
		}
		fmt.Fprintf(stdout, "connection %s: the next poll reads every object again\n", conn)
	}
	return nil
}
