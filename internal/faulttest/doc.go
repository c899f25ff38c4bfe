// Package faulttest holds the fault scenarios: the pipeline in process over its real AWS
// adapters, with a fault-injecting proxy (internal/faultproxy) between them and each
// service: DynamoDB Local for the store, the SQS stand-in for the change queue, and a
// simulated Halo tenant (internal/halosim) for the worker's fetches. Each scenario turns
// one fault on one of them for a bounded window while a tenant changes and its webhooks
// deliver, then clears it, and checks that nothing was lost or invented: the copy equals
// the tenant (converge.WantConverged), every delivery ingest acknowledged was applied,
// and the dead-letter queue holds exactly the permanent failures the scenario planted.
// The scenarios are its tests; docs/ARCHITECTURE.md, "Tests", describes them.
//
// Like the other adapter tests, they need the stand-ins scripts/standins.sh starts: they
// are skipped without them, and fail under CI (internal/awstest's rule).
package faulttest
