package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/halosync/halosync/internal/metrics"
)

// statusReport is what GET /status of a running server answers.
type statusReport struct {
	Counters        []metrics.Entry `json:"counters"`
	Demo            []string        `json:"demo_connections"`
	Queue           *queueDepth     `json:"queue,omitempty"`
	DeadLetterQueue *queueDepth     `json:"dead_letter_queue,omitempty"`
}

type queueDepth struct {
	Visible  int `json:"visible"`
	InFlight int `json:"in_flight"`
}

const statusExample = `  halosync status                              # the server on 127.0.0.1:8080, its token in .halosync/read-token
  halosync status --url https://halosync.example.com --config halosync.yaml --json
`

// statusCmd prints a running local server's counters per connection: deliveries accepted
// and rejected by reason, changes filtered by rule, applied, duplicate, stale, failed.
// It reads /status with the server's read token: the configuration's first, or the one
// serve generated in the data dir.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the address of the running halosync serve")
	configPath := fs.String("config", "", "the server's configuration, for its server.read_tokens")
	dataDir := fs.String("data", ".halosync", "the server's data directory, for the read token it generated")
	asJSON := fs.Bool("json", false, "print the server's JSON as it is")
	if err := parseFlags(fs, args, stdout, "halosync status [--url http://127.0.0.1:8080] [--config FILE] [--data .halosync] [--json]", statusExample); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status takes no arguments; unexpected %q", fs.Args())
	}
	token, err := statusToken(ctx, *configPath, *dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*url, "/")+"/status", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is halosync serve running at %s? %w", *url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return fmt.Errorf("%s/status refused the read token: pass the server's --config (server.read_tokens) or --data (its read-token file)", *url)
	case http.StatusMisdirectedRequest:
		return fmt.Errorf("%s/status does not answer under that host name: add it to the server's server.hosts", *url)
	default:
		return fmt.Errorf("%s/status answered %s", *url, resp.Status)
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var r statusReport
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s/status: %w", *url, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTION\tCOUNTER\tREASON / OUTCOME\tCOUNT")
	for _, e := range r.Counters {
		label := e.Label
		if label == "" {
			label = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", e.Connection, e.Name, label, e.Value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Demo) > 0 {
		fmt.Fprintf(stdout, "\ndemo traffic: connection %s is driven by the simulated Halo tenant of serve --demo\n", strings.Join(r.Demo, ", "))
	}
	if r.Queue != nil {
		fmt.Fprintf(stdout, "\nqueue: %d waiting, %d in flight\n", r.Queue.Visible, r.Queue.InFlight)
	}
	if r.DeadLetterQueue != nil {
		fmt.Fprintf(stdout, "dead-letter queue: %d\n", r.DeadLetterQueue.Visible+r.DeadLetterQueue.InFlight)
	}
	return nil
}

// statusToken is the read token status sends: the configuration's first, else the one
// serve keeps in the data dir. It never makes one: a token only the caller knows would
// not be the server's.
func statusToken(ctx context.Context, configPath, dataDir string) (string, error) {
	if configPath != "" {
		cfg, _, err := loadConfig(ctx, configPath, dataDir)
		if err != nil {
			return "", err
		}
		if len(cfg.Server.ReadTokens) > 0 {
			return cfg.Server.ReadTokens[0], nil
		}
	}
	path := filepath.Join(dataDir, readTokenFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no read token: %s does not exist; pass --data with the data directory of halosync serve, or --config with a configuration that lists server.read_tokens", path)
	}
	if err != nil {
		return "", fmt.Errorf("read token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
