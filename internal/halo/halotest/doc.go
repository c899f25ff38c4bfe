// Package halotest is an in-process fake Halo PSA tenant for tests and for the local demo.
//
// A Tenant serves Halo's REST API (net/http/httptest) with the shapes and quirks described
// in what is known of Halo PSA (Halo's guides, its OpenAPI document and client code that
// works against real tenants): discovery through /api/authinfo, the client-credentials token
// endpoint under /auth, Bearer tokens that expire, list envelopes with record_count,
// pages silently capped at 100 items whatever page_size asks for, the lastupdatefromdate /
// lastupdatetodate filters, deleted tickets, id-only listings, 429 over a rolling rate
// limit, dates written as UTC without a Z, 1900-01-01 for empty dates, case-insensitive
// routes and parameters, unknown parameters silently ignored, and the Webhook,
// Notification and WebhookEvent management endpoints (bare arrays).
//
// Its data is set directly (Upsert, Delete, Seed) or changed by a scripted generator
// (Step, Run) that makes random but realistic changes across tickets, notes, clients,
// contacts and assets and returns the Halo webhook Event each one raises. A Sender
// delivers those events to a webhook receiver the way Halo does: full, small or
// event-only payloads, optional batching into JSON arrays, Basic or signed-body (HMAC
// "Token" header) authentication, and knobs for lost, duplicated, reordered and delayed
// deliveries; every delivery is recorded in the tenant's WebhookEvent log.
//
// Everything is safe for concurrent use and nothing is package-level state. Given a seeded
// *rand.Rand and a fake clock (Clock) the tenant, the generator and the sender are
// deterministic: the same seed gives the same objects, events, payload bytes and
// delivery decisions.
//
// Where Halo's behaviour is unconfirmed the fake picks one answer and says so in the
// documentation of the option or endpoint concerned; an option switches to the other
// possibility where one exists.
package halotest
