// Command worker is the change-applying Lambda: SQS → DynamoDB, fetching from Halo's API
// what event-only deliveries announce.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/lambdaevent"
	"github.com/halosync/halosync/internal/lambdapipeline"
)

func main() {
	fn := lambdapipeline.Start(lambdaenv.Worker)
	p := fn.Pipeline(dynamo.Open(fn.AWS, fn.Env.TableName))
	lambda.Start(lambdaevent.Flushed(fn.Metrics, awslambda.Worker(p.Worker, fn.Queue)))
}
