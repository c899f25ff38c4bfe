// Package authtest holds helpers that produce deliveries as Halo and signing relays send
// them, for tests: credentials, signatures and gzip-encoded bodies.
package authtest

import (
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Basic returns the value of an Authorization header carrying HTTP Basic credentials.
func Basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// HMACBase64 returns the base64 (standard encoding) HMAC-SHA256 of body under secret.
func HMACBase64(secret string, body []byte) string {
	return base64.StdEncoding.EncodeToString(mac(secret, body))
}

// HMACHex returns the lower-case hex HMAC-SHA256 of body under secret.
func HMACHex(secret string, body []byte) string {
	return hex.EncodeToString(mac(secret, body))
}

func mac(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// StandardWebhooks returns the Standard Webhooks headers (webhook-id, webhook-timestamp,
// webhook-signature, lower-case keys) for a message id sent at ts with body, signed with
// a whsec_ secret. It panics if the secret is not base64 after its whsec_ prefix.
func StandardWebhooks(secret, id string, ts time.Time, body []byte) map[string]string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	stamp := strconv.FormatInt(ts.Unix(), 10)
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, stamp, body)
	return map[string]string{
		"webhook-id":        id,
		"webhook-timestamp": stamp,
		"webhook-signature": "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)),
	}
}

// Gzip returns b gzip-encoded, as a delivery sent with Content-Encoding: gzip carries it.
func Gzip(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
