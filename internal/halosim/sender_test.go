package halosim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/halo"
	"github.com/halosync/halosync/internal/halosim"
)

// receiver is a webhook endpoint recording what it is sent.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
	status int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{status: 200}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.heads = append(r.heads, req.Header.Clone())
		status := r.status
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) received() ([][]byte, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]http.Header(nil), r.heads...)
}

// seeded makes a seeded tenant on a fake clock.
func seeded(t *testing.T, seed uint64) (*fixture, *rand.Rand) {
	f := newFixture(t, halosim.Options{})
	rng := rand.New(rand.NewPCG(seed, 7))
	f.Seed(rng, 5)
	return f, rng
}

func TestGeneratorEventsDecode(t *testing.T) {
	for _, pt := range []halosim.PayloadType{halosim.PayloadFull, halosim.PayloadSmall, halosim.PayloadEventOnly} {
		t.Run(pt.String(), func(t *testing.T) {
			f, rng := seeded(t, 1)
			seen := map[string]int{}
			for i := range 600 {
				f.clock.Advance(time.Duration(rng.IntN(5000)) * time.Millisecond)
				e := f.Step(rng)
				seen[e.Name]++
				body, err := json.Marshal(e.Payload(pt, "0b7e9d3c-1f2a-4c5b-8e6d-7a9b0c1d2e3f", int64(e.EventNo)))
				if err != nil {
					t.Fatal(err)
				}
				decoded, err := halo.Decode(body)
				if err != nil || len(decoded) != 1 {
					t.Fatalf("step %d %q: Decode: %v\n%s", i, e.Name, err, body)
				}
				d := decoded[0]
				if d.ID != e.ID || d.Name != e.Name || d.Timestamp.IsZero() {
					t.Fatalf("step %d: decoded %+v", i, d)
				}
				changes, err := d.Changes("default", halo.Events{}, f.Now())
				if err != nil {
					t.Fatalf("step %d %q: Changes: %v\n%s", i, e.Name, err, body)
				}
				primary := changes[len(changes)-1]
				for _, c := range changes {
					if c.Kind == e.Kind {
						primary = c
					}
					if err := c.Validate(); err != nil {
						t.Fatalf("step %d %q: %v", i, e.Name, err)
					}
				}
				if primary.Kind != e.Kind || primary.Op != e.Op || primary.ID != strconv.FormatInt(e.ObjectID, 10) {
					t.Fatalf("step %d %q: primary change %s %s %s, want %s %s %d", i, e.Name, primary.Kind, primary.Op, primary.ID, e.Kind, e.Op, e.ObjectID)
				}
				if pt != halosim.PayloadEventOnly && e.Op == change.OpUpsert && !primary.HasSnapshot() {
					t.Fatalf("step %d %q: no snapshot", i, e.Name)
				}
				// A full payload's version is the object's marker; a delete's may be its
				// event's time, when that is later (the tombstone must win).
				if spec, _ := change.Lookup(e.Kind); pt == halosim.PayloadFull && primary.HasSnapshot() && primary.VersionFrom != spec.VersionField &&
					!(e.Op == change.OpDelete && primary.VersionFrom == "timestamp") {
					t.Fatalf("step %d %q: version from %s", i, e.Name, primary.VersionFrom)
				}
			}
			for _, name := range []string{
				"new ticket logged", "ticket updated", "ticket status changed", "ticket reassigned", "ticket deleted",
				"client created", "client updated", "client deleted", "user created", "user updated", "user deleted",
				"asset created", "asset updated", "asset deleted",
			} {
				if seen[name] == 0 {
					t.Errorf("no %q in 600 steps: %v", name, seen)
				}
			}
		})
	}
}

func TestGeneratorChangesTheTenant(t *testing.T) {
	f, rng := seeded(t, 2)
	for range 300 {
		e := f.Step(rng)
		cur, ok := f.Object(e.Kind, e.ObjectID)
		switch {
		case e.Op == change.OpDelete && e.Kind == change.Ticket:
			if !ok || cur["deleted"] != true {
				t.Fatalf("%q: ticket %d is %v", e.Name, e.ObjectID, cur)
			}
		case e.Op == change.OpDelete:
			if ok {
				t.Fatalf("%q: %s %d still there", e.Name, e.Kind, e.ObjectID)
			}
		default:
			if !ok {
				t.Fatalf("%q: %s %d missing", e.Name, e.Kind, e.ObjectID)
			}
			spec, _ := change.Lookup(e.Kind)
			if cur[spec.VersionField] != e.Objects[e.Kind][spec.VersionField] {
				t.Fatalf("%q: marker %v, event has %v", e.Name, cur[spec.VersionField], e.Objects[e.Kind][spec.VersionField])
			}
			if ts := e.Timestamp; ts.Before(mustTime(t, cur[spec.VersionField].(string))) {
				t.Fatalf("%q: timestamp %v before the marker %v", e.Name, ts, cur[spec.VersionField])
			}
		}
		if a, ok := e.Objects[change.Action]; ok {
			if _, exists := f.Object(change.Action, a["id"].(int64)); !exists || a["ticket_id"] != e.ObjectID {
				t.Fatalf("%q: action %v", e.Name, a)
			}
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	tm, ok, err := change.ParseHaloTime(s)
	if err != nil || !ok {
		t.Fatalf("date %q: %v", s, err)
	}
	return tm
}

func TestGeneratorIsDeterministic(t *testing.T) {
	run := func() []byte {
		f, rng := seeded(t, 3)
		var out bytes.Buffer
		for range 200 {
			f.clock.Advance(time.Second)
			e := f.Step(rng)
			b, _ := json.Marshal(e.Payload(halosim.PayloadFull, "w", 1))
			out.Write(b)
		}
		return out.Bytes()
	}
	if !bytes.Equal(run(), run()) {
		t.Fatal("the same seed and clock made different events")
	}
}

func TestDo(t *testing.T) {
	f := newFixture(t, halosim.Options{})
	rng := rand.New(rand.NewPCG(4, 4))
	if _, ok := f.Do(rng, halosim.AddNote); ok {
		t.Fatal("a note without tickets")
	}
	for _, ct := range halosim.ChangeTypes() {
		if ct == halosim.DeleteClient {
			continue // needs an empty client: made below
		}
		if _, ok := f.Do(rng, halosim.CreateClient); !ok {
			t.Fatal("create client")
		}
		f.Do(rng, halosim.CreateUser)
		f.Do(rng, halosim.NewTicket)
		f.Do(rng, halosim.CreateAsset)
		if e, ok := f.Do(rng, ct); !ok || e.Name == "" {
			t.Fatalf("%s: %v %+v", ct, ok, e)
		}
	}
	e, ok := f.Do(rng, halosim.CreateClient)
	if !ok {
		t.Fatal("create client")
	}
	if d, ok := f.Do(rng, halosim.DeleteClient); !ok || d.ObjectID != e.ObjectID || d.Name != "client deleted" {
		t.Fatalf("delete client: %v %+v", ok, d)
	}
}

// sendAll makes n events and flushes them through a sender.
func sendAll(t *testing.T, n int, o halosim.SenderOptions) (*halosim.Sender, halosim.Counts, []halosim.Event) {
	t.Helper()
	f, rng := seeded(t, 5)
	events := f.Run(rng, n)
	if o.Tenant == nil {
		o.Tenant = f.Tenant
	}
	s := halosim.NewSender(o)
	if got := s.Send(events...); got != n {
		t.Fatalf("queued %d of %d", got, n)
	}
	c, err := s.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 0 {
		t.Fatalf("%d pending after Flush", s.Pending())
	}
	return s, c, events
}

func messageIDs(t *testing.T, bodies [][]byte) []string {
	t.Helper()
	var out []string
	for _, b := range bodies {
		decoded, err := halo.Decode(b)
		if err != nil {
			t.Fatalf("Decode: %v\n%s", err, b)
		}
		for _, e := range decoded {
			out = append(out, e.ID)
		}
	}
	return out
}

func TestSenderPlain(t *testing.T) {
	r := newReceiver(t)
	s, c, events := sendAll(t, 20, halosim.SenderOptions{URL: r.URL})
	if c != (halosim.Counts{Sent: 20}) {
		t.Fatalf("counts %+v", c)
	}
	bodies, heads := r.received()
	got := messageIDs(t, bodies)
	for i, e := range events {
		if got[i] != e.ID {
			t.Fatalf("delivery %d is %s, want %s (order kept)", i, got[i], e.ID)
		}
		if bodies[i][0] != '{' {
			t.Fatalf("unbatched delivery is not an object: %s", bodies[i][:20])
		}
	}
	if heads[0].Get("Authorization") != "" || heads[0].Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", heads[0])
	}
	var top map[string]any
	if err := json.Unmarshal(bodies[0], &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "webhook_id", "notification_id", "escmsg_id", "event", "message", "object_id", "agent_id", "timestamp"} {
		if _, ok := top[k]; !ok {
			t.Errorf("payload lacks %q", k)
		}
	}
	if ts := top["timestamp"].(string); len(ts) != len("2026-09-25T06:41:08.7895915Z") || !strings.HasSuffix(ts, "Z") {
		t.Errorf("timestamp %q", ts)
	}
	if top["webhook_id"] != s.WebhookID() {
		t.Errorf("webhook_id %v, sender says %s", top["webhook_id"], s.WebhookID())
	}
	if st := s.Stats(); st != c {
		t.Errorf("stats %+v", st)
	}
}

func TestSenderBatch(t *testing.T) {
	r := newReceiver(t)
	_, c, events := sendAll(t, 10, halosim.SenderOptions{URL: r.URL, Batch: 3, PayloadType: halosim.PayloadSmall})
	if c.Sent != 4 {
		t.Fatalf("counts %+v", c)
	}
	bodies, _ := r.received()
	sizes := []int{}
	for _, b := range bodies {
		var arr []json.RawMessage
		if err := json.Unmarshal(b, &arr); err != nil {
			t.Fatalf("a batch is not an array: %s", b)
		}
		sizes = append(sizes, len(arr))
	}
	if len(sizes) != 4 || sizes[0] != 3 || sizes[3] != 1 {
		t.Fatalf("batch sizes %v", sizes)
	}
	if got := messageIDs(t, bodies); len(got) != len(events) {
		t.Fatalf("%d events in the batches", len(got))
	}
}

func TestSenderDropAndDuplicate(t *testing.T) {
	r := newReceiver(t)
	_, c, _ := sendAll(t, 10, halosim.SenderOptions{URL: r.URL, DropRate: 1})
	if bodies, _ := r.received(); c != (halosim.Counts{Dropped: 10}) || len(bodies) != 0 {
		t.Fatalf("DropRate 1: %+v, %d received", c, len(bodies))
	}

	r = newReceiver(t)
	_, c, events := sendAll(t, 10, halosim.SenderOptions{URL: r.URL, DuplicateRate: 1})
	bodies, _ := r.received()
	if c != (halosim.Counts{Sent: 20, Duplicated: 10}) || len(bodies) != 20 {
		t.Fatalf("DuplicateRate 1: %+v, %d received", c, len(bodies))
	}
	for i := range events {
		if !bytes.Equal(bodies[i], bodies[10+i]) {
			t.Fatalf("duplicate %d differs", i)
		}
	}

	r = newReceiver(t)
	rng := rand.New(rand.NewPCG(9, 9))
	_, c, events = sendAll(t, 200, halosim.SenderOptions{URL: r.URL, DropRate: 0.2, DuplicateRate: 0.2, Reorder: 5, Rand: rng})
	bodies, _ = r.received()
	if c.Dropped == 0 || c.Duplicated == 0 || c.Sent+c.Dropped != 200+c.Duplicated || len(bodies) != c.Sent {
		t.Fatalf("mixed: %+v, %d received", c, len(bodies))
	}
	got := messageIDs(t, bodies)
	sent := map[string]bool{}
	for _, e := range events {
		sent[e.ID] = true
	}
	inOrder := true
	for i, id := range got {
		if !sent[id] {
			t.Fatalf("unknown message %s", id)
		}
		if i < len(events) && id != events[i].ID {
			inOrder = false
		}
	}
	if inOrder {
		t.Fatal("Reorder kept the order")
	}
}

func TestSenderAuth(t *testing.T) {
	verify := func(t *testing.T, scheme config.AuthScheme, body []byte, h http.Header) error {
		v, err := auth.New([]config.AuthScheme{scheme})
		if err != nil {
			t.Fatal(err)
		}
		hdr := map[string]string{}
		for k := range h {
			hdr[strings.ToLower(k)] = h.Get(k)
		}
		return v.Verify(auth.Request{Header: hdr, Body: body})
	}
	t.Run("basic", func(t *testing.T) {
		r := newReceiver(t)
		sendAll(t, 3, halosim.SenderOptions{URL: r.URL, Auth: halosim.BasicAuth("halo", "first-secret")})
		bodies, heads := r.received()
		good := config.AuthScheme{Scheme: "basic", Username: "halo", Passwords: []string{"first-secret"}}
		bad := config.AuthScheme{Scheme: "basic", Username: "halo", Passwords: []string{"other"}}
		for i := range bodies {
			if err := verify(t, good, bodies[i], heads[i]); err != nil {
				t.Fatalf("basic: %v", err)
			}
			if err := verify(t, bad, bodies[i], heads[i]); err == nil {
				t.Fatal("basic: a wrong password passed")
			}
		}
	})
	t.Run("hmac", func(t *testing.T) {
		r := newReceiver(t)
		sendAll(t, 3, halosim.SenderOptions{URL: r.URL, Auth: halosim.HMACAuth("signing-key"), Batch: 2})
		bodies, heads := r.received()
		good := config.AuthScheme{Scheme: "hmac", Header: "Token", Secrets: []string{"signing-key"}}
		bad := config.AuthScheme{Scheme: "hmac", Header: "Token", Secrets: []string{"other-key"}}
		for i := range bodies {
			if heads[i].Get("Token") == "" || heads[i].Get("Authorization") != "" {
				t.Fatalf("hmac headers %v", heads[i])
			}
			if err := verify(t, good, bodies[i], heads[i]); err != nil {
				t.Fatalf("hmac: %v", err)
			}
			if err := verify(t, bad, bodies[i], heads[i]); err == nil {
				t.Fatal("hmac: a wrong key passed")
			}
			if err := verify(t, good, append(bodies[i], ' '), heads[i]); err == nil {
				t.Fatal("hmac: a changed body passed")
			}
		}
	})
}

func TestSenderLogsDeliveries(t *testing.T) {
	r := newReceiver(t)
	r.status = 500
	s, c, _ := sendAll(t, 3, halosim.SenderOptions{URL: r.URL, Auth: halosim.BasicAuth("halo", "pw"), DropRate: 0.5, Rand: rand.New(rand.NewPCG(1, 1))})
	if c.Failed+c.Dropped != 3 || c.Sent != 0 {
		t.Fatalf("counts %+v", c)
	}
	ten := s.Deliveries()
	if len(ten) != 3 {
		t.Fatalf("%d deliveries", len(ten))
	}
	// The log, through the API, paged.
	f := newFixture(t, halosim.Options{})
	s = halosim.NewSender(halosim.SenderOptions{URL: r.URL, Tenant: f.Tenant, Auth: halosim.BasicAuth("halo", "pw")})
	rng := rand.New(rand.NewPCG(2, 2))
	f.Seed(rng, 2)
	s.Send(f.Run(rng, 5)...)
	if _, err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := f.token()
	var log []map[string]any
	f.getJSON("/api/WebhookEvent?webhook_id="+s.WebhookID()+"&pageinate=true&page_size=2&page_no=3", tok, &log)
	if len(log) != 1 {
		t.Fatalf("page 3 of the log: %v", log)
	}
	e := log[0]
	if e["status"] != float64(halosim.DeliveryFailed) || e["responsestatus"] != float64(500) || e["requestbody"] == "" {
		t.Fatalf("log entry %v", e)
	}
	if strings.Contains(e["requestheaders"].(string), "Basic ") {
		t.Fatalf("credentials in the log: %v", e["requestheaders"])
	}
	all := f.WebhookEvents()
	if len(all) != 5 {
		t.Fatalf("%d log entries", len(all))
	}
	wrapped := newFixture(t, halosim.Options{EnvelopeManagementLists: true})
	var env struct {
		RecordCount   int              `json:"record_count"`
		WebhookEvents []map[string]any `json:"webhookevents"`
	}
	wrapped.getJSON("/api/WebhookEvent", wrapped.token(), &env)
	if env.WebhookEvents == nil {
		t.Fatal("EnvelopeManagementLists: no envelope")
	}
}

func TestWebhookSender(t *testing.T) {
	r := newReceiver(t)
	f, rng := seeded(t, 6)
	id := f.AddWebhook(map[string]any{
		"name": "halosync", "url": r.URL, "authentication_type": 3, "authentication_header": "Token",
		"basic_password": "k", "active": true,
	})
	nid, err := f.Subscribe(id, halosim.EventNumber("ticket status changed"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.WebhookSender(id, halosim.SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	events := f.Run(rng, 100)
	want := 0
	for _, e := range events {
		if e.Name == "ticket status changed" {
			want++
		}
	}
	if got := s.Send(events...); got != want || want == 0 {
		t.Fatalf("queued %d, want %d", got, want)
	}
	if _, err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	bodies, heads := r.received()
	for i, b := range bodies {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m["notification_id"] != float64(nid) || m["webhook_id"] != id || heads[i].Get("Token") == "" {
			t.Fatalf("delivery %v %v", m["notification_id"], m["webhook_id"])
		}
	}
	f.DeleteWebhook(id)
	if got := s.Send(events...); got != 0 {
		t.Fatalf("a deleted webhook queued %d", got)
	}
}

func TestFlushCancelled(t *testing.T) {
	r := newReceiver(t)
	f, rng := seeded(t, 7)
	s := halosim.NewSender(halosim.SenderOptions{URL: r.URL, Tenant: f.Tenant, Delay: time.Hour})
	s.Send(f.Run(rng, 4)...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Flush(ctx); err == nil {
		t.Fatal("Flush outlived its context")
	}
	if s.Pending() != 4 {
		t.Fatalf("%d pending after a cancelled flush", s.Pending())
	}
}
