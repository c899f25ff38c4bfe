// Package haloapi is halosync's client of a Halo tenant's REST API: it reads objects for
// the poller and the worker and manages the connection's webhook. It owns the token flow,
// the connection's request budget, retries with backoff, and Halo's paging quirks; what it
// relies on from Halo is in docs/HALO.md, "The REST API".
package haloapi
