package webhooks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/halotest"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/webhooks"
)

const (
	secret     = "correct-horse-battery-staple-42"
	hmacSecret = "signing-secret-for-the-body-7"
	endpoint   = "https://hooks.example.test/webhooks/halo/acme"
)

// setup is a fake tenant, a client of it, and the connection's Spec as parsed from YAML.
type setup struct {
	t      *testing.T
	tenant *halosim.Tenant
	client *haloapi.Client
	spec   webhooks.Spec
	specs  []webhooks.Spec // every webhook the connection manages: spec, then a backup
	mgr    *webhooks.Manager
}

// manageYAML is the connection's webhook.manage block (indented under webhook:).
const manageYAML = `
      manage:
        url: ` + endpoint + `
        events:
          - {name: ticket status changed, eventno: 3}
          - ticket updated
          - {name: new ticket logged, eventno: 1}
        batching: {method: count, limit: 50}
        payload_type: 0
`

func newSetup(t *testing.T, opts halosim.Options, manage string) *setup {
	t.Helper()
	tn := halotest.Start(t, opts)
	doc := fmt.Sprintf(`connections:
  - id: acme
    halo:
      base_url: %s
      client_id: %s
      client_secret: %s
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["an-old-password-1", %q]
        - scheme: hmac
          header: Token
          secrets: [%q]%s`, tn.URL(), tn.Options().ClientID, tn.Options().ClientSecret, secret, hmacSecret, manage)
	cfg, err := config.Parse(context.Background(), []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := webhooks.SpecsFromConfig(cfg.Connections[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := haloapi.NewClient(haloapi.ClientOptions{
		BaseURL: tn.URL(), ClientID: tn.Options().ClientID, ClientSecret: tn.Options().ClientSecret,
		Budget: haloapi.NewBudget(100000, time.Minute, nil), MaxRetries: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &setup{t: t, tenant: tn, client: c, spec: specs[0], specs: specs, mgr: &webhooks.Manager{API: c}}
}

func (s *setup) apply() string {
	s.t.Helper()
	p, err := s.mgr.Plan(context.Background(), s.spec)
	if err != nil {
		s.t.Fatal(err)
	}
	id, err := s.mgr.Apply(context.Background(), p)
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

func (s *setup) plan() webhooks.Plan {
	s.t.Helper()
	p, err := s.mgr.Plan(context.Background(), s.spec)
	if err != nil {
		s.t.Fatal(err)
	}
	return p
}

// writes are the requests that changed something, since the last ResetRequests.
func (s *setup) writes() []string {
	var out []string
	for _, r := range s.tenant.Requests() {
		if r.Method != http.MethodGet && !strings.HasPrefix(strings.ToLower(r.Path), "/auth") {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// raw POSTs an array to the fake's /api/Webhook as another Halo user would (or Halo
// itself, disabling a webhook).
func (s *setup) raw(path, body string) {
	s.t.Helper()
	o := s.tenant.Options()
	resp, err := http.PostForm(s.tenant.URL()+"/auth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {o.ClientID}, "client_secret": {o.ClientSecret}, "scope": {"all"},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, s.tenant.URL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		s.t.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}

func text(v any) string { return fmt.Sprint(v) }

func eventNos(ns []map[string]any) []string {
	var out []string
	for _, n := range ns {
		out = append(out, text(n["eventno"]))
	}
	slices.Sort(out)
	return out
}

// TestApplyFromNothing: the webhook is created as Halo's API expects, with the
// configuration's URL, authentication, payload and batching, and subscribed to every
// configured event; the numbers of known events come from the catalogue.
func TestApplyFromNothing(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	p := s.plan()
	if !p.Create || !p.SecretChange || len(p.Subscribe) != 3 || !p.Changes() {
		t.Fatalf("plan %+v", p)
	}
	lines := strings.Join(p.Lines(), "\n")
	if !strings.Contains(lines, `+ create webhook "halosync:acme"`) || !strings.Contains(lines, `(eventno 61)`) || strings.Contains(lines, secret) {
		t.Fatalf("plan lines:\n%s", lines)
	}
	if len(s.tenant.Webhooks()) != 0 {
		t.Fatal("planning changed Halo")
	}
	id := s.apply()
	w, ok := s.tenant.Webhook(id)
	if !ok {
		t.Fatal("no webhook")
	}
	want := map[string]string{
		"name": "halosync:acme", "url": endpoint, "type": "0", "method": "0", "content_type": "application/json",
		"active": "true", "authentication_type": "1", "basic_username": "halo", "basic_password": secret,
		"payload_type": "0", "batch_method": "2", "batch_limit": "50",
	}
	for k, v := range want {
		if got := text(w[k]); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if note := text(w["note"]); !strings.Contains(note, "secret-fingerprint="+s.spec.Auth.Fingerprint()) || strings.Contains(note, secret) {
		t.Errorf("note %q", note)
	}
	ns := s.tenant.Notifications(id)
	if got := eventNos(ns); !reflect.DeepEqual(got, []string{"1", "3", "61"}) {
		t.Fatalf("subscribed to %v", got)
	}
	for _, n := range ns {
		if text(n["type"]) != "-2" || text(n["delivery_method"]) != "6" || !strings.HasPrefix(text(n["name"]), "halosync: ") {
			t.Fatalf("notification %v", n)
		}
	}
}

// TestApplyTwiceChangesNothing: a second apply plans nothing and sends no write.
func TestApplyTwiceChangesNothing(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	id := s.apply()
	before := s.tenant.Webhooks()
	s.tenant.ResetRequests()
	p := s.plan()
	if p.Changes() || p.WebhookID != id || !reflect.DeepEqual(p.Lines(), []string{"no change"}) {
		t.Fatalf("second plan: %+v %v", p, p.Lines())
	}
	if got, err := s.mgr.Apply(context.Background(), p); err != nil || got != id {
		t.Fatalf("second apply: %q %v", got, err)
	}
	if w := s.writes(); len(w) != 0 {
		t.Fatalf("a second apply wrote: %v", w)
	}
	if !reflect.DeepEqual(before, s.tenant.Webhooks()) {
		t.Fatal("a second apply changed the webhook")
	}
}

// TestDriftRepaired: changes made in Halo (URL, user, password, events, a second webhook
// of our name) are planned and undone, after which nothing is left to do.
func TestDriftRepaired(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	id := s.apply()
	ns := s.tenant.Notifications(id)
	s.raw("/api/Webhook", `[{"id":"`+id+`","url":"https://evil.test/x","basic_username":"admin","basic_password":"changed-in-halo","batch_method":0}]`)
	s.raw("/api/Notification", `[{"webhook_id":"`+id+`","eventno":999,"name":"extra"},{"webhook_id":"`+id+`","eventno":61,"name":"second"}]`)
	for _, n := range ns {
		if text(n["eventno"]) == "3" {
			if err := s.client.DeleteNotification(context.Background(), text(n["id"])); err != nil {
				t.Fatal(err)
			}
		}
	}
	dup := s.tenant.AddWebhook(map[string]any{"name": "halosync:acme", "url": endpoint, "active": true})

	p := s.plan()
	fields := map[string]bool{}
	for _, c := range p.Update {
		fields[c.Field] = true
		if strings.Contains(c.From+c.To, secret) || strings.Contains(c.From+c.To, "changed-in-halo") {
			t.Fatalf("a plan shows a secret: %+v", c)
		}
	}
	for _, f := range []string{"url", "basic_username", "secret", "batch_method"} {
		if !fields[f] {
			t.Errorf("drift of %s not planned: %+v", f, p.Update)
		}
	}
	if !p.SecretChange || len(p.Subscribe) != 1 || p.Subscribe[0].No != 3 || len(p.Unsubscribe) != 2 || !slices.Equal(p.Duplicates, []string{dup}) {
		t.Fatalf("plan %+v", p)
	}
	if got := s.apply(); got != id {
		t.Fatalf("apply kept %s, want %s", got, id)
	}
	if p := s.plan(); p.Changes() {
		t.Fatalf("after repair: %v", p.Lines())
	}
	w, _ := s.tenant.Webhook(id)
	if text(w["url"]) != endpoint || text(w["basic_password"]) != secret || text(w["basic_username"]) != "halo" {
		t.Fatalf("not repaired: %v", w)
	}
	if got := eventNos(s.tenant.Notifications(id)); !reflect.DeepEqual(got, []string{"1", "3", "61"}) {
		t.Fatalf("events %v", got)
	}
	if _, ok := s.tenant.Webhook(dup); ok {
		t.Fatal("the duplicate is still there")
	}
}

// foreign makes webhooks that are not ours, some named like ours, with subscriptions.
func foreign(t *testing.T, tn *halosim.Tenant) {
	t.Helper()
	for _, name := range []string{"someone else", "halosync:other", "halosync:acme-old", "HALOSYNC:ACME", "halosync:acme:2"} {
		id := tn.AddWebhook(map[string]any{"name": name, "url": endpoint, "active": true, "authentication_type": 1, "basic_username": "halo", "basic_password": "theirs"})
		if _, err := tn.Subscribe(id, 3); err != nil {
			t.Fatal(err)
		}
		if _, err := tn.Subscribe(id, 999); err != nil {
			t.Fatal(err)
		}
	}
}

// TestForeignWebhooksUntouched: apply, drift repair, repair and remove leave every webhook
// with another name, and its subscriptions, exactly as they were.
func TestForeignWebhooksUntouched(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	foreign(t, s.tenant)
	before, beforeN := s.tenant.Webhooks(), s.tenant.Notifications("")
	id := s.apply()
	s.raw("/api/Webhook", `[{"id":"`+id+`","active":false,"url":"https://evil.test/"}]`)
	s.apply()
	r := &webhooks.Repairer{Manager: s.mgr, Spec: s.spec}
	if _, err := r.CheckNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.mgr.Remove(context.Background(), s.spec, false); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, s.tenant.Webhooks()) {
		t.Fatalf("foreign webhooks changed:\n%v\n%v", before, s.tenant.Webhooks())
	}
	if !reflect.DeepEqual(beforeN, s.tenant.Notifications("")) {
		t.Fatal("foreign subscriptions changed")
	}
}

// TestRemove deletes our webhook and its subscriptions only; a dry run deletes nothing.
func TestRemove(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	foreign(t, s.tenant)
	id := s.apply()
	r, err := s.mgr.Remove(context.Background(), s.spec, true)
	if err != nil || !slices.Equal(r.Webhooks, []string{id}) || r.Notifications != 3 {
		t.Fatalf("dry run: %+v %v", r, err)
	}
	if _, ok := s.tenant.Webhook(id); !ok {
		t.Fatal("a dry run deleted")
	}
	if r, err = s.mgr.Remove(context.Background(), s.spec, false); err != nil || len(r.Webhooks) != 1 {
		t.Fatalf("remove: %+v %v", r, err)
	}
	if _, ok := s.tenant.Webhook(id); ok || len(s.tenant.Notifications(id)) != 0 {
		t.Fatal("ours is still there")
	}
	if len(s.tenant.Webhooks()) != 5 || len(s.tenant.Notifications("")) != 10 {
		t.Fatal("foreign webhooks were removed")
	}
	if r, err = s.mgr.Remove(context.Background(), s.spec, false); err != nil || len(r.Webhooks) != 0 {
		t.Fatalf("remove again: %+v %v", r, err)
	}
}

// TestPermissionErrors: without the right to manage webhooks, apply stops at its first
// read with an error that names what to grant; a refusal part way through a create
// deletes what was made, so nothing half-created is left.
func TestPermissionErrors(t *testing.T) {
	s := newSetup(t, halosim.Options{DenyWebhookManagement: true}, manageYAML)
	_, err := s.mgr.Plan(context.Background(), s.spec)
	if !errors.Is(err, haloapi.ErrForbidden) || !strings.Contains(err.Error(), "connection acme") ||
		!strings.Contains(err.Error(), "Webhooks") || !strings.Contains(err.Error(), `scope "all"`) {
		t.Fatalf("plan: %v", err)
	}
	for _, op := range []func() error{
		func() error {
			_, err := s.mgr.Status(context.Background(), s.spec, time.Now().Add(-time.Hour))
			return err
		},
		func() error { _, err := s.mgr.Remove(context.Background(), s.spec, false); return err },
		func() error {
			_, err := s.mgr.Replay(context.Background(), s.spec, nil, webhooks.ReplayOptions{Since: time.Now().Add(-time.Hour)})
			return err
		},
	} {
		if err := op(); !errors.Is(err, haloapi.ErrForbidden) {
			t.Fatalf("err = %v", err)
		}
	}
	s.tenant.SetWebhookAccess(true)

	// The webhook is made, then subscribing it is refused: it is deleted again.
	p := s.plan()
	s.tenant.FailNext(1, halosim.Fault{Status: http.StatusForbidden, Body: `{"error":"you do not have permission to manage notifications"}`, Path: "/api/notification"})
	_, err = s.mgr.Apply(context.Background(), p)
	if !errors.Is(err, haloapi.ErrForbidden) || !strings.Contains(err.Error(), "nothing was left behind") {
		t.Fatalf("apply: %v", err)
	}
	if n := len(s.tenant.Webhooks()); n != 0 {
		t.Fatalf("%d webhooks left behind", n)
	}
	// The create itself is refused.
	s.tenant.FailNext(1, halosim.Fault{Status: http.StatusForbidden, Path: "/api/webhook"})
	if _, err := s.mgr.Apply(context.Background(), p); !errors.Is(err, haloapi.ErrForbidden) {
		t.Fatalf("apply: %v", err)
	}
	if n := len(s.tenant.Webhooks()) + len(s.tenant.Notifications("")); n != 0 {
		t.Fatalf("%d things left behind", n)
	}
	// A lost answer to the create (Halo saved it, the client saw a failure): found by
	// name and deleted.
	lost := &webhooks.Manager{API: lostAnswer{s.client}}
	if _, err := lost.Apply(context.Background(), p); err == nil || !strings.Contains(err.Error(), "nothing was left behind") {
		t.Fatalf("apply with a lost answer: %v", err)
	}
	if n := len(s.tenant.Webhooks()); n != 0 {
		t.Fatalf("%d webhooks left behind", n)
	}
	// The delete that undoes a create is refused too: the error says what is left.
	stuck := &webhooks.Manager{API: noDelete{s.client}}
	s.tenant.FailNext(1, halosim.Fault{Status: http.StatusForbidden, Path: "/api/notification"})
	if _, err := stuck.Apply(context.Background(), p); !errors.Is(err, webhooks.ErrLeftBehind) || !strings.Contains(err.Error(), "delete it in Halo") {
		t.Fatalf("undo refused: %v", err)
	}
	for _, w := range s.tenant.Webhooks() {
		s.tenant.DeleteWebhook(text(w["id"]))
	}
	id := s.apply()
	if id == "" {
		t.Fatal("no webhook after the rights were granted")
	}
	// Refused part way through changing an existing webhook: ErrPartial, and the next
	// apply finishes it.
	s.raw("/api/Webhook", `[{"id":"`+id+`","url":"https://evil.test/"}]`)
	for _, n := range s.tenant.Notifications(id) {
		if err := s.client.DeleteNotification(context.Background(), text(n["id"])); err != nil {
			t.Fatal(err)
		}
	}
	p = s.plan()
	s.tenant.FailNext(1, halosim.Fault{Status: http.StatusForbidden, Path: "/api/notification"})
	if _, err := s.mgr.Apply(context.Background(), p); !errors.Is(err, webhooks.ErrPartial) || !errors.Is(err, haloapi.ErrForbidden) {
		t.Fatalf("partial: %v", err)
	}
	if w, _ := s.tenant.Webhook(id); text(w["url"]) != endpoint {
		t.Fatal("the first step was not made")
	}
	s.apply()
	if p := s.plan(); p.Changes() {
		t.Fatalf("after finishing: %v", p.Lines())
	}
}

// noDelete refuses deletes.
type noDelete struct{ *haloapi.Client }

func (noDelete) DeleteWebhook(context.Context, string) error {
	return errors.New("halo: delete webhook: forbidden (HTTP 403)")
}

// lostAnswer saves webhooks but reports a failure, as when Halo's answer is lost.
type lostAnswer struct{ *haloapi.Client }

func (l lostAnswer) SaveWebhook(ctx context.Context, s haloapi.WebhookSpec) (haloapi.Webhook, error) {
	if _, err := l.Client.SaveWebhook(ctx, s); err != nil {
		return haloapi.Webhook{}, err
	}
	return haloapi.Webhook{}, errors.New("no answer within 30s")
}

// TestProbeGuardsTheSecret: Halo is not given credentials our endpoint refuses.
func TestProbeGuardsTheSecret(t *testing.T) {
	accept := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); ok && pw == accept && r.URL.Path == "/webhooks/halo/acme" {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"status":"accepted","changes":0}`))
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	s := newSetup(t, halosim.Options{}, strings.Replace(manageYAML, endpoint, srv.URL+"/webhooks/halo/acme", 1))
	s.mgr.Probe = webhooks.ProbeSpec(nil)
	_, err := s.mgr.Apply(context.Background(), s.plan())
	if !errors.Is(err, webhooks.ErrSecretRefused) || !strings.Contains(err.Error(), "Halo was not changed") || strings.Contains(err.Error(), secret) {
		t.Fatalf("apply: %v", err)
	}
	if len(s.tenant.Webhooks()) != 0 {
		t.Fatal("Halo was changed")
	}
	accept = secret
	id := s.apply()
	// The secret rotates: the new one is refused until the endpoint knows it.
	s.spec.Auth.Secret = "the-next-secret-value-2"
	p := s.plan()
	if !p.SecretChange {
		t.Fatalf("plan %+v", p)
	}
	if _, err := s.mgr.Apply(context.Background(), p); !errors.Is(err, webhooks.ErrSecretRefused) {
		t.Fatalf("rotate: %v", err)
	}
	if w, _ := s.tenant.Webhook(id); text(w["basic_password"]) != secret {
		t.Fatal("Halo got a secret the endpoint refuses")
	}
	accept = s.spec.Auth.Secret
	s.apply()
	if w, _ := s.tenant.Webhook(id); text(w["basic_password"]) != accept {
		t.Fatal("not rotated")
	}
}

// TestRepairer: an auto-disabled webhook is re-enabled, counted and logged; off only
// reports; reapply undoes drift and recreates a deleted webhook; checks are spaced.
func TestRepairer(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	id := s.apply()
	s.raw("/api/Webhook", `[{"id":"`+id+`","active":false,"disabled":true,"url":"https://evil.test/"}]`)
	counts := metrics.NewMemory()
	var logs bytes.Buffer
	now := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	r := &webhooks.Repairer{Manager: s.mgr, Spec: s.spec, Count: counts, Log: slog.New(slog.NewJSONHandler(&logs, nil)), Now: func() time.Time { return now }}

	s.spec.Repair = config.RepairOff
	r.Spec = s.spec
	rep, err := r.Check(context.Background())
	if err != nil || !rep.Checked || rep.Healthy || rep.Action != "" || !slices.Equal(rep.Findings, []string{"disabled", "drifted"}) {
		t.Fatalf("off: %+v %v", rep, err)
	}
	if w, _ := s.tenant.Webhook(id); text(w["active"]) != "false" {
		t.Fatal("off changed the webhook")
	}
	if rep, _ := r.Check(context.Background()); rep.Checked {
		t.Fatal("checked again within the period")
	}

	s.spec.Repair = config.RepairReEnable
	r.Spec = s.spec
	rep, err = r.CheckNow(context.Background())
	if err != nil || rep.Action != "re-enabled" {
		t.Fatalf("re-enable: %+v %v", rep, err)
	}
	w, _ := s.tenant.Webhook(id)
	if text(w["active"]) != "true" || text(w["disabled"]) != "false" || text(w["url"]) != "https://evil.test/" {
		t.Fatalf("re-enabled %v (the drift stays for re-enable)", w)
	}
	if n := counts.Value(metrics.Metric{Name: webhooks.MetricRepaired, Connection: "acme", Label: "re-enabled"}); n != 1 {
		t.Fatalf("repaired counted %d", n)
	}
	if n := counts.Value(metrics.Metric{Name: webhooks.MetricUnhealthy, Connection: "acme", Label: "disabled"}); n != 2 {
		t.Fatalf("disabled counted %d", n)
	}

	s.spec.Repair = config.RepairReapply
	r.Spec = s.spec
	if rep, err = r.CheckNow(context.Background()); err != nil || rep.Action != "reapplied" {
		t.Fatalf("reapply: %+v %v", rep, err)
	}
	if p := s.plan(); p.Changes() {
		t.Fatalf("after reapply: %v", p.Lines())
	}
	s.tenant.DeleteWebhook(id)
	if rep, err = r.CheckNow(context.Background()); err != nil || rep.Action != "reapplied" || !slices.Equal(rep.Findings, []string{"missing"}) {
		t.Fatalf("recreate: %+v %v", rep, err)
	}
	if rep, err = r.CheckNow(context.Background()); err != nil || !rep.Healthy {
		t.Fatalf("healthy: %+v %v", rep, err)
	}

	s.tenant.SetWebhookAccess(false)
	if _, err := r.CheckNow(context.Background()); !errors.Is(err, haloapi.ErrForbidden) {
		t.Fatalf("forbidden: %v", err)
	}
	if n := counts.Value(metrics.Metric{Name: webhooks.MetricCheckFailed, Connection: "acme", Label: "forbidden"}); n != 1 {
		t.Fatalf("failed check counted %d", n)
	}
	for _, want := range []string{`"msg":"webhook unhealthy"`, `"msg":"webhook repaired"`, `"action":"re-enabled"`, `"msg":"webhook check failed"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the log holds the secret")
	}
}

// TestCheckForThePoller: the poller's check of a managed webhook re-enables a disabled one
// and reports it unhealthy (the poller then falls back at once); an unmanaged connection
// has no check.
func TestCheckForThePoller(t *testing.T) {
	s := newSetup(t, halosim.Options{}, manageYAML)
	id := s.apply()
	conn := config.Connection{ID: "acme"}
	if check, err := webhooks.CheckFor(conn, s.client, nil, nil); err != nil || check != nil {
		t.Fatalf("unmanaged connection: %v, %v", check != nil, err)
	}
	conn.Webhook = config.Webhook{Manage: &config.WebhookManage{URL: endpoint}, Auth: []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"an-old-password-1", "a-new-password-22"}}}}
	s.raw("/api/Webhook", `[{"id":"`+id+`","active":false,"disabled":true}]`)
	check, err := webhooks.CheckFor(conn, s.client, metrics.NewMemory(), nil)
	if err != nil || check == nil {
		t.Fatalf("managed connection: %v", err)
	}
	if checked, healthy := check(context.Background()); !checked || healthy {
		t.Fatalf("disabled webhook: checked %v healthy %v", checked, healthy)
	}
	if w, _ := s.tenant.Webhook(id); text(w["active"]) != "true" {
		t.Fatalf("the check did not re-enable the webhook: %v", w)
	}
	if checked, _ := check(context.Background()); checked {
		t.Fatal("checked again within the check period")
	}
}

// TestCheckForBothWebhooks: with a backup webhook the poller's check covers both and
// re-enables each; the webhooks count as healthy while either is, since Halo still
// delivers every change through it, and unhealthy when both are down.
func TestCheckForBothWebhooks(t *testing.T) {
	const backupURL = "https://x7yz.lambda-url.eu-west-2.on.aws/webhooks/halo/acme"
	s := newSetup(t, halosim.Options{}, manageYAML+"        backup_url: "+backupURL+"\n")
	ids := map[string]string{}
	for _, spec := range s.specs {
		p, err := s.mgr.Plan(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		if ids[spec.Endpoint], err = s.mgr.Apply(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	manage := &config.WebhookManage{URL: endpoint, BackupURL: backupURL, Repair: config.RepairOff, CheckMinutes: 1,
		Events:   []config.ManagedEvent{{Name: "ticket status changed", EventNo: 3}, {Name: "ticket updated"}, {Name: "new ticket logged", EventNo: 1}},
		Batching: config.WebhookBatching{Method: "count", Limit: 50}, PayloadType: s.spec.PayloadType}
	conn := config.Connection{ID: "acme", Webhook: config.Webhook{Manage: manage,
		Auth: []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"an-old-password-1", secret}}}}}
	// A new check each time: one check is due at most every check period.
	checkNow := func() (bool, bool) {
		t.Helper()
		check, err := webhooks.CheckFor(conn, s.client, nil, nil)
		if err != nil || check == nil {
			t.Fatalf("managed connection: %v", err)
		}
		return check(context.Background())
	}
	if checked, healthy := checkNow(); !checked || !healthy {
		t.Fatalf("both healthy: checked %v healthy %v", checked, healthy)
	}
	s.raw("/api/Webhook", `[{"id":"`+ids[change.EndpointPrimary]+`","active":false,"disabled":true}]`)
	if checked, healthy := checkNow(); !checked || !healthy {
		t.Fatalf("the primary disabled, the backup healthy: checked %v healthy %v", checked, healthy)
	}
	s.raw("/api/Webhook", `[{"id":"`+ids[change.EndpointBackup]+`","active":false,"disabled":true}]`)
	if checked, healthy := checkNow(); !checked || healthy {
		t.Fatalf("both disabled: checked %v healthy %v", checked, healthy)
	}
}
