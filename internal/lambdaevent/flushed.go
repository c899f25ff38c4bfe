// Package lambdaevent adapts aws-lambda-go's event types for the functions that run none
// of the pipeline: the read API's requests (API Gateway HTTP API, IAM-authorised) and the
// table's stream records to the change event publisher; and Flushed, which every function
// wraps its handler in. It imports none of the pipeline's packages, so the read and
// publish functions' bootstraps carry none of them (docs/PERFORMANCE.md, "Cold start");
// the pipeline's adapters are in internal/awslambda.
package lambdaevent

import "context"

// Flusher writes what was counted.
type Flusher interface{ Flush() }

// Flushed runs h, then flushes f: an invocation's metrics are written once, as it ends,
// before Lambda may freeze the process (docs/ARCHITECTURE.md, "Observability").
func Flushed[E, R any](f Flusher, h func(context.Context, E) (R, error)) func(context.Context, E) (R, error) {
	return func(ctx context.Context, e E) (R, error) {
		defer f.Flush()
		return h(ctx, e)
	}
}
