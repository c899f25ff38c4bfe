package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/sqlite"
)

const (
	getSynopsis = "halosync get [--config FILE] [--data .halosync] [--connection default] KIND ID [--ticket TICKET]"
	getExample  = `  halosync get ticket 4242                     # KIND: ticket, client, contact, asset (or plural)
  halosync get action 17 --ticket 4242         # a note, under its ticket
  halosync get delivery DELIVERY_ID            # what the worker did with each object a delivery carried
  halosync get --config halosync.yaml --connection acme client 12
`
)

func get(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file naming the store")
	dataDir := fs.String("data", ".halosync", "data directory of the embedded store")
	conn := fs.String("connection", "default", "connection id")
	ticket := fs.String("ticket", "", "the ticket of a note (KIND action)")
	if err := parseFlags(fs, args, stdout, getSynopsis, getExample); err != nil {
		return err
	}
	rest := fs.Args()
	// Accept flags after the positional arguments too: get ticket 42 --connection c.
	if len(rest) > 2 {
		if err := parseFlags(fs, rest[2:], stdout, getSynopsis, getExample); err != nil {
			return err
		}
		if fs.NArg() > 0 {
			return fmt.Errorf("get takes KIND and ID only; unexpected %q", fs.Args())
		}
		rest = rest[:2]
	}
	if len(rest) != 2 {
		return fmt.Errorf("get needs KIND and ID, e.g. `halosync get ticket 4242`, or `halosync get delivery DELIVERY_ID`")
	}
	// `get delivery ID` prints a delivery's records, as GET /connections/{c}/deliveries/{id}.
	delivery := strings.EqualFold(rest[0], "delivery")
	var kind change.Kind
	if !delivery {
		var err error
		if kind, err = change.ParseKind(rest[0]); err != nil {
			return err
		}
		if kind == change.Action && *ticket == "" {
			return fmt.Errorf("a note is read with --ticket TICKET")
		}
	}
	cfg, err := commandConfig(ctx, *configPath, *dataDir)
	if err != nil {
		return err
	}
	if err := knownConnection(cfg, *configPath, *conn); err != nil {
		return err
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
	var out any
	if delivery {
		ds, err := store.Deliveries(ctx, *conn, rest[1])
		if err != nil {
			return err
		}
		if len(ds) == 0 {
			return fmt.Errorf("no record of delivery %s in connection %s (records are kept %d days)", rest[1], *conn, int(change.DeliveryRetention.Hours()/24))
		}
		out = ds
	} else {
		o, ok, err := store.Get(ctx, *conn, kind, rest[1], *ticket)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no %s %s in connection %s", kind, rest[1], *conn)
		}
		out = o
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
