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
// secret; "" when the URL has none) and the time of receipt.
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

// Verify returns nil if a scheme accepts r, else the most telling failure: a wrong
// credential outranks a malformed one, which outranks a missing one.
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

func rank(reason string) int {
	switch reason {
	case ReasonWrong:
		return 2
	case ReasonMalformed:
		return 1
	}
	return 0
}

// New builds the verifier for a connection's schemes.
func New(schemes []config.AuthScheme) (Verifier, error) {
	v := make(Verifier, 0, len(schemes))
	for i, s := range schemes {
		switch s.Scheme {
		case "basic":
			v = append(v, NewBasic(s.Username, s.Passwords))
		default:
			return nil, fmt.Errorf("auth[%d]: unknown scheme %q", i, s.Scheme)
		}
	}
	return v, nil
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
