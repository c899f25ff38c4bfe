package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/halosync/halosync/internal/haloapi"
)

// TestReport tells how a test delivery went.
type TestReport struct {
	Connection string `json:"connection"`
	WebhookID  string `json:"webhook_id"`
	// Via is "halo" when Halo's own test delivery showed up in its log, "direct" when a
	// sample was sent from here instead.
	Via string `json:"via"`
	// HaloTest says what became of asking Halo for a test delivery.
	HaloTest string `json:"halo_test"`
	// Arrived: our endpoint answered; Accepted: with a 2xx.
	Arrived  bool   `json:"arrived"`
	Accepted bool   `json:"accepted"`
	Status   int    `json:"status,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// TestOptions tunes Test.
type TestOptions struct {
	// Wait is how long to look for Halo's test delivery in its log (default 30 s); Every
	// how often (default 2 s).
	Wait, Every time.Duration
	// Sleep waits (default: a timer honouring ctx); tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Test asks Halo to send our webhook a test delivery (POST [{id, _test: true}]) and
// watches Halo's log for it: the entry says whether it arrived and was accepted. When
// Halo refuses the test or logs nothing within the wait, it sends a sample itself,
// authenticated as Halo would (ProbeBody: a batch of no events, which queues nothing),
// through d, and reports that answer. A webhook missing from Halo, or a refusal to read
// its log, is an error.
func (m *Manager) Test(ctx context.Context, s Spec, d Deliverer, o TestOptions) (TestReport, error) {
	r := TestReport{Connection: s.Connection}
	if o.Wait <= 0 {
		o.Wait = 30 * time.Second
	}
	if o.Every <= 0 {
		o.Every = 2 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	all, err := m.API.Webhooks(ctx)
	if err != nil {
		return r, fmt.Errorf("connection %s: %w", s.Connection, err)
	}
	w, _ := ours(all, s.Name)
	if w == nil {
		return r, fmt.Errorf("connection %s: no webhook named %q in Halo: run `halosync webhooks apply` first", s.Connection, s.Name)
	}
	r.WebhookID = w.ID
	before := map[string]bool{}
	if err := m.API.WebhookEvents(ctx, w.ID, func(page []haloapi.WebhookEvent) error {
		for _, e := range page {
			before[e.ID] = true
		}
		return haloapi.ErrStopPaging
	}); err != nil {
		return r, fmt.Errorf("connection %s: %w", s.Connection, err)
	}
	if err := m.API.TestWebhook(ctx, w.ID); err != nil {
		if errors.Is(err, haloapi.ErrForbidden) {
			return r, fmt.Errorf("connection %s: %w", s.Connection, err)
		}
		r.HaloTest = "refused: " + err.Error()
	} else {
		r.HaloTest = "requested"
		deadline := time.Now().Add(o.Wait)
		for {
			e, found, err := m.newEntry(ctx, w.ID, before)
			if err != nil {
				return r, fmt.Errorf("connection %s: %w", s.Connection, err)
			}
			if found {
				r.Via, r.Status = "halo", e.ResponseStatus
				r.Arrived = e.ResponseStatus != 0
				r.Accepted = e.Succeeded()
				if !r.Accepted {
					r.Detail = failureText(e)
				}
				return r, nil
			}
			if !time.Now().Before(deadline) {
				break
			}
			if err := o.Sleep(ctx, o.Every); err != nil {
				return r, err
			}
		}
		r.HaloTest = fmt.Sprintf("requested, but no delivery appeared in Halo's log within %s", o.Wait)
	}
	r.Via = "direct"
	a, err := d.Deliver(ctx, ProbeBody)
	if err != nil {
		r.Detail = err.Error()
		return r, nil
	}
	r.Arrived, r.Accepted, r.Status = true, a.Accepted(), a.Status
	if !r.Accepted {
		r.Detail = fmt.Sprintf("HTTP %d %s", a.Status, a.Body)
	}
	return r, nil
}

// newEntry looks for a log entry of the webhook not in before: the newest page only.
func (m *Manager) newEntry(ctx context.Context, webhookID string, before map[string]bool) (haloapi.WebhookEvent, bool, error) {
	var found haloapi.WebhookEvent
	ok := false
	err := m.API.WebhookEvents(ctx, webhookID, func(page []haloapi.WebhookEvent) error {
		for _, e := range page {
			if !before[e.ID] && (!ok || e.Timestamp.After(found.Timestamp)) {
				found, ok = e, true
			}
		}
		return haloapi.ErrStopPaging
	})
	return found, ok, err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
