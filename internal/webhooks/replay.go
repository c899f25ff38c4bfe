package webhooks

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/halosync/halosync/internal/haloapi"
)

// ReplayOptions selects the failed deliveries Replay sends again.
type ReplayOptions struct {
	// Since and Until bound the deliveries' times in Halo's log (Until zero: now).
	Since, Until time.Time
	// DryRun counts what would be sent and sends nothing.
	DryRun bool
	// MaxErrors bounds how many refusals the report describes (default 10).
	MaxErrors int
}

// ReplayReport tells what Replay found and did.
type ReplayReport struct {
	Connection string `json:"connection"`
	// Read is how many log entries in the window were read; Failed how many of them
	// failed.
	Read   int `json:"read"`
	Failed int `json:"failed"`
	// NoBody are failed entries without a body (lightweight logs keep none).
	NoBody int `json:"no_body"`
	// Delivered are failed entries whose body Halo delivered successfully later (a
	// re-send); Repeats are further failed entries with a body already selected.
	Delivered int `json:"delivered_later"`
	Repeats   int `json:"repeats"`
	// Sent bodies, of which Accepted got a 2xx answer and Refused another.
	Sent      int  `json:"sent"`
	Accepted  int  `json:"accepted"`
	Refused   int  `json:"refused"`
	DryRun    bool `json:"dry_run,omitempty"`
	Truncated bool `json:"truncated,omitempty"`
	// Errors describes refusals (the first MaxErrors).
	Errors []string `json:"errors,omitempty"`
}

// Replay reads the failed deliveries of our webhook (and of any duplicate with our name)
// from Halo's log within the window, and sends each distinct body once more through our
// endpoint, oldest first, authenticated as ours: an outage on our side repaired from
// Halo's record. Deliveries are idempotent here (newest wins, duplicates are
// acknowledged), so a body sent twice changes nothing.
func (m *Manager) Replay(ctx context.Context, s Spec, d Deliverer, o ReplayOptions) (ReplayReport, error) {
	r := ReplayReport{Connection: s.Connection, DryRun: o.DryRun}
	if o.MaxErrors <= 0 {
		o.MaxErrors = 10
	}
	all, err := m.API.Webhooks(ctx)
	if err != nil {
		return r, fmt.Errorf("connection %s: %w", s.Connection, err)
	}
	w, dups := ours(all, s.Name)
	if w == nil {
		return r, fmt.Errorf("connection %s: no webhook named %q in Halo, so no delivery log to replay from", s.Connection, s.Name)
	}
	type candidate struct {
		at   time.Time
		id   string
		body []byte
	}
	delivered := map[[32]byte]bool{}
	selected := map[[32]byte]bool{}
	var todo []candidate
	var failedWithBody []candidate
	for _, x := range append([]haloapi.Webhook{*w}, dups...) {
		err := m.readLog(ctx, x.ID, o.Since, func(e haloapi.WebhookEvent) {
			if !o.Until.IsZero() && e.Timestamp.After(o.Until) {
				return
			}
			r.Read++
			sum := sha256.Sum256([]byte(e.RequestBody))
			if e.Succeeded() {
				delivered[sum] = true
				return
			}
			r.Failed++
			if e.RequestBody == "" {
				r.NoBody++
				return
			}
			failedWithBody = append(failedWithBody, candidate{at: e.Timestamp, id: e.ID, body: []byte(e.RequestBody)})
		})
		if errors.Is(err, errTruncated) {
			r.Truncated, err = true, nil
		}
		if err != nil {
			return r, fmt.Errorf("connection %s: %w", s.Connection, err)
		}
	}
	sort.SliceStable(failedWithBody, func(i, j int) bool { return failedWithBody[i].at.Before(failedWithBody[j].at) })
	for _, c := range failedWithBody {
		sum := sha256.Sum256(c.body)
		switch {
		case delivered[sum]:
			r.Delivered++
		case selected[sum]:
			r.Repeats++
		default:
			selected[sum] = true
			todo = append(todo, c)
		}
	}
	if o.DryRun {
		r.Sent = 0
		return r, nil
	}
	for _, c := range todo {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		a, err := d.Deliver(ctx, c.body)
		r.Sent++
		switch {
		case err != nil:
			r.Refused++
			r.note(o.MaxErrors, fmt.Sprintf("delivery %s of %s: no answer: %v", c.id, stamp(c.at), err))
		case a.Accepted():
			r.Accepted++
		default:
			r.Refused++
			r.note(o.MaxErrors, fmt.Sprintf("delivery %s of %s: HTTP %d %s", c.id, stamp(c.at), a.Status, a.Body))
		}
	}
	m.log().InfoContext(ctx, "webhook deliveries replayed", "connection", s.Connection, "sent", r.Sent, "accepted", r.Accepted, "refused", r.Refused)
	return r, nil
}

// ToSend is how many bodies a replay sends (or, dry, would send).
func (r ReplayReport) ToSend() int { return r.Failed - r.NoBody - r.Delivered - r.Repeats }

func (r *ReplayReport) note(limit int, s string) {
	if len(r.Errors) < limit {
		r.Errors = append(r.Errors, s)
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "(no time)"
	}
	return t.UTC().Format(time.RFC3339)
}
