package lambdae2e

// Failover through the emulated Lambda path: Halo (the simulated tenant's webhook sender)
// delivers every change to two webhooks that `halosync webhooks apply` made, the primary
// to the HTTP API and the backup to the ingest function's URL (both played in front of
// the real ingest bootstrap under the emulator). The primary refuses connections for the
// whole scenario; every change reaches the table through the backup, none is applied
// twice, and the webhooks' status, read from Halo's delivery log, names the primary.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/webhooks"
)

func TestFailoverToTheBackupEndpoint(t *testing.T) {
	t.Parallel()
	s := newStack(t, "failover")
	tenant := halotest.Start(t, halosim.Options{})

	// The backup: the ingest function's URL, played on this listener once the function
	// runs. The primary: refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	primaryURL, backupURL := halotest.RefusedURL(t, ingest.PathPrefix+conn), "http://"+l.Addr().String()+ingest.PathPrefix+conn
	const secret = "failover-webhook-secret-0123456789"
	doc := fmt.Sprintf(`connections:
  - id: %s
    halo:
      base_url: %s
      client_id: %s
      client_secret: %s
    poll: {mode: webhook}
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: [%q]
      manage:
        url: %s
        backup_url: %s
        events:
          - {name: new ticket logged, eventno: 1}
          - {name: ticket status changed, eventno: 3}
          - ticket updated
`, conn, tenant.URL(), tenant.Options().ClientID, tenant.Options().ClientSecret, secret, primaryURL, backupURL)
	cfgFile := filepath.Join(t.TempDir(), "halosync.yaml")
	if err := os.WriteFile(cfgFile, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	ingestFn := startConfigured(t, s, "ingest", cfgFile, warmupIngest)
	workerFn := startConfigured(t, s, "worker", cfgFile, events.SQSEvent{Records: []events.SQSMessage{}})
	backup := httptest.NewUnstartedServer(&apiGateway{t: t, fn: ingestFn, functionURL: true})
	backup.Listener.Close()
	backup.Listener = l
	backup.Start()
	t.Cleanup(backup.Close)
	p := newPlayer(t, s.queue, workerFn, s.player.arn)
	p.wait = 100 * time.Millisecond

	// `halosync webhooks apply`, without its probe (the primary refuses): two webhooks.
	cfg, err := config.Load(t.Context(), cfgFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := webhooks.SpecsFromConfig(cfg.Connections[0])
	if err != nil || len(specs) != 2 {
		t.Fatalf("specs %v %v, want the primary and the backup", specs, err)
	}
	client, err := haloapi.FromConfig(cfg.Connections[0].Halo, nil)
	if err != nil {
		t.Fatal(err)
	}
	mgr := &webhooks.Manager{API: client}
	var senders []*halosim.Sender
	for i, spec := range specs {
		plan, err := mgr.Plan(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		id, err := mgr.Apply(t.Context(), plan)
		if err != nil {
			t.Fatalf("apply %s: %v", spec.Name, err)
		}
		// Halo's sender for each webhook; the backup's re-sends some deliveries byte for
		// byte (a retry: the same message ids).
		opts := halosim.SenderOptions{PayloadType: halosim.PayloadFull, Rand: rand.New(rand.NewPCG(uint64(i)+1, 77))}
		if spec.Endpoint == change.EndpointBackup {
			opts.DuplicateRate = 0.3
		}
		sender, err := tenant.WebhookSender(id, opts)
		if err != nil {
			t.Fatal(err)
		}
		senders = append(senders, sender)
	}
	primary, backupSender := senders[0], senders[1]

	// The scenario: tickets change one at a time; Halo delivers each change to both
	// webhooks; the event source mapping drains the queue before the next change, so the
	// outcomes do not depend on the order of a batch.
	rng := rand.New(rand.NewPCG(31, 41))
	tenant.Seed(rng, 4)
	touched := map[int64]bool{}
	start := time.Now()
	for i := range 15 {
		ct := []halosim.ChangeType{halosim.NewTicket, halosim.ChangeStatus, halosim.UpdateTicket}[i%3]
		e, ok := tenant.Do(rng, ct)
		if !ok {
			t.Fatalf("no %s change possible", ct)
		}
		touched[e.ObjectID] = true
		for _, sender := range senders {
			if n := sender.Send(e); n != 1 {
				t.Fatalf("the %s sender queued %d events: the webhook is not subscribed to %q", sender.WebhookID(), n, e.Name)
			}
			if _, err := sender.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		p.runUntil(30*time.Second, "the queue drained", func() bool { return s.depth(t, s.qURL) == 0 })
	}
	t.Logf("15 changes delivered and drained in %v", time.Since(start).Round(time.Millisecond))

	ps, bs := primary.Stats(), backupSender.Stats()
	if ps.Sent != 0 || ps.Failed != 15 || bs.Failed != 0 || bs.Sent != 15+bs.Duplicated || bs.Duplicated == 0 {
		t.Fatalf("primary sender %+v, backup sender %+v: want every primary delivery refused, every backup one accepted, some sent twice", ps, bs)
	}

	// Nothing missed: every ticket is in the table as the tenant has it now.
	for id := range touched {
		tk, _ := tenant.Object(change.Ticket, id)
		obj, ok, err := s.store.Get(t.Context(), conn, change.Ticket, fmt.Sprint(id), "")
		if err != nil {
			t.Fatal(err)
		}
		if !ok || fmt.Sprint(obj.Fields["last_update"]) != fmt.Sprint(tk["last_update"]) || fmt.Sprint(obj.Fields["status_id"]) != fmt.Sprint(tk["status_id"]) {
			t.Errorf("ticket %d: the table holds %v (found %v), the tenant %v", id, obj.Fields, ok, tk)
		}
	}

	// Nothing applied twice: each delivery's record says applied, through the backup;
	// the worker applied exactly the changes those records name, and every redelivery's
	// changes were duplicates.
	ids := map[string]bool{}
	for _, d := range backupSender.Deliveries() {
		var ev struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(d.Body, &ev); err != nil || ev.ID == "" {
			t.Fatalf("delivery body %s: %v", d.Body, err)
		}
		ids[ev.ID] = true
	}
	records := 0
	for id := range ids {
		recs, err := s.store.Deliveries(t.Context(), conn, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			t.Errorf("delivery %s has no record", id)
		}
		for _, r := range recs {
			if r.Endpoint != change.EndpointBackup || r.Outcome != change.Applied {
				t.Errorf("delivery %s, %s %s: endpoint %q outcome %q, want backup and applied", id, r.Kind, r.ID, r.Endpoint, r.Outcome)
			}
		}
		records += len(recs)
	}
	ingested := awaitTotal(t, ingestFn, metrics.DeliveriesByEndpoint, int64(bs.Sent))
	if n := ingested[metrics.Metric{Name: metrics.DeliveriesByEndpoint, Connection: conn, Label: change.EndpointBackup}]; n != int64(bs.Sent) {
		t.Errorf("DeliveriesByEndpoint{backup} = %d, want %d:%s", n, bs.Sent, ingested.only(metrics.DeliveriesByEndpoint))
	}
	enqueued := ingested[metrics.Metric{Name: metrics.ChangesEnqueued, Connection: conn}]
	worked := awaitTotal(t, workerFn, metrics.ChangesApplied, enqueued)
	applied := worked[metrics.Metric{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Applied)}]
	duplicate := worked[metrics.Metric{Name: metrics.ChangesApplied, Connection: conn, Label: string(change.Duplicate)}]
	if applied != int64(records) || applied+duplicate != enqueued || duplicate < int64(bs.Duplicated) {
		t.Errorf("the worker applied %d and found %d duplicates of %d changes; the deliveries' records name %d changes, %d deliveries were sent twice:%s",
			applied, duplicate, enqueued, records, bs.Duplicated, worked.only(metrics.ChangesApplied))
	}
	if d := s.depth(t, s.dlqURL); d != 0 {
		t.Errorf("%d messages on the dead-letter queue", d)
	}

	// `halosync webhooks status`: Halo's delivery log names the primary as failing.
	var sts []webhooks.Status
	for _, spec := range specs {
		st, err := mgr.Status(t.Context(), spec, start.Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	failing := webhooks.FailingEndpoints(sts)
	if want := conn + " primary (" + primaryURL + ")"; len(failing) != 1 || failing[0] != want {
		t.Errorf("failing endpoints %q, want [%q]", failing, want)
	}
	if sts[1].Failing || sts[1].Deliveries == nil || sts[1].Deliveries.Succeeded != bs.Sent {
		t.Errorf("the backup's status %+v %+v, want healthy with %d deliveries", sts[1], sts[1].Deliveries, bs.Sent)
	}
}
