package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/ingest"
)

// TestWebhooksBackupCommands: with backup_url, `halosync webhooks apply` makes the
// primary and the backup webhook; Halo delivers every change to both while the primary's
// endpoint refuses connections; the changes reach serve's copy through its backup route,
// and `halosync webhooks status` shows a row per webhook and names the failing primary.
func TestWebhooksBackupCommands(t *testing.T) {
	tenant := halotest.Start(t, halosim.Options{})
	rng := rand.New(rand.NewPCG(21, 22))
	tenant.Seed(rng, 3)
	dir := t.TempDir()
	port := freePort(t)
	primaryURL := halotest.RefusedURL(t, ingest.PathPrefix+"acme")
	backupURL := fmt.Sprintf("http://127.0.0.1:%d/backup/webhooks/halo/acme", port)
	cfgPath := filepath.Join(dir, "halosync.yaml")
	writeFile(t, cfgPath, managedConfig(tenant, filepath.Join(dir, "acme-secret"), primaryURL, `
        backup_url: `+backupURL+`
        events:
          - {name: new ticket logged, eventno: 1}
`))
	// The probe would stop at the refused primary: --no-probe makes both, and the secret
	// serve then reads.
	out, errOut, code := runCLI(t, nil, "webhooks", "apply", "--config", cfgPath, "--no-probe")
	if code != 0 || !strings.Contains(out, `webhook "halosync:acme"`) || !strings.Contains(out, `webhook "halosync:acme (backup)"`) ||
		strings.Count(out, "applied: webhook ") != 2 || strings.Count(out, "a new one was generated") != 1 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	p := serveAt(t, port, "--config", cfgPath, "--data", filepath.Join(dir, "data"))
	ids := regexp.MustCompile(`applied: webhook (\S+)`).FindAllStringSubmatch(out, -1)
	var senders []*halosim.Sender
	for i, m := range ids {
		s, err := tenant.WebhookSender(m[1], halosim.SenderOptions{PayloadType: halosim.PayloadFull, Rand: rand.New(rand.NewPCG(uint64(i), 23))})
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, s)
	}
	var tickets []int64
	for range 3 {
		e, ok := tenant.Do(rng, halosim.NewTicket)
		if !ok {
			t.Fatal("no ticket made")
		}
		tickets = append(tickets, e.ObjectID)
		for _, s := range senders {
			s.Send(e)
			if _, err := s.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pr, bk := senders[0].Stats(), senders[1].Stats(); pr.Failed != 3 || pr.Sent != 0 || bk.Sent != 3 || bk.Failed != 0 {
		t.Fatalf("primary %+v, backup %+v", pr, bk)
	}
	for _, id := range tickets {
		waitObject(t, p, fmt.Sprintf("/connections/acme/tickets/%d", id), nil)
	}

	out, errOut, code = runCLI(t, nil, "webhooks", "status", "--config", cfgPath)
	if code == 0 ||
		!regexp.MustCompile(`acme\s+primary\s+\S+\s+FAILING\s+ok\s+ok\s+ok\s+0/3\s`).MatchString(out) ||
		!regexp.MustCompile(`acme\s+backup\s+\S+\s+active\s+ok\s+ok\s+ok\s+3/0\s`).MatchString(out) ||
		!strings.Contains(out, "acme: primary endpoint failing: "+primaryURL) ||
		!strings.Contains(out, "failing endpoints: acme primary ("+primaryURL+")") || strings.Contains(out, "acme backup (") {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errOut)
	}
}
