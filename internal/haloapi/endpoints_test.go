package haloapi

import (
	"testing"

	"github.com/halosync/halosync/internal/change"
)

func TestEndpointsCoverEveryKind(t *testing.T) {
	want := map[change.Kind][3]string{
		change.Ticket:  {"Tickets", "tickets", "ticketidonly"},
		change.Action:  {"Actions", "actions", "idonly"},
		change.Client:  {"Client", "clients", "idonly"},
		change.Contact: {"Users", "users", "idonly"},
		change.Asset:   {"Asset", "assets", "idonly"},
	}
	for _, spec := range change.Kinds() {
		ep, ok := EndpointOf(spec.Kind)
		if !ok {
			t.Fatalf("no endpoint for %s", spec.Kind)
		}
		w := want[spec.Kind]
		if got := [3]string{ep.Path, ep.Envelope, ep.IDOnlyParam}; got != w {
			t.Errorf("%s: %v, want %v", spec.Kind, got, w)
		}
	}
	if len(Endpoints()) != len(change.Kinds()) {
		t.Fatalf("%d endpoints for %d kinds", len(Endpoints()), len(change.Kinds()))
	}
	ep, _ := EndpointOf(change.Ticket)
	if ep.GetParams.Get("includedetails") != "true" || !ep.Deleted || !ep.UpdatedFilterConfirmed {
		t.Errorf("tickets: %+v", ep)
	}
	ep.GetParams.Set("includedetails", "false") // a copy: the table is unchanged
	if ep2, _ := EndpointOf(change.Ticket); ep2.GetParams.Get("includedetails") != "true" {
		t.Fatal("EndpointOf handed out the table's own values")
	}
	if ep, _ := EndpointOf(change.Action); ep.ParentParam != "ticket_id" || ep.Deleted {
		t.Errorf("actions: %+v", ep)
	}
	if _, ok := EndpointOf("site"); ok {
		t.Error("an unknown kind has an endpoint")
	}
}
