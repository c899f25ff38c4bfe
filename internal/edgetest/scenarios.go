package edgetest

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

// Scenarios are the edge scenarios by name: each harness's test runs every one of them.
var Scenarios = []struct {
	Name string
	Run  func(*testing.T, Harness)
}{
	{"EveryScheme", EveryScheme},
	{"Rotation", Rotation},
	{"AllowIPs", AllowIPs},
	{"GzipBodies", GzipBodies},
	{"RoutingHeaders", RoutingHeaders},
	{"Throttle", Throttle},
}

// EveryScheme: each scheme's connection holds an old and a new secret; a delivery signed
// with either is accepted and stored, one signed with a secret nobody configured is
// refused, counted and never queued.
func EveryScheme(t *testing.T, h Harness) {
	h.Start(t, Config(BothSecrets, "", ""))

	// Wrong secrets first: refused, and the queue stays empty.
	var refused []Delivered
	for i, sc := range Schemes {
		d := Delivered{Conn: sc.Conn, ID: 6000 + 10*i, Summary: sc.Conn + ", a secret nobody set"}
		body := Ticket(d.ID, d.Summary)
		pathSecret, header := sc.Sign(sc.Wrong, body)
		r := h.Post(t, Delivery{Conn: sc.Conn, PathSecret: pathSecret, Header: header, Body: body})
		WantRefused(t, d.Summary, r, http.StatusUnauthorized, ingest.CodeUnauthorized)
		if strings.Contains(string(r.Body), sc.Wrong) {
			t.Errorf("%s: the refusal shows the secret sent: %s", sc.Conn, r.Body)
		}
		refused = append(refused, d)
	}
	WaitCounts(t, h, metrics.DeliveriesRejected, perConn(metrics.DeliveriesRejected, "credentials_wrong", 1))
	WaitCounts(t, h, metrics.DeliveriesAccepted, Counts{})
	WaitCounts(t, h, metrics.ChangesEnqueued, Counts{})
	if changes, dead := h.Queues(t); changes != 0 || dead != 0 {
		t.Fatalf("after the refused deliveries: %d messages queued and %d dead letters, want none", changes, dead)
	}

	// The old and the new secret of every scheme.
	var accepted []Delivered
	for i, sc := range Schemes {
		for j, secret := range []string{sc.Old, sc.New} {
			d := Delivered{Conn: sc.Conn, ID: 6000 + 10*i + 1 + j, Summary: fmt.Sprintf("%s, secret %d of 2", sc.Conn, j+1)}
			body := Ticket(d.ID, d.Summary)
			pathSecret, header := sc.Sign(secret, body)
			WantAccepted(t, d.Summary, h.Post(t, Delivery{Conn: sc.Conn, PathSecret: pathSecret, Header: header, Body: body}), 1)
			accepted = append(accepted, d)
		}
	}
	WantDrained(t, h)
	WantStored(t, h, accepted)
	WantNotStored(t, h, refused)
	WaitCounts(t, h, metrics.ChangesApplied, perConn(metrics.ChangesApplied, string(change.Applied), 2))
	WaitCounts(t, h, metrics.ChangesFailed, Counts{})
	WaitCounts(t, h, metrics.DeliveriesAccepted, perConn(metrics.DeliveriesAccepted, "", 2))
	WaitCounts(t, h, metrics.ChangesEnqueued, perConn(metrics.ChangesEnqueued, "", 2))
	WaitCounts(t, h, metrics.DeliveriesRejected, perConn(metrics.DeliveriesRejected, "credentials_wrong", 1))
}

// Rotation rotates every scheme's secret as the README says: the old secret alone, then
// old and new (restart), then the new alone (restart), on the same queue and copy, with
// deliveries flowing throughout and no wait for the queue to drain before a restart.
// Every delivery answered 200 must end up stored; each secret is refused exactly while it
// is not configured.
func Rotation(t *testing.T, h Harness) {
	const perCase = 3 // deliveries per scheme, secret and phase
	phases := []struct {
		name         string
		secrets      func(Scheme) []string
		oldOK, newOK bool
	}{
		{"old secret only", func(sc Scheme) []string { return []string{sc.Old} }, true, false},
		{"old and new secrets", BothSecrets, true, true},
		{"new secret only", func(sc Scheme) []string { return []string{sc.New} }, false, true},
	}
	var accepted, refused []Delivered
	id := 7000
	for p, ph := range phases {
		h.Start(t, Config(ph.secrets, "", ""))
		for _, sc := range Schemes {
			for _, c := range []struct {
				which, secret string
				ok            bool
			}{{"old", sc.Old, ph.oldOK}, {"new", sc.New, ph.newOK}} {
				for n := range perCase {
					id++
					d := Delivered{Conn: sc.Conn, ID: id, Summary: fmt.Sprintf("%s: %s, %s secret, delivery %d", ph.name, sc.Conn, c.which, n+1)}
					body := Ticket(d.ID, d.Summary)
					pathSecret, header := sc.Sign(c.secret, body)
					r := h.Post(t, Delivery{Conn: sc.Conn, PathSecret: pathSecret, Header: header, Body: body})
					if c.ok {
						WantAccepted(t, d.Summary, r, 1)
						accepted = append(accepted, d)
					} else {
						WantRefused(t, d.Summary, r, http.StatusUnauthorized, ingest.CodeUnauthorized)
						refused = append(refused, d)
					}
				}
			}
		}
		if p < len(phases)-1 {
			changes, _ := h.Queues(t)
			t.Logf("phase %q: restarting with %d changes on the queue", ph.name, changes)
		}
	}
	if want := 4 * perCase * len(Schemes); len(accepted) != want || len(refused) != want/2 {
		t.Fatalf("%d accepted and %d refused deliveries; the phases above should give %d and %d", len(accepted), len(refused), want, want/2)
	}

	// The last pipeline, on the same queue and copy, has every accepted delivery stored:
	// none lost.
	WantDrained(t, h)
	WantStored(t, h, accepted)
	WantNotStored(t, h, refused)
	// The last pipeline refused exactly the old secret of each connection and accepted the
	// new one, three times each.
	WaitCounts(t, h, metrics.DeliveriesRejected, perConn(metrics.DeliveriesRejected, "credentials_wrong", perCase))
	WaitCounts(t, h, metrics.DeliveriesAccepted, perConn(metrics.DeliveriesAccepted, "", perCase))
}

// AllowIPs: a connection's allow_ips admits a delivery from inside its ranges and refuses
// one from outside, even when the sender adds a forwarded header naming an address
// inside; refusals are counted and queue nothing.
func AllowIPs(t *testing.T, h Harness) {
	// TrustLoopback: locally a source other than the loopback is sent by a trusted proxy.
	h.Start(t, Config(BothSecrets, OfficeConnection, TrustLoopback))
	inside := Delivered{Conn: "office", ID: 8100, Summary: "from inside 192.0.2.0/24"}
	WantAccepted(t, inside.Summary, h.Post(t, Delivery{Conn: inside.Conn, Header: OfficeAuth(), SourceIP: "192.0.2.10",
		Body: Ticket(inside.ID, inside.Summary)}), 1)

	outside := Delivered{Conn: "office", ID: 8101, Summary: "from outside 192.0.2.0/24"}
	WantRefused(t, outside.Summary, h.Post(t, Delivery{Conn: outside.Conn, Header: OfficeAuth(), SourceIP: "198.51.100.1",
		Body: Ticket(outside.ID, outside.Summary)}), http.StatusForbidden, ingest.CodeForbidden)

	claimed := Delivered{Conn: "office", ID: 8102, Summary: "from outside, forwarded for an address inside"}
	header := OfficeAuth()
	header.Set("X-Forwarded-For", "192.0.2.10")
	WantRefused(t, claimed.Summary, h.Post(t, Delivery{Conn: claimed.Conn, Header: header, SourceIP: "198.51.100.1",
		Body: Ticket(claimed.ID, claimed.Summary)}), http.StatusForbidden, ingest.CodeForbidden)

	WantDrained(t, h)
	WantStored(t, h, []Delivered{inside})
	WantNotStored(t, h, []Delivered{outside, claimed})
	WaitCounts(t, h, metrics.DeliveriesRejected, Counts{
		{Name: metrics.DeliveriesRejected, Connection: "office", Label: ingest.ReasonIPNotAllowed}: 2,
	})
	WaitCounts(t, h, metrics.ChangesEnqueued, Counts{{Name: metrics.ChangesEnqueued, Connection: "office"}: 1})
}

// guardedConnection throttles a source after three failed authentications within an hour
// (longer than any test runs, so the harness's real clock never ends the window).
var guardedConnection = fmt.Sprintf(`  - id: guarded
    webhook:
      auth_throttle: {failures: 3, window_seconds: 3600}
      auth:
        - scheme: basic
          username: %s
          passwords: ["%s"]
`, User, BasicOld)

// Throttle: a source that fails to authenticate auth_throttle.failures times is then
// refused with 429 even with the right password; another source is not.
func Throttle(t *testing.T, h Harness) {
	h.Start(t, Config(BothSecrets, guardedConnection, TrustLoopback))
	right := http.Header{"Authorization": {authtest.Basic(User, BasicOld)}}
	wrong := http.Header{"Authorization": {authtest.Basic(User, wrongSecret)}}
	for i := range 3 {
		d := Delivered{Conn: "guarded", ID: 8300 + i, Summary: fmt.Sprintf("guess %d", i+1)}
		WantRefused(t, d.Summary, h.Post(t, Delivery{Conn: d.Conn, Header: wrong, SourceIP: "192.0.2.77", Body: Ticket(d.ID, d.Summary)}),
			http.StatusUnauthorized, ingest.CodeUnauthorized)
	}
	throttled := Delivered{Conn: "guarded", ID: 8310, Summary: "right password from the guessing source"}
	WantRefused(t, throttled.Summary, h.Post(t, Delivery{Conn: throttled.Conn, Header: right, SourceIP: "192.0.2.77",
		Body: Ticket(throttled.ID, throttled.Summary)}), http.StatusTooManyRequests, ingest.CodeTooManyFailures)
	other := Delivered{Conn: "guarded", ID: 8311, Summary: "right password from another source"}
	WantAccepted(t, other.Summary, h.Post(t, Delivery{Conn: other.Conn, Header: right, SourceIP: "192.0.2.78",
		Body: Ticket(other.ID, other.Summary)}), 1)

	WantDrained(t, h)
	WantStored(t, h, []Delivered{other})
	WantNotStored(t, h, []Delivered{throttled})
	WaitCounts(t, h, metrics.DeliveriesRejected, Counts{
		{Name: metrics.DeliveriesRejected, Connection: "guarded", Label: "credentials_wrong"}:        3,
		{Name: metrics.DeliveriesRejected, Connection: "guarded", Label: ingest.ReasonAuthThrottled}: 1,
	})
}

// zippedLimit is the zipped connection's max_body_bytes.
const zippedLimit = 8192

// zippedConnection is a connection with a small body limit, for the gzip cases.
var zippedConnection = fmt.Sprintf(`  - id: zipped
    webhook:
      max_body_bytes: %d
      auth:
        - scheme: basic
          username: %s
          passwords: ["%s"]
`, zippedLimit, User, BasicOld)

// GzipBodies: gzip bodies are accepted (an HMAC is over the compressed bytes as
// received), and a body that decompresses beyond the limit is refused without being
// queued.
func GzipBodies(t *testing.T, h Harness) {
	h.Start(t, Config(BothSecrets, zippedConnection, ""))
	gzipped := func(header http.Header) http.Header {
		header.Set("Content-Encoding", "gzip")
		return header
	}
	var accepted []Delivered

	d := Delivered{Conn: "zipped", ID: 9001, Summary: "gzip with basic"}
	WantAccepted(t, d.Summary, h.Post(t, Delivery{Conn: d.Conn, Header: gzipped(OfficeAuth()), Body: Gzip(t, Ticket(d.ID, d.Summary))}), 1)
	accepted = append(accepted, d)

	d = Delivered{Conn: "hmac", ID: 9002, Summary: "gzip signed by HMAC over the compressed bytes"}
	zipped := Gzip(t, Ticket(d.ID, d.Summary))
	WantAccepted(t, d.Summary, h.Post(t, Delivery{Conn: d.Conn, Body: zipped,
		Header: gzipped(http.Header{"Token": {authtest.HMACBase64(HMACNew, zipped)}})}), 1)
	accepted = append(accepted, d)

	unzippedMAC := Delivered{Conn: "hmac", ID: 9003, Summary: "gzip signed over the decompressed bytes"}
	plain := Ticket(unzippedMAC.ID, unzippedMAC.Summary)
	WantRefused(t, unzippedMAC.Summary, h.Post(t, Delivery{Conn: unzippedMAC.Conn, Body: Gzip(t, plain),
		Header: gzipped(http.Header{"Token": {authtest.HMACBase64(HMACNew, plain)}})}), http.StatusUnauthorized, ingest.CodeUnauthorized)

	// A bomb: small enough as received, far over the limit once decompressed.
	bomb := Gzip(t, bytes.Repeat([]byte(" "), 10*zippedLimit))
	if len(bomb) >= zippedLimit {
		t.Fatalf("the bomb is %d bytes compressed; it must be under the %d-byte limit to test the decompressed cap", len(bomb), zippedLimit)
	}
	WantRefused(t, "a gzip bomb", h.Post(t, Delivery{Conn: "zipped", Header: gzipped(OfficeAuth()), Body: bomb}),
		http.StatusRequestEntityTooLarge, ingest.CodeTooLarge)

	WantDrained(t, h)
	WantStored(t, h, accepted)
	WantNotStored(t, h, []Delivered{unzippedMAC})
	WaitCounts(t, h, metrics.DeliveriesRejected, Counts{
		{Name: metrics.DeliveriesRejected, Connection: "zipped", Label: ingest.ReasonDecompressedTooLarge}: 1,
		{Name: metrics.DeliveriesRejected, Connection: "hmac", Label: "credentials_wrong"}:                 1,
	})
	// The refused deliveries queued nothing.
	WaitCounts(t, h, metrics.ChangesEnqueued, Counts{
		{Name: metrics.ChangesEnqueued, Connection: "zipped"}: 1,
		{Name: metrics.ChangesEnqueued, Connection: "hmac"}:   1,
	})
}

// routedConnection is a connection with one routing header.
const routedConnection = `  - id: routed
    webhook:
      auth:
        - scheme: basic
          username: ` + User + `
          passwords: ["` + BasicOld + `"]
      routing_headers: [X-Team]
`

// RoutingHeaders: a configured routing header travels on the queued change as a message
// attribute, through the queue to the worker, beside the connection, kind and source;
// other headers do not.
func RoutingHeaders(t *testing.T, h Harness) {
	h.Start(t, Config(BothSecrets, routedConnection, ""))
	withTeam := Delivered{Conn: "routed", ID: 9101, Summary: "with a team"}
	header := OfficeAuth()
	header.Set("X-Team", "noc")
	header.Set("X-Other", "not configured")
	WantAccepted(t, withTeam.Summary, h.Post(t, Delivery{Conn: withTeam.Conn, Header: header, Body: Ticket(withTeam.ID, withTeam.Summary)}), 1)
	without := Delivered{Conn: "routed", ID: 9102, Summary: "without a team"}
	WantAccepted(t, without.Summary, h.Post(t, Delivery{Conn: without.Conn, Header: OfficeAuth(), Body: Ticket(without.ID, without.Summary)}), 1)
	WantDrained(t, h)
	WantStored(t, h, []Delivered{withTeam, without})

	base := map[string]string{message.AttrConnection: "routed", message.AttrKind: "ticket", message.AttrSource: "webhook"}
	for _, c := range []struct {
		d    Delivered
		want map[string]string
	}{
		{withTeam, map[string]string{"x-team": "noc"}},
		{without, nil},
	} {
		want := maps.Clone(base)
		maps.Copy(want, c.want)
		got := h.Attributes(t, c.d.Conn, c.d.ID)
		if len(got) != 1 {
			t.Fatalf("%s: the worker was handed %d messages about ticket %d, want 1", c.d.Summary, len(got), c.d.ID)
		}
		if !maps.Equal(got[0], want) {
			t.Errorf("%s: message attributes %v, want %v", c.d.Summary, got[0], want)
		}
	}
}
