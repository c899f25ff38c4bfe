// Command ingest is the webhook endpoint Lambda: API Gateway HTTP API → SQS.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/lambdaevent"
	"github.com/halosync/halosync/internal/lambdapipeline"
)

func main() {
	fn := lambdapipeline.Start(lambdaenv.Ingest)
	p := fn.Pipeline(nil) // no store: the ingest function does not link DynamoDB's client
	lambda.Start(lambdaevent.Flushed(fn.Metrics, awslambda.Ingest(p.Ingest)))
}
