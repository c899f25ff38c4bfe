// Command publish is the change-event Lambda: the table's stream → the EventBridge bus,
// one event per change that altered the copy.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/halosync/halosync/internal/changeevent"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/eventbridgebus"
	"github.com/halosync/halosync/internal/lambdaenv"
	"github.com/halosync/halosync/internal/lambdaevent"
)

func main() {
	fn := lambdaenv.Start(lambdaenv.Publisher)
	// Stream records are read as the table's object items; events go on EVENT_BUS_NAME.
	bus := eventbridgebus.Open(fn.AWS, fn.Env.EventBusName)
	publisher := changeevent.NewPublisher(dynamo.StreamEvent, bus, fn.Metrics, fn.Log)
	lambda.Start(lambdaevent.Flushed(fn.Metrics, lambdaevent.Publisher(publisher)))
}
