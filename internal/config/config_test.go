package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
)

const example = `
connections:
  - id: default
    webhook:
      auth:
        - scheme: basic
          username: halo
          passwords: ["first-secret", "next-secret"]
`

func TestParseExample(t *testing.T) {
	c, err := Parse(context.Background(), []byte(example), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Connections) != 1 {
		t.Fatalf("%d connections", len(c.Connections))
	}
	conn := c.Connections[0]
	if conn.ID != "default" || len(conn.Webhook.Auth) != 1 {
		t.Fatalf("connection %+v", conn)
	}
	a := conn.Webhook.Auth[0]
	if a.Scheme != "basic" || a.Username != "halo" || len(a.Passwords) != 2 || a.Passwords[0] != "first-secret" || a.Passwords[1] != "next-secret" {
		t.Fatalf("auth %+v", a)
	}
	if c.Store.Driver != "" || c.Queue.VisibilitySeconds != 0 {
		t.Fatalf("defaults changed: %+v %+v", c.Store, c.Queue)
	}
	if got := conn.Webhook.BodyLimit(); got != DefaultMaxBodyBytes {
		t.Fatalf("BodyLimit = %d, want default %d", got, DefaultMaxBodyBytes)
	}
	found, ok := c.Connection("default")
	if !ok || found != &c.Connections[0] {
		t.Fatalf("Connection(default) = %v, %v", found, ok)
	}
	if _, ok := c.Connection("other"); ok {
		t.Fatal("Connection(other) found")
	}
}

func TestParseFullDocument(t *testing.T) {
	doc := `
connections:
  - id: tenant-a
    webhook:
      max_body_bytes: 2048
      auth_throttle: {failures: 5, window_seconds: 300}
      auth:
        - scheme: basic
          username: halo
          passwords: ["aaaaaaaa"]
  - id: tenant_b
    webhook:
      auth:
        - {scheme: basic, username: relay, passwords: ["bbbbbbbb", "cccccccc"]}
store:
  driver: dynamodb
  table: halosync
  region: eu-west-1
queue:
  visibility_seconds: 60
  max_receive: 3
`
	c, err := Parse(context.Background(), []byte(doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Connections) != 2 || c.Connections[1].ID != "tenant_b" {
		t.Fatalf("connections %+v", c.Connections)
	}
	if got := c.Connections[0].Webhook.BodyLimit(); got != 2048 {
		t.Fatalf("BodyLimit = %d, want 2048", got)
	}
	if a, b := c.Connections[0].Webhook.AuthThrottle, c.Connections[1].Webhook.AuthThrottle; a.Limit() != 5 || a.Window() != 5*time.Minute ||
		b.Limit() != DefaultAuthFailures || b.Window() != DefaultAuthWindow {
		t.Fatalf("auth_throttle %d per %v and, by default, %d per %v", a.Limit(), a.Window(), b.Limit(), b.Window())
	}
	if c.Store != (Store{Driver: "dynamodb", Table: "halosync", Region: "eu-west-1"}) {
		t.Fatalf("store %+v", c.Store)
	}
	if c.Queue != (Queue{VisibilitySeconds: 60, MaxReceive: 3}) {
		t.Fatalf("queue %+v", c.Queue)
	}
}

func TestServerSection(t *testing.T) {
	t.Setenv("HALOSYNC_TEST_READ_TOKEN", "a-token-from-the-environment")
	d := example + `
server:
  read_tokens: ["first-read-token-0123", "env:HALOSYNC_TEST_READ_TOKEN"]
  hosts: [halosync.example.com, "[2001:db8::1]", 192.0.2.7]
  max_connections: 64
  max_body_bytes_in_flight: 8388608
`
	c, err := Parse(context.Background(), []byte(d), LocalResolver{})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if strings.Join(s.ReadTokens, ",") != "first-read-token-0123,a-token-from-the-environment" {
		t.Errorf("read_tokens %q: the reference is not resolved", s.ReadTokens)
	}
	if len(s.Hosts) != 3 || s.Connections() != 64 || s.BodyBytesInFlight() != 8<<20 {
		t.Errorf("server %+v: connections %d, bytes in flight %d", s, s.Connections(), s.BodyBytesInFlight())
	}
	if d := (Server{}); d.Connections() != 512 || d.BodyBytesInFlight() != 64<<20 {
		t.Errorf("defaults: %d connections, %d bytes in flight; want 512 and 64 MiB", d.Connections(), d.BodyBytesInFlight())
	}
}

func TestBodyLimit(t *testing.T) {
	for _, tt := range []struct{ in, want int }{{0, DefaultMaxBodyBytes}, {-1, DefaultMaxBodyBytes}, {1, 1}, {MaxBodyCeiling, MaxBodyCeiling}} {
		if got := (Webhook{MaxBodyBytes: tt.in}).BodyLimit(); got != tt.want {
			t.Errorf("BodyLimit(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// doc builds a one-connection document with the given id, auth block and extra text.
func doc(id, auth, extra string) string {
	return "connections:\n  - id: " + id + "\n    webhook:\n" + auth + extra
}

const goodAuth = "      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"first-secret\"]\n"

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings the message must hold
	}{
		{"empty document", "", nil},
		{"unknown top-level key", example + "colour: blue\n", []string{"colour"}},
		{"unknown connection key", doc("default", goodAuth, "    tenant: x\n"), []string{"tenant"}},
		{"unknown auth key", doc("default", goodAuth+"          password: first-secret\n", ""), []string{"password"}},
		{"no connections", "connections: []\n", []string{"no connections"}},
		{"connections absent", "store:\n  driver: sqlite\n", []string{"no connections"}},
		{"upper-case id", doc("Default", goodAuth, ""), []string{"connections[0]", `"Default"`}},
		{"empty id", doc(`""`, goodAuth, ""), []string{"connections[0]", "id"}},
		{"id with a blank", doc(`"a b"`, goodAuth, ""), []string{"connections[0]", `"a b"`}},
		{"id starting with a dash", doc("-a", goodAuth, ""), []string{"connections[0]", `"-a"`}},
		{"id with a slash", doc("a/b", goodAuth, ""), []string{"connections[0]", `"a/b"`}},
		{"id too long", doc(strings.Repeat("a", 64), goodAuth, ""), []string{"connections[0]", "1-63"}},
		{"duplicate ids", example + "  - id: default\n    webhook:\n" + goodAuth, []string{"connections[1]", `"default"`, "twice"}},
		{"no auth", doc("default", "      auth: []\n", ""), []string{"connection default", "webhook.auth lists no scheme"}},
		{"auth absent", doc("default", "      max_body_bytes: 10\n", ""), []string{"connection default", "webhook.auth"}},
		{"short password", doc("default", "      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"first-secret\", \"short\"]\n", ""),
			[]string{"connection default", "webhook.auth[0]", "passwords[1]", "shorter than 8"}},
		{"no passwords", doc("default", "      auth:\n        - scheme: basic\n          username: halo\n", ""), []string{"webhook.auth[0]", "passwords"}},
		{"no username", doc("default", "      auth:\n        - scheme: basic\n          passwords: [\"first-secret\"]\n", ""), []string{"webhook.auth[0]", "username"}},
		{"username with colon", doc("default", "      auth:\n        - scheme: basic\n          username: \"ha:lo\"\n          passwords: [\"first-secret\"]\n", ""), []string{"webhook.auth[0]", "':'"}},
		{"unknown scheme", doc("default", goodAuth+"        - scheme: digest\n", ""), []string{"connection default", "webhook.auth[1]", `"digest"`}},
		{"missing scheme", doc("default", "      auth:\n        - username: halo\n          passwords: [\"first-secret\"]\n", ""), []string{"webhook.auth[0]", "scheme is missing"}},
		{"negative body limit", doc("default", goodAuth+"      max_body_bytes: -1\n", ""), []string{"connection default", "max_body_bytes"}},
		{"body limit above the ceiling", doc("default", goodAuth+"      max_body_bytes: 5242881\n", ""), []string{"connection default", "max_body_bytes"}},
		{"negative version skew", doc("default", goodAuth, "    versions: {max_skew_seconds: -1}\n"), []string{"connection default", "versions.max_skew_seconds"}},
		{"version skew above a day", doc("default", goodAuth, "    versions: {max_skew_seconds: 86401}\n"), []string{"connection default", "versions.max_skew_seconds"}},
		{"negative auth throttle", doc("default", goodAuth+"      auth_throttle: {failures: -1}\n", ""), []string{"connection default", "auth_throttle"}},
		{"auth throttle window beyond a day", doc("default", goodAuth+"      auth_throttle: {window_seconds: 86401}\n", ""), []string{"connection default", "auth_throttle"}},
		{"bad store driver", example + "store:\n  driver: postgres\n", []string{"store", `"postgres"`}},
		{"dynamodb without table", example + "store:\n  driver: dynamodb\n", []string{"store", "dynamodb", "table"}},
		{"wrong type", example + "queue:\n  max_receive: many\n", nil},
		{"short read token", example + "server:\n  read_tokens: [\"first-secret\"]\n", []string{"server.read_tokens[0]", "16 characters"}},
		{"read token with a blank", example + "server:\n  read_tokens: [\"first-secret first-secret\"]\n", []string{"server.read_tokens[0]"}},
		{"host with a port", example + "server:\n  hosts: [\"halosync.example.com:8080\"]\n", []string{"server.hosts[0]", "no scheme or port"}},
		{"host with a scheme", example + "server:\n  hosts: [\"https://halosync.example.com\"]\n", []string{"server.hosts[0]"}},
		{"negative connection cap", example + "server:\n  max_connections: -1\n", []string{"server.max_connections"}},
		{"bytes in flight below a body limit", doc("default", goodAuth+"      max_body_bytes: 4096\n", "server:\n  max_body_bytes_in_flight: 4095\n"),
			[]string{"server.max_body_bytes_in_flight", "connection default", "4096"}},
		{"secret reference without resolver", doc("default", "      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"env:HALOSYNC_TEST_NOT_SET\"]\n", ""), []string{"env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(context.Background(), []byte(tt.doc), nil)
			if err == nil {
				t.Fatalf("Parse = %+v, nil; want an error", c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, does not wrap ErrInvalid", err)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not contain %q", err, s)
				}
			}
			for _, secret := range []string{"first-secret", "HALOSYNC_TEST_NOT_SET"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("message %q contains %q", err, secret)
				}
			}
		})
	}
}

func TestParseDoesNotEchoAMisplacedSecret(t *testing.T) {
	// passwords given as a scalar instead of a list: the YAML error must not repeat it.
	d := doc("default", "      auth:\n        - scheme: basic\n          username: halo\n          passwords: correct-horse-battery-staple\n", "")
	_, err := Parse(context.Background(), []byte(d), nil)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "correct") { // not even the start the YAML library quotes
		t.Fatalf("message %q contains the password", err)
	}
}

func TestValidateAcceptsLimits(t *testing.T) {
	c := &Config{Connections: []Connection{{ID: strings.Repeat("a", 63), Webhook: Webhook{MaxBodyBytes: MaxBodyCeiling,
		Auth: []AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"12345678"}}}},
		Versions: Versions{MaxSkewSeconds: MaxVersionSkewSeconds}}}}
	if err := c.Validate(); err != nil {
		t.Fatalf("63-char id, ceiling body, 8-char password, a day's version skew: %v", err)
	}
	c.Store.Driver = "sqlite"
	if err := c.Validate(); err != nil {
		t.Fatalf("driver sqlite: %v", err)
	}
}

func TestIsReference(t *testing.T) {
	for v, want := range map[string]bool{
		"env:X": true, "file:/run/secret": true, "secretsmanager:arn:aws:secretsmanager:eu-west-1:1:secret:x#k": true,
		"first-secret": false, "ENV:X": false, "": false, "environment": false,
	} {
		if got := IsReference(v); got != want {
			t.Errorf("IsReference(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestLocalResolver(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "webhook-password")
	if err := os.WriteFile(file, []byte("file-secret-2\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HALOSYNC_TEST_WEBHOOK_PASSWORD", "env-secret-1")
	d := doc("default", "      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"env:HALOSYNC_TEST_WEBHOOK_PASSWORD\", \"file:"+file+"\", \"plain-secret-3\"]\n", "")
	c, err := Parse(context.Background(), []byte(d), LocalResolver{})
	if err != nil {
		t.Fatal(err)
	}
	got := c.Connections[0].Webhook.Auth[0].Passwords
	want := []string{"env-secret-1", "file-secret-2", "plain-secret-3"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("passwords %q, want %q", got, want)
	}

	// Load reads the same from a file.
	path := filepath.Join(dir, "halosync.yaml")
	if err := os.WriteFile(path, []byte(d), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = Load(context.Background(), path, LocalResolver{})
	if err != nil || c.Connections[0].Webhook.Auth[0].Passwords[1] != "file-secret-2" {
		t.Fatalf("Load = %+v, %v", c, err)
	}
	if _, err := Load(context.Background(), filepath.Join(dir, "absent.yaml"), LocalResolver{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("connections: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), bad, LocalResolver{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad) {
		t.Fatalf("Load of an invalid file: %v, want ErrInvalid naming the file", err)
	}
}

// A resolved secret that turns out too short is reported by place, never by value.
func TestResolvedShortSecretNotInMessage(t *testing.T) {
	t.Setenv("HALOSYNC_TEST_SHORT", "tiny")
	d := doc("default", "      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"env:HALOSYNC_TEST_SHORT\"]\n", "")
	_, err := Parse(context.Background(), []byte(d), LocalResolver{})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "passwords[0]") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "tiny") {
		t.Fatalf("message %q contains the secret", err)
	}
}

type resolverFunc func(ctx context.Context, ref string) (string, error)

func (f resolverFunc) Resolve(ctx context.Context, ref string) (string, error) { return f(ctx, ref) }

func TestUnresolvableReference(t *testing.T) {
	errBackend := errors.New("backend down")
	// The first reference resolves; the second fails. The message names the place and the
	// kind of reference, never the value already resolved.
	r := resolverFunc(func(_ context.Context, ref string) (string, error) {
		if ref == "secretsmanager:good" {
			return "resolved-secret-value", nil
		}
		return "", errBackend
	})
	d := doc("default", "      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"secretsmanager:good\", \"secretsmanager:bad\"]\n", "")
	_, err := Parse(context.Background(), []byte(d), r)
	if err == nil || !errors.Is(err, errBackend) {
		t.Fatalf("err = %v, want the resolver's error wrapped", err)
	}
	msg := err.Error()
	for _, want := range []string{"connection default", "webhook.auth[0].passwords[1]", "secretsmanager"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "resolved-secret-value") {
		t.Errorf("message %q contains a resolved secret", msg)
	}

	// LocalResolver: unset variable, missing file, and a kind only AWS resolves.
	t.Setenv("HALOSYNC_TEST_PRESENT", "present-secret")
	dir := t.TempDir()
	for _, ref := range []string{"env:HALOSYNC_TEST_NOT_SET", "file:" + filepath.Join(dir, "absent"), "secretsmanager:arn:x"} {
		d := doc("default", "      auth:\n        - scheme: basic\n          username: halo\n          passwords: [\"env:HALOSYNC_TEST_PRESENT\", \""+ref+"\"]\n", "")
		_, err := Parse(context.Background(), []byte(d), LocalResolver{})
		if err == nil {
			t.Fatalf("%s: resolved", ref)
		}
		msg := err.Error()
		kind, _, _ := strings.Cut(ref, ":")
		if !strings.Contains(msg, "passwords[1]") || !strings.Contains(msg, kind) {
			t.Errorf("%s: message %q does not name the place and kind", ref, msg)
		}
		if strings.Contains(msg, "present-secret") {
			t.Errorf("%s: message %q contains a secret", ref, msg)
		}
	}
}

func TestLocalResolverNext(t *testing.T) {
	var seen string
	next := resolverFunc(func(_ context.Context, ref string) (string, error) { seen = ref; return "from-next", nil })
	got, err := LocalResolver{Next: next}.Resolve(context.Background(), "secretsmanager:arn:aws:x#password")
	if err != nil || got != "from-next" || seen != "secretsmanager:arn:aws:x#password" {
		t.Fatalf("Resolve = %q, %v; Next saw %q", got, err, seen)
	}
	// env: and file: never reach Next.
	t.Setenv("HALOSYNC_TEST_LOCAL", "local")
	seen = ""
	if got, err := (LocalResolver{Next: next}).Resolve(context.Background(), "env:HALOSYNC_TEST_LOCAL"); err != nil || got != "local" || seen != "" {
		t.Fatalf("env with Next: %q, %v, Next saw %q", got, err, seen)
	}
	// An env variable set to the empty string resolves to "" (then fails validation).
	t.Setenv("HALOSYNC_TEST_EMPTY", "")
	if got, err := (LocalResolver{}).Resolve(context.Background(), "env:HALOSYNC_TEST_EMPTY"); err != nil || got != "" {
		t.Fatalf("empty env: %q, %v", got, err)
	}
}

// TestKindsAreChanges: the kinds a connection may name are change's, by name or by the key
// Halo nests them under, exactly; a refusal lists them all.
func TestKindsAreChanges(t *testing.T) {
	valid := func(mod func(*Connection)) error {
		c := &Config{Connections: []Connection{{ID: "default", Webhook: Webhook{
			Auth: []AuthScheme{{Scheme: "basic", Username: "halo", Passwords: []string{"12345678"}}}}}}}
		mod(&c.Connections[0])
		return c.Validate()
	}
	for _, name := range append(change.KindNames(), "user") {
		if err := valid(func(c *Connection) {
			c.StoredFields = map[string]FieldList{name: {Exclude: []string{"x"}}}
			c.Poll.Kinds = map[string]string{name: "scan"}
			c.Events = map[string]EventMapping{"sla breached": {Kind: name}}
		}); err != nil {
			t.Errorf("kind %q: %v", name, err)
		}
	}
	for what, mod := range map[string]func(*Connection){
		"stored_fields": func(c *Connection) { c.StoredFields = map[string]FieldList{"Ticket": {}} },
		"events":        func(c *Connection) { c.Events = map[string]EventMapping{"sla breached": {Kind: "widget"}} },
	} {
		err := valid(mod)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s with an unknown kind: %v", what, err)
		}
		for _, name := range change.KindNames() {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: message %q does not list %s", what, err, name)
			}
		}
	}
	err := valid(func(c *Connection) { c.Poll.Kinds = map[string]string{"widget": "scan"} })
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "asset, client, contact or ticket") {
		t.Errorf("poll.kinds with an unknown kind: %v", err)
	}
}
