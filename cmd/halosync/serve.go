package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqlite"
	"github.com/halosync/halosync/internal/worker"
)

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default: one connection \"default\" with a generated password)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	dataDir := fs.String("data", ".halosync", "data directory: the embedded store and queue")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, password, err := loadConfig(ctx, *configPath, *dataDir)
	if err != nil {
		return err
	}
	db, err := sqlite.Open(dbPath(cfg, *dataDir))
	if err != nil {
		return err
	}
	defer db.Close()
	store, err := openStore(ctx, cfg, func() (*sqlite.DB, error) { return db, nil })
	if err != nil {
		return err
	}
	visibility := time.Duration(cfg.Queue.VisibilitySeconds) * time.Second
	if visibility <= 0 {
		visibility = 30 * time.Second
	}
	maxReceive := cfg.Queue.MaxReceive
	if maxReceive <= 0 {
		maxReceive = 5
	}
	q := db.Queue("changes", sqlite.QueueOptions{Visibility: visibility, MaxReceive: maxReceive, DeadLetter: "changes-dlq"})
	dlq := db.Queue("changes-dlq", sqlite.QueueOptions{Visibility: visibility})

	counts := metrics.NewMemory()
	h, err := ingest.New(cfg, q, counts, log)
	if err != nil {
		return err
	}
	srv := localserver.New(h, worker.New(store, counts, log), store, q, dlq, counts, log)
	return srv.Serve(ctx, *addr, func(a net.Addr) {
		fmt.Fprintf(stdout, "halosync is listening on http://%s\n", a)
		for _, c := range cfg.Connections {
			fmt.Fprintf(stdout, "  webhook URL for connection %q: http://%s/webhooks/halo/%s\n", c.ID, a, c.ID)
		}
		if password != "" {
			fmt.Fprintf(stdout, "  Basic auth: user %q, password %q (kept in %s/webhook-password)\n", defaultUser, password, *dataDir)
		}
		fmt.Fprintf(stdout, "  read a ticket: http://%s/connections/%s/tickets/{id}\n", a, cfg.Connections[0].ID)
	})
}
