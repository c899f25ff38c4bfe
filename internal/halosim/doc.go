// Package halosim is a simulated Halo PSA tenant in process: the local demo runs on it, and
// every Halo-facing test.
//
// A Tenant serves Halo's REST API on a local HTTP server (New, or NewHandler to mount
// it elsewhere) with the shapes and quirks known of real tenants:
//
//   - discovery: GET /api/authinfo answers auth_url and tenant_id;
//   - POST /auth/token, the client-credentials grant (form or HTTP Basic credentials, the
//     tenant query parameter on hosted tenants, invalid_client, invalid_scope for scopes
//     such as read:actions that Halo does not have); every other /api call needs an
//     unexpired Bearer token and scopes that cover it;
//   - GET /api/Tickets, Actions, Client, Users and Asset: {"record_count": N, "<plural>":
//     [...]}, pageinate/page_size/page_no pages silently capped at 100 items, count=N
//     without paging, lastupdatefromdate/lastupdatetodate (with or without Z),
//     deleted=true, ticketidonly/idonly, includeinactive, client_id, ticket_id, ...;
//     GET /api/<Kind>/{id}, 404 when absent (a deleted ticket is still there, flagged);
//   - dates written as UTC without a Z, 1900-01-01T00:00:00 for "no date"; ids as JSON
//     numbers; change markers (last_update, last_updated, alastupdate, ulastupdate,
//     dlastupdate) that rise with every change;
//   - routes and parameter names matched without regard to case, unknown parameters
//     silently ignored (so a misspelt filter returns everything);
//   - 429 "Rate Limit Reached" over a rolling window, with or without Retry-After;
//   - webhook management: /api/Webhook (bare arrays, uuid ids), /api/Notification (event
//     subscriptions) and /api/WebhookEvent (the delivery log), 403 without permission;
//   - injected faults: 5xx, delays and 401 for a still-valid token (FailNext, Options.Faults).
//
// The data is set directly (Upsert, Delete, Seed) or changed by a generator (Step, Run,
// Do) that makes random but realistic changes across tickets, notes, clients, contacts
// and assets and returns the webhook Event each raises. A Sender delivers events to a
// webhook receiver as Halo does: full, small or event-only payloads, optional batching
// into JSON arrays, Basic or signed-body ("Token" header, base64 HMAC-SHA256 of the body)
// authentication, and knobs for lost, duplicated, reordered and delayed deliveries; every
// delivery goes into the tenant's WebhookEvent log. Tenant.WebhookSender delivers for a
// webhook created through the API, honouring its notifications.
//
// Everything is safe for concurrent use and nothing is package-level state. Given a seeded
// *rand.Rand and a fake clock (Clock), tenant, generator and sender are deterministic: the
// same seed gives the same objects, events, payload bytes and delivery decisions.
//
// Where Halo's behaviour is unconfirmed the fake picks one answer and its documentation
// says so; an option switches to the other where one exists (UpdateFilterTicketsOnly,
// EnvelopeManagementLists, SendRetryAfter).
package halosim
