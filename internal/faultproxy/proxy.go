// Package faultproxy is an HTTP proxy that injects faults between a client and the
// service it calls: latency, connection resets (before the service sees a request, or
// after it answered, so the answer is lost), requests held until the client gives up,
// and answers of its own in place of the service's: each service's throttling error as
// its SDK or client parses it, and server errors. Tests point an adapter at the proxy
// (an SDK client's BaseEndpoint, a Halo connection's base_url) and turn faults on for a
// while (docs/ARCHITECTURE.md, "Tests"). It is test support, imported only by tests.
//
// The proxy forwards requests unchanged, the Host header included: AWS clients sign it,
// and Halo's /api/authinfo names the host it was asked on, so the token requests that
// follow come through the proxy too.
package faultproxy

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Fault is what the proxy does to a request instead of forwarding it as it came.
type Fault struct {
	// Name says what the fault is, in failure messages and Stats.
	Name string
	// Delay holds the request this long before anything else (latency); the request is
	// then forwarded, or faulted as the other fields say.
	Delay time.Duration
	// Hang holds the request, unanswered, until the client gives up (or the proxy closes).
	Hang bool
	// Reset closes the connection with a TCP reset, answering nothing: before the
	// request reaches the service, or, with Forward, after the service has handled it.
	Reset bool
	// Forward, with Reset, forwards the request first: the service acts on it and its
	// answer is lost, so a client that retries repeats a request that took effect.
	Forward bool
	// Status, when non-zero, answers the request with this status, Header and Body
	// without forwarding it.
	Status int
	Header http.Header
	Body   string
}

// Latency holds every faulted request for d, then forwards it.
func Latency(d time.Duration) Fault { return Fault{Name: "latency " + d.String(), Delay: d} }

// Hang holds a request until the client gives up.
func Hang() Fault { return Fault{Name: "hang", Hang: true} }

// Reset resets the connection before the service sees the request.
func Reset() Fault { return Fault{Name: "reset", Reset: true} }

// LoseAnswer forwards the request and resets the connection instead of answering.
func LoseAnswer() Fault { return Fault{Name: "answer lost", Reset: true, Forward: true} }

// awsJSONError is an error answer of an AWS JSON 1.0 service (DynamoDB, and SQS since the
// SDK moved it from the query protocol): the code in the body's __type, which the SDK
// reads after the last '#'. queryError, when set, is SQS's x-amzn-query-error header
// ("Code;Sender"), from which the SDK takes the code it reports.
func awsJSONError(name string, status int, typ, message, queryError string) Fault {
	h := http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"faultproxy"}}
	if queryError != "" {
		h.Set("X-Amzn-Query-Error", queryError)
	}
	return Fault{Name: name, Status: status, Header: h,
		Body: fmt.Sprintf(`{"__type":%q,"message":%q}`, typ, message)}
}

// DynamoDBThroughputExceeded is DynamoDB's answer when a table's provisioned throughput
// is exceeded: 400 ProvisionedThroughputExceededException, a throttling error to the SDK.
func DynamoDBThroughputExceeded() Fault {
	return awsJSONError("dynamodb ProvisionedThroughputExceededException", http.StatusBadRequest,
		"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
		"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.", "")
}

// DynamoDBThrottling is DynamoDB's answer when requests come faster than the account or
// an on-demand table allows: 400 ThrottlingException.
func DynamoDBThrottling() Fault {
	return awsJSONError("dynamodb ThrottlingException", http.StatusBadRequest,
		"com.amazon.coral.availability#ThrottlingException", "Rate of requests exceeds the allowed throughput.", "")
}

// DynamoDBInternalError is DynamoDB's 500 InternalServerError.
func DynamoDBInternalError() Fault {
	return awsJSONError("dynamodb 500 InternalServerError", http.StatusInternalServerError,
		"com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error", "")
}

// SQSThrottled is SQS's throttling answer in the AWS JSON protocol the SDK speaks to it:
// 400 RequestThrottled, with the query-compatible error header SQS sends.
func SQSThrottled() Fault {
	return awsJSONError("sqs RequestThrottled", http.StatusBadRequest,
		"com.amazonaws.sqs#RequestThrottled", "Request is throttled.", "RequestThrottled;Sender")
}

// SQSInternalError is SQS's 500 InternalError.
func SQSInternalError() Fault {
	return awsJSONError("sqs 500 InternalError", http.StatusInternalServerError,
		"com.amazonaws.sqs#InternalError", "We encountered an internal error. Please try again.", "InternalError;Receiver")
}

// HaloRateLimited is Halo's answer over its rate limit: 429 with a plain-text body
// (docs/HALO.md), and a Retry-After of retryAfter whole seconds (none when 0).
func HaloRateLimited(retryAfter int) Fault {
	h := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	if retryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(retryAfter))
	}
	return Fault{Name: "halo 429", Status: http.StatusTooManyRequests, Header: h,
		Body: "Rate Limit Reached - 300 Requests per rolling 5 minute window"}
}

// GatewayError is a 5xx answered by what stands in front of a service (a load balancer's
// HTML page, not the service's own error).
func GatewayError(status int) Fault {
	return Fault{Name: fmt.Sprintf("gateway %d", status), Status: status,
		Header: http.Header{"Content-Type": {"text/html"}},
		Body:   fmt.Sprintf("<html><body><h1>%d %s</h1></body></html>", status, http.StatusText(status))}
}

// Rule says which requests get a fault: every Every-th request Match accepts (the first
// of them included); the others are forwarded as they came.
type Rule struct {
	Fault Fault
	// Every faults one matching request in Every (0 or 1: each of them).
	Every int
	// Match selects the requests the rule is about (nil: all).
	Match func(r *http.Request) bool
}

// Target matches AWS JSON requests to the operations named, by their X-Amz-Target
// header's operation ("DynamoDB_20120810.UpdateItem" is UpdateItem).
func Target(operations ...string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		t := r.Header.Get("X-Amz-Target")
		op := t[strings.LastIndexByte(t, '.')+1:]
		for _, o := range operations {
			if o == op {
				return true
			}
		}
		return false
	}
}

// Stats counts what the proxy did.
type Stats struct {
	Forwarded int            // requests forwarded (faulted ones included, when a fault forwards)
	Faulted   int            // requests faulted
	ByFault   map[string]int // faulted requests by Fault.Name
}

// Proxy forwards HTTP requests to one service, faulting those its rule selects. It is
// safe for concurrent use.
type Proxy struct {
	url   string
	srv   *http.Server
	rp    *httputil.ReverseProxy
	done  chan struct{} // closed by Close: ends held requests
	close sync.Once

	mu      sync.Mutex
	rule    *Rule
	matched int // requests the rule matched since it was set
	stats   Stats
	changed chan struct{} // closed and replaced whenever stats change
}

// Start starts a proxy to target (scheme://host:port) on a free loopback port.
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not an http(s) URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &Proxy{url: "http://" + ln.Addr().String(), done: make(chan struct{}), changed: make(chan struct{}),
		stats: Stats{ByFault: map[string]int{}}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // signed by AWS clients; named back by Halo's authinfo
		},
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
		// A faulted client going away mid-answer is expected here, not worth a log line.
		ErrorLog: log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil {
				http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
			}
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's address, to use in place of the service's.
func (p *Proxy) URL() string { return p.url }

// Close stops the proxy, ending the requests it holds.
func (p *Proxy) Close() {
	p.close.Do(func() {
		close(p.done)
		_ = p.srv.Close()
	})
}

// Set makes r the rule from now on, its count of matched requests starting again.
func (p *Proxy) Set(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule, p.matched = &r, 0
}

// Clear forwards every request from now on. Requests already held stay held.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = nil
}

// Stats reports what the proxy did so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.ByFault = make(map[string]int, len(p.stats.ByFault))
	for k, v := range p.stats.ByFault {
		s.ByFault[k] = v
	}
	return s
}

// WaitFaulted waits until the proxy has faulted at least n requests in all, or ctx ends.
func (p *Proxy) WaitFaulted(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		got, changed := p.stats.Faulted, p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("faultproxy: %d of %d faults injected: %w", got, n, ctx.Err())
		}
	}
}

// pick decides whether r is faulted, counting it.
func (p *Proxy) pick(r *http.Request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rule := p.rule
	if rule == nil || (rule.Match != nil && !rule.Match(r)) {
		return Fault{}, false
	}
	p.matched++
	if every := max(rule.Every, 1); (p.matched-1)%every != 0 {
		return Fault{}, false
	}
	p.stats.Faulted++
	p.stats.ByFault[rule.Fault.Name]++
	p.notify()
	return rule.Fault, true
}

func (p *Proxy) forwarded() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Forwarded++
	p.notify()
}

// notify wakes WaitFaulted; p.mu is held.
func (p *Proxy) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// ServeHTTP forwards r, or faults it as the rule says.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, faulted := p.pick(r)
	if !faulted {
		p.forwarded()
		p.rp.ServeHTTP(w, r)
		return
	}
	if f.Delay > 0 && !p.hold(r.Context(), f.Delay) {
		return
	}
	switch {
	case f.Hang:
		p.hold(r.Context(), -1)
		reset(w) // the client has gone, or the proxy is closing
	case f.Reset && f.Forward:
		p.forwarded()
		p.rp.ServeHTTP(&discard{header: http.Header{}}, r)
		reset(w)
	case f.Reset:
		reset(w)
	case f.Status != 0:
		for k, vs := range f.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
	default:
		p.forwarded()
		p.rp.ServeHTTP(w, r)
	}
}

// hold waits d (forever when negative) and reports whether it did, rather than the
// client going away or the proxy closing first.
func (p *Proxy) hold(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
	case <-p.done:
	}
	return false
}

// reset closes the request's connection with a TCP reset (SO_LINGER 0), so the client
// reads "connection reset by peer" rather than an answer or a clean end.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection without answering
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// discard is a ResponseWriter that drops the answer (the service's, when it is lost).
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
