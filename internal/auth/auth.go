// Package auth verifies webhook deliveries against a connection's configured schemes. A
// delivery passes when any scheme accepts it; each scheme holds several secrets at once
// so a secret can be rotated without a missed delivery. Every comparison is constant-time.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/config"
)

// Request is what a scheme may look at: the headers (keys in lower case), the exact raw
// body bytes received, the path segment after the connection id (the path-secret scheme's
// secret; "" when the URL has none) and the time of receipt (the signed-timestamp scheme's
// "now"; the zero time stands for time.Now()).
type Request struct {
	Header     map[string]string
	Body       []byte
	PathSecret string
	Now        time.Time
}

// Failure reasons, stable for logs and metrics.
const (
	ReasonMissing   = "credentials_missing"
	ReasonMalformed = "credentials_malformed"
	ReasonWrong     = "credentials_wrong"
	// ReasonTimestamp: a signed-timestamp delivery carries a valid signature, made with a
	// configured secret, over a timestamp outside the tolerance (a replay, a delayed
	// retry or a skewed clock).
	ReasonTimestamp = "timestamp_out_of_window"
)

// Error says why a delivery was refused. It never holds a secret.
type Error struct{ Reason string }

func (e *Error) Error() string { return "unauthenticated: " + e.Reason }

// ErrUnauthenticated is what every *Error matches with errors.Is.
var ErrUnauthenticated = errors.New("unauthenticated")

// Is makes errors.Is(err, ErrUnauthenticated) hold.
func (e *Error) Is(target error) bool { return target == ErrUnauthenticated }

// Scheme is one way of authenticating. Verify returns nil or an *Error.
type Scheme interface {
	Verify(r Request) error
}

// Verifier accepts a delivery if any of its schemes does.
type Verifier []Scheme

// Verify returns nil if a scheme accepts r, else the most telling failure: an authentic
// signature over a timestamp out of the window outranks a wrong credential, which
// outranks a malformed one, which outranks a missing one. The timestamp reason ranks
// first because a scheme gives it only after a configured secret has verified the
// signature: it is the closest any scheme came to accepting the delivery.
func (v Verifier) Verify(r Request) error {
	best := &Error{Reason: ReasonMissing}
	for _, s := range v {
		err := s.Verify(r)
		if err == nil {
			return nil
		}
		var ae *Error
		if errors.As(err, &ae) && rank(ae.Reason) > rank(best.Reason) {
			best = ae
		}
	}
	return best
}

// NeedsBody reports whether some scheme reads the body (hmac, signed-timestamp), so the
// credentials cannot be judged from the headers and path alone. A scheme this package
// does not know is taken to need it.
func (v Verifier) NeedsBody() bool {
	for _, s := range v {
		switch s.(type) {
		case *Basic, *HeaderToken, *PathSecret:
		default:
			return true
		}
	}
	return false
}

func rank(reason string) int {
	switch reason {
	case ReasonTimestamp:
		return 3
	case ReasonWrong:
		return 2
	case ReasonMalformed:
		return 1
	}
	return 0
}

// New builds the verifier for a connection's schemes: basic, header, hmac,
// signed-timestamp and path-secret (see config.AuthScheme). It refuses an unknown scheme,
// an empty secret, token or password (anyone could present or sign with it), a header or
// hmac scheme naming no header, an unknown hmac encoding and a signed-timestamp secret
// that is not base64. Config validation catches these first; an error names the scheme's
// index and the secret's, never the secret.
func New(schemes []config.AuthScheme) (Verifier, error) {
	v := make(Verifier, 0, len(schemes))
	for i, s := range schemes {
		var (
			scheme Scheme
			err    error
		)
		switch s.Scheme {
		case "basic":
			err = noneEmpty("passwords", s.Passwords)
			scheme = NewBasic(s.Username, s.Passwords)
		case "header":
			if err = headerNamed(s.Header); err == nil {
				err = noneEmpty("tokens", s.Tokens)
			}
			scheme = NewHeaderToken(s.Header, s.Prefix, s.Tokens)
		case "hmac":
			if err = headerNamed(s.Header); err == nil {
				err = noneEmpty("secrets", s.Secrets)
			}
			if err == nil {
				scheme, err = NewHMAC(s.Header, s.Prefix, s.Encoding, s.Secrets)
			}
		case "signed-timestamp":
			if err = noneEmpty("secrets", s.Secrets); err == nil {
				scheme, err = NewSignedTimestamp(s.Secrets, s.Tolerance())
			}
		case "path-secret":
			err = noneEmpty("secrets", s.Secrets)
			scheme = NewPathSecret(s.Secrets)
		default:
			return nil, fmt.Errorf("auth[%d]: unknown scheme %q", i, s.Scheme)
		}
		if err != nil {
			return nil, fmt.Errorf("auth[%d]: %s: %w", i, s.Scheme, err)
		}
		v = append(v, scheme)
	}
	return v, nil
}

func headerNamed(h string) error {
	if strings.TrimSpace(h) == "" {
		return errors.New("header is empty")
	}
	return nil
}

func noneEmpty(field string, secrets []string) error {
	for k, s := range secrets {
		if s == "" {
			return fmt.Errorf("%s[%d] is empty", field, k)
		}
	}
	return nil
}

// anyDigest reports whether got equals any of want. It compares with every one, in
// constant time, so the time taken says neither which nor how many matched.
func anyDigest(got [sha256.Size]byte, want [][sha256.Size]byte) bool {
	match := 0
	for i := range want {
		match |= subtle.ConstantTimeCompare(got[:], want[i][:])
	}
	return match == 1
}

// digests hashes each non-empty secret; an empty one is dropped, as it would match an
// absent credential.
func digests(secrets []string) [][sha256.Size]byte {
	out := make([][sha256.Size]byte, 0, len(secrets))
	for _, s := range secrets {
		if s != "" {
			out = append(out, sha256.Sum256([]byte(s)))
		}
	}
	return out
}

// cutPrefix removes prefix from the start of v, comparing ASCII letters without regard to
// case ("Bearer " matches "bearer "; no other Unicode folding applies). The prefix is no
// secret: an ordinary comparison will do.
func cutPrefix(v, prefix string) (string, bool) {
	if len(v) < len(prefix) || !equalFold(v[:len(prefix)], prefix) {
		return "", false
	}
	return v[len(prefix):], true
}

// equalFold is strings.EqualFold for ASCII letters only.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// bit is 1 for true and 0 for false, without a branch the timing could reveal.
func bit(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}

// Basic is HTTP Basic authentication, Halo's documented option.
type Basic struct {
	user      [32]byte
	passwords [][32]byte
}

// NewBasic accepts the username with any of the passwords.
func NewBasic(username string, passwords []string) *Basic {
	b := &Basic{user: sha256.Sum256([]byte(username))}
	for _, p := range passwords {
		b.passwords = append(b.passwords, sha256.Sum256([]byte(p)))
	}
	return b
}

// Verify implements Scheme. Credentials are hashed before comparing so the comparison
// takes the same time whatever their length, and every password is compared.
func (b *Basic) Verify(r Request) error {
	h, ok := r.Header["authorization"]
	if !ok || h == "" {
		return &Error{Reason: ReasonMissing}
	}
	scheme, encoded, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "basic") {
		return &Error{Reason: ReasonMissing}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return &Error{Reason: ReasonMalformed}
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return &Error{Reason: ReasonMalformed}
	}
	gotUser := sha256.Sum256([]byte(user))
	gotPass := sha256.Sum256([]byte(pass))
	match := subtle.ConstantTimeCompare(gotUser[:], b.user[:])
	anyPass := 0
	for i := range b.passwords {
		anyPass |= subtle.ConstantTimeCompare(gotPass[:], b.passwords[i][:])
	}
	if match&anyPass != 1 {
		return &Error{Reason: ReasonWrong}
	}
	return nil
}
