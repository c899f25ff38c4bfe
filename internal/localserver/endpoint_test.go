package localserver_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/change"
)

// TestBackupRoute: Halo's two webhooks deliver the same change, one to the webhook route
// (the primary) and one to the backup route, each with its own delivery id. Both are
// authenticated alike; the first is applied, the second is a duplicate; each record names
// its endpoint, and the status counts a delivery per endpoint.
func TestBackupRoute(t *testing.T) {
	s := startServer(t, testConfig())
	full := sampleBody(t, "ingest-ticket-full.json") // delivery 6f1c2a4e-…, ticket 4242
	const viaPrimary = "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10"
	const viaBackup = "7a2d3b5f-4c8e-4f1b-8b62-3d9e8f7a6b21"
	backup := func(auth string, body []byte) response {
		return do(t, http.MethodPost, s.url+"/backup/webhooks/halo/default", auth, body)
	}
	if r := backup(authtest.Basic(user, "wrong"), full); r.status != http.StatusUnauthorized {
		t.Fatalf("the backup route answered a wrong password with %d %s", r.status, r.body)
	}
	s.deliverOK(t, full)
	if ds := s.waitDeliveries(t, "default", viaPrimary); len(ds) != 1 || ds[0].Outcome != change.Applied || ds[0].Endpoint != change.EndpointPrimary {
		t.Fatalf("records of the primary's delivery: %+v", ds)
	}
	var m map[string]any
	if err := json.Unmarshal(full, &m); err != nil {
		t.Fatal(err)
	}
	m["id"] = viaBackup
	second, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if r := backup(authtest.Basic(user, password), second); r.status != http.StatusOK {
		t.Fatalf("the backup route answered %d %s, want 200", r.status, r.body)
	}
	if ds := s.waitDeliveries(t, "default", viaBackup); len(ds) != 1 || ds[0].Outcome != change.Duplicate || ds[0].Endpoint != change.EndpointBackup {
		t.Fatalf("records of the backup's delivery: %+v", ds)
	}
	var st struct {
		ByConnection map[string]struct {
			Endpoints map[string]int64 `json:"deliveries_by_endpoint"`
		} `json:"by_connection"`
	}
	r := do(t, http.MethodGet, s.url+"/status", bearer, nil)
	if err := json.Unmarshal(r.body, &st); err != nil || r.status != http.StatusOK {
		t.Fatalf("GET /status: %d %s", r.status, r.body)
	}
	if got := st.ByConnection["default"].Endpoints; len(got) != 2 || got[change.EndpointPrimary] != 1 || got[change.EndpointBackup] != 1 {
		t.Fatalf("deliveries by endpoint %v, want one through each", got)
	}
}
