// Package edgetest holds the edge scenarios the end-to-end tests share: every
// authentication scheme accepting both of its secrets, a secret rotated across restarts
// without losing a delivery, the IP allowlist, gzip bodies, routing headers and the
// throttle of failed authentications (the checks of docs/ARCHITECTURE.md, "Ingest"). It
// is test support, imported only by tests: internal/localserver runs the scenarios through
// `halosync serve`, internal/lambdae2e through the Lambda functions under the runtime
// interface emulator, each implementing Harness.
package edgetest

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/metrics"
)

// Harness runs the pipeline of one test: ingest, the change queue, the worker and the
// copy. A scenario drives it from one goroutine.
type Harness interface {
	// Start runs a pipeline configured by the YAML document config. A later Start in the
	// same test replaces the running pipeline with one on the same queue and copy, as a
	// restart with a changed configuration does, without waiting for the queue to drain;
	// ingest's counters start again from zero.
	Start(t *testing.T, config string)
	// Post sends one delivery to the running pipeline's webhook route and returns the
	// answer.
	Post(t *testing.T, d Delivery) Response
	// Drain waits until every queued change has been handled: the change queue holds
	// nothing, visible or in flight.
	Drain(t *testing.T)
	// Queues reports how many messages the change queue (visible or in flight) and the
	// dead-letter queue hold.
	Queues(t *testing.T) (changes, deadLetters int)
	// Counts reads the running pipeline's counters of the metric name.
	Counts(t *testing.T, name string) Counts
	// Ticket reads a ticket of connection conn from the copy.
	Ticket(t *testing.T, conn string, id int) (change.Object, bool)
	// Attributes returns the message attributes of every message about ticket id of
	// connection conn that the worker was handed.
	Attributes(t *testing.T, conn string, id int) []map[string]string
}

// Delivery is one webhook delivery.
type Delivery struct {
	Conn       string
	PathSecret string // the path-secret scheme's last path segment
	Header     http.Header
	Body       []byte
	// SourceIP is the address ingest must take as the delivery's source; "" leaves the
	// harness's own. API Gateway's sourceIp can be set in the event; the local server's
	// peer is always the loopback, so there it is sent as a forwarded header, which only a
	// configuration trusting the loopback as a proxy believes (TrustLoopback).
	SourceIP string
}

// Response is ingest's answer to a delivery.
type Response struct {
	Status int
	Body   []byte
}

// ErrorCode is the error code of a refusal's JSON body, "" when it has none.
func (r Response) ErrorCode() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error
}

// Counts are counter values by metric name, connection and label.
type Counts map[metrics.Metric]int64

// ---- the configuration ----

// The edge connections' secrets: an old and a new one per scheme, and one nobody set.
const (
	User                        = "halo-edge"
	BasicOld, basicNew          = "basic-secret-old-1", "basic-secret-new-2"
	tokenOld, tokenNew          = "token-old-000000001", "token-new-000000002"
	hmacOld, HMACNew            = "hmac-secret-old-0001", "hmac-secret-new-0002"
	pathOld, PathNew, pathWrong = "path-secret-old-00001", "path-secret-new-00002", "path-secret-nobody-set"
	wrongSecret                 = "a-secret-nobody-set"
)

var (
	whsecOld   = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-old"))
	whsecNew   = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-new"))
	whsecWrong = "whsec_" + base64.StdEncoding.EncodeToString([]byte("standard-webhooks-key-nobody-set"))
)

// Scheme is one connection of the edge configuration, authenticated by one scheme, and
// how a sender signs a delivery for it.
type Scheme struct {
	Conn            string
	Old, New, Wrong string
	// auth is the connection's webhook.auth entry (YAML) accepting secrets.
	auth func(secrets []string) string
	// Sign returns the path secret (path-secret only) and the headers that authenticate
	// body with secret.
	Sign func(secret string, body []byte) (pathSecret string, h http.Header)
}

var stdMsgSeq atomic.Int64

// Schemes are the six ways a delivery authenticates (README, "Authenticating Halo's
// webhooks").
var Schemes = []Scheme{
	{
		Conn: "basic", Old: BasicOld, New: basicNew, Wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: basic\n  username: " + User + "\n  passwords: " + yamlList(s)
		},
		Sign: func(secret string, _ []byte) (string, http.Header) {
			return "", http.Header{"Authorization": {authtest.Basic(User, secret)}}
		},
	},
	{
		Conn: "bearer", Old: tokenOld, New: tokenNew, Wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: header\n  header: Authorization\n  prefix: \"Bearer \"\n  tokens: " + yamlList(s)
		},
		Sign: func(secret string, _ []byte) (string, http.Header) {
			return "", http.Header{"Authorization": {"Bearer " + secret}}
		},
	},
	{
		// Halo's signed body: base64 HMAC-SHA256 in Token.
		Conn: "hmac", Old: hmacOld, New: HMACNew, Wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: hmac\n  header: Token\n  secrets: " + yamlList(s)
		},
		Sign: func(secret string, body []byte) (string, http.Header) {
			return "", http.Header{"Token": {authtest.HMACBase64(secret, body)}}
		},
	},
	{
		Conn: "hmachex", Old: hmacOld, New: HMACNew, Wrong: wrongSecret,
		auth: func(s []string) string {
			return "- scheme: hmac\n  header: X-Signature\n  prefix: \"sha256=\"\n  encoding: hex\n  secrets: " + yamlList(s)
		},
		Sign: func(secret string, body []byte) (string, http.Header) {
			return "", http.Header{"X-Signature": {"sha256=" + authtest.HMACHex(secret, body)}}
		},
	},
	{
		Conn: "stdwh", Old: whsecOld, New: whsecNew, Wrong: whsecWrong,
		auth: func(s []string) string {
			return "- scheme: signed-timestamp\n  secrets: " + yamlList(s)
		},
		Sign: func(secret string, body []byte) (string, http.Header) {
			h := http.Header{}
			for k, v := range authtest.StandardWebhooks(secret, fmt.Sprintf("msg_edge_%d", stdMsgSeq.Add(1)), time.Now(), body) {
				h.Set(k, v)
			}
			return "", h
		},
	},
	{
		Conn: "path", Old: pathOld, New: PathNew, Wrong: pathWrong,
		auth: func(s []string) string {
			return "- scheme: path-secret\n  secrets: " + yamlList(s)
		},
		Sign: func(secret string, _ []byte) (string, http.Header) { return secret, http.Header{} },
	},
}

func yamlList(s []string) string {
	b, err := json.Marshal(s) // a JSON array is a YAML flow sequence
	if err != nil {
		panic(err)
	}
	return string(b)
}

// BothSecrets picks a scheme's old and new secret.
func BothSecrets(sc Scheme) []string { return []string{sc.Old, sc.New} }

// Config is a configuration document holding one connection per scheme, each accepting
// the secrets pick chooses, followed by extraConns (more connections, indented as list
// items of connections:) and extraTop (top-level sections, each starting at column 0).
func Config(pick func(Scheme) []string, extraConns, extraTop string) string {
	var b strings.Builder
	b.WriteString("connections:\n")
	for _, sc := range Schemes {
		fmt.Fprintf(&b, "  - id: %s\n    webhook:\n      auth:\n%s\n", sc.Conn, indent(sc.auth(pick(sc)), 8))
	}
	b.WriteString(extraConns)
	b.WriteString(extraTop)
	return b.String()
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// OfficeConnection is a connection accepting deliveries from 192.0.2.0/24 only,
// authenticated by OfficeAuth.
const OfficeConnection = `  - id: office
    webhook:
      auth:
        - scheme: basic
          username: ` + User + `
          passwords: ["` + BasicOld + `"]
      allow_ips: ["192.0.2.0/24"]
`

// TrustLoopback is the top-level section that has the local server believe the
// forwarded header a loopback peer sends; the Lambda path takes the source from API
// Gateway and ignores it.
const TrustLoopback = "server:\n  trusted_proxies: [\"127.0.0.1/32\"]\n"

// OfficeAuth authenticates a delivery to the office connection (and to the zipped and
// routed ones).
func OfficeAuth() http.Header {
	return http.Header{"Authorization": {authtest.Basic(User, BasicOld)}}
}

// ---- the deliveries ----

// Ticket is a full-snapshot ticket delivery for ticket id, with its own delivery id
// and summary.
func Ticket(id int, summary string) []byte {
	return fmt.Appendf(nil, `{"id":"edge-delivery-%d","event":"ticket updated","object_id":%d,`+
		`"timestamp":"2026-09-25T06:41:08.7895915Z","ticket":{"id":%d,"summary":%q,"client_id":12,`+
		`"status_id":2,"last_update":"2026-09-25T06:41:07.523"}}`, id, id, id, summary)
}

// ticketVersion is the version Ticket's ticket is stored at: its last_update.
var ticketVersion = change.VersionOf(time.Date(2026, 9, 25, 6, 41, 7, 523_000_000, time.UTC))

// Gzip compresses b.
func Gzip(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ---- the assertions ----

// Delivered is a ticket delivery: where its ticket must be stored, or must not be.
type Delivered struct {
	Conn, Summary string
	ID            int
}

// WantAccepted fails the test unless r is a 200 accepting exactly changes changes.
func WantAccepted(t *testing.T, what string, r Response, changes int) {
	t.Helper()
	var ack struct {
		Status  string `json:"status"`
		Changes int    `json:"changes"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &ack) != nil || ack.Status != "accepted" || ack.Changes != changes {
		t.Fatalf("%s: %d %s, want 200 accepted with %d change(s)", what, r.Status, r.Body, changes)
	}
}

// WantRefused fails the test unless r is a refusal with status and error code.
func WantRefused(t *testing.T, what string, r Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: %d %s, want %d %s", what, r.Status, r.Body, status, code)
	}
	if got := r.ErrorCode(); got != code {
		t.Fatalf("%s: error %q in %s, want %q", what, got, r.Body, code)
	}
}

// WantStored checks, once the queue is drained, that every accepted delivery's ticket is
// in the copy as Ticket sent it: its fields, version, client and provenance.
func WantStored(t *testing.T, h Harness, accepted []Delivered) {
	t.Helper()
	for _, d := range accepted {
		o, ok := h.Ticket(t, d.Conn, d.ID)
		if !ok {
			t.Errorf("%s: ticket %s/%d was accepted but is not in the copy", d.Summary, d.Conn, d.ID)
			continue
		}
		deliveryID := fmt.Sprintf("edge-delivery-%d", d.ID)
		if o.Connection != d.Conn || o.ID != strconv.Itoa(d.ID) || o.Version != ticketVersion || o.Deleted || o.IsPending() {
			t.Errorf("%s: ticket %s/%s version %d deleted %v pending %v (pending version %d); want %s/%d version %d, not deleted, not pending",
				d.Summary, o.Connection, o.ID, o.Version, o.Deleted, o.IsPending(), o.PendingVersion, d.Conn, d.ID, ticketVersion)
		}
		if o.ClientID != "12" || o.Source != change.SourceWebhook || o.DeliveryID != deliveryID || o.Event != "ticket updated" {
			t.Errorf("%s: ticket %d client %q source %q delivery %q event %q; want 12 webhook %q \"ticket updated\"",
				d.Summary, d.ID, o.ClientID, o.Source, o.DeliveryID, o.Event, deliveryID)
		}
		if o.SyncedAt.IsZero() || time.Since(o.SyncedAt) > 5*time.Minute {
			t.Errorf("%s: ticket %d synced at %v", d.Summary, d.ID, o.SyncedAt)
		}
		for k, want := range map[string]any{"id": d.ID, "summary": d.Summary} {
			g, _ := json.Marshal(o.Fields[k]) // JSON forms: a stored json.Number 12 equals 12
			w, _ := json.Marshal(want)
			if !bytes.Equal(g, w) {
				t.Errorf("%s: ticket %d field %s = %s, want %s", d.Summary, d.ID, k, g, w)
			}
		}
	}
}

// WantNotStored checks, once the queue is drained, that no refused delivery's ticket is
// in the copy.
func WantNotStored(t *testing.T, h Harness, refused []Delivered) {
	t.Helper()
	for _, d := range refused {
		if _, ok := h.Ticket(t, d.Conn, d.ID); ok {
			t.Errorf("%s: ticket %s/%d was refused, yet it is in the copy", d.Summary, d.Conn, d.ID)
		}
	}
}

// WantDrained drains the queue and checks that nothing went to the dead-letter queue.
func WantDrained(t *testing.T, h Harness) {
	t.Helper()
	h.Drain(t)
	if changes, dead := h.Queues(t); changes != 0 || dead != 0 {
		t.Errorf("after draining: %d messages on the change queue and %d on the dead-letter queue, want none", changes, dead)
	}
}

// countsWait bounds WaitCounts: counters may show a little after the answer or the
// drain (the Lambda functions' metric lines reach their output through the emulator).
const countsWait = 10 * time.Second

// WaitCounts polls the counters of metric name until they are exactly want (a metric
// counted but not in want fails it too), failing the test after a while. An empty want is
// met at once, so wait first for counts that must show.
func WaitCounts(t *testing.T, h Harness, name string, want Counts) {
	t.Helper()
	deadline := time.Now().Add(countsWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got := h.Counts(t, name)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s counts are %s, want %s", name, got, want)
		}
		<-tick.C
	}
}

func (c Counts) String() string {
	var parts []string
	for m, n := range c {
		parts = append(parts, fmt.Sprintf("{%s %s}=%d", m.Connection, m.Label, n))
	}
	if len(parts) == 0 {
		return "none"
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// perConn is want counts of the metric name with label for every scheme's connection.
func perConn(name, label string, n int64) Counts {
	c := Counts{}
	for _, sc := range Schemes {
		c[metrics.Metric{Name: name, Connection: sc.Conn, Label: label}] = n
	}
	return c
}
