package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/secrets"
	"github.com/halosync/halosync/internal/sqlite"
)

// defaultUser is the Basic-auth user of the connection made when no config is given.
const defaultUser = "halo"

// loadConfig reads --config, or makes the default one-connection config whose generated
// password is kept in the data dir; password is returned when it was generated.
func loadConfig(ctx context.Context, path, dataDir string) (cfg *config.Config, password string, err error) {
	if path != "" {
		resolver := config.LocalResolver{Next: lazySecrets{}}
		cfg, err = config.Load(ctx, path, resolver)
		return cfg, "", err
	}
	password, err = defaultPassword(dataDir)
	if err != nil {
		return nil, "", err
	}
	cfg = &config.Config{Connections: []config.Connection{{
		ID: "default",
		Webhook: config.Webhook{Auth: []config.AuthScheme{{
			Scheme: "basic", Username: defaultUser, Passwords: []string{password},
		}}},
	}}}
	return cfg, password, cfg.Validate()
}

// commandConfig is the configuration of a command that works on what serve keeps (get,
// sync, dlq): --config's, else serve's default, one connection "default" (the demo's),
// made without generating anything.
func commandConfig(ctx context.Context, path, dataDir string) (*config.Config, error) {
	if path != "" {
		cfg, _, err := loadConfig(ctx, path, dataDir)
		return cfg, err
	}
	return &config.Config{Connections: []config.Connection{{ID: "default"}}}, nil
}

// knownConnection checks that id names a connection of cfg, read from configPath ("": serve's
// default); the error lists the configured ones.
func knownConnection(cfg *config.Config, configPath, id string) error {
	if _, ok := cfg.Connection(id); ok {
		return nil
	}
	ids := make([]string, len(cfg.Connections))
	for i, c := range cfg.Connections {
		ids[i] = strconv.Quote(c.ID)
	}
	err := fmt.Errorf("no connection %q: the configuration has %s; pass one of them with --connection", id, strings.Join(ids, ", "))
	if configPath == "" {
		err = fmt.Errorf("%w (without --config, serve's default; pass the --config serve runs with for its connections)", err)
	}
	return err
}

// existingDB is the embedded database at path, which must exist: a command that reads must
// not create an empty one where serve never ran.
func existingDB(path, otherwise string) (*sqlite.DB, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no halosync database at %s: pass the --data (or --config) that serve uses%s", path, otherwise)
	}
	return sqlite.Open(path)
}

// The files in the data dir that keep generated secrets.
const (
	passwordFile  = "webhook-password"
	readTokenFile = "read-token"
)

// defaultPassword reads the data dir's generated webhook password, making it on first use.
func defaultPassword(dataDir string) (string, error) {
	return generated(dataDir, passwordFile)
}

// generated reads the data dir's generated secret in file name, making it on first use
// (readable by its owner only).
func generated(dataDir, name string) (string, error) {
	path := filepath.Join(dataDir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read generated %s: %w", name, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("make data dir: %w", err)
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(p+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep generated %s: %w", name, err)
	}
	return p, nil
}

// readTokens gives cfg the generated read token of dataDir when it names none, and says
// where the token the server accepts is kept.
func readTokens(cfg *config.Config, dataDir string) (where string, err error) {
	if len(cfg.Server.ReadTokens) > 0 {
		return "server.read_tokens of the configuration", nil
	}
	token, err := generated(dataDir, readTokenFile)
	if err != nil {
		return "", err
	}
	cfg.Server.ReadTokens = []string{token}
	return filepath.Join(dataDir, readTokenFile), nil
}

// lazySecrets resolves secretsmanager: references with the default AWS configuration,
// loaded only when a config uses one.
type lazySecrets struct{}

func (lazySecrets) Resolve(ctx context.Context, ref string) (string, error) {
	aws, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("aws configuration: %w", err)
	}
	return secrets.NewResolver(secretsmanager.NewFromConfig(aws)).Resolve(ctx, ref)
}

// openStore opens the store the config names; db opens the embedded one when it is named.
func openStore(ctx context.Context, cfg *config.Config, db func() (*sqlite.DB, error)) (localserver.Store, error) {
	switch cfg.Store.Driver {
	case "dynamodb":
		var opts []func(*awsconfig.LoadOptions) error
		if cfg.Store.Region != "" {
			opts = append(opts, awsconfig.WithRegion(cfg.Store.Region))
		}
		aws, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("aws configuration: %w", err)
		}
		return dynamo.New(dynamodb.NewFromConfig(aws), cfg.Store.Table), nil
	default:
		d, err := db()
		if err != nil {
			return nil, err
		}
		return d.Store(), nil
	}
}

// dbPath is where the embedded database lives.
func dbPath(cfg *config.Config, dataDir string) string {
	if cfg.Store.Driver != "dynamodb" && cfg.Store.Path != "" {
		return cfg.Store.Path
	}
	return filepath.Join(dataDir, "halosync.db")
}
