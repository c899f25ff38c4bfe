// Command ingest is the webhook endpoint Lambda: API Gateway HTTP API → SQS.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/metrics"
	"github.com/halosync/halosync/internal/sqsqueue"
)

func main() {
	ctx := context.Background()
	env := lambdaenv.Read()
	log := env.Logger()
	fatal := func(msg string, err error) {
		log.Error(msg, "error", err.Error())
		os.Exit(1)
	}
	if err := env.Require("QUEUE_URL"); err != nil {
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
	h, err := ingest.New(cfg, sqsqueue.New(sqs.NewFromConfig(aws), env.QueueURL), metrics.NewEMF(os.Stdout), log)
	if err != nil {
		fatal("configuration", err)
	}
	slog.SetDefault(log)
	lambda.Start(awslambda.Ingest(h))
}
