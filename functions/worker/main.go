// Command worker is the change-applying Lambda: SQS → DynamoDB, fetching from Halo's API
// what event-only deliveries announce.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/lambdaenv"
)

func main() {
	fn := lambdaenv.Start(lambdaenv.Worker)
	lambda.Start(awslambda.Flushed(fn.Metrics, awslambda.Worker(fn.Pipeline.Worker, fn.Queue)))
}
