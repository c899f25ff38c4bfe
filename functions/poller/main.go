// Command poller is the scheduled Lambda that asks each connection's Halo API what changed
// and enqueues it for the worker: EventBridge schedule → Halo API → SQS (and its cursors
// in DynamoDB). The schedule fires every minute; each connection's plan decides whether
// it is due.
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
	fn := lambdapipeline.Start(lambdaenv.Poller)
	p := fn.Pipeline(dynamo.Open(fn.AWS, fn.Env.TableName))
	lambda.Start(lambdaevent.Flushed(fn.Metrics, awslambda.Poller(p.Poller, fn.Log)))
}
