package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"go.yaml.in/yaml/v3"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/secrets"
	"github.com/halosync/halosync/internal/webhooks"
)

const webhooksUsage = `Usage: halosync webhooks COMMAND --config FILE [--connection C] [flags]

Keeps each connection's webhook in Halo (connections with webhook.manage; docs/WEBHOOKS.md):
  apply   [--dry-run] [--no-probe]   make Halo's webhook match the configuration
  status  [--since 24h] [--json]     the webhook, its drift, and its recent deliveries
  test    [--wait 30s]               have Halo send a test delivery (or send a sample)
  replay  --since T [--until T] [--dry-run]
                                     send failed deliveries from Halo's log again
  remove  --connection C [--dry-run] delete our webhook and its subscriptions
  events  --connection C             every webhook's subscriptions (to learn eventnos)
  secret                             print a new strong secret, once
halosync webhooks COMMAND --help lists a command's flags with an example.

Example:
  halosync webhooks apply --config halosync.yaml --dry-run
`

// webhooksCmd runs `halosync webhooks ...`.
func webhooksCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, webhooksUsage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "apply":
		return webhooksApply(ctx, args[1:], stdout, stderr)
	case "status":
		return webhooksStatus(ctx, args[1:], stdout, stderr)
	case "test":
		return webhooksTest(ctx, args[1:], stdout, stderr)
	case "replay":
		return webhooksReplay(ctx, args[1:], stdout, stderr)
	case "remove":
		return webhooksRemove(ctx, args[1:], stdout, stderr)
	case "events":
		return webhooksEvents(ctx, args[1:], stdout, stderr)
	case "secret":
		if len(args) == 2 && (args[1] == "-h" || args[1] == "--help") {
			fmt.Fprint(stdout, "Usage: halosync webhooks secret\n\nPrints a new strong secret, once (for webhook.auth or webhook.manage).\n\nExample:\n  halosync webhooks secret\n")
			return nil
		}
		if len(args) > 1 {
			return fmt.Errorf("webhooks secret takes no arguments")
		}
		s, err := webhooks.NewSecret()
		if err != nil {
			return err
		}
		// The one display of a secret, asked for by name.
		fmt.Fprintln(stdout, s)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, webhooksUsage)
		return nil
	default:
		fmt.Fprint(stderr, webhooksUsage)
		return fmt.Errorf("unknown webhooks command %q", args[0])
	}
}

// hookFlags are the flags every webhooks command takes.
type hookFlags struct {
	name       string
	stdout     io.Writer // where --help prints
	fs         *flag.FlagSet
	configPath *string
	connection *string
}

// webhooksHelp is each webhooks command's synopsis and example, for its --help.
var webhooksHelp = map[string][2]string{
	"apply": {"halosync webhooks apply --config FILE [--connection C] [--dry-run] [--no-probe]",
		"  halosync webhooks apply --config halosync.yaml --dry-run   # the plan, nothing changed\n  halosync webhooks apply --config halosync.yaml\n"},
	"status": {"halosync webhooks status --config FILE [--connection C] [--since 24h] [--json]",
		"  halosync webhooks status --config halosync.yaml --since 6h\n"},
	"test": {"halosync webhooks test --config FILE [--connection C] [--wait 30s]",
		"  halosync webhooks test --config halosync.yaml --connection acme\n"},
	"replay": {"halosync webhooks replay --config FILE --since T [--until T] [--connection C] [--dry-run]",
		"  halosync webhooks replay --config halosync.yaml --since 6h --dry-run   # count first\n  halosync webhooks replay --config halosync.yaml --since 2024-05-01T08:00:00Z\n"},
	"remove": {"halosync webhooks remove --config FILE --connection C [--dry-run]",
		"  halosync webhooks remove --config halosync.yaml --connection acme --dry-run\n"},
	"events": {"halosync webhooks events --config FILE --connection C",
		"  halosync webhooks events --config halosync.yaml --connection acme\n"},
}

func newHookFlags(name string, stdout io.Writer) hookFlags {
	fs := flag.NewFlagSet("webhooks "+name, flag.ContinueOnError)
	return hookFlags{
		name:       name,
		stdout:     stdout,
		fs:         fs,
		configPath: fs.String("config", "", "configuration file (required)"),
		connection: fs.String("connection", "", "the connection (default: every connection with webhook.manage)"),
	}
}

func (h hookFlags) parse(args []string) error {
	help := webhooksHelp[h.name]
	if err := parseFlags(h.fs, args, h.stdout, help[0], help[1]); err != nil {
		return err
	}
	if h.fs.NArg() > 0 {
		return fmt.Errorf("%s takes flags only; unexpected %q", h.fs.Name(), h.fs.Args())
	}
	if *h.configPath == "" {
		return fmt.Errorf("%s needs --config FILE (the connections' halo: and webhook.manage settings)", h.fs.Name())
	}
	return nil
}

// managed is one webhook a connection manages (its primary, or its backup), ready to use.
type managed struct {
	conn   config.Connection
	spec   webhooks.Spec
	mgr    *webhooks.Manager
	secret webhooks.SecretAction
	ref    string // where the secret is kept (a reference names a place, not a value)
}

// loadManaged reads the configuration and prepares the selected managed connections.
// With generate (apply without --dry-run), a managed secret whose file or Secrets
// Manager key is still empty is generated and stored there first, so that the
// configuration, which reads the same reference, accepts it; otherwise such a secret
// stands in as a throwaway value, never stored.
func loadManaged(ctx context.Context, path, only string, generate bool) ([]managed, error) {
	cfg, actions, refs, err := loadHookConfig(ctx, path, only, generate)
	if err != nil {
		return nil, err
	}
	var out []managed
	for _, c := range cfg.Connections {
		if only != "" && c.ID != only {
			continue
		}
		if c.Webhook.Manage == nil {
			if only != "" {
				return nil, fmt.Errorf("connection %s: %w", c.ID, webhooks.ErrNotManaged)
			}
			continue
		}
		specs, err := webhooks.SpecsFromConfig(c)
		if err != nil {
			return nil, err
		}
		client, err := haloapi.FromConfig(c.Halo, nil)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", c.ID, err)
		}
		// One entry per webhook: the primary, then the backup; they share the client.
		for _, spec := range specs {
			out = append(out, managed{conn: c, spec: spec, mgr: &webhooks.Manager{API: client}, secret: actions[c.ID], ref: refs[c.ID]})
		}
	}
	if len(out) == 0 {
		if only != "" {
			return nil, fmt.Errorf("no connection %q in %s", only, path)
		}
		return nil, fmt.Errorf("no connection in %s has webhook.manage: nothing to manage", path)
	}
	return out, nil
}

// loadHookConfig loads the configuration, first making sure each selected managed
// connection's secret has a value (see loadManaged); it returns what was done about each
// secret and where each is kept.
func loadHookConfig(ctx context.Context, path, only string, generate bool) (*config.Config, map[string]webhooks.SecretAction, map[string]string, error) {
	raw, err := config.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	var unresolved config.Config
	_ = yaml.Unmarshal(raw, &unresolved) // config.Load reports a broken document properly
	store := webhooks.LocalSecrets{Next: lazySecretStore{}}
	actions := map[string]webhooks.SecretAction{}
	refs := map[string]string{}
	stand := placeholderResolver{values: map[string]string{}, next: config.LocalResolver{Next: lazySecrets{}}}
	for _, c := range unresolved.Connections {
		if c.Webhook.Manage == nil || (only != "" && c.ID != only) {
			continue
		}
		ref, ok := webhooks.ManagedSecretRef(c)
		if !ok {
			continue // config.Load says what is wrong
		}
		a, err := webhooks.EnsureSecret(ctx, store, ref, !generate)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("connection %s: %w", c.ID, err)
		}
		actions[c.ID], refs[c.ID] = a, ref
		if a == webhooks.SecretWouldGenerate {
			if stand.values[ref], err = webhooks.NewSecret(); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	cfg, err := config.Load(ctx, path, stand)
	if err != nil {
		return nil, nil, nil, err
	}
	if only != "" {
		if err := knownConnection(cfg, path, only); err != nil {
			return nil, nil, nil, err
		}
	}
	return cfg, actions, refs, nil
}

// placeholderResolver answers the references it holds and passes the rest on.
type placeholderResolver struct {
	values map[string]string
	next   config.Resolver
}

func (p placeholderResolver) Resolve(ctx context.Context, ref string) (string, error) {
	if v, ok := p.values[ref]; ok {
		return v, nil
	}
	return p.next.Resolve(ctx, ref)
}

// lazySecretStore writes secretsmanager: references with the default AWS configuration,
// loaded only when a configuration uses one.
type lazySecretStore struct{}

func (lazySecretStore) store(ctx context.Context) (*secrets.Store, error) {
	aws, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	return secrets.NewStore(secretsmanager.NewFromConfig(aws)), nil
}

func (l lazySecretStore) Lookup(ctx context.Context, ref string) (string, bool, error) {
	s, err := l.store(ctx)
	if err != nil {
		return "", false, err
	}
	return s.Lookup(ctx, ref)
}

func (l lazySecretStore) Store(ctx context.Context, ref, value string) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.Store(ctx, ref, value)
}

// each runs fn for every connection, reporting a failure on stderr and going on; it
// returns an error naming how many failed.
func each(ms []managed, stderr io.Writer, fn func(m managed) error) error {
	failed := 0
	for _, m := range ms {
		if err := fn(m); err != nil {
			failed++
			msg := err.Error()
			if prefix := "connection " + m.conn.ID + ": "; !strings.HasPrefix(msg, prefix) {
				msg = prefix + msg
			}
			if m.spec.Endpoint == change.EndpointBackup {
				msg = "backup webhook: " + msg
			}
			fmt.Fprintln(stderr, msg)
			switch {
			case !errors.Is(err, haloapi.ErrForbidden):
			case errors.Is(err, webhooks.ErrPartial):
				fmt.Fprintf(stderr, "  (part of the change was made; grant the rights above and run apply again to finish it)\n")
			case errors.Is(err, webhooks.ErrLeftBehind):
				fmt.Fprintf(stderr, "  (grant the rights above, delete the webhook named above in Halo, and run the command again)\n")
			default:
				fmt.Fprintf(stderr, "  (nothing was changed; grant the rights above and run the command again)\n")
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d webhooks failed", failed, len(ms))
	}
	return nil
}

func webhooksApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	h := newHookFlags("apply", stdout)
	dryRun := h.fs.Bool("dry-run", false, "print the plan, change nothing")
	noProbe := h.fs.Bool("no-probe", false, "do not check that our endpoint accepts the secret before Halo is given it")
	if err := h.parse(args); err != nil {
		return err
	}
	ms, err := loadManaged(ctx, *h.configPath, *h.connection, !*dryRun)
	if err != nil {
		return err
	}
	return each(ms, stderr, func(m managed) error {
		if !*noProbe {
			m.mgr.Probe = webhooks.ProbeSpec(nil)
		}
		p, err := m.mgr.Plan(ctx, m.spec)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "connection %s: webhook %q\n", m.conn.ID, m.spec.Name)
		secret := m.secret
		if m.spec.Endpoint == change.EndpointBackup {
			secret = webhooks.SecretPresent // the primary's lines said it: one secret for both
		}
		switch secret {
		case webhooks.SecretGenerated:
			fmt.Fprintf(stdout, "  secret: a new one was generated and stored at %s\n", m.ref)
		case webhooks.SecretWouldGenerate:
			fmt.Fprintf(stdout, "  secret: a new one would be generated and stored at %s\n", m.ref)
		}
		for _, l := range p.Lines() {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
		switch {
		case *dryRun:
			fmt.Fprintln(stdout, "  dry run: nothing changed")
			return nil
		case !p.Changes():
			return nil
		}
		id, err := m.mgr.Apply(ctx, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  applied: webhook %s\n", id)
		return nil
	})
}

// statusRow is one connection's status, or why it could not be read.
type statusRow struct {
	webhooks.Status
	Error string `json:"error,omitempty"`
}

func webhooksStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	h := newHookFlags("status", stdout)
	sinceFlag := h.fs.String("since", "24h", "deliveries since: a duration back from now (24h) or a time (RFC 3339)")
	asJSON := h.fs.Bool("json", false, "print JSON")
	if err := h.parse(args); err != nil {
		return err
	}
	since, err := parseSince(*sinceFlag, time.Now())
	if err != nil {
		return err
	}
	ms, err := loadManaged(ctx, *h.configPath, *h.connection, false)
	if err != nil {
		return err
	}
	rows := make([]statusRow, 0, len(ms))
	bad := 0
	for _, m := range ms {
		st, err := m.mgr.Status(ctx, m.spec, since)
		row := statusRow{Status: st}
		if err != nil {
			row.Error = err.Error()
		}
		if err != nil || !st.Healthy || (st.Deliveries != nil && st.Deliveries.Failed > 0) {
			bad++
		}
		rows = append(rows, row)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else if err := printStatus(stdout, rows, since); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d webhooks need attention", bad, len(rows))
	}
	return nil
}

func statuses(rows []statusRow) []webhooks.Status {
	out := make([]webhooks.Status, len(rows))
	for i, r := range rows {
		out[i] = r.Status
	}
	return out
}

func printStatus(w io.Writer, rows []statusRow, since time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "CONNECTION\tENDPOINT\tWEBHOOK\tSTATE\tURL\tAUTH\tEVENTS\tOK/FAILED SINCE %s\tLAST SUCCESS\tLAST ERROR\n", since.UTC().Format("2006-01-02 15:04"))
	ok := func(b bool) string {
		if b {
			return "ok"
		}
		return "DIFFERS"
	}
	for _, r := range rows {
		switch {
		case r.Error != "":
			fmt.Fprintf(tw, "%s\t%s\t-\tERROR\t-\t-\t-\t-\t-\t-\n", r.Connection, r.Endpoint)
			continue
		case !r.Exists:
			fmt.Fprintf(tw, "%s\t%s\t-\tMISSING\t-\t-\t-\t-\t-\t-\n", r.Connection, r.Endpoint)
			continue
		}
		state := "active"
		switch {
		case !r.Active:
			state = "INACTIVE"
		case r.Disabled:
			state = "DISABLED"
		case r.Failing:
			state = "FAILING"
		}
		counts, lastOK, lastErr := "-", "-", "-"
		if d := r.Deliveries; d != nil {
			counts = fmt.Sprintf("%d/%d", d.Succeeded, d.Failed)
			if d.Truncated {
				counts += "+"
			}
			if d.LastSuccess != nil {
				lastOK = d.LastSuccess.UTC().Format(time.RFC3339)
			}
			if d.LastFailure != nil {
				lastErr = d.LastFailure.UTC().Format(time.RFC3339) + " " + d.LastError
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Connection, r.Endpoint, r.WebhookID, state, ok(r.URLOK), ok(r.AuthOK), ok(r.EventsOK), counts, lastOK, lastErr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		who := r.Connection
		if r.Endpoint == change.EndpointBackup {
			who += " (backup)"
		}
		if r.Error != "" {
			fmt.Fprintf(w, "%s: error: %s\n", who, r.Error)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "%s: %s\n", who, p)
		}
	}
	if failing := webhooks.FailingEndpoints(statuses(rows)); len(failing) > 0 {
		fmt.Fprintf(w, "failing endpoints: %s\n", strings.Join(failing, "; "))
	}
	return nil
}

// parseSince reads a duration back from now (24h) or a time (RFC 3339, or a date).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (24h) nor a time (2026-09-25T06:00:00Z)", s)
}

func webhooksTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	h := newHookFlags("test", stdout)
	wait := h.fs.Duration("wait", 30*time.Second, "how long to watch Halo's log for its test delivery")
	if err := h.parse(args); err != nil {
		return err
	}
	ms, err := loadManaged(ctx, *h.configPath, *h.connection, false)
	if err != nil {
		return err
	}
	return each(ms, stderr, func(m managed) error {
		r, err := m.mgr.Test(ctx, m.spec, webhooks.EndpointFor(m.spec), webhooks.TestOptions{Wait: *wait})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "connection %s: webhook %s\n  Halo's test: %s\n", m.conn.ID, r.WebhookID, r.HaloTest)
		via := "Halo's test delivery"
		if r.Via == "direct" {
			via = "a signed sample sent from here to " + m.spec.URL
		}
		switch {
		case r.Accepted:
			fmt.Fprintf(stdout, "  %s arrived and was accepted (HTTP %d)\n", via, r.Status)
			return nil
		case r.Arrived:
			fmt.Fprintf(stdout, "  %s arrived but was refused: %s\n", via, r.Detail)
		default:
			fmt.Fprintf(stdout, "  %s did not arrive: %s\n", via, r.Detail)
		}
		return fmt.Errorf("the test delivery was not accepted")
	})
}

func webhooksReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	h := newHookFlags("replay", stdout)
	sinceFlag := h.fs.String("since", "", "replay failed deliveries from this time (RFC 3339) or this far back (6h); required")
	untilFlag := h.fs.String("until", "", "up to this time (default now)")
	dryRun := h.fs.Bool("dry-run", false, "count what would be sent, send nothing")
	if err := h.parse(args); err != nil {
		return err
	}
	if *sinceFlag == "" {
		return fmt.Errorf("webhooks replay needs --since (a time, or a duration back from now)")
	}
	now := time.Now()
	since, err := parseSince(*sinceFlag, now)
	if err != nil {
		return err
	}
	var until time.Time
	if *untilFlag != "" {
		if until, err = parseSince(*untilFlag, now); err != nil {
			return err
		}
	}
	ms, err := loadManaged(ctx, *h.configPath, *h.connection, false)
	if err != nil {
		return err
	}
	return each(ms, stderr, func(m managed) error {
		r, err := m.mgr.Replay(ctx, m.spec, webhooks.EndpointFor(m.spec), webhooks.ReplayOptions{Since: since, Until: until, DryRun: *dryRun})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "connection %s: %d deliveries in Halo's log since %s, %d failed\n", m.conn.ID, r.Read, since.UTC().Format(time.RFC3339), r.Failed)
		if r.Truncated {
			fmt.Fprintf(stdout, "  (the log holds more than was read: narrow the window with --since/--until)\n")
		}
		if r.NoBody > 0 {
			fmt.Fprintf(stdout, "  %d failed without a body (lightweight logs): the poller recovers those changes\n", r.NoBody)
		}
		if r.Delivered+r.Repeats > 0 {
			fmt.Fprintf(stdout, "  %d already delivered later or repeated\n", r.Delivered+r.Repeats)
		}
		if *dryRun {
			fmt.Fprintf(stdout, "  dry run: %d would be sent again\n", r.ToSend())
			return nil
		}
		fmt.Fprintf(stdout, "  sent again: %d, accepted %d, refused %d\n", r.Sent, r.Accepted, r.Refused)
		for _, e := range r.Errors {
			fmt.Fprintf(stdout, "  %s\n", e)
		}
		if r.Refused > 0 {
			return fmt.Errorf("%d replayed deliveries were refused", r.Refused)
		}
		return nil
	})
}

func webhooksRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	h := newHookFlags("remove", stdout)
	dryRun := h.fs.Bool("dry-run", false, "print what would be deleted, delete nothing")
	if err := h.parse(args); err != nil {
		return err
	}
	if *h.connection == "" {
		return fmt.Errorf("webhooks remove needs --connection C (it deletes that connection's webhook from Halo)")
	}
	ms, err := loadManaged(ctx, *h.configPath, *h.connection, false)
	if err != nil {
		return err
	}
	return each(ms, stderr, func(m managed) error {
		r, err := m.mgr.Remove(ctx, m.spec, *dryRun)
		if err != nil {
			return err
		}
		verb := "deleted"
		if *dryRun {
			verb = "would delete"
		}
		if len(r.Webhooks) == 0 {
			fmt.Fprintf(stdout, "connection %s: no webhook named %q in Halo: nothing to remove\n", m.conn.ID, r.Name)
			return nil
		}
		fmt.Fprintf(stdout, "connection %s: %s webhook %q (%s) and its %d subscriptions\n", m.conn.ID, verb, r.Name, strings.Join(r.Webhooks, ", "), r.Notifications)
		return nil
	})
}

// webhooksEvents lists every outbound webhook's subscriptions: the way to learn Halo's
// event numbers is to make a webhook in Halo's form and read them here.
func webhooksEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	h := newHookFlags("events", stdout)
	if err := h.parse(args); err != nil {
		return err
	}
	if *h.connection == "" {
		return fmt.Errorf("webhooks events needs --connection C")
	}
	cfg, _, _, err := loadHookConfig(ctx, *h.configPath, *h.connection, false)
	if err != nil {
		return err
	}
	conn, ok := cfg.Connection(*h.connection)
	if !ok {
		return fmt.Errorf("no connection %q in %s", *h.connection, *h.configPath)
	}
	client, err := haloapi.FromConfig(conn.Halo, nil)
	if err != nil {
		return fmt.Errorf("connection %s: %w", conn.ID, err)
	}
	all, err := client.Webhooks(ctx)
	if err != nil {
		return fmt.Errorf("connection %s: %w", conn.ID, err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WEBHOOK\tNAME\tEVENTNO\tNOTIFICATION")
	for _, w := range all {
		subs, err := client.Notifications(ctx, w.ID)
		if err != nil {
			return fmt.Errorf("connection %s: %w", conn.ID, err)
		}
		if len(subs) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t(none)\n", w.ID, w.Name)
		}
		for _, n := range subs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", w.ID, w.Name, n.EventNo, n.Name)
		}
	}
	return tw.Flush()
}
