package halosim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// AuthScheme is how a webhook authenticates its deliveries.
type AuthScheme int

const (
	// AuthNone sends no credentials.
	AuthNone AuthScheme = iota
	// AuthBasic sends HTTP Basic credentials (Halo's documented option).
	AuthBasic
	// AuthHMAC signs the body: base64(HMAC-SHA256(secret, raw body)) in a header, Token by
	// default, as django-psa's "signed body" webhooks (authentication_type 3) are read.
	AuthHMAC
)

// SenderAuth is a webhook's authentication.
type SenderAuth struct {
	Scheme   AuthScheme
	Username string // AuthBasic
	Password string // AuthBasic
	Secret   string // AuthHMAC
	Header   string // AuthHMAC: the header carrying the signature (default "Token")
}

// BasicAuth authenticates deliveries with HTTP Basic.
func BasicAuth(username, password string) SenderAuth {
	return SenderAuth{Scheme: AuthBasic, Username: username, Password: password}
}

// HMACAuth signs deliveries with secret in the Token header.
func HMACAuth(secret string) SenderAuth {
	return SenderAuth{Scheme: AuthHMAC, Secret: secret, Header: "Token"}
}

// SenderOptions configures a Sender.
type SenderOptions struct {
	// URL is the payload URL deliveries are POSTed to.
	URL  string
	Auth SenderAuth
	// PayloadType is full, small or event-only.
	PayloadType PayloadType
	// Batch is the most events one delivery holds. 0 sends each event alone, as a JSON
	// object; with Batch > 0 every delivery is a JSON array (Halo's batching).
	Batch int
	// DropRate is the probability that a delivery is lost: never sent (and logged as
	// failed in the tenant's WebhookEvent log, so it can be found and replayed).
	DropRate float64
	// DuplicateRate is the probability that a sent delivery is sent again, byte for byte,
	// after the rest of the flush (a retry or manual re-send: same message ids).
	DuplicateRate float64
	// Reorder shuffles the queued events within consecutive windows of this many before
	// they are grouped into deliveries (0 or 1: order kept).
	Reorder int
	// Delay waits this long before each delivery (Halo's queue latency).
	Delay time.Duration
	// Rand draws the drop, duplicate and reorder decisions (and a missing WebhookID);
	// default a fixed seed. Only Flush uses it: do not share it with code running
	// concurrently with Flush.
	Rand *rand.Rand
	// HTTPClient sends the deliveries (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// Tenant, when set, records every delivery in its WebhookEvent log and dates the log
	// by its clock.
	Tenant *Tenant
	// WebhookID is the payloads' webhook_id (default: a uuid drawn from Rand).
	WebhookID string
	// SmallFields overrides which fields small payloads keep (default SmallFields).
	SmallFields func(change.Kind) []string
	// Header is added to every delivery (routing headers and the like).
	Header http.Header
}

// Counts tells what happened to deliveries: one delivery is one HTTP request (or one
// that would have been, for a dropped one) carrying one event, or a batch.
type Counts struct {
	Sent       int // answered 2xx (duplicates included)
	Failed     int // refused (non-2xx) or not answered
	Dropped    int // lost: never sent
	Duplicated int // sent a second time (also counted in Sent or Failed)
}

func (c *Counts) add(o Counts) {
	c.Sent += o.Sent
	c.Failed += o.Failed
	c.Dropped += o.Dropped
	c.Duplicated += o.Duplicated
}

// Delivery is one delivery a Sender made (or dropped).
type Delivery struct {
	Body      []byte
	Header    http.Header // the request's headers, credentials included
	Events    int
	Duplicate bool
	Dropped   bool
	Status    int    // the answer's status; 0 when dropped or not answered
	Err       string // why it was not answered
}

// Sender delivers events to a webhook receiver the way Halo does. Send queues events;
// Flush delivers everything queued. It is safe for concurrent use; flushes run one at a time.
type Sender struct {
	opts   SenderOptions
	client *http.Client
	// hook, when set, is the tenant webhook the sender serves: its subscriptions select
	// the events sent and name their notification ids.
	hook bool

	flushMu sync.Mutex
	mu      sync.Mutex
	queue   []queued
	stats   Counts
	log     []Delivery
}

type queued struct {
	e   Event
	nid int64
}

// NewSender makes a sender.
func NewSender(opts SenderOptions) *Sender {
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(0x4a10, 0x5e4d))
	}
	if opts.WebhookID == "" {
		opts.WebhookID = randUUID(opts.Rand)
	}
	if opts.SmallFields == nil {
		opts.SmallFields = SmallFields
	}
	if opts.Auth.Scheme == AuthHMAC && opts.Auth.Header == "" {
		opts.Auth.Header = "Token"
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return &Sender{opts: opts, client: client}
}

// WebhookSender makes a sender for a webhook registered in the tenant (through POST
// /api/Webhook or AddWebhook): it delivers to the webhook's url with its authentication
// (authentication_type 0 none; 1 Basic with basic_username and basic_password; 3 signed
// body, the secret in basic_password and the header in authentication_header, default
// Token, as django-psa sets it up), batches when batch_method is not 0 (batch_limit events
// per delivery, default 100) and sends only the events the webhook's notifications
// subscribe to (by EventNumber; all when it has none), with their notification ids. It
// sends nothing while the webhook is inactive or deleted. base supplies the rest
// (PayloadType, knobs, Rand, HTTPClient).
func (t *Tenant) WebhookSender(id string, base SenderOptions) (*Sender, error) {
	h, ok := t.Webhook(id)
	if !ok {
		return nil, fmt.Errorf("halosim: no webhook %s", id)
	}
	o := base
	o.Tenant, o.WebhookID = t, str(h["id"])
	o.URL = str(h["url"])
	if o.URL == "" {
		return nil, fmt.Errorf("halosim: webhook %s has no url", id)
	}
	typ, _ := toInt64(h["authentication_type"])
	switch typ {
	case 0:
		o.Auth = SenderAuth{}
	case 1:
		o.Auth = BasicAuth(str(h["basic_username"]), str(h["basic_password"]))
	case 3:
		o.Auth = HMACAuth(str(h["basic_password"]))
		if hdr := str(h["authentication_header"]); hdr != "" {
			o.Auth.Header = hdr
		}
	default:
		return nil, fmt.Errorf("halosim: webhook %s: authentication_type %d is not faked", id, typ)
	}
	if m, _ := toInt64(h["batch_method"]); m != 0 && o.Batch == 0 {
		o.Batch = 100
		if n, ok := toInt64(h["batch_limit"]); ok && n > 0 {
			o.Batch = int(n)
		}
	}
	s := NewSender(o)
	s.hook = true
	return s, nil
}

// Send queues events for the next Flush and returns how many were queued (a tenant
// webhook's sender skips events it is not subscribed to).
func (s *Sender) Send(events ...Event) int {
	qs := make([]queued, 0, len(events))
	for _, e := range events {
		nid := int64(e.EventNo)
		if s.hook {
			h, ok := s.opts.Tenant.Webhook(s.opts.WebhookID)
			if !ok || !truthy(h["active"]) {
				continue
			}
			if nid, ok = s.opts.Tenant.subscription(s.opts.WebhookID, e.EventNo); !ok {
				continue
			}
		}
		qs = append(qs, queued{e: e, nid: nid})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, qs...)
	return len(qs)
}

// Pending is how many events are queued.
func (s *Sender) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Stats is the sum of every flush's counts.
func (s *Sender) Stats() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Deliveries returns the deliveries made so far (the last 10000), in the order made.
func (s *Sender) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.log))
	for i, d := range s.log {
		d.Body = append([]byte(nil), d.Body...)
		d.Header = d.Header.Clone()
		out[i] = d
	}
	return out
}

// WebhookID is the webhook_id the sender's payloads carry.
func (s *Sender) WebhookID() string { return s.opts.WebhookID }

// Body is the delivery body for events, as the sender would write it (an array when
// batching is on).
func (s *Sender) Body(events ...Event) ([]byte, error) {
	qs := make([]queued, len(events))
	for i, e := range events {
		qs[i] = queued{e: e, nid: int64(e.EventNo)}
	}
	return s.body(qs)
}

func (s *Sender) body(qs []queued) ([]byte, error) {
	payloads := make([]map[string]any, len(qs))
	for i, q := range qs {
		payloads[i] = q.e.payload(s.opts.PayloadType, s.opts.WebhookID, q.nid, s.opts.SmallFields)
	}
	if s.opts.Batch > 0 {
		return marshal(payloads)
	}
	if len(payloads) != 1 {
		return nil, errors.New("halosim: without batching a delivery holds one event")
	}
	return marshal(payloads[0])
}

type delivery struct {
	items []queued
	body  []byte
	dup   bool
}

// Flush delivers everything queued, one delivery at a time, and returns what became of
// the deliveries. When ctx ends first the deliveries not yet made go back to the front of
// the queue and ctx's error is returned with the counts so far. Failed deliveries are not
// retried (whether Halo retries is unconfirmed); they are in the WebhookEvent log.
func (s *Sender) Flush(ctx context.Context) (Counts, error) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	items := s.queue
	s.queue = nil
	s.mu.Unlock()

	rng := s.opts.Rand
	if w := s.opts.Reorder; w > 1 {
		for i := 0; i < len(items); i += w {
			win := items[i:min(i+w, len(items))]
			rng.Shuffle(len(win), func(a, b int) { win[a], win[b] = win[b], win[a] })
		}
	}
	size := max(s.opts.Batch, 1)
	var ds []*delivery
	for i := 0; i < len(items); i += size {
		ds = append(ds, &delivery{items: items[i:min(i+size, len(items))]})
	}

	var c Counts
	defer func() {
		s.mu.Lock()
		s.stats.add(c)
		s.mu.Unlock()
	}()
	for i := 0; i < len(ds); i++ {
		d := ds[i]
		if err := s.wait(ctx); err != nil {
			s.requeue(ds[i:])
			return c, err
		}
		if d.body == nil {
			b, err := s.body(d.items)
			if err != nil {
				s.requeue(ds[i:])
				return c, err
			}
			d.body = b
		}
		if !d.dup && s.opts.DropRate > 0 && rng.Float64() < s.opts.DropRate {
			c.Dropped++
			s.record(d, s.headers(d.body), result{dropped: true, err: "dropped: the delivery was lost"})
			continue
		}
		if s.post(ctx, d) {
			c.Sent++
		} else {
			c.Failed++
		}
		if !d.dup && s.opts.DuplicateRate > 0 && rng.Float64() < s.opts.DuplicateRate {
			ds = append(ds, &delivery{items: d.items, body: d.body, dup: true})
			c.Duplicated++
		}
	}
	return c, nil
}

// wait applies the delay before a delivery.
func (s *Sender) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.opts.Delay <= 0 {
		return nil
	}
	timer := time.NewTimer(s.opts.Delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requeue puts back the events of deliveries not made (duplicates excepted).
func (s *Sender) requeue(ds []*delivery) {
	var back []queued
	for _, d := range ds {
		if !d.dup {
			back = append(back, d.items...)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(back, s.queue...)
}

// headers are a delivery's request headers.
func (s *Sender) headers(body []byte) http.Header {
	h := http.Header{}
	for k, vs := range s.opts.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	h.Set("Content-Type", "application/json")
	switch a := s.opts.Auth; a.Scheme {
	case AuthBasic:
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	case AuthHMAC:
		mac := hmac.New(sha256.New, []byte(a.Secret))
		mac.Write(body)
		h.Set(a.Header, base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return h
}

// post makes one delivery and reports whether it was answered 2xx.
func (s *Sender) post(ctx context.Context, d *delivery) bool {
	hdr := s.headers(d.body)
	start := s.clock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.URL, bytes.NewReader(d.body))
	if err != nil {
		s.record(d, hdr, result{err: err.Error()})
		return false
	}
	req.Header = hdr.Clone()
	resp, err := s.client.Do(req)
	if err != nil {
		s.record(d, hdr, result{err: err.Error(), took: s.clock().Sub(start)})
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	s.record(d, hdr, result{status: resp.StatusCode, respHeader: resp.Header, respBody: string(body), took: s.clock().Sub(start)})
	return resp.StatusCode >= 200 && resp.StatusCode <= 299
}

func (s *Sender) clock() time.Time {
	if s.opts.Tenant != nil {
		return s.opts.Tenant.now()
	}
	return time.Now()
}

// result is what became of one delivery.
type result struct {
	status     int
	err        string
	dropped    bool
	respHeader http.Header
	respBody   string
	took       time.Duration
}

// record keeps a delivery in the sender's list and the tenant's WebhookEvent log.
func (s *Sender) record(d *delivery, hdr http.Header, res result) {
	s.mu.Lock()
	s.log = appendCapped(s.log, Delivery{
		Body: d.body, Header: hdr, Events: len(d.items), Duplicate: d.dup,
		Dropped: res.dropped, Status: res.status, Err: res.err,
	})
	s.mu.Unlock()
	if s.opts.Tenant == nil {
		return
	}
	masked := hdr.Clone()
	for k := range masked {
		if strings.EqualFold(k, "Authorization") || (s.opts.Auth.Scheme == AuthHMAC && strings.EqualFold(k, s.opts.Auth.Header)) {
			masked[k] = []string{"********"}
		}
	}
	first := d.items[0]
	s.opts.Tenant.logDelivery(deliveryLog{
		webhookID: s.opts.WebhookID, notificationID: first.nid, entityID: first.e.ObjectID,
		at: s.clock(), duration: res.took, code: res.status, err: res.err, body: d.body,
		reqHeader: masked, respBody: res.respBody, respHeader: res.respHeader,
	})
}

// Pump flushes every interval until ctx ends (for the local demo); it returns ctx's error.
func (s *Sender) Pump(ctx context.Context, every time.Duration) error {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			if _, err := s.Flush(ctx); err != nil {
				return err
			}
		}
	}
}
