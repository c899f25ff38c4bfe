package config

import (
	"context"
	"errors"
	"strings"
	"testing"
)

const manageBase = `
connections:
  - id: acme
    halo: {base_url: "https://acme.halopsa.com", client_id: id, client_secret: s}
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["first-secret"]
        - scheme: hmac
          header: Token
          secrets: ["hmac-secret-1"]
      manage:
`

func TestWebhookManage(t *testing.T) {
	c, err := Parse(context.Background(), []byte(manageBase+`        url: https://x.test/webhooks/halo/acme
        events:
          - ticket updated
          - {name: "Ticket Status Changed", eventno: 3}
        payload_type: 2
        batching: {method: time, delay_seconds: 30}
        auto_disable_attempts: 0
        repair: reapply
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Connections[0].Webhook.Manage
	ev := m.EventList()
	if m.WebhookName("acme") != "halosync:acme" || m.AuthMethod() != "basic" || m.RepairMode() != RepairReapply ||
		len(ev) != 2 || ev[0].EventNo != 61 || ev[1].EventNo != 3 || *m.PayloadType != 2 || *m.AutoDisableAttempts != 0 ||
		m.Batching.BatchCode() != 1 || m.CheckPeriod() != DefaultWebhookCheckPeriod {
		t.Fatalf("manage %+v events %+v", m, ev)
	}
	c, err = Parse(context.Background(), []byte(manageBase+"        url: https://x.test/webhooks/halo/acme\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := c.Connections[0].Webhook.Manage.EventList(); len(ev) != 1 || ev[0] != (ManagedEvent{Name: "ticket updated", EventNo: 61}) {
		t.Fatalf("default events %+v", ev)
	}
	if c.Connections[0].Webhook.Manage.PayloadType != nil {
		t.Fatal("payload_type set without being configured")
	}
	c, err = Parse(context.Background(), []byte(manageBase+"        url: https://x.test/webhooks/halo/acme\n        backup_url: https://x7yz.lambda-url.eu-west-2.on.aws/webhooks/halo/acme\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Connections[0].Webhook.Manage; m.BackupURL != "https://x7yz.lambda-url.eu-west-2.on.aws/webhooks/halo/acme" || m.BackupWebhookName("acme") != "halosync:acme (backup)" {
		t.Fatalf("backup %q named %q", m.BackupURL, m.BackupWebhookName("acme"))
	}
}

func TestWebhookManageInvalid(t *testing.T) {
	const u = "        url: https://x.test/webhooks/halo/acme\n"
	for _, tt := range []struct{ doc, want string }{
		{"        events: []\n", "url is missing"},
		{"        url: ftp://x\n", "not an http(s) URL"},
		{"        url: https://user:pw@x.test/\n", "must not carry credentials"},
		{u + "        auth: digest\n", `auth "digest"`},
		{u + "        events: [client updated]\n", "give it as eventno"},
		{u + "        events: [{name: a, eventno: 5}, {name: b, eventno: 5}]\n", "listed twice"},
		{u + "        events: [ticket updated, Ticket  Updated]\n", "listed twice"},
		{u + "        events: [{name: a, eventno: 5, conditions: x}]\n", `line 15: unknown key "conditions" under connections[0].webhook.manage.events[0]`},
		{u + "        batching: {method: count}\n", "needs limit"},
		{u + "        batching: {method: often}\n", "batching.method"},
		{u + "        repair: fix\n", `repair "fix"`},
		{u + "        payload_type: -1\n", "payload_type"},
		{u + "        surprise: 1\n", "surprise"},
		{u + "        backup_url: x7yz.lambda-url.eu-west-2.on.aws\n", `backup_url "x7yz.lambda-url.eu-west-2.on.aws" is not an http(s) URL`},
		{u + "        backup_url: https://user:pw@x7yz.lambda-url.eu-west-2.on.aws/\n", "backup_url must not carry credentials"},
		{u + "        backup_url: https://x.test/webhooks/halo/acme\n", "backup_url is url"},
	} {
		_, err := Parse(context.Background(), []byte(manageBase+tt.doc), nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.doc, err, tt.want)
		}
	}
	noHalo := strings.Replace(manageBase, `    halo: {base_url: "https://acme.halopsa.com", client_id: id, client_secret: s}
`, "", 1)
	if _, err := Parse(context.Background(), []byte(noHalo+u), nil); err == nil || !strings.Contains(err.Error(), "needs halo:") {
		t.Errorf("without halo: %v", err)
	}
	noHMAC := strings.Replace(manageBase, "        - scheme: hmac\n          header: Token\n          secrets: [\"hmac-secret-1\"]\n", "        - scheme: hmac\n          header: Token\n          prefix: \"sha256=\"\n          secrets: [\"hmac-secret-1\"]\n", 1)
	if _, err := Parse(context.Background(), []byte(noHMAC+u+"        auth: hmac\n"), nil); err == nil || !strings.Contains(err.Error(), "as Halo signs") {
		t.Errorf("hmac with a prefix: %v", err)
	}
}
