package webhooks_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/webhooks"
)

// memAPI answers webhooks as a tenant that masks passwords and leaves fields out might.
type memAPI struct {
	webhooks.API // nil: calls not overridden panic
	hooks        []haloapi.Webhook
	subs         []haloapi.Notification
}

func (m *memAPI) Webhooks(context.Context) ([]haloapi.Webhook, error) { return m.hooks, nil }
func (m *memAPI) Notifications(_ context.Context, id string) ([]haloapi.Notification, error) {
	return m.subs, nil
}

func specOf(t *testing.T, auth string) webhooks.Spec {
	t.Helper()
	doc := `connections:
  - id: acme
    halo: {base_url: "https://acme.halopsa.com", client_id: id, client_secret: s}
    webhook:
      auth:
        - scheme: header
          header: X-Token
          tokens: ["some-static-token"]
        - scheme: hmac
          header: Token
          secrets: ["old-hmac-secret", "new-hmac-secret"]
        - scheme: basic
          username: halo
          passwords: ["basic-secret-1"]
      manage:
        url: https://x.test/webhooks/halo/acme
        name_prefix: acme-sync
        auth: ` + auth + `
`
	cfg, err := config.Parse(context.Background(), []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := webhooks.SpecFromConfig(cfg.Connections[0])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSpecFromConfig(t *testing.T) {
	b := specOf(t, "basic")
	if b.Name != "acme-sync:acme" || b.Auth.Method != "basic" || b.Auth.Username != "halo" || b.Auth.Secret != "basic-secret-1" ||
		len(b.Events) != 1 || b.Events[0] != (webhooks.Event{Name: "ticket updated", No: 61}) || b.Repair != config.RepairReEnable || b.BatchMethod != 0 {
		t.Fatalf("basic: %#v", b)
	}
	h := specOf(t, "hmac")
	if h.Auth.Method != "hmac" || h.Auth.Header != "Token" || h.Auth.Secret != "new-hmac-secret" {
		t.Fatalf("hmac: %v", h)
	}
	// Halo's signed body: base64 HMAC-SHA256 of the exact body in Token.
	body := []byte(`[{"id":"x"}]`)
	mac := hmac.New(sha256.New, []byte("new-hmac-secret"))
	mac.Write(body)
	if got := h.Auth.Headers(body).Get("Token"); got != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
		t.Fatalf("signature %q", got)
	}
	if got := b.Auth.Headers(body).Get("Authorization"); got != "Basic "+base64.StdEncoding.EncodeToString([]byte("halo:basic-secret-1")) {
		t.Fatalf("basic header %q", got)
	}
	for _, s := range []webhooks.Spec{b, h} {
		for _, out := range []string{s.String(), s.GoString(), s.Auth.String(), s.Auth.GoString(), s.Note()} {
			if strings.Contains(out, s.Auth.Secret) {
				t.Fatalf("%q shows the secret", out)
			}
		}
	}
	if ref, ok := webhooks.ManagedSecretRef(config.Connection{Webhook: config.Webhook{
		Manage: &config.WebhookManage{},
		Auth:   []config.AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"file:/a", "secretsmanager:arn#next"}}},
	}}); !ok || ref != "secretsmanager:arn#next" {
		t.Fatalf("ref %q %v", ref, ok)
	}
	if _, err := webhooks.SpecFromConfig(config.Connection{ID: "x"}); !errors.Is(err, webhooks.ErrNotManaged) {
		t.Fatalf("unmanaged: %v", err)
	}
}

// TestCompareMaskedAndMissing: a tenant that masks the password is compared by the note's
// fingerprint; fields it does not answer are not compared, so apply stays idempotent.
func TestCompareMaskedAndMissing(t *testing.T) {
	s := specOf(t, "basic")
	w := haloapi.Webhook{
		ID: "w1", Name: s.Name, URL: s.URL, Active: true, AuthenticationType: 1, BasicUsername: "halo",
		BasicPassword: "********", Note: s.Note(),
		Fields: map[string]any{"id": "w1", "name": s.Name, "url": s.URL, "active": true, "authentication_type": 1},
	}
	api := &memAPI{hooks: []haloapi.Webhook{w}, subs: []haloapi.Notification{{ID: "9", WebhookID: "w1", EventNo: 61}}}
	m := &webhooks.Manager{API: api}
	p, err := m.Plan(context.Background(), s)
	if err != nil || p.Changes() {
		t.Fatalf("masked, same fingerprint: %v %v", p, err)
	}
	s.Auth.Secret = "another-secret-value"
	if p, err = m.Plan(context.Background(), s); err != nil || !p.SecretChange || len(p.Update) != 1 || p.Update[0].Field != "secret" {
		t.Fatalf("masked, other secret: %+v %v", p.Update, err)
	}
	api.hooks[0].Note = "made by hand"
	s.Auth.Secret = "basic-secret-1"
	if p, err = m.Plan(context.Background(), s); err != nil || !p.SecretChange || p.Update[0].From != "(unknown)" {
		t.Fatalf("no fingerprint: %+v %v", p.Update, err)
	}
}

func TestEnsureSecret(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store := webhooks.LocalSecrets{}
	ref := "file:" + filepath.Join(dir, "secrets", "acme")
	if a, err := webhooks.EnsureSecret(ctx, store, ref, true); err != nil || a != webhooks.SecretWouldGenerate {
		t.Fatalf("dry run: %v %v", a, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets")); !os.IsNotExist(err) {
		t.Fatal("a dry run wrote")
	}
	if a, err := webhooks.EnsureSecret(ctx, store, ref, false); err != nil || a != webhooks.SecretGenerated {
		t.Fatalf("generate: %v %v", a, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "secrets", "acme"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file %v %v", fi, err)
	}
	v, found, err := store.Lookup(ctx, ref)
	if err != nil || !found || len(v) != 43 {
		t.Fatalf("generated %d characters, %v %v", len(v), found, err)
	}
	// The configuration reads it the same way.
	if got, err := (config.LocalResolver{}).Resolve(ctx, ref); err != nil || got != v {
		t.Fatal("the resolver reads another value")
	}
	if a, err := webhooks.EnsureSecret(ctx, store, ref, false); err != nil || a != webhooks.SecretPresent {
		t.Fatalf("again: %v %v", a, err)
	}
	if v2, _, _ := store.Lookup(ctx, ref); v2 != v {
		t.Fatal("an existing secret was replaced")
	}
	if a, err := webhooks.EnsureSecret(ctx, store, "a-literal-password", false); err != nil || a != webhooks.SecretPresent {
		t.Fatalf("literal: %v %v", a, err)
	}
	t.Setenv("HALOSYNC_TEST_UNSET_SECRET", "")
	_, err = webhooks.EnsureSecret(ctx, store, "env:HALOSYNC_TEST_UNSET_SECRET", false)
	if err == nil || !strings.Contains(err.Error(), "export HALOSYNC_TEST_UNSET_SECRET=$(halosync webhooks secret)") {
		t.Fatalf("unset env: %v", err)
	}
	t.Setenv("HALOSYNC_TEST_SET_SECRET", "from-the-environment")
	if a, err := webhooks.EnsureSecret(ctx, store, "env:HALOSYNC_TEST_SET_SECRET", false); err != nil || a != webhooks.SecretPresent {
		t.Fatalf("env: %v %v", a, err)
	}
	if err := store.Store(ctx, "env:X", "v"); !errors.Is(err, webhooks.ErrReadOnly) {
		t.Fatalf("env store: %v", err)
	}
	if _, err := webhooks.EnsureSecret(ctx, store, "secretsmanager:arn#k", false); !errors.Is(err, webhooks.ErrReadOnly) {
		t.Fatalf("secretsmanager without a store: %v", err)
	}
	sm := &memSecrets{}
	if a, err := webhooks.EnsureSecret(ctx, webhooks.LocalSecrets{Next: sm}, "secretsmanager:arn#k", false); err != nil || a != webhooks.SecretGenerated || len(sm.v) != 43 || sm.ref != "secretsmanager:arn#k" {
		t.Fatalf("secretsmanager: %v %v %+v", a, err, sm.ref)
	}
}

type memSecrets struct{ ref, v string }

func (m *memSecrets) Lookup(_ context.Context, ref string) (string, bool, error) {
	return m.v, m.v != "" && ref == m.ref, nil
}
func (m *memSecrets) Store(_ context.Context, ref, v string) error {
	m.ref, m.v = ref, v
	return nil
}
