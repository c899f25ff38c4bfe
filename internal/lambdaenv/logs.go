package lambdaenv

import (
	"context"
	"log/slog"
	"sync"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// invocationHandler adds to every line logged within an invocation the invocation's
// request id, and, within the first invocation of the process, cold_start: true, so a
// line can be tied to its invocation and a slow one to its cold start.
type invocationHandler struct {
	slog.Handler
	first *firstInvocation
}

// firstInvocation remembers the request id of the process's first invocation.
type firstInvocation struct {
	once sync.Once
	id   string
}

func (f *firstInvocation) is(id string) bool {
	f.once.Do(func() { f.id = id })
	return f.id == id
}

func (h invocationHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("request_id", lc.AwsRequestID))
		if h.first.is(lc.AwsRequestID) {
			r.AddAttrs(slog.Bool("cold_start", true))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h invocationHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return invocationHandler{Handler: h.Handler.WithAttrs(attrs), first: h.first}
}

func (h invocationHandler) WithGroup(name string) slog.Handler {
	return invocationHandler{Handler: h.Handler.WithGroup(name), first: h.first}
}
