// Command halosync-load drives a `halosync serve` binary with synthetic Halo webhook
// deliveries on loopback: fixed rates, saturation and kill -9 runs (internal/loadgen).
// `make load` runs it; docs/PERFORMANCE.md records its figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "halosync-load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	s := loadgen.Suite{Out: os.Stdout}
	flag.StringVar(&s.Bin, "bin", "bin/halosync", "the halosync binary to run as serve")
	flag.StringVar(&s.Dir, "dir", "", "scratch directory (default: a new temporary one, removed after)")
	rates := flag.String("rates", "100,300", "fixed rates, deliveries per second, comma-separated")
	clients := flag.String("clients", "10,50,200", "saturation phases: closed-loop clients each, comma-separated")
	flag.DurationVar(&s.Window, "window", 10*time.Second, "how long each phase sends")
	flag.DurationVar(&s.Drain, "drain", 2*time.Minute, "bound on each phase's wait for its backlog")
	flag.IntVar(&s.Senders, "senders", 64, "fixed rate: senders at most at once")
	flag.IntVar(&s.Tickets, "tickets", 2000, "tickets the deliveries spread over")
	flag.IntVar(&s.MaxBacklog, "max-backlog", 0, "queue.max_backlog of the server (0: its default)")
	flag.IntVar(&s.Kills, "kills", 3, "kill -9 runs")
	flag.DurationVar(&s.KillAfter, "kill-after", 3*time.Second, "how long a kill run sends before the kill")
	flag.Parse()
	var err error
	if s.Rates, err = ints(*rates); err != nil {
		return fmt.Errorf("--rates: %w", err)
	}
	if s.Clients, err = ints(*clients); err != nil {
		return fmt.Errorf("--clients: %w", err)
	}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "halosync-load-"); err != nil {
			return err
		}
		defer os.RemoveAll(s.Dir)
	}
	return s.Run(ctx)
}

func ints(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}
