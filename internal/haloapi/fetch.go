package haloapi

import (
	"context"
	"errors"

	"github.com/halosync/halosync/internal/change"
)

// Fetch reads one object for the worker, a note with its ticket (parentID): found is
// false when Halo no longer has it.
func (c *Client) Fetch(ctx context.Context, kind change.Kind, id, parentID string) (map[string]any, bool, error) {
	obj, err := c.Read(ctx, kind, id, parentID)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return obj, true, nil
}

// FetchNotes lists a ticket's notes (GET /api/Actions?ticket_id=, one unpaged answer).
func (c *Client) FetchNotes(ctx context.Context, ticketID string) ([]map[string]any, error) {
	var notes []map[string]any
	err := c.List(ctx, change.Action, ListQuery{TicketID: ticketID}, func(page []map[string]any) error {
		notes = append(notes, page...)
		return nil
	})
	return notes, err
}
