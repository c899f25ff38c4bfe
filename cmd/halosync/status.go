package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/verify"
)

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
	var r localserver.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("%s/status: %w", *url, err)
	}
	return printServerStatus(stdout, r, time.Now())
}

// printServerStatus prints the counters as a table (a timing as its mean in milliseconds, not
// its sum), then each connection's state, then the queues.
func printServerStatus(w io.Writer, r localserver.Report, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTION\tCOUNTER\tREASON / OUTCOME\tCOUNT")
	for _, e := range r.Counters {
		label := e.Label
		if label == "" {
			label = "-"
		}
		value := strconv.FormatInt(e.Value, 10)
		if metrics.UnitOf(e.Name) == metrics.UnitMilliseconds {
			value = fmt.Sprintf("avg %s ms over %d", strconv.FormatFloat(e.AvgMS, 'f', -1, 64), e.Observations)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Connection, e.Name, label, value)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(r.ByConnection)) {
		printConnection(w, id, r.ByConnection[id], slices.Contains(r.Demo, id), now)
	}
	if len(r.Demo) > 0 {
		fmt.Fprintf(w, "\ndemo traffic: connection %s is driven by the simulated Halo tenant of serve --demo\n", strings.Join(r.Demo, ", "))
	}
	if r.Queue != nil {
		fmt.Fprintf(w, "\nqueue: %d waiting, %d in flight\n", r.Queue.Visible, r.Queue.InFlight)
	}
	if r.DeadLetterQueue != nil {
		fmt.Fprintf(w, "dead-letter queue: %d\n", r.DeadLetterQueue.Visible+r.DeadLetterQueue.InFlight)
	}
	if r.DeadLetters != nil {
		for _, m := range r.DeadLetters.Newest {
			fmt.Fprintf(w, "  %s  %s %s  %s  (%s)\n", m.SentAt.Format(time.RFC3339), m.Connection, m.Kind, m.Reason, m.ID)
		}
	}
	return nil
}

// syncModes says what each poll.mode means.
var syncModes = map[string]string{"hybrid": "hybrid (webhooks and polls)", "poll": "poll only", "webhook": "webhook only"}

func printConnection(w io.Writer, id string, c localserver.ConnectionReport, demo bool, now time.Time) {
	title := "connection " + id
	if demo {
		title += " (demo traffic)"
	}
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := syncModes[c.SyncMode]
	if mode == "" {
		mode = c.SyncMode
	}
	if !c.Polled {
		mode += " (no halo: settings, not polled)"
	}
	fmt.Fprintf(tw, "  sync mode:\t%s\n", mode)
	fallback := "off"
	if c.Fallback.Active {
		fallback = "on since " + ago(c.Fallback.Since, now)
	}
	fmt.Fprintf(tw, "  poll fallback:\t%s\n", fallback)
	fmt.Fprintf(tw, "  last delivery:\t%s\n", ago(c.LastDelivery, now))
	fmt.Fprintf(tw, "  deliveries by endpoint:\tprimary %d, backup %d\n", c.Endpoints[change.EndpointPrimary], c.Endpoints[change.EndpointBackup])
	webhook := "not managed (no webhook.manage)"
	switch {
	case c.Webhook.Managed && c.Webhook.CheckedAt == nil:
		webhook = "managed, not checked yet"
	case c.Webhook.Managed && c.Webhook.Healthy != nil && *c.Webhook.Healthy:
		webhook = "healthy, checked " + ago(c.Webhook.CheckedAt, now)
	case c.Webhook.Managed:
		webhook = "unhealthy, checked " + ago(c.Webhook.CheckedAt, now)
	}
	fmt.Fprintf(tw, "  managed webhook:\t%s\n", webhook)
	if c.Objects != nil {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(c.Objects)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, c.Objects[k]))
		}
		if len(parts) == 0 {
			parts = []string{"none yet"}
		}
		fmt.Fprintf(tw, "  objects:\t%s\n", strings.Join(parts, ", "))
	}
	if len(c.Backfill) > 0 {
		var parts []string
		for _, b := range c.Backfill {
			part := fmt.Sprintf("%s %s", b.Kind, b.State)
			phase := ""
			if b.Phase != "" {
				phase = b.Phase + ", "
			}
			if b.State == "running" && b.Total > 0 {
				part = fmt.Sprintf("%s %d/%d (%s%s/s, %s left)", b.Kind, b.Done, b.Total, phase, strconv.FormatFloat(b.PerSecond, 'f', -1, 64), b.Left)
			}
			parts = append(parts, part)
		}
		fmt.Fprintf(tw, "  backfill:\t%s\n", strings.Join(parts, ", "))
	}
	l := c.SyncLatencyMS
	fmt.Fprintf(tw, "  sync latency:\tavg %s; last hour avg %s, max %s\n", millis(l.Avg), millis(l.LastHourAvg), millis(float64(l.LastHourMax)))
	var errs []string
	for _, kind := range slices.Sorted(maps.Keys(c.Errors)) {
		for _, reason := range slices.Sorted(maps.Keys(c.Errors[kind])) {
			errs = append(errs, fmt.Sprintf("%s %s %d", strings.ReplaceAll(kind, "_", " "), reason, c.Errors[kind][reason]))
		}
	}
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	fmt.Fprintf(tw, "  errors:\t%s\n", strings.Join(errs, "; "))
	if v := c.Verification; v != nil {
		fmt.Fprintf(tw, "  verification:\tover the last %s h, last check %s\n", strconv.FormatFloat(v.WindowHours, 'f', -1, 64), agoTime(v.All.LastCheckedAt, now))
		fmt.Fprintf(tw, "  verified, all kinds:\t%s\n", verifiedLine(v.All))
		for _, kind := range slices.Sorted(maps.Keys(v.Kinds)) {
			fmt.Fprintf(tw, "  verified, %s:\t%s\n", kind, verifiedLine(v.Kinds[kind]))
		}
	}
	_ = tw.Flush()
}

// verifiedLine is one kind's (or the connection's) verification: the share equal with its
// 95% interval, the objects checked, the differences by cause and the repairs.
func verifiedLine(r verify.KindReport) string {
	if r.Checked == 0 {
		return "nothing checked"
	}
	return fmt.Sprintf("%s%% equal (%s–%s%%, 95%%); %d checked, %d equal; differing %s; repaired %d",
		percent(r.Estimate), percent(r.Low), percent(r.High), r.Checked, r.Equal, differingLine(r.Differing), r.Repaired)
}

// percent prints a share (0..1) as a percentage to one decimal, rounded down so that a
// share below 1 never reads 100; 1 reads 100 (as the dashboard page does).
func percent(share float64) string {
	if share >= 1 {
		return "100"
	}
	return strconv.FormatFloat(math.Floor(max(share, 0)*1000+1e-9)/10, 'f', 1, 64)
}

// differingLine lists the differences by cause in verify.Causes' order (a cause it does not
// name after them), or "none".
func differingLine(byCause map[string]int) string {
	var parts []string
	for _, c := range verify.Causes {
		if n := byCause[string(c)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	for _, c := range slices.Sorted(maps.Keys(byCause)) {
		if n := byCause[c]; n > 0 && !slices.Contains(verify.Causes, verify.Cause(c)) {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// millis prints milliseconds, and from a minute on also as a duration, which reads better
// than a large number (the first sync's changes can be months old).
func millis(ms float64) string {
	out := strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
	if ms >= 60_000 {
		out += " (" + time.Duration(ms*float64(time.Millisecond)).Round(time.Second).String() + ")"
	}
	return out
}

// agoTime is ago of a time that is zero when it never happened.
func agoTime(t time.Time, now time.Time) string {
	if t.IsZero() {
		return ago(nil, now)
	}
	return ago(&t, now)
}

// ago is t and how long ago it was, or "never".
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(*t).Round(time.Second))
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
