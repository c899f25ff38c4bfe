package lambdae2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/halosync/halosync/internal/awstest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/dynamo"
	"github.com/halosync/halosync/internal/readapi"
)

// signer is the IAM identity API Gateway's AWS_IAM authoriser puts in an event it let
// through.
var signer = &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{
	AccessKey: "AKIDEXAMPLE", AccountID: "123456789012", CallerID: "AIDAEXAMPLE",
	UserARN: "arn:aws:iam::123456789012:user/reader", UserID: "AIDAEXAMPLE",
}

// readEvent is the HTTP API event of GET path?query on one of the read routes, signed
// (authorised by IAM) or not.
func readEvent(route, path, query string, signed bool) events.APIGatewayV2HTTPRequest {
	e := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "GET " + route, RawPath: path, RawQueryString: query,
		Headers: map[string]string{"user-agent": "aws-cli/2"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: fmt.Sprintf("read-%d", time.Now().UnixNano()), Stage: "$default", RouteKey: "GET " + route,
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet, Path: path, Protocol: "HTTP/1.1", SourceIP: "198.51.100.7"},
		},
	}
	if signed {
		e.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{IAM: signer}
	}
	return e
}

// readRoute is each read route's path template, as API Gateway names it in the route key.
func readRoute(pattern string) string { return strings.TrimPrefix(pattern, "GET ") }

// TestReadFunctionServesSignedReadsOnly runs the read function's bootstrap under the
// emulator on a table of DynamoDB Local and plays API Gateway's HTTP API in front of it:
// with the IAM identity the AWS_IAM authoriser adds, it answers objects, 404 for what is
// not stored, the unknown kind listing the kinds, and pages through what changed with a
// cursor; without one, 403 and nothing of the copy.
func TestReadFunctionServesSignedReadsOnly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the Lambda runtime interface emulator runs on Linux only")
	}
	ddb := awstest.DynamoDB(t)
	bins := build(t)
	ctx := t.Context()
	table := fmt.Sprintf("halosync-e2e-read-%s-%d", strconv.FormatInt(time.Now().UnixNano(), 36), stackSeq.Add(1))
	if err := dynamo.CreateTable(ctx, ddb, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTable(t, ddb, table) })
	store := dynamo.New(ddb, table)

	env := append(awstest.ProcessEnv(t), "TABLE_NAME="+table, "LOG_LEVEL=debug", "READ_SETTLE=0s")
	env = append(env, lambdaEnv(t, "halosync-read")...)
	// The warm-up is unsigned: refused before anything is read.
	f, out := startFunction(t, bins.rie, "read", bins.bootstrap["read"], env,
		readEvent(readRoute(readapi.ObjectRoute), "/connections/"+conn+"/tickets/1", "", false))
	if r := decodeAs[events.APIGatewayV2HTTPResponse](t, f, out); r.StatusCode != http.StatusForbidden {
		t.Fatalf("an unsigned warm-up: %d %s, want 403", r.StatusCode, r.Body)
	}

	for i, id := range []string{"30", "10", "20", "40", "50"} {
		c := change.Change{Connection: conn, Kind: change.Ticket, ID: id, Op: change.OpUpsert, Version: int64(100 + i),
			Source: change.SourceWebhook, Fields: map[string]any{"summary": "ticket " + id, "client_id": json.Number("12")}}
		if _, err := store.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.Apply(ctx, change.Change{Connection: conn, Kind: change.Action, ID: "7", ParentID: "30", Op: change.OpUpsert,
		Version: 200, Source: change.SourcePoll, Fields: map[string]any{"note": "Replaced the roller"}}); err != nil {
		t.Fatal(err)
	}

	get := func(route, path, query string, signed bool) events.APIGatewayV2HTTPResponse {
		t.Helper()
		r := invokeAs[events.APIGatewayV2HTTPResponse](t, f, readEvent(route, path, query, signed))
		if r.Headers["content-type"] != "application/json" {
			t.Errorf("GET %s?%s: content-type %q", path, query, r.Headers["content-type"])
		}
		return r
	}
	refused := func(r events.APIGatewayV2HTTPResponse, status int, code string) string {
		t.Helper()
		var e struct{ Error, Message string }
		if err := json.Unmarshal([]byte(r.Body), &e); err != nil || r.StatusCode != status || e.Error != code {
			t.Fatalf("answer %d %s, want %d %s", r.StatusCode, r.Body, status, code)
		}
		return e.Message
	}
	object, note, delivery, changed := readRoute(readapi.ObjectRoute), readRoute(readapi.NoteRoute), readRoute(readapi.DeliveryRoute), readRoute(readapi.ChangedRoute)

	// Signed: the object, the note, 404s, the unknown kind.
	var o change.Object
	if r := get(object, "/connections/"+conn+"/tickets/30", "", true); r.StatusCode != http.StatusOK ||
		json.Unmarshal([]byte(r.Body), &o) != nil || o.ID != "30" || o.Fields["summary"] != "ticket 30" || o.ClientID != "12" {
		t.Fatalf("signed GET ticket 30: %d %s", r.StatusCode, r.Body)
	}
	if r := get(note, "/connections/"+conn+"/tickets/30/actions/7", "", true); r.StatusCode != http.StatusOK ||
		json.Unmarshal([]byte(r.Body), &o) != nil || o.ParentID != "30" || o.Fields["note"] != "Replaced the roller" {
		t.Fatalf("signed GET note 7: %d %s", r.StatusCode, r.Body)
	}
	refused(get(object, "/connections/"+conn+"/tickets/99", "", true), http.StatusNotFound, "not_found")
	refused(get(delivery, "/connections/"+conn+"/deliveries/d-none", "", true), http.StatusNotFound, "not_found")
	if msg := refused(get(changed, "/connections/"+conn+"/widgets", "", true), http.StatusNotFound, "unknown_kind"); msg != "use actions, assets, clients, contacts or tickets" {
		t.Errorf("unknown kind: %q, want the kinds listed", msg)
	}
	refused(get(changed, "/connections/"+conn+"/tickets", "limit=0", true), http.StatusBadRequest, "invalid_query")

	// Paging through what changed, two at a time, in the order the tickets were written.
	var ids []string
	query := "limit=2"
	var last readapi.Page
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatalf("the listing does not end: %q", ids)
		}
		r := get(changed, "/connections/"+conn+"/tickets", query, true)
		var p readapi.Page
		if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &p) != nil || len(p.Items) > 2 {
			t.Fatalf("page %d: %d %s", page, r.StatusCode, r.Body)
		}
		for _, o := range p.Items {
			ids = append(ids, o.ID)
		}
		last = p
		if !p.More {
			break
		}
		query = "limit=2&cursor=" + url.QueryEscape(p.Next)
	}
	if got := strings.Join(ids, " "); got != "30 10 20 40 50" {
		t.Fatalf("tickets changed, paged: %q, want 30 10 20 40 50 (write order)", got)
	}
	// A change after the last page: the cursor resumes with only it.
	if _, err := store.Apply(ctx, change.Change{Connection: conn, Kind: change.Ticket, ID: "10", Op: change.OpUpsert, Version: 300,
		Source: change.SourcePoll, Fields: map[string]any{"summary": "ticket 10, again"}}); err != nil {
		t.Fatal(err)
	}
	r := get(changed, "/connections/"+conn+"/tickets", "cursor="+url.QueryEscape(last.Next), true)
	var p readapi.Page
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &p) != nil || len(p.Items) != 1 || p.Items[0].Version != 300 {
		t.Fatalf("resumed after the last page: %d %s, want ticket 10 at version 300 only", r.StatusCode, r.Body)
	}
	refused(get(changed, "/connections/other/tickets", "cursor="+url.QueryEscape(last.Next), true), http.StatusBadRequest, "invalid_query")

	// Unsigned: 403 on every route, nothing of the copy in the answer.
	for _, c := range []struct{ route, path, query string }{
		{object, "/connections/" + conn + "/tickets/30", ""},
		{note, "/connections/" + conn + "/tickets/30/actions/7", ""},
		{delivery, "/connections/" + conn + "/deliveries/d-none", ""},
		{changed, "/connections/" + conn + "/tickets", "limit=10"},
	} {
		r := get(c.route, c.path, c.query, false)
		refused(r, http.StatusForbidden, "forbidden")
		if strings.Contains(r.Body, "ticket 30") || strings.Contains(r.Body, "roller") {
			t.Errorf("unsigned GET %s: the answer shows the copy: %s", c.path, r.Body)
		}
	}
}
