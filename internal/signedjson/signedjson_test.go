package signedjson

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

var testService = Service{ID: "SSM", SigningName: "ssm", TargetPrefix: "AmazonSSM"}

var testCreds = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret-key", SessionToken: "session-token"}

// recorded is one request the fake service received.
type recorded struct {
	header http.Header
	body   string
	method string
	path   string
	host   string
}

// fakeService answers each request with the next of its answers (status, headers, body),
// the last one repeated, and records the requests.
type fakeService struct {
	mu       sync.Mutex
	answers  []answer
	requests []recorded
}

type answer struct {
	status int
	header map[string]string
	body   string
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, recorded{header: r.Header.Clone(), body: string(body), method: r.Method, path: r.URL.Path, host: r.Host})
	a := f.answers[min(len(f.requests), len(f.answers))-1]
	f.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

// newClient is a client of the fake service, retrying at once (no backoff).
func newClient(t *testing.T, answers ...answer) (*Client, *fakeService) {
	t.Helper()
	fake := &fakeService{answers: answers}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:       "eu-west-1",
		Credentials:  aws.NewCredentialsCache(credentials{}),
		BaseEndpoint: aws.String(srv.URL),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} })
		},
	}
	return New(cfg, testService), fake
}

type credentials struct{}

func (credentials) Retrieve(context.Context) (aws.Credentials, error) { return testCreds, nil }

type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// TestCallSignsTheRequest: one POST to the endpoint's root with the JSON 1.1 content type,
// the operation's target, the input as JSON, signed with SigV4 for the service and region
// (the signature checked by signing the received request again at its own time).
func TestCallSignsTheRequest(t *testing.T) {
	c, fake := newClient(t, answer{200, nil, `{"Parameter":{"Value":"v"}}`})
	var out struct{ Parameter struct{ Value string } }
	if err := c.Call(context.Background(), "GetParameter", map[string]any{"Name": "/p", "WithDecryption": true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Parameter.Value != "v" {
		t.Fatalf("decoded %+v", out)
	}
	if len(fake.requests) != 1 {
		t.Fatalf("%d requests", len(fake.requests))
	}
	r := fake.requests[0]
	if r.method != http.MethodPost || r.path != "/" || r.header.Get("Content-Type") != "application/x-amz-json-1.1" ||
		r.header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" || r.body != `{"Name":"/p","WithDecryption":true}` {
		t.Fatalf("request %s %s, headers %v, body %s", r.method, r.path, r.header, r.body)
	}
	if r.header.Get("X-Amz-Security-Token") != "session-token" {
		t.Errorf("session token header %q", r.header.Get("X-Amz-Security-Token"))
	}
	auth := r.header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/ssm/aws4_request") ||
		!strings.Contains(auth, "x-amz-target") {
		t.Fatalf("Authorization %q", auth)
	}
	if want := resign(t, r); auth != want {
		t.Fatalf("signature does not verify:\n got %s\nwant %s", auth, want)
	}
}

// resign signs the received request again, at the time it says it was signed.
func resign(t *testing.T, r recorded) string {
	t.Helper()
	at, err := time.Parse("20060102T150405Z", r.header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(r.method, "http://"+r.host+r.path, strings.NewReader(r.body))
	req.Header.Set("Content-Type", r.header.Get("Content-Type"))
	req.Header.Set("X-Amz-Target", r.header.Get("X-Amz-Target"))
	if err := v4.NewSigner().SignHTTP(context.Background(), testCreds, req, sha256Hex(r.body), "ssm", "eu-west-1", at); err != nil {
		t.Fatal(err)
	}
	return req.Header.Get("Authorization")
}

func TestCallMapsErrors(t *testing.T) {
	tests := []struct {
		name       string
		answer     answer
		code, text string
		fault      smithy.ErrorFault
	}{
		{"namespaced type", answer{400, map[string]string{"X-Amzn-Requestid": "req-1"}, `{"__type":"com.amazonaws.ssm#ParameterNotFound","message":"no such parameter"}`},
			"ParameterNotFound", "no such parameter", smithy.FaultClient},
		{"header type", answer{400, map[string]string{"X-Amzn-ErrorType": "AccessDeniedException:http://internal.amazon.com/coral/"}, `{"Message":"not authorized"}`},
			"AccessDeniedException", "not authorized", smithy.FaultClient},
		{"no body", answer{403, nil, ``}, "UnknownError", "Forbidden", smithy.FaultClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, fake := newClient(t, tt.answer)
			err := c.Call(context.Background(), "GetParameter", struct{}{}, &struct{}{})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.code || apiErr.ErrorMessage() != tt.text || apiErr.ErrorFault() != tt.fault {
				t.Fatalf("error %v, want %s: %s", err, tt.code, tt.text)
			}
			if !strings.Contains(err.Error(), "SSM GetParameter") {
				t.Errorf("error %q does not name the operation", err)
			}
			if len(fake.requests) != 1 {
				t.Errorf("%d requests: a client error is not retried", len(fake.requests))
			}
		})
	}
}

// TestCallRetriesAsTheSDKDoes: throttling and 5xx answers are retried up to the
// retryer's attempts (3); a success after a failure is a success.
func TestCallRetriesAsTheSDKDoes(t *testing.T) {
	throttled := answer{400, nil, `{"__type":"ThrottlingException","message":"Rate exceeded"}`}
	unavailable := answer{503, nil, `{"__type":"ServiceUnavailable"}`}
	ok := answer{200, nil, `{}`}

	c, fake := newClient(t, throttled, unavailable, ok)
	if err := c.Call(context.Background(), "GetParameter", struct{}{}, &struct{}{}); err != nil {
		t.Fatalf("after two retryable failures: %v", err)
	}
	if len(fake.requests) != 3 {
		t.Fatalf("%d requests, want 3", len(fake.requests))
	}

	c, fake = newClient(t, throttled)
	err := c.Call(context.Background(), "GetParameter", struct{}{}, &struct{}{})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "ThrottlingException" || len(fake.requests) != 3 {
		t.Fatalf("always throttled: %v after %d requests, want ThrottlingException after 3", err, len(fake.requests))
	}
}

// TestCallRetriesAFailedConnection: a request that gets no answer is retried.
func TestCallRetriesAFailedConnection(t *testing.T) {
	c, fake := newClient(t, answer{200, nil, `{}`})
	flaky := &failingOnce{}
	c.http = flaky
	if err := c.Call(context.Background(), "GetParameter", struct{}{}, &struct{}{}); err != nil || flaky.calls != 2 || len(fake.requests) != 1 {
		t.Fatalf("%v after %d sends, %d received; want success after 2 sends", err, flaky.calls, len(fake.requests))
	}
}

// failingOnce fails its first request as a refused connection, then sends.
type failingOnce struct{ calls int }

func (f *failingOnce) Do(r *http.Request) (*http.Response, error) {
	f.calls++
	if f.calls == 1 {
		return nil, &url.Error{Op: "Post", URL: r.URL.String(), Err: errors.New("dial tcp: connect: connection refused")}
	}
	return http.DefaultClient.Do(r)
}

func TestCallWithoutCredentials(t *testing.T) {
	c := New(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String("http://127.0.0.1:1")}, testService)
	if err := c.Call(context.Background(), "GetParameter", struct{}{}, &struct{}{}); err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("no credentials: %v", err)
	}
}

// TestCallWithoutRetryQuotaReturnsTheServicesError: when the retryer's quota is spent, the
// call stops at its first failure and says why the service refused it.
func TestCallWithoutRetryQuotaReturnsTheServicesError(t *testing.T) {
	c, fake := newClient(t, answer{503, nil, `{"__type":"ServiceUnavailable","message":"try later"}`})
	c.cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = noBackoff{}
			o.RateLimiter = ratelimit.NewTokenRateLimit(0)
		})
	}
	err := c.Call(context.Background(), "GetParameter", struct{}{}, &struct{}{})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "ServiceUnavailable" || len(fake.requests) != 1 {
		t.Fatalf("%v after %d requests, want ServiceUnavailable after 1", err, len(fake.requests))
	}
}

// TestCallSpeaksTheServiceProtocol: a JSON 1.0 service gets its content type, and a query
// compatible one X-Amzn-Query-Mode (SQS, as its SDK client sends them); a JSON 1.1 service
// neither.
func TestCallSpeaksTheServiceProtocol(t *testing.T) {
	for _, tt := range []struct {
		svc                    Service
		contentType, queryMode string
	}{
		{testService, "application/x-amz-json-1.1", ""},
		{Service{ID: "SQS", SigningName: "sqs", TargetPrefix: "AmazonSQS", JSONVersion: "1.0", QueryCompatible: true}, "application/x-amz-json-1.0", "true"},
	} {
		c, fake := newClient(t, answer{200, nil, `{}`})
		c.svc = tt.svc
		if err := c.Call(context.Background(), "Op", struct{}{}, &struct{}{}); err != nil {
			t.Fatal(err)
		}
		h := fake.requests[0].header
		if h.Get("Content-Type") != tt.contentType || h.Get("X-Amzn-Query-Mode") != tt.queryMode || h.Get("X-Amz-Target") != tt.svc.TargetPrefix+".Op" {
			t.Errorf("%s: headers %v", tt.svc.ID, h)
		}
	}
}
