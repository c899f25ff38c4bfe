package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	hmacOld = "halo-signing-secret-1"
	hmacNew = "second-rotation-secret"
)

// sig is HMAC-SHA256(secret, body), computed here with crypto/hmac directly.
func sig(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// slashBody returns a body, and its object id, whose MAC under secret has '+' or '/' in
// standard base64, so that the URL-safe spelling differs from the standard one.
func slashBody(secret string) ([]byte, string) {
	for i := 0; ; i++ {
		id := strconv.Itoa(i)
		b := []byte(`{"event":"ticket updated","object_id":` + id + `}`)
		if strings.ContainsAny(base64.StdEncoding.EncodeToString(sig(secret, b)), "+/") {
			return b, id
		}
	}
}

func TestHMAC(t *testing.T) {
	body, id := slashBody(hmacNew)
	b64 := func(secret string, b []byte) string { return base64.StdEncoding.EncodeToString(sig(secret, b)) }
	hx := func(secret string, b []byte) string { return hex.EncodeToString(sig(secret, b)) }

	// The body re-serialized after signing: same JSON, other key order or whitespace.
	var parsed map[string]any
	if err := json.Unmarshal(body, &parsed); err != nil {
		t.Fatal(err)
	}
	indented, err := json.MarshalIndent(parsed, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	swapped := []byte(`{"object_id":` + id + `,"event":"ticket updated"}`)
	for _, b := range [][]byte{indented, swapped} {
		var again map[string]any
		if err := json.Unmarshal(b, &again); err != nil || string(b) == string(body) || !reflect.DeepEqual(again, parsed) {
			t.Fatalf("%s is not the signed JSON re-serialized (%v)", b, err)
		}
	}
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-2]++ // one byte: the last digit of object_id

	token := mustHMAC(t, "Token", "", "", hmacOld, hmacNew) // django-psa's shape
	prefixed := mustHMAC(t, "X-Hub-Signature-256", "sha256=", "HEX", hmacOld, hmacNew)
	b64Prefixed := mustHMAC(t, "X-Signature", "sha256=", "base64", hmacOld, hmacNew)

	tests := []struct {
		name   string
		s      *HMAC
		header map[string]string
		body   []byte
		want   string
	}{
		{"base64, first secret", token, map[string]string{"token": b64(hmacOld, body)}, body, ""},
		{"base64, second secret (rotation)", token, map[string]string{"token": b64(hmacNew, body)}, body, ""},
		{"base64 without padding", token, map[string]string{"token": strings.TrimRight(b64(hmacNew, body), "=")}, body, ""},
		{"url-safe base64", token, map[string]string{"token": base64.URLEncoding.EncodeToString(sig(hmacNew, body))}, body, ""},
		{"url-safe base64 without padding", token, map[string]string{"token": base64.RawURLEncoding.EncodeToString(sig(hmacNew, body))}, body, ""},
		{"hex, first secret", prefixed, map[string]string{"x-hub-signature-256": "sha256=" + hx(hmacOld, body)}, body, ""},
		{"hex, second secret", prefixed, map[string]string{"x-hub-signature-256": "sha256=" + hx(hmacNew, body)}, body, ""},
		{"hex in upper case", prefixed, map[string]string{"x-hub-signature-256": "sha256=" + strings.ToUpper(hx(hmacNew, body))}, body, ""},
		{"prefix in upper case", prefixed, map[string]string{"x-hub-signature-256": "SHA256=" + hx(hmacNew, body)}, body, ""},
		{"base64 after a prefix", b64Prefixed, map[string]string{"x-signature": "sha256=" + b64(hmacOld, body)}, body, ""},
		{"empty body signed", token, map[string]string{"token": b64(hmacOld, nil)}, nil, ""},

		{"wrong secret", token, map[string]string{"token": b64("third-secret", body)}, body, ReasonWrong},
		{"secret differing in case", token, map[string]string{"token": b64(strings.ToUpper(hmacOld), body)}, body, ReasonWrong},
		{"tampered body, one byte", token, map[string]string{"token": b64(hmacOld, body)}, tampered, ReasonWrong},
		{"body with a byte appended", token, map[string]string{"token": b64(hmacOld, body)}, append(append([]byte(nil), body...), '\n'), ReasonWrong},
		{"body re-indented after signing", token, map[string]string{"token": b64(hmacOld, body)}, indented, ReasonWrong},
		{"body keys reordered after signing", token, map[string]string{"token": b64(hmacOld, body)}, swapped, ReasonWrong},
		{"signature of the empty body", token, map[string]string{"token": b64(hmacOld, nil)}, body, ReasonWrong},
		{"signature of the other body in hex", prefixed, map[string]string{"x-hub-signature-256": "sha256=" + hx(hmacOld, tampered)}, body, ReasonWrong},
		{"one signature bit flipped", token, map[string]string{"token": flipBit(b64(hmacOld, body))}, body, ReasonWrong},

		{"hex where base64 is configured", token, map[string]string{"token": hx(hmacOld, body)}, body, ReasonMalformed},
		{"base64 where hex is configured", prefixed, map[string]string{"x-hub-signature-256": "sha256=" + b64(hmacOld, body)}, body, ReasonMalformed},
		{"wrong prefix", prefixed, map[string]string{"x-hub-signature-256": "sha1=" + hx(hmacOld, body)}, body, ReasonMalformed},
		{"no prefix where one is configured", prefixed, map[string]string{"x-hub-signature-256": hx(hmacOld, body)}, body, ReasonMalformed},
		{"prefix where none is configured", token, map[string]string{"token": "sha256=" + b64(hmacOld, body)}, body, ReasonMalformed},
		{"prefix repeated", prefixed, map[string]string{"x-hub-signature-256": "sha256=sha256=" + hx(hmacOld, body)}, body, ReasonMalformed},
		{"not base64", token, map[string]string{"token": "!!!not-base64!!!"}, body, ReasonMalformed},
		{"not hex", prefixed, map[string]string{"x-hub-signature-256": "sha256=" + strings.Repeat("zz", 32)}, body, ReasonMalformed},
		{"truncated base64", token, map[string]string{"token": b64(hmacOld, body)[:40]}, body, ReasonMalformed},
		{"truncated hex", prefixed, map[string]string{"x-hub-signature-256": "sha256=" + hx(hmacOld, body)[:62]}, body, ReasonMalformed},
		{"SHA-1 length MAC", token, map[string]string{"token": base64.StdEncoding.EncodeToString(make([]byte, 20))}, body, ReasonMalformed},
		{"base64 with a line break", token, map[string]string{"token": b64(hmacOld, body)[:20] + "\n" + b64(hmacOld, body)[20:]}, body, ReasonMalformed},
		{"base64 with a leading blank", token, map[string]string{"token": " " + b64(hmacOld, body)}, body, ReasonMalformed},
		{"base64 with non-zero padding bits", token, map[string]string{"token": nonCanonical(b64(hmacOld, body))}, body, ReasonMalformed},
		{"0x before hex", prefixed, map[string]string{"x-hub-signature-256": "sha256=0x" + hx(hmacOld, body)}, body, ReasonMalformed},

		{"no header", token, map[string]string{}, body, ReasonMissing},
		{"nil header map", token, nil, body, ReasonMissing},
		{"empty header", token, map[string]string{"token": ""}, body, ReasonMissing},
		{"prefix alone", prefixed, map[string]string{"x-hub-signature-256": "sha256="}, body, ReasonMissing},
		{"signature in another header", token, map[string]string{"x-token": b64(hmacOld, body)}, body, ReasonMissing},
		{"header key not lower-case", token, map[string]string{"Token": b64(hmacOld, body)}, body, ReasonMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(t, tt.s.Verify(Request{Header: tt.header, Body: tt.body})); got != tt.want {
				t.Fatalf("Verify = %q, want %q", got, tt.want)
			}
		})
	}
}

// flipBit flips the lowest bit of the first byte a base64 MAC encodes.
func flipBit(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	b[0] ^= 1
	return base64.StdEncoding.EncodeToString(b)
}

// nonCanonical sets unused bits in the last character before the padding: lax decoders
// read the same MAC from it.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(s, '=') - 1
	c := strings.IndexByte(alphabet, s[i])
	return s[:i] + string(alphabet[c|1]) + s[i+1:]
}

func TestHMACWithoutSecretsRefusesAll(t *testing.T) {
	h := mustHMAC(t, "Token", "", "base64", "")
	body := []byte(`{}`)
	for _, v := range []string{base64.StdEncoding.EncodeToString(sig("", body)), base64.StdEncoding.EncodeToString(make([]byte, 32))} {
		if got := reason(t, h.Verify(Request{Header: map[string]string{"token": v}, Body: body})); got != ReasonWrong {
			t.Errorf("%q: %q, want %q", v, got, ReasonWrong)
		}
	}
}

func TestNewHMACEncoding(t *testing.T) {
	for _, e := range []string{"", "base64", "Base64", "hex", "HEX"} {
		if _, err := NewHMAC("Token", "", e, []string{hmacOld}); err != nil {
			t.Errorf("encoding %q: %v", e, err)
		}
	}
	for _, e := range []string{"base32", "b64", "hex "} {
		if _, err := NewHMAC("Token", "", e, []string{hmacOld}); err == nil || strings.Contains(err.Error(), hmacOld) {
			t.Errorf("encoding %q: err = %v, want a refusal without the secret", e, err)
		}
	}
}

func FuzzHMAC(f *testing.F) {
	v := loadVectors(f)
	secrets := []string{v.HMAC[0].Secret, v.HMAC[1].Secret}
	for _, vec := range v.HMAC {
		f.Add(vec.Base64, []byte(vec.Body))
		f.Add(strings.TrimRight(vec.Base64, "="), []byte(vec.Body))
		f.Add("sha256="+vec.Hex, []byte(vec.Body))
		f.Add("SHA256="+strings.ToUpper(vec.Hex), []byte(vec.Body+" "))
	}
	f.Add("", []byte(nil))
	f.Add("sha256=", []byte("{}"))
	b64 := mustHMAC(f, "Token", "", "base64", secrets...)
	hx := mustHMAC(f, "X-Signature", "sha256=", "hex", secrets...)
	f.Fuzz(func(t *testing.T, value string, body []byte) {
		var spellings, hexes []string
		for _, s := range secrets {
			mac := sig(s, body)
			spellings = append(spellings, base64.StdEncoding.EncodeToString(mac), base64.RawStdEncoding.EncodeToString(mac),
				base64.URLEncoding.EncodeToString(mac), base64.RawURLEncoding.EncodeToString(mac))
			hexes = append(hexes, hex.EncodeToString(mac))
		}
		// A value is accepted only if it spells a right MAC of this very body.
		err := b64.Verify(Request{Header: map[string]string{"token": value}, Body: body})
		if err == nil && !slices.Contains(spellings, value) {
			t.Fatalf("base64 scheme accepted %q for body %q", value, body)
		}
		checkReason(t, err)
		err = hx.Verify(Request{Header: map[string]string{"x-signature": value}, Body: body})
		if err == nil {
			rest, ok := cutPrefix(value, "sha256=")
			if !ok || !slices.Contains(hexes, strings.ToLower(rest)) {
				t.Fatalf("hex scheme accepted %q for body %q", value, body)
			}
		}
		checkReason(t, err)
		// The right MAC of any body is accepted, under either secret.
		for i, s := range secrets {
			if err := b64.Verify(Request{Header: map[string]string{"token": spellings[4*i]}, Body: body}); err != nil {
				t.Fatalf("secret %d: right base64 MAC of %q refused: %v", i, body, err)
			}
			if err := hx.Verify(Request{Header: map[string]string{"x-signature": "sha256=" + hex.EncodeToString(sig(s, body))}, Body: body}); err != nil {
				t.Fatalf("secret %d: right hex MAC of %q refused: %v", i, body, err)
			}
		}
	})
}

func checkReason(t *testing.T, err error) {
	t.Helper()
	switch r := reason(t, err); r {
	case "", ReasonMissing, ReasonMalformed, ReasonWrong, ReasonTimestamp:
	default:
		t.Fatalf("unknown reason %q", r)
	}
}
