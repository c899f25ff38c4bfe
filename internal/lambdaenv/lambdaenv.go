// Package lambdaenv reads a Lambda function's settings from its environment, once, into a
// struct, and loads the configuration document from where they say.
package lambdaenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/secrets"
	"github.com/halosync/halosync/internal/ssmparam"
)

// Env is everything the functions read from their environment.
type Env struct {
	QueueURL        string // QUEUE_URL
	TableName       string // TABLE_NAME
	ConfigParameter string // HALOSYNC_CONFIG_PARAMETER: the SSM parameter holding the config
	ConfigFile      string // HALOSYNC_CONFIG_FILE: a config file instead (tests, the emulator)
	LogLevel        string // LOG_LEVEL, or AWS_LAMBDA_LOG_LEVEL as Lambda sets it
}

// Read reads the environment.
func Read() Env {
	level := os.Getenv("LOG_LEVEL")
	if level == "" {
		level = os.Getenv("AWS_LAMBDA_LOG_LEVEL")
	}
	return Env{
		QueueURL:        os.Getenv("QUEUE_URL"),
		TableName:       os.Getenv("TABLE_NAME"),
		ConfigParameter: os.Getenv("HALOSYNC_CONFIG_PARAMETER"),
		ConfigFile:      os.Getenv("HALOSYNC_CONFIG_FILE"),
		LogLevel:        level,
	}
}

// Require fails naming every missing variable.
func (e Env) Require(names ...string) error {
	values := map[string]string{
		"QUEUE_URL": e.QueueURL, "TABLE_NAME": e.TableName,
		"HALOSYNC_CONFIG_PARAMETER": e.ConfigParameter, "HALOSYNC_CONFIG_FILE": e.ConfigFile,
	}
	var missing []string
	for _, n := range names {
		if values[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("environment: %s not set", strings.Join(missing, ", "))
	}
	return nil
}

// Logger returns the JSON logger at the configured level.
func (e Env) Logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(e.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level}))
}

// LoadConfig loads the configuration document: from HALOSYNC_CONFIG_FILE if set, else from
// the SSM parameter; "secretsmanager:" references resolve through sm, "env:" and "file:"
// locally.
func (e Env) LoadConfig(ctx context.Context, ssm ssmparam.API, sm secrets.API) (*config.Config, error) {
	resolver := config.LocalResolver{Next: secrets.NewResolver(sm)}
	switch {
	case e.ConfigFile != "":
		return config.Load(ctx, e.ConfigFile, resolver)
	case e.ConfigParameter != "":
		data, err := ssmparam.Get(ctx, ssm, e.ConfigParameter)
		if err != nil {
			return nil, err
		}
		c, err := config.Parse(ctx, data, resolver)
		if err != nil {
			return nil, fmt.Errorf("SSM parameter %s: %w", e.ConfigParameter, err)
		}
		return c, nil
	default:
		return nil, errors.New("environment: set HALOSYNC_CONFIG_PARAMETER (or HALOSYNC_CONFIG_FILE)")
	}
}
