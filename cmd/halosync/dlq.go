package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/sqsqueue"
)

const dlqUsage = `Usage: halosync dlq COMMAND [ID...] [flags]

The dead-letter queue: the changes the worker can never apply, each with its reason
(README.md, "Operations: outages and the dead-letter queue"). The embedded queue of
--data by default; a deployed stack's SQS queues with --dlq-url and --queue-url (or
queue.sqs in --config).
  list     [--reason R] [--json] [--max 1000]   each message: id, reason, connection, kind, receives, age, change
  show     ID [--json]                          one message in full
  redrive  [ID...] [--reason R]                 move them back to the changes queue (all when none is named)
  purge    [ID...] [--reason R] [--yes]         delete them for good, once confirmed
list, redrive and purge also pick by --connection C and --kind KIND (singular or plural).
Every command takes --config FILE, --data DIR, --dlq-url URL, --queue-url URL, --region R;
halosync dlq COMMAND --help lists them with an example.

Example:
  halosync dlq list --reason unknown_event
`

// unknownReason stands for the reason of a message without the failure_reason attribute:
// the queue's redrive policy moved it after its receives (the worker could not).
const unknownReason = "unknown (moved by the redrive policy; see the worker's log for its message id)"

// maxScan bounds how many dead letters one command reads.
const maxScan = 100000

// dlqCmd runs `halosync dlq ...`.
func dlqCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"list": dlqList, "show": dlqShow, "redrive": dlqRedrive, "purge": dlqPurge,
	}
	if len(args) > 0 {
		if c, ok := cmds[args[0]]; ok {
			return c(ctx, args[1:], stdout, stderr)
		}
		if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			fmt.Fprint(stdout, dlqUsage)
			return nil
		}
	}
	fmt.Fprint(stderr, dlqUsage)
	if len(args) == 0 {
		return flag.ErrHelp
	}
	return fmt.Errorf("unknown dlq command %q", args[0])
}

// dlqFlags are the flags every dlq command takes.
type dlqFlags struct {
	fs         *flag.FlagSet
	configPath *string
	dataDir    *string
	dlqURL     *string
	queueURL   *string
	region     *string
	connection *string
	kind       *string
}

func newDLQFlags(name string) dlqFlags {
	fs := flag.NewFlagSet("dlq "+name, flag.ContinueOnError)
	return dlqFlags{
		fs:         fs,
		configPath: fs.String("config", "", "configuration file (its store.path, queue settings and queue.sqs)"),
		dataDir:    fs.String("data", ".halosync", "data directory of the embedded queue (halosync serve's --data)"),
		dlqURL:     fs.String("dlq-url", "", "the SQS dead-letter queue (stack output DeadLetterQueueUrl); default queue.sqs.dead_letter_url, else the embedded queue"),
		queueURL:   fs.String("queue-url", "", "the SQS changes queue redrive moves to (stack output ChangesQueueUrl); default queue.sqs.url"),
		region:     fs.String("region", "", "the SQS queues' region; default queue.sqs.region, else the AWS profile's"),
		connection: fs.String("connection", "", "only messages of this connection"),
		kind:       fs.String("kind", "", "only messages of this kind: ticket, action, client, contact, asset (singular or plural)"),
	}
}

// parse parses flags given before, between or after the arguments, and returns the
// arguments.
func (f dlqFlags) parse(args []string, stdout io.Writer, synopsis, example string) ([]string, error) {
	var rest []string
	for {
		if err := parseFlags(f.fs, args, stdout, synopsis, example); err != nil {
			return nil, err
		}
		if f.fs.NArg() == 0 {
			return rest, nil
		}
		rest = append(rest, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
}

// deadLetters is the dead-letter queue a command works on, and the changes queue its
// messages go back to.
type deadLetters struct {
	where string // the dead-letter queue, as the output names it
	to    string // the changes queue
	// embedded: the queue of halosync serve's database (else SQS).
	embedded bool
	peek     func(ctx context.Context, limit int) ([]message.Received, error)
	move     func(ctx context.Context, pick func(message.Received) bool, progress func(int)) (int, error)
	purge    func(ctx context.Context, pick func(message.Received) bool, progress func(int)) (int, error)
	close    func()
}

// open opens the dead-letter queue the flags and the configuration name.
func (f dlqFlags) open(ctx context.Context) (*deadLetters, error) {
	cfg, err := commandConfig(ctx, *f.configPath, *f.dataDir)
	if err != nil {
		return nil, err
	}
	// A deployed stack's queues without --config carry any connection's messages.
	if *f.connection != "" && (*f.configPath != "" || *f.dlqURL == "") {
		if err := knownConnection(cfg, *f.configPath, *f.connection); err != nil {
			return nil, err
		}
	}
	sq := config.SQSQueues{}
	if cfg.Queue.SQS != nil {
		sq = *cfg.Queue.SQS
	}
	for _, o := range []struct{ flag, into *string }{{f.dlqURL, &sq.DeadLetterURL}, {f.queueURL, &sq.URL}, {f.region, &sq.Region}} {
		if *o.flag != "" {
			*o.into = *o.flag
		}
	}
	if sq.DeadLetterURL == "" {
		if sq.URL != "" {
			return nil, fmt.Errorf("--queue-url names an SQS changes queue: pass its dead-letter queue too, with --dlq-url (stack output DeadLetterQueueUrl)")
		}
		return openEmbedded(cfg, *f.dataDir)
	}
	return openSQS(ctx, sq)
}

func openEmbedded(cfg *config.Config, dataDir string) (*deadLetters, error) {
	path := dbPath(cfg, dataDir)
	db, err := existingDB(path, ", or --dlq-url for a deployed stack's queue")
	if err != nil {
		return nil, err
	}
	changes, dlq := localserver.Queues(db, cfg.Queue)
	return &deadLetters{
		where:    fmt.Sprintf("the dead-letter queue %s in %s", dlq.Name(), path),
		to:       fmt.Sprintf("the queue %s", changes.Name()),
		embedded: true,
		peek:     dlq.Peek,
		move: func(ctx context.Context, pick func(message.Received) bool, progress func(int)) (int, error) {
			return dlq.MoveTo(ctx, changes, pick, progress)
		},
		purge: dlq.Purge,
		close: func() { db.Close() },
	}, nil
}

func openSQS(ctx context.Context, sq config.SQSQueues) (*deadLetters, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if sq.Region != "" {
		opts = append(opts, awsconfig.WithRegion(sq.Region))
	}
	aws, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	client := sqsqueue.NewClient(aws)
	dlq := sqsqueue.New(client, sq.DeadLetterURL)
	d := &deadLetters{
		where: "the dead-letter queue " + sq.DeadLetterURL,
		to:    sq.URL,
		peek:  dlq.Peek,
		purge: dlq.Purge,
		close: func() {},
	}
	d.move = func(ctx context.Context, pick func(message.Received) bool, progress func(int)) (int, error) {
		if sq.URL == "" {
			return 0, fmt.Errorf("redrive needs the changes queue: pass --queue-url (stack output ChangesQueueUrl) or set queue.sqs.url")
		}
		return dlq.MoveTo(ctx, sqsqueue.New(client, sq.URL), pick, progress)
	}
	return d, nil
}

// deadLetter is one message as list and show print it.
type deadLetter struct {
	ID           string            `json:"id"`
	Reason       string            `json:"reason"`
	Connection   string            `json:"connection,omitempty"`
	Kind         string            `json:"kind,omitempty"`
	ReceiveCount int               `json:"receive_count"`
	SentAt       time.Time         `json:"sent_at"`
	AgeSeconds   int64             `json:"age_seconds"`
	Change       string            `json:"change"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Body         json.RawMessage   `json:"body,omitempty"` // show only
}

func describe(m message.Received, now time.Time) deadLetter {
	return deadLetter{
		ID: m.ID, Reason: reasonOf(m), Connection: m.Attributes[message.AttrConnection], Kind: m.Attributes[message.AttrKind],
		ReceiveCount: m.ReceiveCount, SentAt: m.SentAt.UTC(), AgeSeconds: int64(now.Sub(m.SentAt) / time.Second),
		Change: summary(m.Body), Attributes: m.Attributes,
	}
}

func reasonOf(m message.Received) string {
	if r := m.Attributes[message.AttrFailureReason]; r != "" {
		return r
	}
	return unknownReason
}

// reasonMatches tells whether m has reason r; "unknown" matches a message without one.
func reasonMatches(m message.Received, r string) bool {
	got := m.Attributes[message.AttrFailureReason]
	return r == "" || got == r || (got == "" && r == "unknown")
}

// summary tells what change a message carries, read leniently: a dead letter may be
// anything.
func summary(body []byte) string {
	var e message.Envelope
	if err := json.Unmarshal(body, &e); err != nil || e.Change.Connection == "" && e.Change.Kind == "" {
		return "(not a change message)"
	}
	c := e.Change
	if e.Unknown {
		return fmt.Sprintf("event %q of no known kind", c.Event)
	}
	s := fmt.Sprintf("%s %s %s", c.Op, c.Kind, c.ID)
	if c.ParentID != "" {
		s += " of ticket " + c.ParentID
	}
	if c.Event != "" {
		s += fmt.Sprintf(" (event %q)", c.Event)
	} else if c.Source != "" {
		s += fmt.Sprintf(" (%s)", c.Source)
	}
	return s
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

const dlqListExample = `  halosync dlq list                                  # the embedded queue of .halosync
  halosync dlq list --reason unknown_event --json
  halosync dlq list --dlq-url https://sqs.eu-west-2.amazonaws.com/123456789012/halosync-ChangesDeadLetterQueue-XXXX
`

func dlqList(ctx context.Context, args []string, stdout, _ io.Writer) error {
	f := newDLQFlags("list")
	reason := f.fs.String("reason", "", "only messages with this failure_reason (unknown: those without one)")
	asJSON := f.fs.Bool("json", false, "print a JSON array")
	limit := f.fs.Int("max", 1000, "print at most this many messages")
	rest, err := f.parse(args, stdout, "halosync dlq list [--reason R] [--json] [--max 1000] [flags]", dlqListExample)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("dlq list takes no arguments; unexpected %q (halosync dlq show ID prints one message)", rest)
	}
	d, msgs, err := f.chosen(ctx, nil, *reason)
	if err != nil {
		return err
	}
	defer d.close()
	now := time.Now()
	out := []deadLetter{}
	for _, m := range msgs[:min(len(msgs), max(*limit, 0))] {
		out = append(out, describe(m, now))
	}
	if *asJSON {
		return writeJSON(stdout, out)
	}
	if len(out) == 0 {
		what := ""
		if *reason != "" {
			what = " with reason " + *reason
		}
		fmt.Fprintf(stdout, "no messages%s in %s\n", what, d.where)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREASON\tCONNECTION\tKIND\tRECEIVES\tAGE\tCHANGE")
	for _, m := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.Reason, dash(m.Connection), dash(m.Kind), m.ReceiveCount,
			age(now.Sub(m.SentAt)), m.Change)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%d message(s) in %s", len(out), d.where)
	if len(out) == *limit {
		fmt.Fprintf(stdout, " (the first %d; --max shows more)", *limit)
	}
	fmt.Fprintln(stdout, "\nhalosync dlq show ID prints one in full; after fixing the cause, halosync dlq redrive moves them back.")
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

const dlqShowExample = `  halosync dlq show 0f1e2d3c-4b5a-4697-8877-665544332211
  halosync dlq show --json 0f1e2d3c-4b5a-4697-8877-665544332211
`

func dlqShow(ctx context.Context, args []string, stdout, _ io.Writer) error {
	f := newDLQFlags("show")
	asJSON := f.fs.Bool("json", false, "print a JSON object")
	rest, err := f.parse(args, stdout, "halosync dlq show ID [--json] [flags]", dlqShowExample)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return fmt.Errorf("dlq show needs one message ID (halosync dlq list shows them)")
	}
	d, msgs, err := f.chosen(ctx, rest, "")
	if err != nil {
		return err
	}
	defer d.close()
	m := msgs[0]
	dl := describe(m, time.Now())
	if *asJSON {
		if json.Valid(m.Body) {
			dl.Body = m.Body
		} else {
			dl.Body, _ = json.Marshal(string(m.Body))
		}
		return writeJSON(stdout, dl)
	}
	fmt.Fprintf(stdout, "id:         %s\nreason:     %s\nchange:     %s\nsent:       %s (%s ago)\nreceives:   %d\nattributes:\n",
		dl.ID, dl.Reason, dl.Change, dl.SentAt.Format(time.RFC3339), age(time.Since(dl.SentAt)), dl.ReceiveCount)
	keys := make([]string, 0, len(m.Attributes))
	for k := range m.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(stdout, "  %s: %s\n", k, m.Attributes[k])
	}
	fmt.Fprintln(stdout, "body:")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, m.Body, "", "  "); err != nil {
		fmt.Fprintf(stdout, "%s\n", m.Body) // not JSON: as it is
		return nil
	}
	fmt.Fprintln(stdout, pretty.String())
	return nil
}

// chosen opens the dead-letter queue and reads the messages chosen (see chosen), of the
// --connection and --kind when set.
func (f dlqFlags) chosen(ctx context.Context, ids []string, reason string) (*deadLetters, []message.Received, error) {
	var kind change.Kind
	if *f.kind != "" {
		var err error
		if kind, err = change.ParseKind(*f.kind); err != nil {
			return nil, nil, err
		}
	}
	d, err := f.open(ctx)
	if err != nil {
		return nil, nil, err
	}
	picked, err := chosen(ctx, d, ids, func(m message.Received) bool {
		return reasonMatches(m, reason) && (*f.connection == "" || m.Attributes[message.AttrConnection] == *f.connection) &&
			(kind == "" || m.Attributes[message.AttrKind] == string(kind))
	})
	if err != nil {
		d.close()
		return nil, nil, err
	}
	return d, picked, nil
}

// chosen reads the dead letters and picks those the arguments name (all when none is
// named) that match. A named id that is not there is an error: nothing is done.
func chosen(ctx context.Context, d *deadLetters, ids []string, match func(message.Received) bool) ([]message.Received, error) {
	msgs, err := d.peek(ctx, maxScan)
	if err != nil {
		return nil, err
	}
	var out []message.Received
	found := map[string]bool{}
	for _, m := range msgs {
		if len(ids) > 0 && !slices.Contains(ids, m.ID) {
			continue
		}
		found[m.ID] = true
		if match(m) {
			out = append(out, m)
		}
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no message %s in %s, so nothing was done: halosync dlq list shows the ids there", strings.Join(missing, ", "), d.where)
	}
	return out, nil
}

// byReason counts messages by reason, as "unknown_event 2, invalid 1".
func byReason(msgs []message.Received) string {
	n := map[string]int{}
	for _, m := range msgs {
		r := m.Attributes[message.AttrFailureReason]
		if r == "" {
			r = "unknown"
		}
		n[r]++
	}
	var parts []string
	for r, c := range n {
		parts = append(parts, fmt.Sprintf("%s %d", r, c))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// idSet picks the messages among msgs.
func idSet(msgs []message.Received) func(message.Received) bool {
	ids := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		ids[m.ID] = true
	}
	return func(m message.Received) bool { return ids[m.ID] }
}

// progressTo reports a running count of total on w, "verb 10/57".
func progressTo(w io.Writer, verb string, total int) func(int) {
	return func(n int) { fmt.Fprintf(w, "%s %d/%d\n", verb, n, total) }
}

const dlqRedriveExample = `  halosync dlq redrive                                # every message, back to the changes queue
  halosync dlq redrive --reason unknown_event         # after mapping the event under the connection's events:
  halosync dlq redrive 0f1e2d3c-4b5a-4697-8877-665544332211 --config halosync.yaml
`

func dlqRedrive(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newDLQFlags("redrive")
	reason := f.fs.String("reason", "", "only messages with this failure_reason (unknown: those without one)")
	ids, err := f.parse(args, stdout, "halosync dlq redrive [ID...] [--reason R] [flags]", dlqRedriveExample)
	if err != nil {
		return err
	}
	d, picked, err := f.chosen(ctx, ids, *reason)
	if err != nil {
		return err
	}
	defer d.close()
	if len(picked) == 0 {
		fmt.Fprintf(stdout, "nothing to redrive in %s\n", d.where)
		return nil
	}
	moved, err := d.move(ctx, idSet(picked), progressTo(stderr, "moved", len(picked)))
	if err != nil {
		return fmt.Errorf("%w; %d moved; halosync dlq list shows what is left, and redrive again moves it", err, moved)
	}
	fmt.Fprintf(stdout, "moved %d message(s) (%s) from %s to %s\n", moved, byReason(picked), d.where, d.to)
	if moved < len(picked) {
		fmt.Fprintf(stdout, "%d were no longer there (moved or deleted meanwhile)\n", len(picked)-moved)
	}
	applier := "the worker function applies them"
	if d.embedded {
		applier = "halosync serve applies them when it runs"
	}
	fmt.Fprintf(stdout, "%s; one that fails again comes back here with its reason (halosync dlq list)\n", applier)
	return nil
}

const dlqPurgeExample = `  halosync dlq purge --reason undecodable            # asks before deleting
  halosync dlq purge 0f1e2d3c-4b5a-4697-8877-665544332211 --yes
`

// The terminal purge asks on; tests replace them.
var (
	confirmIn  io.Reader = os.Stdin
	isTerminal           = func() bool { return terminal(os.Stdin) }
)

func dlqPurge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newDLQFlags("purge")
	reason := f.fs.String("reason", "", "only messages with this failure_reason (unknown: those without one)")
	yes := f.fs.Bool("yes", false, "delete without asking (required when not run in a terminal)")
	ids, err := f.parse(args, stdout, "halosync dlq purge [ID...] [--reason R] [--yes] [flags]", dlqPurgeExample)
	if err != nil {
		return err
	}
	if !*yes && !isTerminal() {
		return fmt.Errorf("dlq purge deletes messages for good and asks first, but is not run in a terminal: pass --yes to delete without asking")
	}
	d, picked, err := f.chosen(ctx, ids, *reason)
	if err != nil {
		return err
	}
	defer d.close()
	if len(picked) == 0 {
		fmt.Fprintf(stdout, "nothing to purge in %s\n", d.where)
		return nil
	}
	if !*yes {
		ok, err := confirm(confirmIn, stderr, fmt.Sprintf("Delete %d message(s) (%s) from %s for good? [y/N] ", len(picked), byReason(picked), d.where))
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(stdout, "nothing deleted")
			return nil
		}
	}
	deleted, err := d.purge(ctx, idSet(picked), progressTo(stderr, "deleted", len(picked)))
	if err != nil {
		return fmt.Errorf("%w; %d deleted; halosync dlq list shows what is left", err, deleted)
	}
	fmt.Fprintf(stdout, "deleted %d message(s) (%s) from %s\n", deleted, byReason(picked), d.where)
	return nil
}

// confirm asks question on w and reads the answer: yes or y.
func confirm(in io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprint(w, question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}
