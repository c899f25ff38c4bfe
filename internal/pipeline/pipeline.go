// Package pipeline wires halosync's handlers once per process, over the ports it is
// given: the compiled connections, the ingest handler, the worker, the poller's run loop
// and one Halo API client per connection, shared by the worker's fetches and the poller
// so they spend one request budget. The Lambda functions (through lambdaenv) and
// `halosync serve` build the same pipeline; only the adapters they pass differ.
package pipeline

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/webhooks"
	"github.com/halosync/halosync/internal/worker"
)

// Store is what the worker and the poller need of the object store: every store adapter
// provides it.
type Store interface {
	worker.Store
	poller.Copy
	poller.Cursors
	poller.StoredIDs
}

// Counter counts what the handlers do.
type Counter interface {
	Count(m metrics.Metric, n int64)
}

// Ports are the adapters the pipeline runs over.
type Ports struct {
	// Store is the copy; nil builds the ingest handler only (the ingest function).
	Store Store
	// Queue is the change queue ingest and the poller send to.
	Queue ingest.Sender
	// DeadLetters, when set, receives the worker's permanent failures directly, each with
	// its reason (worker.SendDeadLettersTo); nil leaves them to the redrive policy.
	DeadLetters worker.DeadLetterQueue
	Count       Counter
	Log         *slog.Logger
	// APIInstances is how many processes may call one tenant's API at once, each spending
	// an equal share of the connection's budget (haloapi.InstanceShare); 0 or 1: this
	// process spends it all.
	APIInstances int
	// HaloClient makes a connection's Halo API client (default: haloapi.FromConfig with
	// this process's share of the budget); tests set it to give the client a clock.
	HaloClient func(c *connection.Connection) (*haloapi.Client, error)
	// Now is the poller's clock (default time.Now).
	Now func() time.Time
	// Poll tunes the poller's run loop.
	Poll poller.RunOptions
	// Progress, when set, is told where each poller's long reads stand (the local
	// dashboard's backfill progress).
	Progress poller.ProgressReporter
}

// Pipeline is one process's handlers.
type Pipeline struct {
	Connections connection.Set
	Ingest      *ingest.Handler
	// Worker and Poller are nil without a store.
	Worker *worker.Worker
	Poller *poller.Schedule
	// Halo holds the API client of each connection that configures one.
	Halo map[string]*haloapi.Client
}

// Build compiles the configuration's connections and builds the handlers over p.
func Build(cfg *config.Config, p Ports) (*Pipeline, error) {
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		return nil, err
	}
	out := &Pipeline{Connections: conns, Ingest: ingest.New(conns, p.Queue, p.Count, p.Log), Halo: map[string]*haloapi.Client{}}
	if p.Store == nil {
		return out, nil
	}
	newClient := p.HaloClient
	if newClient == nil {
		newClient = func(c *connection.Connection) (*haloapi.Client, error) {
			h := c.Config.Halo
			h.Budget.Requests = haloapi.InstanceShare(h.Budget.Count(), max(p.APIInstances, 1))
			return haloapi.FromConfig(h, nil)
		}
	}
	fetchers := map[string]worker.Fetcher{}
	var targets []poller.Target
	for _, c := range conns {
		if !c.Config.Halo.Configured() {
			p.Log.Info("connection not polled: it has no halo: settings", "connection", c.ID)
			continue
		}
		client, err := newClient(c)
		if err != nil {
			return nil, fmt.Errorf("connection %s: halo: %w", c.ID, err)
		}
		out.Halo[c.ID], fetchers[c.ID] = client, client
		opts := poller.OptionsOf(c)
		opts.Now = p.Now
		opts.Progress = p.Progress
		opts.Share = poller.ShareOf(c, client.Budget())
		check, err := webhooks.CheckFor(c.Config, client, p.Count, p.Log)
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", c.ID, err)
		}
		run := poller.Runner{Poller: poller.New(c.ID, client, p.Queue, p.Store, p.Store, p.Count, p.Log, opts),
			Plan: poller.PlanOf(c.Poll), Stored: p.Store, Webhook: check, Budget: client.Budget()}
		targets = append(targets, poller.Target{Connection: c.ID, Runner: run})
	}
	out.Worker = worker.New(p.Store, p.Count, p.Log, conns, fetchers)
	if p.DeadLetters != nil {
		out.Worker.SendDeadLettersTo(p.DeadLetters)
	}
	out.Poller = poller.NewSchedule(targets, p.Count, p.Log, p.Poll)
	return out, nil
}
