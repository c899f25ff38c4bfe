package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/config"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com, spec 1.0.0). The spec
// names exactly these; the "svix-" headers of Svix's own libraries are not accepted.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// SignedTimestamp is the symmetric Standard Webhooks scheme: webhook-signature holds a
// space-separated list of "v1,<base64 HMAC-SHA256>" entries, each over
// "<webhook-id>.<webhook-timestamp>.<body>"; webhook-timestamp is in Unix seconds and
// must lie within the tolerance of the time of receipt, either way.
type SignedTimestamp struct {
	keys      [][]byte
	tolerance int64 // seconds
}

// NewSignedTimestamp accepts a signature made with any of the secrets, each
// "whsec_<base64 key>" or the base64 key alone (standard alphabet, padded). tolerance is
// rounded down to whole seconds; zero or less means config.DefaultTolerance. An error
// names the secret's index, never its value.
func NewSignedTimestamp(secrets []string, tolerance time.Duration) (*SignedTimestamp, error) {
	if tolerance <= 0 {
		tolerance = config.DefaultTolerance
	}
	s := &SignedTimestamp{tolerance: int64(tolerance / time.Second)}
	for k, secret := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			return nil, fmt.Errorf("secrets[%d] is not a whsec_ base64 secret", k)
		}
		if len(key) == 0 {
			return nil, fmt.Errorf("secrets[%d] is empty", k)
		}
		s.keys = append(s.keys, key)
	}
	return s, nil
}

var errTimestamp = errors.New("not a Unix timestamp")

// Verify implements Scheme, checking in this order:
//   - no webhook-signature (or a blank one): missing;
//   - no webhook-id or webhook-timestamp, a timestamp that is not a decimal integer, or
//     no "v1," entry whose signature decodes to 32 bytes: malformed (entries of other
//     versions, such as the asymmetric "v1a", are ignored, so a header holding only those
//     is malformed too);
//   - no v1 entry equal to the MAC under any secret: wrong (every entry is compared with
//     every secret's MAC, with hmac.Equal);
//   - a correctly signed timestamp more than the tolerance before or after the time of
//     receipt, compared in whole seconds: timestamp_out_of_window. The edge itself is
//     accepted.
//
// The signature is checked before the window so that the timestamp reason speaks of
// authentic deliveries only: a replay or a clock skew, not noise.
func (s *SignedTimestamp) Verify(r Request) error {
	sigs := r.Header[HeaderWebhookSignature]
	if strings.TrimSpace(sigs) == "" {
		return &Error{Reason: ReasonMissing}
	}
	id, ts := r.Header[HeaderWebhookID], r.Header[HeaderWebhookTimestamp]
	if id == "" {
		return &Error{Reason: ReasonMalformed}
	}
	unix, err := parseUnix(ts)
	if err != nil {
		return &Error{Reason: ReasonMalformed}
	}
	var candidates [][]byte
	for _, entry := range strings.Fields(sigs) {
		version, encoded, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(encoded)
		if err != nil || len(sig) != sha256.Size {
			continue
		}
		candidates = append(candidates, sig)
	}
	if len(candidates) == 0 {
		return &Error{Reason: ReasonMalformed}
	}
	match := 0
	for _, key := range s.keys {
		sum := contentMAC(key, id, ts, r.Body)
		for _, c := range candidates {
			match |= bit(hmac.Equal(sum, c))
		}
	}
	if match != 1 {
		return &Error{Reason: ReasonWrong}
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	if n := now.Unix(); unix < n-s.tolerance || unix > n+s.tolerance {
		return &Error{Reason: ReasonTimestamp}
	}
	return nil
}

// parseUnix reads a webhook-timestamp: ASCII digits only (no sign, no blanks), at most
// what an int64 holds.
func parseUnix(s string) (int64, error) {
	if s == "" {
		return 0, errTimestamp
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errTimestamp
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errTimestamp
	}
	return n, nil
}

// contentMAC is HMAC-SHA256(key, "<id>.<timestamp>.<body>"), the timestamp as received.
func contentMAC(key []byte, id, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}
