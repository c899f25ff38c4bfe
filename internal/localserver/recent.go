package localserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/ingest"
)

// RecentDeliveries is how many delivery records the server keeps in memory for
// GET /deliveries/recent and the dashboard: the newest the worker wrote and the webhook
// endpoint's refusals and filtered changes, over every connection.
const RecentDeliveries = 200

// recent is a bounded ring of the newest delivery records. Safe for concurrent use.
type recent struct {
	mu   sync.Mutex
	ring []change.Delivery
	next int // where the next record goes
	full bool
	// unsaved are the records added since the last takeUnsaved, oldest first, at most as
	// many as the ring holds: what the next save of the status appends to the table.
	unsaved []change.Delivery
	// added is told each record as it is added (the event streams); nil: nobody.
	added func(change.Delivery)
}

func newRecent(n int, added func(change.Delivery)) *recent {
	return &recent{ring: make([]change.Delivery, n), added: added}
}

func (r *recent) add(d change.Delivery) {
	r.mu.Lock()
	r.put(d)
	// Only the newest len(ring) are saved (takeUnsaved); the older ones are dropped once
	// twice that many have gathered, not one by one, so that an add copies no records
	// while the saves wait (docs/PERFORMANCE.md, "Fourth pass").
	if len(r.unsaved) == 2*len(r.ring) {
		r.unsaved = append(r.unsaved[:0], r.unsaved[len(r.ring):]...)
	}
	r.unsaved = append(r.unsaved, d)
	r.mu.Unlock()
	if r.added != nil {
		r.added(d)
	}
}

// load puts records already saved into the ring, oldest first.
func (r *recent) load(ds []change.Delivery) {
	r.mu.Lock()
	for _, d := range ds {
		r.put(d)
	}
	r.mu.Unlock()
}

func (r *recent) put(d change.Delivery) {
	r.ring[r.next] = d
	r.next = (r.next + 1) % len(r.ring)
	r.full = r.full || r.next == 0
}

// takeUnsaved returns the records added since the last call, oldest first.
func (r *recent) takeUnsaved() []change.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.unsaved
	r.unsaved = nil
	return out[max(0, len(out)-len(r.ring)):]
}

// keepUnsaved gives back records a save did not keep, before any added since.
func (r *recent) keepUnsaved(ds []change.Delivery) {
	r.mu.Lock()
	r.unsaved = append(ds, r.unsaved...)
	if over := len(r.unsaved) - len(r.ring); over > 0 {
		r.unsaved = r.unsaved[over:]
	}
	r.mu.Unlock()
}

// list returns the records newest first, those of conn only unless conn is "".
func (r *recent) list(conn string) []change.Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.ring)
	}
	out := []change.Delivery{}
	for i := 1; i <= n; i++ {
		d := r.ring[(r.next-i+len(r.ring))%len(r.ring)]
		if conn != "" && d.Connection != conn {
			continue
		}
		out = append(out, d)
	}
	return out
}

// recordingStore is the store the pipeline writes through: each delivery record it
// writes is also kept in the ring, so the worker needs no hook of its own.
type recordingStore struct {
	Store
	recent *recent
}

func (s recordingStore) RecordDelivery(ctx context.Context, d change.Delivery) error {
	err := s.Store.RecordDelivery(ctx, d)
	if err == nil {
		s.recent.add(d)
	}
	return err
}

// Rejected is the outcome of a delivery the webhook endpoint refused, in the recent
// records beside the worker's outcomes.
const Rejected change.Outcome = "rejected"

// ingested adds what the webhook endpoint did with a delivery, when the worker will
// write no record of it: a refusal, with its reason (a counted label, never a secret; no
// part of the body, which was not trusted), and the changes the filters dropped.
func (r *recent) ingested(conn string, resp ingest.Response, requestID string, at time.Time) {
	if resp.Reason != "" {
		at = at.UTC()
		d := change.Delivery{Connection: conn, Source: change.SourceWebhook, Outcome: Rejected, Reason: resp.Reason,
			ReceivedAt: at, ProcessedAt: at}
		d.Summary = fmt.Sprintf("refused with %d: %s", resp.Status, resp.Reason)
		if requestID != "" {
			d.Summary += " (request " + requestID + ", as logged)"
		}
		r.add(d)
	}
	for _, d := range resp.Filtered {
		r.add(d)
	}
}
