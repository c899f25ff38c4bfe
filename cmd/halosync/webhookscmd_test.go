package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// serveAt starts serve on a given port (the webhook URL in Halo names it).
func serveAt(t *testing.T, port int, args ...string) *proc {
	t.Helper()
	p := start(t, nil, append([]string{"serve", "--addr", "127.0.0.1:" + strconv.Itoa(port)}, args...)...)
	if !p.waitReady(t) {
		p.logTails(t)
		t.Fatalf("serve on port %d exited: %v", port, p.waitErr)
	}
	return p
}

// managedConfig is a configuration of one connection, acme, polled in webhook mode (no
// poll but the first), whose webhook is managed in tenant: Basic authentication with the
// secret kept in secretPath, manage's url, and manage's other keys (each line indented
// eight spaces).
func managedConfig(tenant *halosim.Tenant, secretPath, url, manage string) string {
	return fmt.Sprintf(`connections:
  - id: acme
    halo:
      base_url: %s
      client_id: %s
      client_secret: %s
    poll:
      mode: webhook
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["file:%s"]
      manage:
        url: %s`, tenant.URL(), tenant.Options().ClientID, tenant.Options().ClientSecret, secretPath, url) + manage
}

// TestWebhooksCommands: `halosync webhooks` against a fake tenant and a running serve:
// the dry run changes nothing; apply generates the secret where the configuration reads
// it and refuses to give it to Halo while the endpoint does not accept it; once serve
// runs, apply creates the webhook and a second apply changes nothing; status reads the
// webhook and its deliveries; deliveries lost while serve was down are replayed from
// Halo's log into the copy; test reports an accepted delivery; remove deletes only ours;
// without the rights, apply says what to grant. No secret is ever printed.
func TestWebhooksCommands(t *testing.T) {
	tenant := halotest.Start(t, halosim.Options{})
	rng := rand.New(rand.NewPCG(11, 12))
	tenant.Seed(rng, 3)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	secretPath := filepath.Join(dir, "secrets", "acme-webhook")
	port := freePort(t)
	hookURL := fmt.Sprintf("http://127.0.0.1:%d/webhooks/halo/acme", port)
	cfgPath := filepath.Join(dir, "halosync.yaml")
	writeFile(t, cfgPath, managedConfig(tenant, secretPath, hookURL, `
        events:
          - {name: ticket status changed, eventno: 3}
          - ticket updated
          - {name: new ticket logged, eventno: 1}
`))
	var printed []string // every output, checked for the secret at the end
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		out, errOut, code := runCLI(t, nil, append([]string{"webhooks"}, args...)...)
		printed = append(printed, out, errOut)
		return out, errOut, code
	}
	foreign := tenant.AddWebhook(map[string]any{"name": "halosync:acme-old", "url": hookURL, "active": true})
	if _, err := tenant.Subscribe(foreign, 3); err != nil {
		t.Fatal(err)
	}
	foreignBefore, _ := tenant.Webhook(foreign)

	// A dry run: the plan, nothing written anywhere.
	out, errOut, code := cli("apply", "--config", cfgPath, "--dry-run")
	if code != 0 || !strings.Contains(out, `+ create webhook "halosync:acme"`) || !strings.Contains(out, "would be generated and stored at file:"+secretPath) ||
		!strings.Contains(out, `+ subscribe to "ticket updated" (eventno 61)`) || !strings.Contains(out, "dry run: nothing changed") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(secretPath); !os.IsNotExist(err) || len(tenant.Webhooks()) != 1 {
		t.Fatal("the dry run wrote")
	}

	// Serve is not running: the secret is generated, Halo is not given it.
	out, errOut, code = cli("apply", "--config", cfgPath)
	if code == 0 || !strings.Contains(out, "a new one was generated and stored at file:"+secretPath) || !strings.Contains(errOut, "Halo was not changed") {
		t.Fatalf("apply without serve: exit %d\n%s\n%s", code, out, errOut)
	}
	fi, err := os.Stat(secretPath)
	if err != nil || fi.Mode().Perm() != 0o600 || len(tenant.Webhooks()) != 1 {
		t.Fatalf("secret file %v %v, %d webhooks", fi, err, len(tenant.Webhooks()))
	}
	raw, _ := os.ReadFile(secretPath)
	secret := strings.TrimSpace(string(raw))

	// Runs every 100 ms, so the reconcile that follows the first sync is over before the
	// outage below (a run that only reconciles logs "poll not due" at debug).
	p := serveAt(t, port, "--config", cfgPath, "--data", data, "--poll-every", "100ms", "--log-level", "debug")
	out, errOut, code = cli("apply", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "applied: webhook ") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	id := regexp.MustCompile(`applied: webhook (\S+)`).FindStringSubmatch(out)[1]
	if w, _ := tenant.Webhook(id); fmt.Sprint(w["basic_password"]) != secret || fmt.Sprint(w["url"]) != hookURL {
		t.Fatalf("webhook %v", w)
	}
	if out, errOut, code = cli("apply", "--config", cfgPath); code != 0 || !strings.Contains(out, "  no change\n") || strings.Contains(out, "applied") {
		t.Fatalf("second apply: exit %d\n%s\n%s", code, out, errOut)
	}

	// Deliveries through the webhook Halo now has.
	sender, err := tenant.WebhookSender(id, halosim.SenderOptions{PayloadType: halosim.PayloadFull})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(n int) []int64 {
		var ids []int64
		for i := 0; i < n; i++ {
			e, ok := tenant.Do(rng, halosim.NewTicket)
			if !ok {
				t.Fatal("no ticket made")
			}
			ids = append(ids, e.ObjectID)
			sender.Send(e)
			if _, err := sender.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		return ids
	}
	if s := sender.Stats(); s.Sent != 0 {
		t.Fatal(s)
	}
	deliver(2)
	out, errOut, code = cli("status", "--config", cfgPath)
	if code != 0 || !regexp.MustCompile(`acme\s+primary\s+`+id+`\s+active\s+ok\s+ok\s+ok\s+2/0\s+20\d\d-`).MatchString(out) {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}

	// The first sync (poll mode webhook: the only poll, with the reconcile that follows
	// it) is over before the outage, so what the copy gets after it comes from the replay.
	seeded := tenant.Objects(change.Ticket)
	firstID, _ := change.CanonicalID(seeded[0]["id"])
	waitObject(t, p, "/connections/acme/tickets/"+firstID, nil)
	p.waitLog(t, `"msg":"poll done"`, `"connection":"acme"`)
	p.waitLog(t, `"msg":"poll not due"`, `"connection":"acme"`)

	// An outage: serve is down while Halo delivers; the log keeps the bodies.
	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	lost := deliver(3)
	if s := sender.Stats(); s.Failed != 3 {
		t.Fatalf("sender %+v", s)
	}
	p = serveAt(t, port, "--config", cfgPath, "--data", data)
	out, errOut, code = cli("status", "--config", cfgPath, "--json")
	var rows []struct {
		Connection string
		Healthy    bool
		Deliveries struct {
			Succeeded, Failed int
			LastError         string `json:"last_error"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code == 0 || len(rows) != 1 || !rows[0].Healthy ||
		rows[0].Deliveries.Succeeded != 2 || rows[0].Deliveries.Failed != 3 || !strings.Contains(errOut, "need attention") {
		t.Fatalf("status --json: exit %d %v\n%s\n%s", code, err, out, errOut)
	}
	for _, tid := range lost {
		if code, _, err := getJSON(p, fmt.Sprintf("/connections/acme/tickets/%d", tid)); err != nil || code != 404 {
			t.Fatalf("ticket %d lost in the outage: %d %v before the replay", tid, code, err)
		}
	}
	if out, errOut, code = cli("replay", "--config", cfgPath, "--since", "1h", "--dry-run"); code != 0 || !strings.Contains(out, "dry run: 3 would be sent again") {
		t.Fatalf("replay --dry-run: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = cli("replay", "--config", cfgPath, "--since", "1h"); code != 0 || !strings.Contains(out, "sent again: 3, accepted 3, refused 0") {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, tid := range lost {
		tk, _ := tenant.Object(change.Ticket, tid)
		got := waitObject(t, p, fmt.Sprintf("/connections/acme/tickets/%d", tid), func(m map[string]any) bool {
			f, _ := m["fields"].(map[string]any)
			return fmt.Sprint(f["last_update"]) == fmt.Sprint(tk["last_update"])
		})
		if got == nil {
			t.Fatalf("ticket %d not in the copy after the replay", tid)
		}
	}

	// Test: Halo's fake sends nothing for _test, so a signed sample goes from here.
	if out, errOut, code = cli("test", "--config", cfgPath, "--wait", "1s"); code != 0 || !strings.Contains(out, "arrived and was accepted (HTTP 200)") {
		t.Fatalf("test: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = cli("events", "--config", cfgPath, "--connection", "acme"); code != 0 ||
		!regexp.MustCompile(id+`\s+halosync:acme\s+61\s+halosync: ticket updated`).MatchString(out) {
		t.Fatalf("events: exit %d\n%s\n%s", code, out, errOut)
	}

	// Without the rights: apply says what to grant and changes nothing.
	tenant.SetWebhookAccess(false)
	if out, errOut, code = cli("apply", "--config", cfgPath); code == 0 || !strings.Contains(errOut, "Configuration > Integrations > Webhooks") || !strings.Contains(errOut, "nothing was changed") {
		t.Fatalf("apply without rights: exit %d\n%s\n%s", code, out, errOut)
	}
	tenant.SetWebhookAccess(true)

	if out, errOut, code = cli("remove", "--config", cfgPath); code == 0 || !strings.Contains(errOut, "needs --connection") {
		t.Fatalf("remove without --connection: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = cli("remove", "--config", cfgPath, "--connection", "acme", "--dry-run"); code != 0 || !strings.Contains(out, "would delete webhook") {
		t.Fatalf("remove --dry-run: exit %d\n%s\n%s", code, out, errOut)
	}
	if out, errOut, code = cli("remove", "--config", cfgPath, "--connection", "acme"); code != 0 || !strings.Contains(out, "deleted webhook \"halosync:acme\" ("+id+") and its 3 subscriptions") {
		t.Fatalf("remove: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, ok := tenant.Webhook(id); ok {
		t.Fatal("our webhook is still there")
	}
	if w, ok := tenant.Webhook(foreign); !ok || !reflect.DeepEqual(w, foreignBefore) || len(tenant.Notifications(foreign)) != 1 {
		t.Fatal("the foreign webhook was touched")
	}
	out, _, code = cli("status", "--config", cfgPath)
	if code == 0 || !strings.Contains(out, "MISSING") {
		t.Fatalf("status after remove: exit %d\n%s", code, out)
	}

	out, _, code = cli("secret")
	if code != 0 || len(strings.TrimSpace(out)) != 43 {
		t.Fatalf("secret: %q", out)
	}
	if _, errOut, code = cli(); code == 0 || !strings.Contains(errOut, "halosync webhooks COMMAND") {
		t.Fatalf("webhooks without a command: %q", errOut)
	}
	if _, errOut, code = cli("apply"); code == 0 || !strings.Contains(errOut, "needs --config") {
		t.Fatalf("apply without --config: %q", errOut)
	}
	if _, errOut, code = cli("apply", "--config", cfgPath, "--connection", "nope"); code == 0 || !strings.Contains(errOut, `no connection "nope"`) {
		t.Fatalf("unknown connection: %q", errOut)
	}
	for _, s := range printed {
		if strings.Contains(s, secret) {
			t.Fatalf("a command printed the secret:\n%s", s)
		}
	}
	if strings.Contains(p.stderr.String(), secret) || strings.Contains(p.stdout.String(), secret) {
		t.Fatal("serve logged the secret")
	}
}
