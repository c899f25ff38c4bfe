package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// sampleTicket is the delivery serve's banner and the README send: a small Halo ticket
// event, at a fixed version (sending it again is a duplicate), with an id no simulated
// tenant uses (they start at 4200).
const (
	sampleTicketID = "1"
	sampleTicket   = `{"id":"5b0e3a52-7c1d-4f8e-9a6b-0c2d4e6f8a10","event":"ticket updated","object_id":1,` +
		`"timestamp":"2026-01-01T09:00:00.0000000Z","ticket":{"id":1,"summary":"Sent by hand with curl",` +
		`"status_id":1,"client_id":12,"last_update":"2026-01-01T09:00:00"}}`
)

// banner is what serve prints once it listens: where to send webhooks and read the copy,
// with commands that work as printed.
type banner struct {
	url   string   // http://host:port
	conns []string // the configured connections, the first one is the examples'
	// user and password are the Basic credentials of the first connection when known;
	// passwordFile is where a generated password is kept ("" when configured).
	user, password, passwordFile string
	// token is the first read token; tokenFile is where a generated one is kept.
	token, tokenFile, tokenWhere string
	// secrets shows the password and token themselves: the output is a terminal. Else it
	// may be kept in a log, and the commands read them from their files.
	secrets bool
	demo    func(io.Writer) // the demo's lines, nil without --demo
}

// write prints the banner in one write, so a reader never sees half of it.
func (b banner) write(w io.Writer) {
	var out bytes.Buffer
	conn := b.conns[0]
	fmt.Fprintf(&out, "halosync is listening on %s\n", b.url)
	for _, c := range b.conns {
		fmt.Fprintf(&out, "  webhook URL for connection %q: %s/webhooks/halo/%s (backup: %s/backup/webhooks/halo/%s)\n", c, b.url, c, b.url, c)
	}
	if b.passwordFile != "" {
		if b.secrets {
			fmt.Fprintf(&out, "  Basic auth: user %q, password %q (kept in %s)\n", b.user, b.password, b.passwordFile)
		} else {
			fmt.Fprintf(&out, "  Basic auth: user %q, password kept in %s (shown on a terminal only)\n", b.user, b.passwordFile)
		}
	}
	fmt.Fprintf(&out, "  reads of the copy and /status need \"Authorization: Bearer TOKEN\"; read token: %s\n", b.tokenWhere)
	fmt.Fprintf(&out, "  read a ticket: %s/connections/%s/tickets/{id}\n", b.url, conn)
	fmt.Fprintf(&out, "  change events (server-sent events): %s/connections/%s/events\n", b.url, conn)
	if b.secrets {
		fmt.Fprintf(&out, "  dashboard: %s/dashboard?token=%s\n", b.url, b.token)
	} else {
		fmt.Fprintf(&out, "  dashboard: %s/dashboard?token=TOKEN (TOKEN: the read token; the page keeps it in a cookie)\n", b.url)
	}
	if send := b.sendCommand(); send != "" {
		fmt.Fprintf(&out, "  send a ticket: %s\n", send)
	}
	if read := b.readCommand(); read != "" {
		fmt.Fprintf(&out, "  read it back:  %s\n", read)
	}
	if b.demo != nil {
		b.demo(&out)
	}
	_, _ = w.Write(out.Bytes())
}

// sendCommand is a curl command delivering sampleTicket to the first connection, or ""
// when the banner cannot give its credentials.
func (b banner) sendCommand() string {
	var cred string
	switch {
	case b.user == "":
		return ""
	case b.secrets:
		cred = shellQuote(b.user + ":" + b.password)
	case b.passwordFile != "":
		cred = `"` + b.user + ":$(cat " + shellQuote(b.passwordFile) + `)"`
	default:
		return ""
	}
	return fmt.Sprintf("curl -s -u %s -H 'content-type: application/json' --data %s %s/webhooks/halo/%s",
		cred, shellQuote(sampleTicket), b.url, b.conns[0])
}

// readCommand is a curl command reading the sample ticket back, or "" when the banner
// cannot give the token.
func (b banner) readCommand() string {
	var auth string
	switch {
	case b.secrets && b.token != "":
		auth = shellQuote("Authorization: Bearer " + b.token)
	case b.tokenFile != "":
		auth = `"Authorization: Bearer $(cat ` + shellQuote(b.tokenFile) + `)"`
	default:
		return ""
	}
	return fmt.Sprintf("curl -s -H %s %s/connections/%s/tickets/%s", auth, b.url, b.conns[0], sampleTicketID)
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+=,-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// onTerminal says whether w is a terminal.
func onTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && terminal(f)
}
