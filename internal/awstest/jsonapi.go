package awstest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// JSONRequest is what a JSONAPI saw of one request.
type JSONRequest struct {
	Target, ContentType, QueryMode, Body string
}

// JSONAPI fakes an AWS JSON API (SSM, Secrets Manager, for which no stand-in runs here;
// SQS, to compare requests with the SDK client's): it answers every request with one
// status and body and records each request.
type JSONAPI struct {
	mu       sync.Mutex
	requests []JSONRequest
}

// NewJSONAPI starts a fake answering status and body, and returns it with an SDK
// configuration whose clients call it (static credentials, region eu-west-1).
func NewJSONAPI(t *testing.T, status int, body string) (*JSONAPI, aws.Config) {
	t.Helper()
	f := &JSONAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, JSONRequest{r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"), r.Header.Get("X-Amzn-Query-Mode"), string(b)})
		f.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return f, aws.Config{
		Region: "eu-west-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
		}),
		BaseEndpoint: aws.String(srv.URL),
	}
}

// Requests are the requests received, in order.
func (f *JSONAPI) Requests() []JSONRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]JSONRequest(nil), f.requests...)
}
