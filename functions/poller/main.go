// Command poller is the scheduled Lambda that asks each connection's Halo API what changed
// and enqueues it for the worker: EventBridge schedule → Halo API → SQS (and its cursors
// in DynamoDB).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/webhooks"
)

// apiInstances is how many processes may call a tenant's API at once, as the worker counts
// them: the worker's SQS event source runs at most 5 (template.yaml,
// ScalingConfig.MaximumConcurrency), and the poller one (ReservedConcurrentExecutions: 1).
const apiInstances = 6

func main() {
	ctx := context.Background()
	env := lambdaenv.Read()
	log := env.Logger()
	fatal := func(msg string, err error) {
		log.Error(msg, "error", err.Error())
		os.Exit(1)
	}
	if err := env.Require("TABLE_NAME", "QUEUE_URL"); err != nil {
		fatal("configuration", err)
	}
	aws, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		fatal("aws configuration", err)
	}
	cfg, err := env.LoadConfig(ctx, ssm.NewFromConfig(aws), secretsmanager.NewFromConfig(aws))
	if err != nil {
		fatal("configuration", err)
	}
	store := dynamo.New(dynamodb.NewFromConfig(aws), env.TableName)
	queue := sqsqueue.New(sqs.NewFromConfig(aws), env.QueueURL)
	count := metrics.NewEMF(os.Stdout)
	var targets []awslambda.PollTarget
	for _, c := range cfg.Connections {
		if !c.Halo.Configured() {
			log.Info("connection not polled: it has no halo: settings", "connection", c.ID)
			continue
		}
		h := c.Halo // this instance spends its share of the connection's budget
		h.Budget.Requests = haloapi.InstanceShare(h.Budget.Count(), apiInstances)
		client, err := haloapi.FromConfig(h, nil)
		if err != nil {
			fatal("configuration", err)
		}
		// The store is the copy the poller compares with, where its cursors and schedule
		// live, and the id lists the daily reconcile compares with Halo's.
		opts, err := poller.OptionsOf(c)
		if err != nil {
			fatal("configuration", err)
		}
		p := poller.New(c.ID, client, queue, store, store, count, log, opts)
		check, err := webhooks.CheckFor(c, client, count, log)
		if err != nil {
			fatal("configuration", err)
		}
		run := poller.Runner{Poller: p, Plan: poller.PlanOf(c.Poll), Stored: store, Webhook: check}
		targets = append(targets, awslambda.PollTarget{Connection: c.ID, Runner: run})
	}
	slog.SetDefault(log)
	// The schedule fires every minute; each connection's plan (poll: in the configuration)
	// decides whether it is due.
	lambda.Start(awslambda.Poller(targets, count, log, awslambda.PollerOptions{}))
}
