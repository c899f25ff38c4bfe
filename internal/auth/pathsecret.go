package auth

import "crypto/sha256"

// PathSecret accepts a delivery whose URL carries one of the secrets as the path segment
// after the connection id (/<connection>/<secret>), for senders that can do nothing else.
// The secret then shows in every log that records the URL: prefer another scheme.
type PathSecret struct {
	secrets [][sha256.Size]byte
}

// NewPathSecret accepts any of the secrets. An empty secret is ignored: it would stand
// for a URL without one.
func NewPathSecret(secrets []string) *PathSecret {
	return &PathSecret{secrets: digests(secrets)}
}

// Verify implements Scheme. No path secret is a missing credential; any other is hashed
// and compared, in constant time, with every secret's hash.
func (p *PathSecret) Verify(r Request) error {
	if r.PathSecret == "" {
		return &Error{Reason: ReasonMissing}
	}
	if !anyDigest(sha256.Sum256([]byte(r.PathSecret)), p.secrets) {
		return &Error{Reason: ReasonWrong}
	}
	return nil
}
