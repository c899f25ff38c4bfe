// Command worker is the change-applying Lambda: SQS → DynamoDB.
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
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/haloapi"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqsqueue"
	"github.com/halosync/halosync/internal/worker"
)

// apiInstances is how many processes may call a tenant's API at once: the worker's SQS
// event source runs at most 5 (template.yaml, ScalingConfig.MaximumConcurrency), and the
// poller one.
const apiInstances = 6

func main() {
	ctx := context.Background()
	env := lambdaenv.Read()
	log := env.Logger()
	if err := env.Require("TABLE_NAME", "QUEUE_URL"); err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	aws, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		log.Error("aws configuration", "error", err.Error())
		os.Exit(1)
	}
	var conns map[string]worker.Connection
	if env.ConfigParameter != "" || env.ConfigFile != "" {
		cfg, err := env.LoadConfig(ctx, ssm.NewFromConfig(aws), secretsmanager.NewFromConfig(aws))
		if err != nil {
			log.Error("configuration", "error", err.Error())
			os.Exit(1)
		}
		newFetcher := func(c config.Connection) (worker.Fetcher, error) {
			h := c.Halo // each instance spends its share of the connection's budget
			h.Budget.Requests = haloapi.InstanceShare(h.Budget.Count(), apiInstances)
			return haloapi.FromConfig(h, nil)
		}
		if conns, err = worker.ConnectionsFromConfig(cfg, newFetcher); err != nil {
			log.Error("configuration", "error", err.Error())
			os.Exit(1)
		}
	}
	w := worker.New(dynamo.New(dynamodb.NewFromConfig(aws), env.TableName), metrics.NewEMF(os.Stdout), log, conns)
	slog.SetDefault(log)
	lambda.Start(awslambda.Worker(w, sqsqueue.New(sqs.NewFromConfig(aws), env.QueueURL), log))
}
