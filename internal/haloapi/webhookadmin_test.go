package haloapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/halosim"
)

const hookSecret = "a-webhook-secret-value-1234"

func hookSpec(name string) haloapi.WebhookSpec {
	pt := 2
	return haloapi.WebhookSpec{
		Name: name, URL: "https://example.test/webhooks/halo/acme", Note: "ours",
		AuthenticationType: haloapi.WebhookAuthBasic, BasicUsername: "halo", BasicPassword: hookSecret,
		PayloadType: &pt,
	}
}

// TestWebhookLifecycle: create, list, update, enable, subscribe, list subscriptions,
// delete a subscription, delete the webhook, against the fake tenant.
func TestWebhookLifecycle(t *testing.T) {
	tn, clk := fakeTenant(t, halosim.Options{})
	c := fakeClient(t, tn, clk, nil)
	ctx := context.Background()

	w, err := c.SaveWebhook(ctx, hookSpec("halosync:acme"))
	if err != nil {
		t.Fatal(err)
	}
	if w.ID == "" || w.Name != "halosync:acme" || !w.Enabled() || w.AuthenticationType != 1 || w.BasicUsername != "halo" || w.PayloadType != 2 {
		t.Fatalf("created %+v", w)
	}
	stored, _ := tn.Webhook(w.ID)
	for k, want := range map[string]any{"type": "0", "method": "0", "content_type": "application/json", "basic_password": hookSecret, "url": "https://example.test/webhooks/halo/acme"} {
		if got := strings.TrimSpace(strings.Trim(jsonText(stored[k]), `"`)); got != want {
			t.Errorf("stored %s = %q, want %q", k, got, want)
		}
	}
	if _, ok := w.Fields["basic_password"]; ok {
		t.Error("Fields keeps the password")
	}
	if strings.Contains(w.String(), hookSecret) || strings.Contains(fmtGo(w), hookSecret) {
		t.Error("the webhook prints its password")
	}

	other := tn.AddWebhook(map[string]any{"name": "someone else", "url": "https://other.test/", "active": true})
	all, err := c.Webhooks(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("list: %v %v", all, err)
	}

	spec := hookSpec("halosync:acme")
	spec.ID, spec.URL = w.ID, "https://example.test/webhooks/halo/acme2"
	if w, err = c.SaveWebhook(ctx, spec); err != nil || w.URL != spec.URL {
		t.Fatalf("update: %+v %v", w, err)
	}
	if n := len(tn.Webhooks()); n != 2 {
		t.Fatalf("an update made a webhook: %d", n)
	}

	postJSON(t, tn, c, `[{"id":"`+w.ID+`","active":false,"disabled":true}]`)
	if got, _ := c.Webhooks(ctx); got[0].Enabled() {
		t.Fatal("the webhook is still enabled")
	}
	if w, err = c.EnableWebhook(ctx, w.ID); err != nil || !w.Enabled() {
		t.Fatalf("enable: %+v %v", w, err)
	}

	subs, err := c.Subscribe(ctx, w.ID, []haloapi.NotificationSpec{{EventNo: 61, Name: "ticket updated"}, {EventNo: 3, Name: "status"}})
	if err != nil || len(subs) != 2 || subs[0].EventNo != 61 || subs[0].WebhookID != w.ID || subs[0].ID == "" {
		t.Fatalf("subscribe: %+v %v", subs, err)
	}
	if _, err := tn.Subscribe(other, 61); err != nil {
		t.Fatal(err)
	}
	got, err := c.Notifications(ctx, w.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("notifications: %+v %v", got, err)
	}
	n := tn.Notifications(w.ID)[0]
	if jsonText(n["type"]) != "-2" || jsonText(n["delivery_method"]) != "6" {
		t.Fatalf("notification %v", n)
	}
	if err := c.DeleteNotification(ctx, got[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNotification(ctx, got[0].ID); !errors.Is(err, haloapi.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := c.TestWebhook(ctx, w.ID); err != nil {
		t.Fatalf("test: %v", err)
	}
	if err := c.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteWebhook(ctx, w.ID); !errors.Is(err, haloapi.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, ok := tn.Webhook(other); !ok || len(tn.Notifications(other)) != 1 {
		t.Fatal("the other webhook was touched")
	}
}

// TestWebhookForbidden: a 403 is ErrForbidden and says what to grant, for a role without
// the right and for a token without the scope.
func TestWebhookForbidden(t *testing.T) {
	tn, clk := fakeTenant(t, halosim.Options{DenyWebhookManagement: true})
	c := fakeClient(t, tn, clk, nil)
	_, err := c.Webhooks(context.Background())
	if !errors.Is(err, haloapi.ErrForbidden) || !strings.Contains(err.Error(), "Configuration > Integrations > Webhooks") || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.SaveWebhook(context.Background(), hookSpec("x")); !errors.Is(err, haloapi.ErrForbidden) {
		t.Fatalf("save: %v", err)
	}
	if len(tn.Webhooks()) != 0 {
		t.Fatal("a refused save made a webhook")
	}

	scoped, clk2 := fakeTenant(t, halosim.Options{})
	c2 := fakeClient(t, scoped, clk2, func(o *haloapi.ClientOptions) { o.Scope = "read:tickets" })
	if _, err := c2.Webhooks(context.Background()); !errors.Is(err, haloapi.ErrForbidden) || !strings.Contains(err.Error(), `scope \"all\"`) && !strings.Contains(err.Error(), `scope "all"`) {
		t.Fatalf("scoped: %v", err)
	}
}

// TestWebhookErrorsHideTheSecret: Halo echoing the password in a refusal does not put it
// in the error.
func TestWebhookErrorsHideTheSecret(t *testing.T) {
	tn, clk := fakeTenant(t, halosim.Options{})
	tn.FailNext(1, halosim.Fault{Status: 400, Body: `{"message":"password ` + hookSecret + ` is not allowed"}`, Path: "/api/webhook"})
	c := fakeClient(t, tn, clk, nil)
	_, err := c.SaveWebhook(context.Background(), hookSpec("halosync:acme"))
	if err == nil || !errors.Is(err, haloapi.ErrPermanent) || strings.Contains(err.Error(), hookSecret) || !strings.Contains(err.Error(), "[secret]") {
		t.Fatalf("err = %v", err)
	}
}

// TestWebhookEventsPages: the delivery log is read page by page (Halo's 100 cap), newest
// first, bare arrays and envelopes alike, and ErrStopPaging ends it quietly.
func TestWebhookEventsPages(t *testing.T) {
	for _, envelope := range []bool{false, true} {
		tn, clk := fakeTenant(t, halosim.Options{EnvelopeManagementLists: envelope})
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.Header.Get("Authorization"), "Basic") {
				w.WriteHeader(200)
				return
			}
			w.WriteHeader(401)
		}))
		t.Cleanup(rcv.Close)
		rng := rand.New(rand.NewPCG(1, 2))
		tn.Seed(rng, 3)
		id := tn.AddWebhook(map[string]any{"name": "h", "url": rcv.URL, "active": true, "authentication_type": 1, "basic_username": "u", "basic_password": "p"})
		s, err := tn.WebhookSender(id, halosim.SenderOptions{DropRate: 0.2, Rand: rand.New(rand.NewPCG(3, 4))})
		if err != nil {
			t.Fatal(err)
		}
		s.Send(tn.Run(rng, 230)...)
		counts, err := s.Flush(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := fakeClient(t, tn, clk, nil)
		var all []haloapi.WebhookEvent
		pages := 0
		if err := c.WebhookEvents(context.Background(), id, func(p []haloapi.WebhookEvent) error {
			pages++
			all = append(all, p...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(all) != 230 || pages != 3 {
			t.Fatalf("envelope %v: %d entries in %d pages", envelope, len(all), pages)
		}
		ok, bodies := 0, 0
		for i, e := range all {
			if i > 0 && e.Timestamp.After(all[i-1].Timestamp) {
				t.Fatal("not newest first")
			}
			if e.Succeeded() {
				ok++
			}
			if e.RequestBody != "" {
				bodies++
			}
			if e.WebhookID != id || e.Timestamp.IsZero() {
				t.Fatalf("entry %+v", e)
			}
		}
		if ok != counts.Sent || bodies != 230 {
			t.Fatalf("%d succeeded (sent %d), %d bodies", ok, counts.Sent, bodies)
		}
		pages = 0
		if err := c.WebhookEvents(context.Background(), id, func([]haloapi.WebhookEvent) error { pages++; return haloapi.ErrStopPaging }); err != nil || pages != 1 {
			t.Fatalf("ErrStopPaging: %d pages, %v", pages, err)
		}
	}
}

// TestNotificationsOnlyOurs: a tenant that ignored the webhook_id filter would list every
// notification; only the webhook's own are returned.
func TestNotificationsOnlyOurs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/token"):
			_, _ = w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
		case strings.EqualFold(r.URL.Path, "/api/Notification"):
			_, _ = w.Write([]byte(`[{"id":1,"webhook_id":"AAA","eventno":61},{"id":2,"webhook_id":"bbb","eventno":61},{"id":3,"eventno":5,"delivery_method":0}]`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := haloapi.NewClient(haloapi.ClientOptions{BaseURL: srv.URL, AuthURL: srv.URL + "/auth", ClientID: "id", ClientSecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Notifications(context.Background(), "aaa")
	if err != nil || len(got) != 1 || got[0].ID != "1" || got[0].EventNo != 61 {
		t.Fatalf("%+v %v", got, err)
	}
}

func jsonText(v any) string { return fmt.Sprint(v) }

func fmtGo(w haloapi.Webhook) string { return fmt.Sprintf("%#v %v %+v %s", w, w, w, w) }

// postJSON POSTs a raw array to the fake's /api/Webhook with a token of its own, as
// another Halo user (or Halo itself, disabling a webhook) would.
func postJSON(t *testing.T, tn *halosim.Tenant, _ *haloapi.Client, body string) {
	t.Helper()
	o := tn.Options()
	resp, err := http.PostForm(tn.URL()+"/auth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {o.ClientID}, "client_secret": {o.ClientSecret}, "scope": {"all"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, tn.URL()+"/api/Webhook", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /api/Webhook: %d", resp.StatusCode)
	}
}
