// Package lambdapipeline starts the functions that run the pipeline (ingest, worker,
// poller): after lambdaenv.Start, it loads the configuration document from where the
// environment says (SSM Parameter Store, secrets from Secrets Manager, both through signed
// calls without the SDK's clients: internal/ssmparam, internal/secretref; or a file),
// opens the queue (SQS, also through signed calls: internal/sqsqueue) and builds the
// pipeline over it and, for the functions that keep the copy, the DynamoDB store their
// main opens.
//
// The configuration comes from HALOSYNC_CONFIG_FILE when that is set, else from the SSM
// parameter HALOSYNC_CONFIG_PARAMETER names; an empty variable counts as unset. template.yaml
// declares HALOSYNC_CONFIG_FILE empty, so a deployed function reads the parameter, and
// `sam local invoke --env-vars events/local-env.json` sets it (SAM overrides only declared
// variables) to the local configuration the build copies to /var/task.
package lambdapipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/pipeline"
	"github.com/halosync/halosync/internal/secretref"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/ssmparam"
)

// Function is a pipeline function's start.
type Function struct {
	*lambdaenv.Function
	// Config is the configuration document.
	Config *config.Config
	// Queue is QUEUE_URL.
	Queue *sqsqueue.Queue
}

// Start starts the function (lambdaenv.Start), loads its configuration and opens the
// queue; a function that cannot start logs why and exits.
func Start(r lambdaenv.Role) *Function {
	f, err := start(context.Background(), lambdaenv.Start(r))
	if err != nil {
		f.Fail(err)
	}
	return f
}

func start(ctx context.Context, base *lambdaenv.Function) (*Function, error) {
	f := &Function{Function: base}
	var err error
	if f.Config, err = LoadConfigFor(ctx, f.Env, f.Role, ssmparam.New(f.AWS), secretref.NewClient(f.AWS)); err != nil {
		return f, err
	}
	f.Queue = sqsqueue.Open(f.AWS, f.Env.QueueURL)
	return f, nil
}

// Pipeline builds the role's pipeline over the queue (and the dead-letter queue, when
// DEAD_LETTER_QUEUE_URL names one) and store, which is nil for the ingest role; like
// Start, it exits when it cannot.
func (f *Function) Pipeline(store pipeline.Store) *pipeline.Pipeline {
	p, err := f.pipeline(store)
	if err != nil {
		f.Fail(err)
	}
	return p
}

func (f *Function) pipeline(store pipeline.Store) (*pipeline.Pipeline, error) {
	ports := pipeline.Ports{Queue: f.Queue, Store: store, Count: f.Metrics, Log: f.Log, APIInstances: apiInstances}
	if f.Env.DeadLetterURL != "" {
		ports.DeadLetters = f.Queue.At(f.Env.DeadLetterURL)
	}
	return pipeline.Build(f.Config, ports)
}

// Parameters reads an SSM parameter's value (ssmparam.Client).
type Parameters interface {
	Get(ctx context.Context, name string) ([]byte, error)
}

// LoadConfig loads the configuration document: from HALOSYNC_CONFIG_FILE if set (not
// empty), else from the SSM parameter, which is then not read; "secretsmanager:" references
// resolve through sm, "env:" and "file:" locally, and a document with inline values only
// needs neither SSM nor Secrets Manager.
func LoadConfig(ctx context.Context, e lambdaenv.Env, ssm Parameters, sm secretref.Reader) (*config.Config, error) {
	return load(ctx, e, ssm, sm, false)
}

// LoadConfigFor loads the configuration as a role needs it. A role without a store builds no
// Halo API client (pipeline.Build), so it leaves the connections' halo: credentials unread:
// the internet-facing ingest function may not read the Halo API's secret (template.yaml,
// HaloApiSecret).
func LoadConfigFor(ctx context.Context, e lambdaenv.Env, r lambdaenv.Role, ssm Parameters, sm secretref.Reader) (*config.Config, error) {
	return load(ctx, e, ssm, sm, !r.Store)
}

func load(ctx context.Context, e lambdaenv.Env, ssm Parameters, sm secretref.Reader, withholdHalo bool) (*config.Config, error) {
	var data []byte
	var where string
	var err error
	switch {
	case e.ConfigFile != "":
		if data, err = os.ReadFile(e.ConfigFile); err != nil {
			return nil, fmt.Errorf("read config (HALOSYNC_CONFIG_FILE): %w", err)
		}
		where = e.ConfigFile
	case e.ConfigParameter != "":
		if data, err = ssm.Get(ctx, e.ConfigParameter); err != nil {
			return nil, err
		}
		where = "SSM parameter " + e.ConfigParameter
	default:
		return nil, errors.New("environment: HALOSYNC_CONFIG_PARAMETER and HALOSYNC_CONFIG_FILE are both empty: set the SSM parameter's name, or a configuration file's path (which wins)")
	}
	var resolver config.Resolver = config.LocalResolver{Next: secretref.NewResolver(sm)}
	if withholdHalo {
		resolver = &withheld{data: data, next: resolver}
	}
	c, err := config.Parse(ctx, data, resolver)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return c, nil
}

// withheldValue stands for a Halo API credential a role does not read.
const withheldValue = "withheld: this function makes no Halo API call"

// withheld resolves every reference but the connections' halo: credentials
// (haloOnlyRefs), which it leaves unread. It reads the document for them at the first
// reference: a document without references is not parsed again.
type withheld struct {
	data []byte
	next config.Resolver
	once sync.Once
	refs map[string]bool
}

func (w *withheld) Resolve(ctx context.Context, ref string) (string, error) {
	w.once.Do(func() { w.refs = haloOnlyRefs(w.data) })
	if w.refs[ref] {
		return withheldValue, nil
	}
	return w.next.Resolve(ctx, ref)
}

// haloOnlyRefs lists the secret references of the connections' halo: credentials that
// nothing else in the document uses. A document that does not read is left to config.Parse.
func haloOnlyRefs(data []byte) map[string]bool {
	var doc struct {
		Connections []struct {
			Halo struct {
				ClientID     string `yaml:"client_id"`
				ClientSecret string `yaml:"client_secret"`
			} `yaml:"halo"`
			Webhook struct {
				Auth []struct {
					Passwords []string `yaml:"passwords"`
					Tokens    []string `yaml:"tokens"`
					Secrets   []string `yaml:"secrets"`
				} `yaml:"auth"`
			} `yaml:"webhook"`
		} `yaml:"connections"`
		Server struct {
			ReadTokens []string `yaml:"read_tokens"`
		} `yaml:"server"`
	}
	refs := map[string]bool{}
	if yaml.Unmarshal(data, &doc) != nil {
		return refs
	}
	used := map[string]bool{}
	for _, t := range doc.Server.ReadTokens {
		used[t] = true
	}
	for _, c := range doc.Connections {
		for _, a := range c.Webhook.Auth {
			for _, list := range [][]string{a.Passwords, a.Tokens, a.Secrets} {
				for _, v := range list {
					used[v] = true
				}
			}
		}
	}
	for _, c := range doc.Connections {
		for _, v := range []string{c.Halo.ClientID, c.Halo.ClientSecret} {
			if config.IsReference(v) && !used[v] {
				refs[v] = true
			}
		}
	}
	return refs
}

// apiInstances is how many processes may call a tenant's API at once: the worker's SQS
// event source runs at most 5 (template.yaml, ScalingConfig.MaximumConcurrency), and the
// poller one (ReservedConcurrentExecutions: 1). Each spends an equal share of the budget.
const apiInstances = 6
