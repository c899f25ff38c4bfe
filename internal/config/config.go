// Package config is halosync's one configuration schema: connections to Halo tenants, how
// their webhooks authenticate, and where the copy is kept. Locally it is a YAML file with
// secrets in environment variables or files; in AWS the same document lives in SSM
// Parameter Store with secrets in Secrets Manager. It is read once, at start.
package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Config is the whole document.
type Config struct {
	Connections []Connection `yaml:"connections"`
	Store       Store        `yaml:"store"`
	Queue       Queue        `yaml:"queue"`
	Server      Server       `yaml:"server"`
}

// ErrInvalid marks a configuration that cannot be used; the message says what to fix.
var ErrInvalid = errors.New("invalid configuration")

// Parse reads a YAML document, rejects unknown keys, resolves secret references and
// validates the result.
func Parse(ctx context.Context, data []byte, r Resolver) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(data, err)
	}
	if err := checkKeys(&root, reflect.TypeFor[Config](), ""); err != nil {
		return nil, err
	}
	if err := checkPollNumbers(&root); err != nil {
		return nil, err
	}
	if root.Kind == 0 { // nothing but comments, or nothing
		return nil, fmt.Errorf("%w: the document is empty", ErrInvalid)
	}
	// Decoded from the parsed node, not parsed again (a Lambda function parses it at each
	// cold start: docs/PERFORMANCE.md, "Cold start"); checkKeys has refused unknown keys.
	var c Config
	if err := root.Decode(&c); err != nil {
		// The YAML library quotes the offending value, which may be a secret: keep the
		// place and the types, drop the value.
		return nil, fmt.Errorf("%w: %s", ErrInvalid, quotedValue().ReplaceAllString(err.Error(), "a value"))
	}
	if err := c.resolve(ctx, r); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads a YAML file.
func Load(ctx context.Context, path string, r Resolver) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(ctx, data, r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ReadFile reads a configuration file; a missing one's error says how to start one.
func ReadFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read config: no file %s: start from the example, `cp halosync.example.yaml %s`, and edit it: %w", path, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return data, nil
}

var quotedValue = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile("`[^`]*`") })

// Connection returns the connection with the given id.
func (c *Config) Connection(id string) (*Connection, bool) {
	for i := range c.Connections {
		if c.Connections[i].ID == id {
			return &c.Connections[i], true
		}
	}
	return nil, false
}
