package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/halosync/halosync/internal/config"
)

// SecretStore reads and writes the places secret references name.
type SecretStore interface {
	// Lookup returns the secret at ref; found is false when the place exists but holds
	// none yet (a missing file, a missing key of a Secrets Manager secret).
	Lookup(ctx context.Context, ref string) (value string, found bool, err error)
	// Store writes value at ref.
	Store(ctx context.Context, ref, value string) error
}

// ErrReadOnly: halosync cannot write this kind of reference (env:, or a literal).
var ErrReadOnly = errors.New("halosync cannot write there")

// NewSecret is a fresh strong secret: 32 random bytes, base64url (43 characters).
func NewSecret() (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate a secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// LocalSecrets keeps secrets in files (file:PATH, written 0600 in a 0700 directory) and
// reads environment variables (env:NAME, read-only); it hands other references to Next.
type LocalSecrets struct {
	Next SecretStore
}

// Lookup implements SecretStore.
func (l LocalSecrets) Lookup(ctx context.Context, ref string) (string, bool, error) {
	kind, rest, _ := strings.Cut(ref, ":")
	switch kind {
	case "file":
		b, err := os.ReadFile(rest)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("read secret file: %w", err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		return v, v != "", nil
	case "env":
		v, ok := os.LookupEnv(rest)
		return v, ok && v != "", nil
	}
	if l.Next != nil && config.IsReference(ref) {
		return l.Next.Lookup(ctx, ref)
	}
	return "", false, fmt.Errorf("%s references: %w", kind, ErrReadOnly)
}

// Store implements SecretStore.
func (l LocalSecrets) Store(ctx context.Context, ref, value string) error {
	kind, rest, _ := strings.Cut(ref, ":")
	switch kind {
	case "file":
		if dir := filepath.Dir(rest); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("make the secret's directory: %w", err)
			}
		}
		// Written aside and renamed, so a reader never sees half a secret.
		tmp, err := os.CreateTemp(filepath.Dir(rest), ".halosync-secret-*")
		if err != nil {
			return fmt.Errorf("write secret file: %w", err)
		}
		defer os.Remove(tmp.Name())
		if err := tmp.Chmod(0o600); err != nil {
			tmp.Close()
			return fmt.Errorf("write secret file: %w", err)
		}
		if _, err := tmp.WriteString(value + "\n"); err != nil {
			tmp.Close()
			return fmt.Errorf("write secret file: %w", err)
		}
		if err := tmp.Close(); err != nil {
			return fmt.Errorf("write secret file: %w", err)
		}
		if err := os.Rename(tmp.Name(), rest); err != nil {
			return fmt.Errorf("write secret file: %w", err)
		}
		return nil
	case "env":
		return fmt.Errorf("env references: %w", ErrReadOnly)
	}
	if l.Next != nil && config.IsReference(ref) {
		return l.Next.Store(ctx, ref, value)
	}
	return fmt.Errorf("%s references: %w", kind, ErrReadOnly)
}

// SecretAction is what EnsureSecret found or did.
type SecretAction string

const (
	// SecretPresent: the place holds a secret (or the configuration holds it literally).
	SecretPresent SecretAction = "present"
	// SecretGenerated: a new secret was generated and stored there.
	SecretGenerated SecretAction = "generated"
	// SecretWouldGenerate: dry run; one would be generated and stored.
	SecretWouldGenerate SecretAction = "would generate"
)

// EnsureSecret makes sure the managed secret's place holds a secret: when ref is a file:
// or secretsmanager: reference whose place is empty, a new strong secret is generated and
// stored there (with dryRun only reported), so that the configuration, which reads the
// same reference, accepts it. A literal is present by definition; an empty env: reference
// is an error that says what to do. The secret's value is never returned or printed.
func EnsureSecret(ctx context.Context, store SecretStore, ref string, dryRun bool) (SecretAction, error) {
	if !config.IsReference(ref) {
		return SecretPresent, nil
	}
	_, found, err := store.Lookup(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("webhook secret %s: %w", ref, err)
	}
	if found {
		return SecretPresent, nil
	}
	if name, ok := strings.CutPrefix(ref, "env:"); ok {
		return "", fmt.Errorf("the webhook secret is read from env:%s, which is not set: set it to a strong secret (for example `export %s=$(halosync webhooks secret)`) wherever halosync runs, or name a file: or secretsmanager: place that halosync can fill", name, name)
	}
	if dryRun {
		return SecretWouldGenerate, nil
	}
	v, err := NewSecret()
	if err != nil {
		return "", err
	}
	if err := store.Store(ctx, ref, v); err != nil {
		return "", fmt.Errorf("store the new webhook secret at %s: %w", ref, err)
	}
	return SecretGenerated, nil
}
