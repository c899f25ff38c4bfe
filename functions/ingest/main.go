// Command ingest is the webhook endpoint Lambda: API Gateway HTTP API → SQS.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/lambdaenv"
)

func main() {
	fn := lambdaenv.Start(lambdaenv.Ingest)
	lambda.Start(awslambda.Flushed(fn.Metrics, awslambda.Ingest(fn.Pipeline.Ingest)))
}
