// Package lambdae2e tests the Lambda packaging end to end, without Docker: what
// `sam local invoke` does, plus the API Gateway and SQS event source mapping around it
// (docs/ARCHITECTURE.md, "Tests").
//
// The tests build each function's `bootstrap` the way the Makefile does (CGO off,
// its LAMBDA_TAGS, -trimpath, stripped) but for the host's architecture, and the AWS
// Lambda Runtime Interface Emulator (a go.mod tool). Each function runs under its own
// emulator process, with the local stand-ins (DynamoDB Local and the SQS emulator that
// scripts/standins.sh starts) as its AWS. The tests then play API Gateway (POSTing the
// sample events in events/ to the ingest function) and the SQS event source mapping
// (receiving batches, invoking the worker with an events.SQSEvent, deleting what the
// worker did not report in batchItemFailures) and check the result in DynamoDB, the
// worker's embedded-metric-format output and the dead-letter queue. The ingest function's
// URL, the backup endpoint, is played too (its event: route $default, a lambda-url
// domain): TestFailoverToTheBackupEndpoint has Halo deliver to both webhooks while the
// primary refuses connections.
// TestSamLocalInvokeWithTheEnvFile runs the functions as `sam local invoke --env-vars
// events/local-env.json` does: built by their Makefile targets, with the env file's
// variables and SAM's placeholder credentials.
//
// The package holds only tests. Without the stand-ins' endpoint variables
// (HALOSYNC_TEST_DYNAMODB_ENDPOINT, HALOSYNC_TEST_SQS_ENDPOINT) they skip, except under
// CI, where they fail. Run them with
//
//	bash scripts/standins.sh start && eval "$(bash scripts/standins.sh env)"
//	go test -count=1 -v ./internal/lambdae2e/
//	bash scripts/standins.sh stop
package lambdae2e
