// Command halosync is the local side of halosync: `serve` runs the whole pipeline on one
// machine; `get` prints an object from the copy; `status` shows a running server's counts;
// `verify` checks the copy against Halo; `dlq` looks after the dead-letter queue.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `halosync keeps a copy of a Halo PSA tenant in sync.

Usage:
  halosync serve [--config FILE] [--addr 127.0.0.1:8080] [--data .halosync]
  halosync get   [--config FILE] [--data .halosync] [--connection default] KIND ID
                 (or: halosync get delivery DELIVERY_ID: what the worker did with each object)
                 (KIND: ticket, client, contact, asset; for a note: action ID --ticket TICKET)
  halosync sync --full [--connection C] [--kind KIND] [--config FILE] [--data .halosync]
                 (the next poll reads every object again; every configured connection by default)
  halosync verify [--connection C] [--kind KIND] [--sample N | --all] [--dry-run] [--config FILE] [--data .halosync]
                 (the copy checked against Halo now, each difference printed and repaired)
  halosync status [--url http://127.0.0.1:8080] [--config FILE] [--data .halosync] [--json]
                 (counters of a running server, per connection)
  halosync webhooks apply|status|test|replay|remove|events|secret --config FILE [--connection C]
                 (our webhook in Halo: create, check, test, replay, remove; docs/WEBHOOKS.md)
  halosync dlq list|show|redrive|purge [ID...] [--connection C] [--kind KIND] [--data .halosync | --dlq-url URL --queue-url URL]
                 (the dead-letter queue: why each change failed; move back after a fix, or delete)
  halosync version   (the module version and VCS revision)
  halosync help      (this text; halosync COMMAND --help: a command's flags with an example)

Example:
  halosync serve --demo                 # the whole pipeline here, with a simulated Halo tenant
  halosync get ticket 4242              # a ticket from the copy serve keeps in .halosync
  halosync status                       # the running server's counters
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, errHelped) {
			return
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "halosync:", err)
		}
		os.Exit(2)
	}
}

// errHelped ends a command whose help was asked for and printed: not a failure.
var errHelped = errors.New("help printed")

// parseFlags parses a command's flags. Asked for help (-h, --help), it prints the
// command's synopsis, flags and example on stdout and returns errHelped; on a bad flag it
// says how to get that help.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer, synopsis, example string) error {
	fs.Usage = func() {}
	fs.SetOutput(io.Discard) // the error is returned, and printed once, by main
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage: %s\n\nFlags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fmt.Fprintf(stdout, "\nExample:\n%s", example)
		return errHelped
	}
	if err != nil {
		return fmt.Errorf("%w (halosync %s --help lists the flags)", err, fs.Name())
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "get":
		return get(ctx, args[1:], stdout, stderr)
	case "status":
		return statusCmd(ctx, args[1:], stdout, stderr)
	case "sync":
		return syncCmd(ctx, args[1:], stdout, stderr)
	case "verify":
		return verifyCmd(ctx, args[1:], stdout, stderr)
	case "webhooks":
		return webhooksCmd(ctx, args[1:], stdout, stderr)
	case "dlq":
		return dlqCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		return helpCmd(stdout)
	case "version", "--version":
		return versionCmd(args[1:], stdout)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// version is the module version and the VCS revision the binary was built from, as the
// Go toolchain records them; "devel" stands for what it did not record.
func version() string {
	v, rev, modified := "devel", "devel", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if modified {
		rev += " (modified)"
	}
	return fmt.Sprintf("halosync %s, revision %s", v, rev)
}

// helpCmd prints the usage: `halosync help`, `--help`, `-h`.
func helpCmd(stdout io.Writer) error {
	fmt.Fprint(stdout, usage)
	return nil
}

// versionCmd prints the module version and VCS revision: `halosync version`.
func versionCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("version takes no arguments")
	}
	fmt.Fprintln(stdout, version())
	return nil
}
