package auth

import (
	"crypto/sha256"
	"strings"
)

// HeaderToken accepts a static token in a named header, after an optional prefix such as
// "Bearer " in Authorization or nothing in X-Api-Key. The prefix is compared without
// regard to the case of ASCII letters; the token exactly, whitespace included.
type HeaderToken struct {
	header string // lower case, as Request.Header keys are
	prefix string
	tokens [][sha256.Size]byte
}

// NewHeaderToken accepts any of the tokens in header after prefix. An empty token is
// ignored: it would stand for no credential at all.
func NewHeaderToken(header, prefix string, tokens []string) *HeaderToken {
	return &HeaderToken{header: strings.ToLower(strings.TrimSpace(header)), prefix: prefix, tokens: digests(tokens)}
}

// Verify implements Scheme. The header absent or empty, or holding the prefix alone, is
// a missing credential; a value without the prefix is malformed; any other value is
// hashed and compared, in constant time, with every token's hash, so neither its length
// nor which token it is shows in the time taken.
func (h *HeaderToken) Verify(r Request) error {
	v := r.Header[h.header]
	if v == "" {
		return &Error{Reason: ReasonMissing}
	}
	token, ok := cutPrefix(v, h.prefix)
	if !ok {
		// "Bearer" alone, the prefix "Bearer " without its blank (HTTP trims trailing
		// blanks from header values), is no credential.
		if word := strings.TrimRight(h.prefix, " \t"); word != "" && equalFold(v, word) {
			return &Error{Reason: ReasonMissing}
		}
		return &Error{Reason: ReasonMalformed}
	}
	if token == "" {
		return &Error{Reason: ReasonMissing}
	}
	if !anyDigest(sha256.Sum256([]byte(token)), h.tokens) {
		return &Error{Reason: ReasonWrong}
	}
	return nil
}
