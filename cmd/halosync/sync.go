package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
)

const syncExample = `  halosync sync --full                                   # serve's default connection (make run's demo)
  halosync sync --full --config halosync.yaml            # every configured connection
  halosync sync --full --config halosync.yaml --connection acme --kind tickets
`

// syncCmd forces a full sync: it resets the poller's cursors in the store the config
// names, so the next poll (halosync serve's, or the poller function's in AWS) reads every
// object again, resumably, and enqueues what is newer than the copy.
func syncCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sync", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file naming the store and the connections (default: serve's, one connection \"default\")")
	dataDir := fs.String("data", ".halosync", "data directory of the embedded store")
	full := fs.Bool("full", false, "read every object again (required: the only kind of sync asked for by hand)")
	only := fs.String("connection", "", "the connection (default: every configured connection)")
	kindName := fs.String("kind", "", "only this kind: ticket (with its notes), client, contact or asset, singular or plural (default: every kind)")
	if err := parseFlags(fs, args, stdout, "halosync sync --full [--connection C] [--kind KIND] [--config FILE] [--data .halosync]", syncExample); err != nil {
		return err
	}
	if !*full || fs.NArg() > 0 {
		return fmt.Errorf("usage: halosync sync --full [--connection C] [--kind KIND] [--config FILE] [--data DIR]")
	}
	kinds, err := kindsOf(*kindName)
	if err != nil {
		return err
	}
	cfg, err := commandConfig(ctx, *configPath, *dataDir)
	if err != nil {
		return err
	}
	var conns []string
	if *only != "" {
		if err := knownConnection(cfg, *configPath, *only); err != nil {
			return err
		}
		conns = []string{*only}
	} else {
		for _, c := range cfg.Connections {
			conns = append(conns, c.ID)
		}
	}
	var db *sqlite.DB
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	store, err := openStore(ctx, cfg, func() (*sqlite.DB, error) {
		var err error
		db, err = existingDB(dbPath(cfg, *dataDir), "")
		return db, err
	})
	if err != nil {
		return err
	}
	cursors, ok := store.(poller.Cursors)
	if !ok {
		return fmt.Errorf("the store keeps no poller cursors")
	}
	what := "every object"
	if len(kinds) > 0 {
		what = "every " + string(kinds[0])
	}
	for _, conn := range conns {
		if err := poller.Restart(ctx, cursors, conn, kinds...); err != nil {
			return fmt.Errorf("connection %s: %w", conn, err)
		}
		fmt.Fprintf(stdout, "connection %s: the next poll reads %s again\n", conn, what)
	}
	return nil
}

// kindsOf is the kind --kind names, as a list; none when it is empty (every kind).
func kindsOf(name string) ([]change.Kind, error) {
	if name == "" {
		return nil, nil
	}
	k, err := change.ParseKind(name)
	if err != nil {
		return nil, err
	}
	return []change.Kind{k}, nil
}
