package lambdaevent

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/apierror"
)

// Read returns the API Gateway handler for the read routes (internal/readapi's handler,
// h). Every read route is authorised by IAM at the API (AWS_IAM), which puts the signing
// caller in requestContext.authorizer.iam; an event without one (a route left without
// the authoriser, a direct invoke) is refused 403 forbidden before anything is read.
func Read(h http.Handler, log *slog.Logger) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		caller := iamCaller(e)
		if caller == "" {
			log.WarnContext(ctx, "read refused", "reason", "iam_identity_missing", "status", apierror.Forbidden.Status(),
				"route", e.RouteKey, "request_id", e.RequestContext.RequestID, "source_ip", e.RequestContext.HTTP.SourceIP)
			return events.APIGatewayV2HTTPResponse{StatusCode: apierror.Forbidden.Status(), Headers: map[string]string{"content-type": "application/json"},
				Body: string((&apierror.Error{Code: apierror.Forbidden, Message: "the read routes answer requests signed with AWS credentials (SigV4) only"}).Body())}, nil
		}
		path := e.RawPath
		if path == "" {
			path = e.RequestContext.HTTP.Path
		}
		target := path
		if e.RawQueryString != "" {
			target += "?" + e.RawQueryString
		}
		req, err := http.NewRequestWithContext(ctx, e.RequestContext.HTTP.Method, target, nil)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{StatusCode: apierror.NotFound.Status(), Headers: map[string]string{"content-type": "application/json"},
				Body: string((&apierror.Error{Code: apierror.NotFound, Message: "no such route"}).Body())}, nil
		}
		log.DebugContext(ctx, "read", "route", e.RouteKey, "caller", caller, "request_id", e.RequestContext.RequestID)
		w := &response{header: http.Header{}}
		h.ServeHTTP(w, req)
		headers := make(map[string]string, len(w.header))
		for k, v := range w.header {
			headers[strings.ToLower(k)] = strings.Join(v, ",")
		}
		return events.APIGatewayV2HTTPResponse{StatusCode: w.status(), Headers: headers, Body: w.body.String()}, nil
	}
}

// iamCaller is the ARN of the caller API Gateway's IAM authoriser admitted, "" when the
// event carries none.
func iamCaller(e events.APIGatewayV2HTTPRequest) string {
	a := e.RequestContext.Authorizer
	if a == nil || a.IAM == nil {
		return ""
	}
	if a.IAM.UserARN != "" {
		return a.IAM.UserARN
	}
	if a.IAM.AccessKey != "" && a.IAM.AccountID != "" {
		return a.IAM.AccountID + "/" + a.IAM.AccessKey
	}
	return ""
}

// response is an http.ResponseWriter that keeps the answer for API Gateway.
type response struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *response) Header() http.Header { return r.header }

func (r *response) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

func (r *response) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *response) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
