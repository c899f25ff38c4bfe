package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/halosync/halosync/internal/metrics"
)

// statusReport is what GET /status of a running server answers.
type statusReport struct {
	Counters        []metrics.Entry `json:"counters"`
	Queue           *queueDepth     `json:"queue,omitempty"`
	DeadLetterQueue *queueDepth     `json:"dead_letter_queue,omitempty"`
}

type queueDepth struct {
	Visible  int `json:"visible"`
	InFlight int `json:"in_flight"`
}

// statusCmd prints a running local server's counters per connection: deliveries accepted
// and rejected by reason, changes filtered by rule, applied, duplicate, stale, failed.
func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the running `halosync serve`")
	asJSON := fs.Bool("json", false, "print the server's JSON as it is")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status takes no arguments; unexpected %q", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*url, "/")+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is halosync serve running at %s? %w", *url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
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
	if r.Queue != nil {
		fmt.Fprintf(stdout, "\nqueue: %d waiting, %d in flight\n", r.Queue.Visible, r.Queue.InFlight)
	}
	if r.DeadLetterQueue != nil {
		fmt.Fprintf(stdout, "dead-letter queue: %d\n", r.DeadLetterQueue.Visible+r.DeadLetterQueue.InFlight)
	}
	return nil
}
