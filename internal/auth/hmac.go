package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// HMAC accepts an HMAC-SHA256 of the exact raw body, keyed with a shared secret, carried
// in a named header after an optional prefix (such as "sha256="), encoded in base64 or
// hex. This is how django-psa, verified against live Halo tenants, reads Halo's
// "signed body" webhooks: header Token, base64(HMAC-SHA256(secret, body)), no prefix.
type HMAC struct {
	header  string // lower case, as Request.Header keys are
	prefix  string
	hex     bool
	secrets [][]byte
}

// NewHMAC accepts a signature made with any of the secrets, each used as the raw bytes
// of the string. encoding is "base64" (or "", the default) or "hex", in any case. An
// empty secret is ignored: anyone could sign with it.
func NewHMAC(header, prefix, encoding string, secrets []string) (*HMAC, error) {
	h := &HMAC{header: strings.ToLower(strings.TrimSpace(header)), prefix: prefix}
	switch strings.ToLower(encoding) {
	case "", "base64":
	case "hex":
		h.hex = true
	default:
		return nil, fmt.Errorf("encoding %q (base64 or hex)", encoding)
	}
	for _, s := range secrets {
		if s != "" {
			h.secrets = append(h.secrets, []byte(s))
		}
	}
	return h, nil
}

// Verify implements Scheme. The header absent or empty, or holding the prefix alone, is
// a missing credential; a value without the prefix, or not decoding to a 32-byte MAC in
// the configured encoding, is malformed. Otherwise the MAC of the body under every
// secret is computed and compared with hmac.Equal, all of them every time.
//
// In base64 the standard and the URL-safe alphabets are accepted, padded or not; hex is
// accepted in either case. Hex sent where base64 is configured decodes to 48 bytes and
// is malformed, as is base64 where hex is configured.
func (h *HMAC) Verify(r Request) error {
	v := r.Header[h.header]
	if v == "" {
		return &Error{Reason: ReasonMissing}
	}
	encoded, ok := cutPrefix(v, h.prefix)
	if !ok {
		return &Error{Reason: ReasonMalformed}
	}
	if encoded == "" {
		return &Error{Reason: ReasonMissing}
	}
	var (
		sig []byte
		err error
	)
	if h.hex {
		sig, err = hex.DecodeString(encoded)
	} else {
		sig, err = decodeBase64(encoded)
	}
	if err != nil || len(sig) != sha256.Size {
		return &Error{Reason: ReasonMalformed}
	}
	match := 0
	for _, key := range h.secrets {
		match |= bit(hmac.Equal(bodyMAC(key, r.Body), sig))
	}
	if match != 1 {
		return &Error{Reason: ReasonWrong}
	}
	return nil
}

var base64Encodings = []*base64.Encoding{
	base64.StdEncoding.Strict(), base64.RawStdEncoding.Strict(),
	base64.URLEncoding.Strict(), base64.RawURLEncoding.Strict(),
}

var errBase64 = errors.New("not base64")

// decodeBase64 decodes standard or URL-safe base64, padded or not. The decoders are
// strict (unused bits must be zero) and line breaks, which encoding/base64 skips, are
// refused, so one MAC has one spelling per alphabet and padding.
func decodeBase64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errBase64
	}
	for _, enc := range base64Encodings {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errBase64
}

// bodyMAC is HMAC-SHA256(key, body).
func bodyMAC(key, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return mac.Sum(nil)
}
