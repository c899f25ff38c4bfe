package auth

import (
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/config"
)

// configSchemes is one connection's auth list with every scheme, two secrets each.
func configSchemes() []config.AuthScheme {
	return []config.AuthScheme{
		{Scheme: "basic", Username: user, Passwords: []string{password, next}},
		{Scheme: "header", Header: "Authorization", Prefix: "Bearer ", Tokens: []string{tokenOld, tokenNew}},
		{Scheme: "hmac", Header: "Token", Secrets: []string{hmacOld, hmacNew}},
		{Scheme: "hmac", Header: "X-Hub-Signature-256", Prefix: "sha256=", Encoding: "hex", Secrets: []string{hmacOld, hmacNew}},
		{Scheme: "signed-timestamp", Secrets: []string{whOld, whNew}, ToleranceSeconds: 60},
		{Scheme: "path-secret", Secrets: []string{pathOld, pathNew}},
	}
}

func TestNewEveryScheme(t *testing.T) {
	v, err := New(configSchemes())
	if err != nil {
		t.Fatal(err)
	}
	if len(v) != 6 {
		t.Fatalf("%d schemes, want 6", len(v))
	}
	body := []byte(`{"event":"ticket updated","object_id":1}`)
	now := strconv.FormatInt(whNow.Unix(), 10)
	at := func(d int64) string { return strconv.FormatInt(whNow.Unix()+d, 10) }
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString(sig(s, body)) }
	tests := []struct {
		name string
		r    Request
		want string
	}{
		{"basic", Request{Header: map[string]string{"authorization": basicHeader(user, next)}}, ""},
		{"bearer", Request{Header: map[string]string{"authorization": "Bearer " + tokenNew}}, ""},
		{"hmac base64", Request{Header: map[string]string{"token": b64(hmacNew)}}, ""},
		{"hmac hex", Request{Header: map[string]string{"x-hub-signature-256": "sha256=" + strings.ToUpper(hex.EncodeToString(sig(hmacOld, body)))}}, ""},
		{"signed timestamp", Request{Header: stHeaders(whID, now, v1(t, whNew, whID, now, body))}, ""},
		{"path secret", Request{PathSecret: pathNew}, ""},
		{"nothing", Request{}, ReasonMissing},
		{"a bad bearer", Request{Header: map[string]string{"authorization": "Bearer nope"}}, ReasonWrong},
		{"a basic user with a bearer token", Request{Header: map[string]string{"authorization": basicHeader(user, tokenOld)}}, ReasonWrong},
		{"garbage in authorization", Request{Header: map[string]string{"authorization": "Basic %%%"}}, ReasonMalformed},
		{"a signature of another body", Request{Header: map[string]string{"token": base64.StdEncoding.EncodeToString(sig(hmacOld, nil))}}, ReasonWrong},
		// The configured tolerance, 60 s, applies.
		{"61 s old", Request{Header: stHeaders(whID, at(-61), v1(t, whOld, whID, at(-61), body))}, ReasonTimestamp},
		{"60 s ahead", Request{Header: stHeaders(whID, at(60), v1(t, whOld, whID, at(60), body))}, ""},
		{"stale, beside a wrong bearer", Request{Header: map[string]string{"authorization": "Bearer nope",
			HeaderWebhookID: whID, HeaderWebhookTimestamp: at(-61), HeaderWebhookSignature: v1(t, whOld, whID, at(-61), body)}}, ReasonTimestamp},
		{"a bad signature, stale, beside a malformed hmac", Request{Header: map[string]string{"token": "???",
			HeaderWebhookID: whID, HeaderWebhookTimestamp: at(-61), HeaderWebhookSignature: v1(t, whOld, whID, now, body)}}, ReasonWrong},
		{"a wrong path secret", Request{PathSecret: "wrong-path-secret"}, ReasonWrong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.r.Body, tt.r.Now = body, whNow
			if got := reason(t, v.Verify(tt.r)); got != tt.want {
				t.Fatalf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	const secret = "a-secret-value-123"
	tests := []struct {
		name   string
		scheme config.AuthScheme
		want   string
	}{
		{"header without a header name", config.AuthScheme{Scheme: "header", Tokens: []string{secret}}, "header is empty"},
		{"header with an empty token", config.AuthScheme{Scheme: "header", Header: "X-Key", Tokens: []string{secret, ""}}, "tokens[1] is empty"},
		{"hmac without a header name", config.AuthScheme{Scheme: "hmac", Header: " ", Secrets: []string{secret}}, "header is empty"},
		{"hmac with an empty secret", config.AuthScheme{Scheme: "hmac", Header: "Token", Secrets: []string{""}}, "secrets[0] is empty"},
		{"hmac with an unknown encoding", config.AuthScheme{Scheme: "hmac", Header: "Token", Encoding: "base32", Secrets: []string{secret}}, `encoding "base32"`},
		{"signed-timestamp with a secret not base64", config.AuthScheme{Scheme: "signed-timestamp", Secrets: []string{whOld, "whsec_" + secret + "!"}}, "secrets[1] is not a whsec_ base64 secret"},
		{"signed-timestamp with an empty secret", config.AuthScheme{Scheme: "signed-timestamp", Secrets: []string{""}}, "secrets[0] is empty"},
		{"path-secret with an empty secret", config.AuthScheme{Scheme: "path-secret", Secrets: []string{pathOld, ""}}, "secrets[1] is empty"},
		{"basic with an empty password", config.AuthScheme{Scheme: "basic", Username: user, Passwords: []string{""}}, "passwords[0] is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New([]config.AuthScheme{{Scheme: "path-secret", Secrets: []string{pathOld}}, tt.scheme})
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, "auth[1]: "+tt.scheme.Scheme+": ") || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q, want auth[1], %s and %q", msg, tt.scheme.Scheme, tt.want)
			}
			for _, s := range []string{secret, pathOld, whOld, strings.TrimPrefix(whOld, "whsec_")} {
				if strings.Contains(msg, s) {
					t.Fatalf("error %q holds a secret", msg)
				}
			}
		})
	}
}

// No refusal, of any scheme, says more than its reason: no secret, token, signature or
// body.
func TestErrorsHoldNoSecretAnyScheme(t *testing.T) {
	v, err := New(configSchemes())
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"event":"ticket updated","secret_field":"body-marker-42"}`)
	now := strconv.FormatInt(whNow.Unix(), 10)
	stale := strconv.FormatInt(whNow.Unix()-1000, 10)
	sent := []string{
		"Bearer " + tokenOld + "x", basicHeader(user, password+"x"),
		base64.StdEncoding.EncodeToString(sig(hmacOld, nil)), v1(t, whOld, whID, stale, body), "sent-path-secret",
	}
	requests := []Request{
		{Header: map[string]string{"authorization": sent[0]}},
		{Header: map[string]string{"authorization": sent[1]}},
		{Header: map[string]string{"token": sent[2]}},
		{Header: stHeaders(whID, stale, sent[3])},
		{Header: stHeaders(whID, now, "v2,"+strings.TrimPrefix(sent[3], "v1,"))},
		{PathSecret: sent[4]},
	}
	forbidden := append([]string{password, next, tokenOld, tokenNew, hmacOld, hmacNew, whOld, whNew, pathOld, pathNew, "body-marker-42", whID}, sent...)
	for i, r := range requests {
		r.Body, r.Now = body, whNow
		for j, s := range v {
			err := s.Verify(r)
			if err == nil {
				t.Fatalf("request %d accepted by scheme %d", i, j)
			}
			msg := err.Error()
			for _, f := range forbidden {
				if strings.Contains(msg, f) || strings.Contains(msg, strings.TrimPrefix(f, "v1,")) {
					t.Errorf("request %d, scheme %d: error %q holds %q", i, j, msg, f)
				}
			}
			if !strings.HasPrefix(msg, "unauthenticated: ") {
				t.Errorf("error %q", msg)
			}
		}
		if reason(t, v.Verify(r)) == "" {
			t.Fatalf("request %d accepted", i)
		}
	}
}
