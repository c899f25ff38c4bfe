package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBannerCommandsWorkAsPrinted: the curl commands serve prints (reading the secrets from
// their files when its output is not a terminal, with the secrets themselves on a terminal)
// and the README's deliver a ticket that is accepted and then read back.
func TestBannerCommandsWorkAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	t.Run("not a terminal", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), ".halosync")
		// No poll in the test's time: the demo's reconcile would delete the hand-sent
		// ticket, which the simulated tenant does not have.
		p := startServe(t, nil, "--data", data, "--demo", "--poll-every", "1h")
		out := p.stdout.String()
		for _, secret := range []string{p.password, p.token} {
			if secret == "" || strings.Contains(out, secret) {
				t.Errorf("serve's output, not a terminal, shows a secret (or none was read):\n%s", out)
			}
		}
		if !strings.Contains(out, "dashboard: "+p.url+"/dashboard?token=TOKEN ") {
			t.Errorf("no dashboard address without the token:\n%s", out)
		}
		sendAndRead(t, p, bannerLine(t, out, "send a ticket: "), bannerLine(t, out, "read it back:  "))
		// The change events stream it names answers, with the read token.
		events := bannerLine(t, out, "change events (server-sent events): ")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, events, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+p.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", events, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("content-type"), "text/event-stream") {
			t.Errorf("GET %s: %d %s, want 200 text/event-stream", events, resp.StatusCode, resp.Header.Get("content-type"))
		}
	})
	t.Run("terminal", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("script (util-linux), which gives serve a terminal, is not installed")
		}
		data := filepath.Join(t.TempDir(), ".halosync")
		port := freePort(t)
		cmd := strings.Join([]string{binary, "serve", "--addr", "127.0.0.1:" + strconv.Itoa(port), "--data", data, "--poll-every", "1h"}, " ")
		// script gives serve a terminal; its input stays open, as a terminal's would.
		in, keep, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); keep.Close() })
		p := startProgram(t, nil, in, "script", "-qfec", cmd, "/dev/null")
		if !p.waitReady(t) {
			t.Fatalf("serve under script exited: %v", p.waitErr)
		}
		out := strings.ReplaceAll(p.stdout.String(), "\r", "")
		if !strings.Contains(out, `password "`+p.password+`" (kept in `+filepath.Join(data, "webhook-password")+")") {
			t.Errorf("on a terminal the password is shown:\n%s", out)
		}
		dashboard := bannerLine(t, out, "dashboard: ")
		if dashboard != p.url+"/dashboard?token="+p.token {
			t.Errorf("dashboard %q, want the address with the read token", dashboard)
		}
		noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noRedirect.Get(dashboard)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
			t.Errorf("GET the printed dashboard address: %d, cookies %v; want 303 setting the cookie", resp.StatusCode, resp.Cookies())
		}
		send, read := bannerLine(t, out, "send a ticket: "), bannerLine(t, out, "read it back:  ")
		if strings.Contains(send, "$(") || strings.Contains(read, "$(") {
			t.Errorf("on a terminal the commands hold the secrets themselves:\n%s\n%s", send, read)
		}
		sendAndRead(t, p, send, read)
	})
	t.Run("README", func(t *testing.T) {
		dir := t.TempDir()
		p := startServe(t, nil, "--data", filepath.Join(dir, ".halosync"), "--demo", "--poll-every", "1h")
		send, read := readmeCommands(t)
		// The README's commands run from the directory make run ran in, on port 8080.
		fix := strings.NewReplacer("http://127.0.0.1:8080", p.url)
		sendAndRead(t, p, fix.Replace(send), fix.Replace(read), dir)
	})
}

// bannerLine is the rest of serve's banner line that starts with prefix (after its indent).
func bannerLine(t *testing.T, out, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimLeft(line, " "), prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("serve printed no line %q:\n%s", prefix, out)
	return ""
}

// sendAndRead runs send through sh (in dir, when given), which must deliver a ticket that
// is accepted, then read until it shows the ticket.
func sendAndRead(t *testing.T, p *proc, send, read string, dir ...string) {
	t.Helper()
	got := shell(t, send, dir...)
	var answer struct {
		Status  string `json:"status"`
		Changes int    `json:"changes"`
	}
	if err := json.Unmarshal([]byte(got), &answer); err != nil || answer.Status != "accepted" || answer.Changes != 1 {
		p.logTails(t)
		t.Fatalf("sh -c %q answered %q (%v), want the delivery accepted", send, got, err)
	}
	deadline := time.Now().Add(applyTimeout)
	for {
		got = shell(t, read, dir...)
		var obj struct {
			Fields struct {
				Summary string `json:"summary"`
			} `json:"fields"`
		}
		if json.Unmarshal([]byte(got), &obj) == nil && obj.Fields.Summary == "Sent by hand with curl" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sh -c %q answered %q, want the ticket sent", read, got)
		}
		time.Sleep(pollInterval)
	}
}

func shell(t *testing.T, command string, dir ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	if len(dir) > 0 {
		cmd.Dir = dir[0]
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v (%q)", command, err, out)
	}
	return string(out)
}

// readmeCommands are the README's curl commands sending a ticket and reading it back,
// their continued lines joined.
func readmeCommands(t *testing.T) (send, read string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, m := range regexp.MustCompile(`(?m)^curl [^\n]+`).FindAllString(text, -1) {
		switch {
		case send == "" && strings.Contains(m, "/webhooks/halo/default") && strings.Contains(m, "--data '"):
			send = m
		case read == "" && strings.HasSuffix(m, "/connections/default/tickets/1"):
			read = m
		}
	}
	if send == "" || read == "" {
		t.Fatalf("the README has no curl command sending a ticket (%q) and reading it back (%q)", send, read)
	}
	return send, read
}
