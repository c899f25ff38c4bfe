package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/sqlite"
)

const serveExample = `  halosync serve --config halosync.yaml --addr 0.0.0.0:8080
  curl -H "Authorization: Bearer $(cat .halosync/read-token)" http://127.0.0.1:8080/connections/default/tickets/4242
`

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file (default: one connection \"default\" with a generated password)")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	dataDir := fs.String("data", ".halosync", "data directory: the embedded store and queue")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "auto", "text (for people), json, or auto: text when stderr is a terminal, else json")
	demoMode := fs.Bool("demo", false, "give connections without Halo API settings a simulated Halo tenant that changes and sends webhooks")
	demoEvery := fs.Duration("demo-every", 2*time.Second, "with --demo: how often the simulated tenant changes something")
	pollEvery := fs.Duration("poll-every", 30*time.Second, "how often to look whether a connection's poll is due (its plan sets the interval)")
	if err := parseFlags(fs, args, stdout, "halosync serve [--config FILE] [--addr 127.0.0.1:8080] [--data .halosync] [flags]", serveExample); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}

	cfg, password, err := loadConfig(ctx, *configPath, *dataDir)
	if err != nil {
		return err
	}
	tokenAt, err := readTokens(cfg, *dataDir)
	if err != nil {
		return err
	}
	var sim *demo
	if *demoMode {
		if sim, err = prepareDemo(cfg, *demoEvery, *dataDir, log); err != nil {
			return err
		}
		defer sim.close()
	}
	db, err := sqlite.Open(dbPath(cfg, *dataDir))
	if err != nil {
		return err
	}
	defer db.Close()
	// This process consumes the queue: what a previous one held when it died is applied
	// now, not after its visibility timeout (sqlite.DB.Claim).
	released, err := db.Claim(ctx)
	if err != nil {
		return fmt.Errorf("%w (is another halosync serve running on %s?)", err, db.Path())
	}
	if released > 0 {
		log.Info("queued messages made visible at start", "messages", released)
	}
	store, err := openStore(ctx, cfg, func() (*sqlite.DB, error) { return db, nil })
	if err != nil {
		return err
	}
	q, dlq := localserver.Queues(db, cfg.Queue)
	srv, err := localserver.New(cfg, localserver.Options{Store: store, Queue: q, DeadLetter: dlq, Log: log, PollEvery: *pollEvery, Probe: db,
		Status: db, Demo: sim.connections()})
	if err != nil {
		return err
	}
	b := banner{tokenWhere: tokenAt, token: cfg.Server.ReadTokens[0], secrets: onTerminal(stdout)}
	for _, c := range cfg.Connections {
		b.conns = append(b.conns, c.ID)
	}
	if password != "" {
		b.user, b.password, b.passwordFile = defaultUser, password, filepath.Join(*dataDir, passwordFile)
	} else if b.secrets {
		b.user, b.password = basicCredentials(cfg.Connections[0].Webhook.Auth)
	}
	if tokenAt == filepath.Join(*dataDir, readTokenFile) {
		b.tokenFile = tokenAt
	}
	if sim != nil {
		b.demo = sim.announce
	}
	// The server stops after the demo has halted, so no simulated delivery is refused for
	// the server stopping under it.
	serveCtx := ctx
	if sim != nil {
		var stopServe context.CancelFunc
		serveCtx, stopServe = context.WithCancel(context.WithoutCancel(ctx))
		defer stopServe()
		context.AfterFunc(ctx, func() { sim.halt(); stopServe() })
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(localserver.ServeGCPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// The default follows the CPUs and the container's CPU limit.
		runtime.GOMAXPROCS(localserver.ServeProcsPerCPU * runtime.GOMAXPROCS(0))
	}
	return srv.Serve(serveCtx, *addr, func(a net.Addr) {
		b.url = "http://" + a.String()
		b.write(stdout)
		if sim != nil {
			sim.run(ctx, b.url)
		}
	})
}
