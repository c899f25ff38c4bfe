// Command read is the read API Lambda: API Gateway HTTP API (IAM-authorised) → DynamoDB,
// read only.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/readapi"
)

func main() {
	fn := lambdaenv.Start(lambdaenv.Reader)
	api := readapi.New(fn.Store, readapi.Options{Log: fn.Log, Settle: fn.Settle})
	lambda.Start(awslambda.Flushed(fn.Metrics, awslambda.Read(api.Handler(), fn.Log)))
}
