// Command read is the read API Lambda: API Gateway HTTP API (IAM-authorised) → DynamoDB,
// read only.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/lambdaevent"
	"github.com/halosync/halosync/internal/readapi"
)

func main() {
	fn := lambdaenv.Start(lambdaenv.Reader)
	store := dynamo.Open(fn.AWS, fn.Env.TableName)
	api := readapi.New(store, readapi.Options{Log: fn.Log, Settle: fn.Settle})
	lambda.Start(lambdaevent.Flushed(fn.Metrics, lambdaevent.Read(api.Handler(), fn.Log)))
}
