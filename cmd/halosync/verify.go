package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqlite"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/verify"
)

const verifySynopsis = "halosync verify [--connection C] [--kind KIND] [--sample N | --all] [--dry-run] [--config FILE] [--data .halosync]"

const verifyExample = `  halosync verify                                         # serve --demo's connection: 100 objects, differences repaired
  halosync verify --config halosync.yaml --connection acme --kind tickets --sample 500
  halosync verify --config halosync.yaml --connection acme --all --dry-run
`

// verifyCmd checks the copy against Halo on demand (docs/ARCHITECTURE.md, "Verification"):
// a sample drawn as the poller's continuous verification draws it, or every object, read
// at the pace of the poller's share of the connection's budget. Each difference is printed
// field by field and, unless --dry-run, repaired through the changes queue, which serve's
// worker (or the worker function) applies.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	configPath := fs.String("config", "", "configuration file naming the store and the connections (default: serve's, one connection \"default\")")
	dataDir := fs.String("data", ".halosync", "data directory of the embedded store (and of serve --demo's simulated tenant)")
	only := fs.String("connection", "", "the connection (default: the only configured one)")
	kindName := fs.String("kind", "", "only this kind: ticket, action (note), client, contact or asset, singular or plural (default: every kind)")
	sample := fs.Int("sample", 100, "how many objects to read from Halo, drawn as continuous verification draws them")
	all := fs.Bool("all", false, "read every object Halo lists (a page of 100 per request) instead of a sample")
	repair := fs.Bool("repair", true, "enqueue a repair for every difference found")
	dryRun := fs.Bool("dry-run", false, "report the differences only (the same as --repair=false)")
	queueURL := fs.String("queue-url", "", "with a DynamoDB store: the changes queue repairs go to (default queue.sqs.url; stack output ChangesQueueUrl)")
	if err := parseFlags(fs, args, stdout, verifySynopsis, verifyExample); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("usage: %s", verifySynopsis)
	}
	sampled := false
	fs.Visit(func(f *flag.Flag) { sampled = sampled || f.Name == "sample" })
	if *all && sampled {
		return fmt.Errorf("--all reads every object: pass --sample N or --all, not both")
	}
	if *sample < 1 {
		return fmt.Errorf("--sample %d: read at least one object (or --all for every one)", *sample)
	}
	if *dryRun {
		*repair = false
	}
	kinds, err := kindsOf(*kindName)
	if err != nil {
		return err
	}
	cfg, err := commandConfig(ctx, *configPath, *dataDir)
	if err != nil {
		return err
	}
	id, err := verifiedConnection(cfg, *configPath, *only)
	if err != nil {
		return err
	}
	cc, _ := cfg.Connection(id)
	if !cc.Halo.Configured() {
		tenant, err := demoTenantOf(*dataDir, id)
		if err != nil {
			return err
		}
		defer tenant.Close()
		o := tenant.Options()
		setHalo(cfg, id, config.Halo{BaseURL: tenant.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret})
		fmt.Fprintf(stdout, "connection %s: Halo is serve --demo's simulated tenant as serve last kept it (%s)\n", id, demoFile(*dataDir, id))
	}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		return err
	}
	c, _ := conns.Get(id)

	var db *sqlite.DB
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	store, err := openStore(ctx, cfg, func() (*sqlite.DB, error) {
		db, err = existingDB(dbPath(cfg, *dataDir), "")
		return db, err
	})
	if err != nil {
		return err
	}
	queue, err := repairQueue(ctx, cfg, db, *queueURL, *repair)
	if err != nil {
		return err
	}
	client, err := haloapi.FromConfig(c.Config.Halo, nil)
	if err != nil {
		return fmt.Errorf("connection %s: halo: %w", id, err)
	}
	opts := poller.OptionsOf(c)
	opts.Share = poller.ShareOf(c, client.Budget())
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	p := poller.New(id, client, queue, store, store, metrics.NewMemory(), log, opts)

	limit, window := opts.Share.Limit()
	perRequest := 1 // a sampled object is a request of its own
	if *all {
		perRequest = haloapi.DefaultPageSize // Halo's listings, a page per request
	}
	progress := progressLines(stdout, limit, window, perRequest)
	var tally verify.Tally
	repaired, read := 0, 0
	run := poller.VerifyRun{Budget: *sample, All: *all, Kinds: kinds, Repair: *repair, Wait: true,
		Seed: uint64(time.Now().UnixNano()), Window: c.Verify.Window,
		Progress: func(done, planned int) { read = done; progress(done, planned) },
		Found: func(f poller.Finding) {
			tally.Add(f.Verdict)
			if f.Repaired {
				repaired++
			}
			if f.Verdict.Cause != verify.Equal {
				printFinding(stdout, f, *repair)
			}
		}}
	st, err := poller.ReadVerifyState(ctx, store, id)
	if err != nil {
		return err
	}
	run.Populations = st.Populations
	res, err := p.Verify(ctx, run)
	e := tally.Estimate()
	fmt.Fprintf(stdout, "checked %d in %d requests: %d equal, %d differing%s\n", e.Checked, res.Requests, e.Equal, e.Checked-e.Equal, byCause(e.ByCause))
	if left := read - e.Checked; left > 0 {
		fmt.Fprintf(stdout, "%d more read and not judged: changed in Halo within the last %s (their change may still be on its way), kept out by the connection's filters, or without a change marker\n",
			left, c.Poll.Overlap)
	}
	if e.Checked > 0 {
		fmt.Fprintf(stdout, "equal: %.1f%% (95%% interval %.1f%% to %.1f%%)\n", 100*e.Share, 100*e.Low, 100*e.High)
	}
	switch {
	case e.Checked == e.Equal:
	case *repair:
		fmt.Fprintf(stdout, "repairs queued: %d; %s applies them\n", repaired, applier(cfg))
	default:
		fmt.Fprintln(stdout, "nothing repaired (--dry-run): run without it to repair")
	}
	if err != nil {
		return fmt.Errorf("connection %s: %w", id, err)
	}
	return nil
}

// verifiedConnection is the connection --connection names, or the only configured one.
func verifiedConnection(cfg *config.Config, configPath, only string) (string, error) {
	if only != "" {
		return only, knownConnection(cfg, configPath, only)
	}
	if len(cfg.Connections) == 1 {
		return cfg.Connections[0].ID, nil
	}
	return "", knownConnection(cfg, configPath, "")
}

// setHalo gives connection id of cfg its Halo API settings.
func setHalo(cfg *config.Config, id string, h config.Halo) {
	for i := range cfg.Connections {
		if cfg.Connections[i].ID == id {
			cfg.Connections[i].Halo = h
		}
	}
}

// demoTenantOf serves, in this process, the simulated tenant serve --demo keeps for the
// connection in the data directory.
func demoTenantOf(dataDir, id string) (*halosim.Tenant, error) {
	kept, err := halosim.LoadSnapshot(demoFile(dataDir, id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("connection %s has no halo: settings, and %s holds no serve --demo tenant: verification reads Halo's API, so configure the connection's halo: (or pass the --data of serve --demo)", id, dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("serve --demo's tenant of connection %s: %w", id, err)
	}
	t := halosim.New(kept.Options())
	if err := t.Restore(kept); err != nil {
		t.Close()
		return nil, fmt.Errorf("serve --demo's tenant of connection %s: %w", id, err)
	}
	return t, nil
}

// repairQueue is the changes queue repairs go to: the embedded one, or with a DynamoDB
// store the SQS queue; none is needed with repair off.
func repairQueue(ctx context.Context, cfg *config.Config, db *sqlite.DB, queueURL string, repair bool) (poller.Sender, error) {
	if !repair {
		return refusingQueue{}, nil
	}
	if db != nil {
		changes, _ := localserver.Queues(db, cfg.Queue)
		return changes, nil
	}
	url, region := queueURL, ""
	if cfg.Queue.SQS != nil {
		region = cfg.Queue.SQS.Region
		if url == "" {
			url = cfg.Queue.SQS.URL
		}
	}
	if url == "" {
		return nil, fmt.Errorf("repairs go through the changes queue: pass --queue-url (stack output ChangesQueueUrl), set queue.sqs.url, or pass --dry-run")
	}
	var opts []func(*awsconfig.LoadOptions) error
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	aws, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	return sqsqueue.Open(aws, url), nil
}

// refusingQueue is the queue of a dry run, which enqueues nothing.
type refusingQueue struct{}

func (refusingQueue) Send(context.Context, []message.Message) error {
	return errors.New("a dry run enqueues nothing")
}

// applier says who applies the queued repairs.
func applier(cfg *config.Config) string {
	if cfg.Store.Driver == "dynamodb" {
		return "the worker function"
	}
	return "halosync serve's worker (when serve runs on this --data)"
}

// progressLines prints the pass's progress about every tenth, the first time with an
// estimate of how long the reads take at the poller's share of limit requests per window,
// perRequest objects a request (the first limit requests go at once).
func progressLines(w io.Writer, limit int, window time.Duration, perRequest int) func(done, planned int) {
	next, started := 0, time.Now()
	return func(done, planned int) {
		if done == 1 {
			requests := (planned + perRequest - 1) / perRequest
			est := time.Duration(float64(max(requests-limit, 0)) / float64(limit) * float64(window))
			fmt.Fprintf(w, "reading about %d objects in about %d requests at the poller's share (%d per %s): at least %s\n",
				planned, requests, limit, window, est.Round(time.Second))
		}
		if done < next && done != planned {
			return
		}
		next = done + max(planned/10, 1)
		fmt.Fprintf(w, "  %d of %d read (%s)\n", done, planned, time.Since(started).Round(time.Second))
	}
}

// printFinding prints one difference, field by field, and whether it was repaired.
func printFinding(w io.Writer, f poller.Finding, repair bool) {
	what := "not repaired (--dry-run)"
	switch {
	case f.Repaired:
		what = "repair queued"
	case repair:
		what = "not repaired"
	}
	name := fmt.Sprintf("%s %s", f.Kind, f.ID)
	if f.ParentID != "" {
		name += " of ticket " + f.ParentID
	}
	v := f.Verdict
	fmt.Fprintf(w, "%s: %s, %s\n", name, describeCause(v), what)
	for _, d := range v.Fields {
		copyValue := "absent"
		if d.InCopy {
			copyValue = fmt.Sprintf("%v", d.Copy)
		}
		fmt.Fprintf(w, "    %s: copy %s, Halo %v\n", d.Name, copyValue, d.Halo)
	}
}

func describeCause(v verify.Verdict) string {
	switch v.Cause {
	case verify.Missing:
		return "missing from the copy"
	case verify.Extra:
		return "in the copy, not in Halo (deleted there)"
	case verify.Stale:
		return fmt.Sprintf("stale (copy's version %s, Halo's %s)", versionTime(v.CopyVersion), versionTime(v.HaloVersion))
	case verify.Ahead:
		return fmt.Sprintf("copy's version ahead of Halo's marker (%s, Halo's %s)", versionTime(v.CopyVersion), versionTime(v.HaloVersion))
	case verify.Fields:
		return "fields differ at the same version"
	}
	return string(v.Cause)
}

func versionTime(v int64) string { return time.Unix(0, v).UTC().Format(time.RFC3339) }

// byCause lists the differences by cause, in report order: " (stale 2, fields 1)".
func byCause(m map[verify.Cause]int) string {
	var parts []string
	for _, c := range verify.Causes {
		if n := m[c]; n > 0 && c != verify.Equal {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
