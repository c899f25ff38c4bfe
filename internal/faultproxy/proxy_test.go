package faultproxy_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dynamotypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/halosync/halosync/internal/faultproxy"
)

// service is a backend that counts the requests it handles and answers "served".
type service struct {
	*httptest.Server
	handled atomic.Int32
	host    atomic.Value // the Host header of the last request
}

func newService(t *testing.T) *service {
	s := &service{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handled.Add(1)
		s.host.Store(r.Host)
		_, _ = io.WriteString(w, "served")
	}))
	t.Cleanup(s.Close)
	return s
}

func start(t *testing.T, target string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func get(t *testing.T, client *http.Client, url string) (*http.Response, string, error) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestForwardsUnchangedUntilARuleIsSet(t *testing.T) {
	svc := newService(t)
	p := start(t, svc.URL)
	resp, body, err := get(t, http.DefaultClient, p.URL()+"/x")
	if err != nil || resp.StatusCode != 200 || body != "served" {
		t.Fatalf("through the proxy: %v %q %v; want 200 served", resp, body, err)
	}
	if host := svc.host.Load(); host != strings.TrimPrefix(p.URL(), "http://") {
		t.Errorf("the service saw Host %q; want the proxy's, as the client sent (and signed) it", host)
	}
	if s := p.Stats(); s.Forwarded != 1 || s.Faulted != 0 {
		t.Errorf("stats %+v; want one forwarded, none faulted", s)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	t.Run("latency", func(t *testing.T) {
		t.Parallel()
		svc := newService(t)
		p := start(t, svc.URL)
		p.Set(faultproxy.Rule{Fault: faultproxy.Latency(150 * time.Millisecond)})
		began := time.Now()
		resp, body, err := get(t, client, p.URL())
		if took := time.Since(began); err != nil || resp.StatusCode != 200 || body != "served" || took < 150*time.Millisecond {
			t.Fatalf("%v %q %v after %s; want served after at least 150ms", resp, body, err, took)
		}
	})
	t.Run("reset before the service", func(t *testing.T) {
		t.Parallel()
		svc := newService(t)
		p := start(t, svc.URL)
		p.Set(faultproxy.Rule{Fault: faultproxy.Reset()})
		if _, _, err := get(t, client, p.URL()); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("error %v; want a connection reset", err)
		}
		if n := svc.handled.Load(); n != 0 {
			t.Errorf("the service handled %d requests; want none", n)
		}
	})
	t.Run("answer lost", func(t *testing.T) {
		t.Parallel()
		svc := newService(t)
		p := start(t, svc.URL)
		p.Set(faultproxy.Rule{Fault: faultproxy.LoseAnswer()})
		if _, _, err := get(t, client, p.URL()); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("error %v; want a connection reset", err)
		}
		if n := svc.handled.Load(); n != 1 {
			t.Errorf("the service handled %d requests; want the one whose answer was lost", n)
		}
	})
	t.Run("hang until the client gives up", func(t *testing.T) {
		t.Parallel()
		svc := newService(t)
		p := start(t, svc.URL)
		p.Set(faultproxy.Rule{Fault: faultproxy.Hang()})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL(), nil)
		began := time.Now()
		_, err := client.Do(req)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) < 200*time.Millisecond {
			t.Fatalf("error %v after %s; want the client's deadline", err, time.Since(began))
		}
		if n := svc.handled.Load(); n != 0 {
			t.Errorf("the service handled %d requests; want none", n)
		}
	})
	t.Run("every second request, then cleared", func(t *testing.T) {
		t.Parallel()
		svc := newService(t)
		p := start(t, svc.URL)
		p.Set(faultproxy.Rule{Fault: faultproxy.GatewayError(502), Every: 2})
		var statuses []int
		for range 4 {
			resp, _, err := get(t, client, p.URL())
			if err != nil {
				t.Fatal(err)
			}
			statuses = append(statuses, resp.StatusCode)
		}
		p.Clear()
		resp, _, err := get(t, client, p.URL())
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, resp.StatusCode)
		if want := []int{502, 200, 502, 200, 200}; !equal(statuses, want) {
			t.Fatalf("statuses %v; want %v", statuses, want)
		}
		if s := p.Stats(); s.Faulted != 2 || s.Forwarded != 3 || s.ByFault["gateway 502"] != 2 {
			t.Errorf("stats %+v; want 2 faulted (gateway 502), 3 forwarded", s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := p.WaitFaulted(ctx, 2); err != nil {
			t.Error(err)
		}
	})
	t.Run("only the requests matched", func(t *testing.T) {
		t.Parallel()
		svc := newService(t)
		p := start(t, svc.URL)
		p.Set(faultproxy.Rule{Fault: faultproxy.GatewayError(503), Match: faultproxy.Target("UpdateItem")})
		status := func(target string) int {
			req, _ := http.NewRequest(http.MethodPost, p.URL(), nil)
			req.Header.Set("X-Amz-Target", target)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := status("DynamoDB_20120810.UpdateItem"); got != 503 {
			t.Errorf("UpdateItem: %d; want 503", got)
		}
		if got := status("DynamoDB_20120810.GetItem"); got != 200 {
			t.Errorf("GetItem: %d; want 200", got)
		}
	})
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// awsConfig is an SDK configuration that makes one attempt per call, so that the error
// the SDK parsed is returned as it is, and whether its retryer would retry it as a
// throttle is asked separately.
func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("faultproxy", "faultproxy", "")}
}

// TestTheSDKReadsTheErrors checks that the AWS SDK parses the proxy's error answers as the
// services' own: the modelled exception, and a throttle or a retryable server error to
// its standard retryer.
func TestTheSDKReadsTheErrors(t *testing.T) {
	t.Parallel()
	svc := newService(t)
	p := start(t, svc.URL)
	ddb := dynamodb.NewFromConfig(awsConfig(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.URL()) })
	queue := sqs.NewFromConfig(awsConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(p.URL()) })
	ctx := context.Background()
	dynamoCall := func() error {
		_, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"),
			Key: map[string]dynamotypes.AttributeValue{"pk": &dynamotypes.AttributeValueMemberS{Value: "k"}}})
		return err
	}
	sqsCall := func() error {
		_, err := queue.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(p.URL() + "/000000000000/q"),
			Entries: []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("0"), MessageBody: aws.String("m")}}})
		return err
	}
	throttle := retry.IsErrorThrottles(retry.DefaultThrottles)
	retryable := retry.IsErrorRetryables(retry.DefaultRetryables)
	tests := []struct {
		fault     faultproxy.Fault
		call      func() error
		code      string
		as        func(error) bool
		throttled bool
	}{
		{faultproxy.DynamoDBThroughputExceeded(), dynamoCall, "ProvisionedThroughputExceededException",
			func(err error) bool {
				var e *dynamotypes.ProvisionedThroughputExceededException
				return errors.As(err, &e)
			}, true},
		{faultproxy.DynamoDBThrottling(), dynamoCall, "ThrottlingException", nil, true},
		{faultproxy.DynamoDBInternalError(), dynamoCall, "InternalServerError",
			func(err error) bool { var e *dynamotypes.InternalServerError; return errors.As(err, &e) }, false},
		{faultproxy.SQSThrottled(), sqsCall, "RequestThrottled",
			func(err error) bool { var e *sqstypes.RequestThrottled; return errors.As(err, &e) }, true},
		{faultproxy.SQSInternalError(), sqsCall, "InternalError", nil, false},
		{faultproxy.GatewayError(503), dynamoCall, "", nil, false},
	}
	for _, tt := range tests {
		p.Set(faultproxy.Rule{Fault: tt.fault})
		err := tt.call()
		var api smithy.APIError
		switch {
		case err == nil:
			t.Errorf("%s: the call succeeded", tt.fault.Name)
			continue
		case tt.code != "" && (!errors.As(err, &api) || api.ErrorCode() != tt.code):
			t.Errorf("%s: error %v; want the SDK to report code %s", tt.fault.Name, err, tt.code)
		case tt.as != nil && !tt.as(err):
			t.Errorf("%s: error %T %v; want the modelled exception", tt.fault.Name, err, err)
		}
		if got := throttle.IsErrorThrottle(err) == aws.TrueTernary; got != tt.throttled {
			t.Errorf("%s: the retryer sees a throttle: %v; want %v (%v)", tt.fault.Name, got, tt.throttled, err)
		}
		if retryable.IsErrorRetryable(err) != aws.TrueTernary {
			t.Errorf("%s: the retryer would not retry %v", tt.fault.Name, err)
		}
	}
	if n := svc.handled.Load(); n != 0 {
		t.Errorf("the service handled %d requests; every one should have been answered by the proxy", n)
	}
}
