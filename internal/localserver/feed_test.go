package localserver_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/localserver"
)

// sse is one event of a GET /events stream.
type sse struct {
	event string
	data  string
}

// stream is an open GET /events: its events arrive on events, which is closed when the
// stream ends.
type stream struct {
	resp   *http.Response
	events chan sse
	cancel context.CancelFunc
}

// openStream opens GET /events with the given Authorization (or cookie) header and, on
// a 200, reads its events in the background.
func (s *testServer) openStream(t *testing.T, header, value string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /events: %v", err)
	}
	st := &stream{resp: resp, events: make(chan sse, 64), cancel: cancel}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(st.events)
		return st
	}
	go func() {
		defer close(st.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					st.events <- ev
				}
				ev = sse{}
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return st
}

// next waits for the next event named name (others are skipped), failing after timeout.
func (st *stream) next(t *testing.T, name string, timeout time.Duration, accept func(data string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				t.Fatalf("the stream ended before a %q event", name)
			}
			if ev.event == name && (accept == nil || accept(ev.data)) {
				return ev.data
			}
		case <-deadline:
			t.Fatalf("no %q event within %v", name, timeout)
		}
	}
}

func TestEventsNeedTheReadToken(t *testing.T) {
	s := startServer(t, testConfig())
	for _, c := range []struct{ header, value string }{{"", ""}, {"Authorization", "Bearer wrong"}, {"Cookie", "halosync_read=d3Jvbmc"}} {
		if st := s.openStream(t, c.header, c.value); st.resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /events with %s %q answered %d, want 401", c.header, c.value, st.resp.StatusCode)
		}
	}
	// The dashboard's cookie is accepted as the bearer token is.
	cookie := "halosync_read=" + base64.RawURLEncoding.EncodeToString([]byte(readToken))
	st := s.openStream(t, "Cookie", cookie)
	if st.resp.StatusCode != http.StatusOK || st.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /events with the cookie: %d %s", st.resp.StatusCode, st.resp.Header.Get("Content-Type"))
	}
	st.next(t, "status", pollTimeout, nil)
}

// The stream opens with the status, then pushes each record as it is written: the
// worker's, and the webhook endpoint's refusals with their reason and no secret.
func TestEventsStreamRecordsAndStatus(t *testing.T) {
	s := startServer(t, testConfig())
	st := s.openStream(t, "Authorization", bearer)
	var first struct {
		Connections  []string       `json:"connections"`
		ByConnection map[string]any `json:"by_connection"`
	}
	if err := json.Unmarshal([]byte(st.next(t, "status", pollTimeout, nil)), &first); err != nil || first.ByConnection["default"] == nil {
		t.Fatalf("the first status event: %+v, %v", first, err)
	}

	const id = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10"
	s.deliverOK(t, sampleBody(t, "ingest-ticket-full.json"))
	var d change.Delivery
	data := st.next(t, "delivery", pollTimeout, func(data string) bool { return strings.Contains(data, id) })
	if err := json.Unmarshal([]byte(data), &d); err != nil || d.Outcome != change.Applied || d.ID != "4242" {
		t.Fatalf("delivery event %s (%v), want ticket 4242 applied", data, err)
	}
	// A status event follows, since the counters changed.
	st.next(t, "status", 3*localserver.StatusEvery, func(data string) bool { return strings.Contains(data, `"ChangesApplied"`) })

	const guess = "a-guessed-password-7"
	if r := s.deliver(t, "default", authtest.Basic(user, guess), sampleBody(t, "ingest-ticket-full.json")); r.status != http.StatusUnauthorized {
		t.Fatalf("a wrong password answered %d", r.status)
	}
	data = st.next(t, "delivery", pollTimeout, func(data string) bool { return strings.Contains(data, `"rejected"`) })
	if err := json.Unmarshal([]byte(data), &d); err != nil || d.Reason != "credentials_wrong" || d.Connection != "default" {
		t.Errorf("refusal event %s (%v), want default rejected for credentials_wrong", data, err)
	}
	if strings.Contains(data, guess) || strings.Contains(data, "Printer") {
		t.Errorf("the refusal's event carries the password or the body: %s", data)
	}
}

// Shutting the server down ends every stream at once: graceful shutdown waits for
// handlers, and would otherwise wait out its timeout on each open stream.
func TestEventsEndWhenTheServerStops(t *testing.T) {
	s := startServer(t, testConfig())
	st := s.openStream(t, "Authorization", bearer)
	st.next(t, "status", pollTimeout, nil)
	start := time.Now()
	s.stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the server took %v to stop with a stream open", took)
	}
	select {
	case _, ok := <-st.events:
		for ok {
			_, ok = <-st.events
		}
	case <-time.After(pollTimeout):
		t.Fatal("the stream is still open after the server stopped")
	}
}

// At most MaxEventStreams streams are served at once; one more is refused with 503 and
// Retry-After, and a place frees when a stream ends.
func TestEventStreamsAreBounded(t *testing.T) {
	s := startServer(t, testConfig())
	var open []*stream
	for range localserver.MaxEventStreams {
		st := s.openStream(t, "Authorization", bearer)
		st.next(t, "status", pollTimeout, nil)
		open = append(open, st)
	}
	over := s.openStream(t, "Authorization", bearer)
	if over.resp.StatusCode != http.StatusServiceUnavailable || over.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stream %d answered %d (Retry-After %q), want 503 with Retry-After", localserver.MaxEventStreams+1,
			over.resp.StatusCode, over.resp.Header.Get("Retry-After"))
	}
	open[0].cancel()
	eventually(t, pollTimeout, "a place freed", func() (bool, string) {
		st := s.openStream(t, "Authorization", bearer)
		defer st.cancel()
		return st.resp.StatusCode == http.StatusOK, st.resp.Status
	})
}
