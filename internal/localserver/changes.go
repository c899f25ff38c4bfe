package localserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halosync/halosync/internal/apierror"
	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/sqlite"
)

// EventOutbox is where the store keeps the change events it writes with each applied
// change (sqlite.Store): the per-connection change event streams read them from there.
type EventOutbox interface {
	ChangeEventCursor(ctx context.Context, conn, lastEventID string) (int64, error)
	ChangeEvents(ctx context.Context, conn string, after int64, limit int) ([]sqlite.StoredEvent, error)
}

// changeEventsPage is how many events a stream reads from the outbox at a time.
const changeEventsPage = 100

// signal wakes every waiter when something changed. Safe for concurrent use.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// wait is closed at the next notify.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// changeStreams counts the open change event streams, at most MaxEventStreams.
type changeStreams struct{ open atomic.Int32 }

func (c *changeStreams) take() bool {
	if c.open.Add(1) > MaxEventStreams {
		c.open.Add(-1)
		return false
	}
	return true
}

func (c *changeStreams) give() { c.open.Add(-1) }

// changeEvents is GET /connections/{connection}/events, a server-sent events stream of
// the connection's change events (changeevent.Event as JSON, one per applied change),
// each with its stable event id as the "id" field. It reads them from the outbox the
// store writes in the transaction of each change, so an event is sent exactly when its
// change is in the copy, also across a crash. A client that reconnects with
// Last-Event-ID gets every event after that one the outbox still holds
// (sqlite.OutboxRetention); without it, the events to come.
func (s *Server) changeEvents(w http.ResponseWriter, r *http.Request) {
	conn := r.PathValue("connection")
	if !s.connections[conn] {
		apierror.Write(w, apierror.UnknownConnection, fmt.Sprintf("connection %q is not configured", conn))
		return
	}
	if s.outbox == nil {
		apierror.Write(w, apierror.NotFound, "change events are streamed from the embedded store only (store.driver sqlite)")
		return
	}
	if !s.changeStreams.take() {
		w.Header().Set("Retry-After", "10")
		apierror.Write(w, apierror.Unavailable, fmt.Sprintf("%d change event streams are open already", MaxEventStreams))
		return
	}
	defer s.changeStreams.give()
	cursor, err := s.outbox.ChangeEventCursor(r.Context(), conn, r.Header.Get("Last-Event-ID"))
	if err != nil {
		s.log.ErrorContext(r.Context(), "change events", "connection", conn, "error", err.Error())
		apierror.Write(w, apierror.Internal, "the change events cannot be read")
		return
	}
	rc, ok := startStream(w)
	if !ok {
		return
	}
	send := func(text string) bool {
		if rc.SetWriteDeadline(time.Now().Add(writeWait)) != nil {
			return false
		}
		if _, err := w.Write([]byte(text)); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: " + strconv.Itoa(int(reconnectAfter.Milliseconds())) + "\n\n") {
		return
	}
	life, cancel := context.WithTimeout(r.Context(), streamLife)
	defer cancel()
	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	for {
		changed := s.changed.wait() // before reading, so no event written meanwhile is missed
		events, err := s.outbox.ChangeEvents(life, conn, cursor, changeEventsPage)
		if err != nil {
			if life.Err() == nil {
				s.log.ErrorContext(r.Context(), "change events", "connection", conn, "error", err.Error())
			}
			return
		}
		for _, e := range events {
			// The event id is hex and the JSON holds no newline: one line each.
			if !send("id: " + e.ID + "\ndata: " + string(e.Event) + "\n\n") {
				return
			}
			cursor = e.Seq
		}
		if len(events) == changeEventsPage {
			continue
		}
		select {
		case <-life.Done(): // the client went, or the stream's life ended
			return
		case <-s.feed.closed:
			return
		case <-changed:
		case <-keepAlive.C:
			if !send(": keep-alive\n\n") {
				return
			}
		}
	}
}

// notifyingStore is the store the pipeline writes through: an applied change wakes the
// change event streams, which read its event from the outbox.
type notifyingStore struct {
	Store
	changed *signal
}

func (s notifyingStore) Apply(ctx context.Context, c change.Change) (change.Result, error) {
	r, err := s.Store.Apply(ctx, c)
	if err == nil && r.Outcome == change.Applied {
		s.changed.notify()
	}
	return r, err
}
