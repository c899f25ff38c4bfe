package haloapi

import (
	"testing"

	"github.com/halosync/halosync/internal/change"
)

// Every kind has an endpoint with what paging and the reconcile need; the values
// themselves are checked against the simulated tenant by the client's tests.
func TestEndpointsCoverEveryKind(t *testing.T) {
	for _, spec := range change.Kinds() {
		ep, ok := EndpointOf(spec.Kind)
		if !ok {
			t.Fatalf("no endpoint for %s", spec.Kind)
		}
		if ep.Kind != spec.Kind || ep.Path == "" || ep.Envelope == "" || (ep.IDOnlyParam == "") != (spec.Kind == change.Action) {
			t.Errorf("%s: %+v", spec.Kind, ep)
		}
	}
	if len(Endpoints()) != len(change.Kinds()) {
		t.Fatalf("%d endpoints for %d kinds", len(Endpoints()), len(change.Kinds()))
	}
	ep, _ := EndpointOf(change.Ticket)
	if ep.GetParams.Get("includedetails") != "true" || !ep.Deleted || !ep.UpdatedFilterConfirmed || !ep.Paged || ep.Inactive {
		t.Errorf("tickets: %+v", ep)
	}
	ep.GetParams.Set("includedetails", "false") // a copy: the table is unchanged
	if ep2, _ := EndpointOf(change.Ticket); ep2.GetParams.Get("includedetails") != "true" {
		t.Fatal("EndpointOf handed out the table's own values")
	}
	// The Actions list takes no paging, id-only, inactive or last-update parameters.
	if ep, _ := EndpointOf(change.Action); ep.ParentParam != "ticket_id" || ep.Deleted || ep.Paged || ep.IDOnlyParam != "" || ep.Inactive || ep.UpdatedFilter {
		t.Errorf("actions: %+v", ep)
	}
	for _, k := range []change.Kind{change.Client, change.Contact, change.Asset} {
		if ep, _ := EndpointOf(k); !ep.Paged || !ep.Inactive || !ep.UpdatedFilter || ep.UpdatedFilterConfirmed || ep.IDOnlyParam != "idonly" {
			t.Errorf("%s: %+v", k, ep)
		}
	}
	if _, ok := EndpointOf("site"); ok {
		t.Error("an unknown kind has an endpoint")
	}
}
