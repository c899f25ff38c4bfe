// Package halosim is a simulated Halo PSA tenant in process: it serves Halo's REST API with
// the quirks known of real tenants, changes its objects as a busy tenant does, and
// delivers webhooks as Halo does. `halosync serve --demo` runs on it, and so does every
// Halo-facing test (through internal/halotest). Tenant says what it simulates.
package halosim
