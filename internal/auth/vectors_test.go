package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The shared vectors: testdata/make-vectors.sh computes them with openssl, not with this
// package, and writes testdata/vectors.json.

type hmacVector struct {
	Name   string `json:"name"`
	Secret string `json:"secret"`
	Body   string `json:"body"`
	Base64 string `json:"base64"`
	Hex    string `json:"hex"`
}

type stVector struct {
	Name      string `json:"name"`
	Secret    string `json:"secret"`
	KeyHex    string `json:"key_hex"`
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Body      string `json:"body"`
	Signature string `json:"signature"`
	Source    string `json:"source"`
}

type vectorFile struct {
	Comment         string       `json:"comment"`
	HMAC            []hmacVector `json:"hmac"`
	SignedTimestamp []stVector   `json:"signed_timestamp"`
}

func loadVectors(tb testing.TB) vectorFile {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var v vectorFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatal(err)
	}
	if len(v.HMAC) < 2 || len(v.SignedTimestamp) < 2 {
		tb.Fatalf("vectors.json holds %d hmac and %d signed-timestamp vectors, want at least 2 each", len(v.HMAC), len(v.SignedTimestamp))
	}
	return v
}

// Published by the Standard Webhooks reference libraries (Go TestWebhookSign, JavaScript
// "sign function works"); the spec document itself gives no secret for its example.
const (
	refSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	refID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	refTimestamp = 1614265330
	refBody      = `{"test": 2432232314}`
	refSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardWebhooksReferenceVector(t *testing.T) {
	s, err := NewSignedTimestamp([]string{refSecret}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := "v1," + base64.StdEncoding.EncodeToString(contentMAC(s.keys[0], refID, strconv.Itoa(refTimestamp), []byte(refBody))); got != refSignature {
		t.Fatalf("signature %s, want %s", got, refSignature)
	}
	r := Request{Header: stHeaders(refID, strconv.Itoa(refTimestamp), refSignature), Body: []byte(refBody), Now: time.Unix(refTimestamp, 0)}
	if err := s.Verify(r); err != nil {
		t.Fatalf("reference delivery refused: %v", err)
	}
	v := loadVectors(t)
	if got := v.SignedTimestamp[0]; got.Secret != refSecret || got.ID != refID || got.Timestamp != refTimestamp || got.Body != refBody || got.Signature != refSignature {
		t.Fatalf("vectors.json's first signed-timestamp vector is not the reference one: %+v", got)
	}
}

func TestVectorsHMAC(t *testing.T) {
	v := loadVectors(t)
	for i, vec := range v.HMAC {
		t.Run(vec.Name, func(t *testing.T) {
			body := []byte(vec.Body)
			mac := bodyMAC([]byte(vec.Secret), body)
			if got := base64.StdEncoding.EncodeToString(mac); got != vec.Base64 {
				t.Errorf("base64 %s, openssl %s", got, vec.Base64)
			}
			if got := hex.EncodeToString(mac); got != vec.Hex {
				t.Errorf("hex %s, openssl %s", got, vec.Hex)
			}
			// Another vector's secret stands for the old one of a rotation, listed first.
			other := v.HMAC[(i+1)%len(v.HMAC)].Secret
			b64 := mustHMAC(t, "Token", "", "base64", other, vec.Secret)
			hx := mustHMAC(t, "X-Signature", "sha256=", "hex", other, vec.Secret)
			for _, c := range []struct {
				s    *HMAC
				h, v string
			}{
				{b64, "token", vec.Base64},
				{b64, "token", strings.TrimRight(vec.Base64, "=")},
				{hx, "x-signature", "sha256=" + vec.Hex},
				{hx, "x-signature", "sha256=" + strings.ToUpper(vec.Hex)},
			} {
				r := Request{Header: map[string]string{c.h: c.v}, Body: body}
				if err := c.s.Verify(r); err != nil {
					t.Errorf("%s: %q refused: %v", c.h, c.v, err)
				}
				wrongSecret := mustHMAC(t, c.h, c.s.prefix, map[bool]string{true: "hex", false: "base64"}[c.s.hex], other, vec.Secret+"x")
				if got := reason(t, wrongSecret.Verify(r)); got != ReasonWrong {
					t.Errorf("%s: %q under other secrets: %q, want %q", c.h, c.v, got, ReasonWrong)
				}
			}
		})
	}
}

func TestVectorsSignedTimestamp(t *testing.T) {
	v := loadVectors(t)
	for i, vec := range v.SignedTimestamp {
		t.Run(vec.Name, func(t *testing.T) {
			other := v.SignedTimestamp[(i+1)%len(v.SignedTimestamp)].Secret
			if other == vec.Secret {
				other = refSecret
			}
			s, err := NewSignedTimestamp([]string{other, vec.Secret}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(s.keys[1]); got != vec.KeyHex {
				t.Fatalf("key %s, openssl's %s", got, vec.KeyHex)
			}
			ts := strconv.FormatInt(vec.Timestamp, 10)
			if got := "v1," + base64.StdEncoding.EncodeToString(contentMAC(s.keys[1], vec.ID, ts, []byte(vec.Body))); got != vec.Signature {
				t.Fatalf("signature %s, openssl %s", got, vec.Signature)
			}
			r := Request{Header: stHeaders(vec.ID, ts, vec.Signature), Body: []byte(vec.Body), Now: time.Unix(vec.Timestamp, 0)}
			if err := s.Verify(r); err != nil {
				t.Fatalf("refused: %v", err)
			}
			// The key alone, without "whsec_", is the same secret.
			bare, err := NewSignedTimestamp([]string{strings.TrimPrefix(vec.Secret, "whsec_")}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := bare.Verify(r); err != nil {
				t.Fatalf("refused under the bare key: %v", err)
			}
			otherOnly, err := NewSignedTimestamp([]string{other}, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := reason(t, otherOnly.Verify(r)); got != ReasonWrong {
				t.Fatalf("under another secret: %q, want %q", got, ReasonWrong)
			}
		})
	}
}

// The committed vectors are exactly what the script produces (with openssl, not Go).
func TestVectorsFileIsTheScriptsOutput(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "jq", "base64", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
	out := filepath.Join(t.TempDir(), "vectors.json")
	cmd := exec.Command("bash", filepath.Join("testdata", "make-vectors.sh"), out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make-vectors.sh: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("testdata/vectors.json differs from make-vectors.sh's output; rerun the script")
	}
}

func mustHMAC(tb testing.TB, header, prefix, encoding string, secrets ...string) *HMAC {
	tb.Helper()
	h, err := NewHMAC(header, prefix, encoding, secrets)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func stHeaders(id, ts, sig string) map[string]string {
	h := map[string]string{}
	if id != "" {
		h[HeaderWebhookID] = id
	}
	if ts != "" {
		h[HeaderWebhookTimestamp] = ts
	}
	if sig != "" {
		h[HeaderWebhookSignature] = sig
	}
	return h
}
