// Command publish is the change-event Lambda: the table's stream → the EventBridge bus,
// one event per change that altered the copy.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/awslambda"
	"github.com/halosync/halosync/internal/lambdaenv"
)

func main() {
	fn := lambdaenv.Start(lambdaenv.Publisher)
	lambda.Start(awslambda.Flushed(fn.Metrics, awslambda.Publisher(fn.Publisher)))
}
