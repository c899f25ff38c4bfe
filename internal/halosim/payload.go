package halosim

import (
	"fmt"

	"github.com/halosync/halosync/internal/change"
)

// PayloadType is a webhook's payload type (Halo's numeric codes for these are unconfirmed).
type PayloadType int

const (
	// PayloadFull is "Full object with linked objects": the whole nested objects.
	PayloadFull PayloadType = iota
	// PayloadSmall is "Small object with key fields only".
	PayloadSmall
	// PayloadEventOnly is "Event information only": no nested object, fetch it through the API.
	PayloadEventOnly
)

func (p PayloadType) String() string {
	switch p {
	case PayloadFull:
		return "full"
	case PayloadSmall:
		return "small"
	case PayloadEventOnly:
		return "event-only"
	}
	return fmt.Sprintf("PayloadType(%d)", int(p))
}

// SmallFields are the key fields a small payload keeps of a kind's object: for a ticket
// those of a small delivery captured from Halo (id, summary, status_id, client_id,
// agent_id: no change marker); for the others the fake's choice, always with the id and
// the owning client (or ticket, for an action).
func SmallFields(kind change.Kind) []string {
	switch kind {
	case change.Ticket:
		return []string{"id", "summary", "status_id", "client_id", "agent_id"}
	case change.Action:
		return []string{"id", "ticket_id", "outcome", "who_agentid", "hiddenfromuser"}
	case change.Client:
		return []string{"id", "name", "toplevel_id", "inactive"}
	case change.Contact:
		return []string{"id", "name", "client_id", "site_id", "emailaddress", "inactive"}
	case change.Asset:
		return []string{"id", "inventory_number", "client_id", "site_id", "assettype_id", "inactive"}
	}
	return []string{"id"}
}

// Payload is the event as one webhook delivery carries it (a batch is an array of these).
// Every type has the top-level id (the message id), webhook_id, notification_id,
// escmsg_id, event, object_id and timestamp (UTC, 7 fractional digits, Z); full and small
// add message, agent_id and the nested objects under their keys (ticket, action, client,
// user, asset), whole or cut to SmallFields.
func (e Event) Payload(pt PayloadType, webhookID string, notificationID int64) map[string]any {
	return e.payload(pt, webhookID, notificationID, SmallFields)
}

func (e Event) payload(pt PayloadType, webhookID string, notificationID int64, small func(change.Kind) []string) map[string]any {
	m := map[string]any{
		"id":              e.ID,
		"webhook_id":      webhookID,
		"notification_id": notificationID,
		"escmsg_id":       e.EscMsgID,
		"event":           e.Name,
		"object_id":       e.ObjectID,
		"timestamp":       webhookTime(e.Timestamp),
	}
	if pt == PayloadEventOnly {
		return m
	}
	m["message"] = e.Message
	m["agent_id"] = e.AgentID
	for kind, obj := range e.Objects {
		spec, ok := change.Lookup(kind)
		if !ok {
			continue
		}
		if pt == PayloadSmall {
			cut := map[string]any{}
			for _, f := range small(kind) {
				if v, ok := obj[f]; ok {
					cut[f] = copyValue(v)
				}
			}
			m[spec.PayloadKey] = cut
			continue
		}
		m[spec.PayloadKey] = copyMap(obj)
	}
	return m
}
