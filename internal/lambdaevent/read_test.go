package lambdaevent_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/lambdaevent"
)

func readEvent(path, query string, iam *events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription) events.APIGatewayV2HTTPRequest {
	e := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "GET /connections/{connection}/{kinds}", RawPath: path, RawQueryString: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "r-1",
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: path, SourceIP: "192.0.2.1"},
		},
	}
	if iam != nil {
		e.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: iam}
	}
	return e
}

func TestReadServesOnlyIAMCallers(t *testing.T) {
	var served []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served = append(served, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Page", "1")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`{"items":[]}`))
	})
	read := lambdaevent.Read(h, slog.New(slog.DiscardHandler))
	ctx := context.Background()

	for name, iam := range map[string]*events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
		"no authoriser":         nil,
		"an empty IAM identity": {},
		"an access key only":    {AccessKey: "AKIDEXAMPLE"},
	} {
		resp, err := read(ctx, readEvent("/connections/default/tickets", "limit=2", iam))
		var body struct{ Error string }
		if err != nil || resp.StatusCode != http.StatusForbidden || json.Unmarshal([]byte(resp.Body), &body) != nil || body.Error != "forbidden" {
			t.Errorf("%s: %d %s (%v), want 403 forbidden", name, resp.StatusCode, resp.Body, err)
		}
	}
	if len(served) != 0 {
		t.Fatalf("refused events reached the routes: %q", served)
	}

	resp, err := read(ctx, readEvent("/connections/default/tickets/1", "limit=2&cursor=a%2Bb",
		&events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: "arn:aws:iam::123456789012:user/reader", AccountID: "123456789012"}))
	if err != nil || resp.StatusCode != http.StatusTeapot || resp.Body != `{"items":[]}` ||
		resp.Headers["content-type"] != "application/json" || resp.Headers["x-page"] != "1" {
		t.Fatalf("signed request: %+v (%v)", resp, err)
	}
	if len(served) != 1 || served[0] != "GET /connections/default/tickets/1?limit=2&cursor=a%2Bb" {
		t.Errorf("served %q", served)
	}
}
