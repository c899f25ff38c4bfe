package storedfields_test

import (
	"reflect"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/storedfields"
)

func TestApply(t *testing.T) {
	p, err := storedfields.New(map[string]config.FieldList{
		"ticket": {Exclude: []string{"details_html", "customfields", "client_id"}},
		"user":   {Include: []string{"name", "emailaddress"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ticket := change.Change{Kind: change.Ticket, Fields: map[string]any{
		"id": 1, "summary": "s", "details_html": "<p>secret</p>", "customfields": []any{}, "client_id": 12, "last_update": "x",
	}}
	got := p.Apply(ticket)
	want := map[string]any{"id": 1, "summary": "s", "client_id": 12, "last_update": "x"}
	if !reflect.DeepEqual(got.Fields, want) {
		t.Fatalf("ticket fields %v, want %v (client_id and the marker are always kept)", got.Fields, want)
	}
	if _, ok := ticket.Fields["details_html"]; !ok {
		t.Fatal("Apply modified the caller's map")
	}
	contact := change.Change{Kind: change.Contact, Fields: map[string]any{
		"id": 5, "name": "Dana", "emailaddress": "d@example.com", "phonenumber": "123", "ulastupdate": "x", "client_id": 12,
	}}
	got = p.Apply(contact)
	want = map[string]any{"id": 5, "name": "Dana", "emailaddress": "d@example.com", "ulastupdate": "x", "client_id": 12}
	if !reflect.DeepEqual(got.Fields, want) {
		t.Fatalf("contact fields %v, want %v", got.Fields, want)
	}
	asset := change.Change{Kind: change.Asset, Fields: map[string]any{"id": 1, "anything": true}}
	if got := p.Apply(asset); !reflect.DeepEqual(got.Fields, asset.Fields) || p.Applies(change.Asset) {
		t.Fatalf("a kind without lists changed: %v", got.Fields)
	}
	if got := p.Apply(change.Change{Kind: change.Ticket}); got.Fields != nil {
		t.Fatal("an event-only change gained fields")
	}
	if p.Empty() {
		t.Fatal("policy with lists reported empty")
	}
}

func TestNewRefusesBadLists(t *testing.T) {
	for name, cfg := range map[string]map[string]config.FieldList{
		"unknown kind": {"invoice": {Exclude: []string{"x"}}},
		"both lists":   {"ticket": {Include: []string{"a"}, Exclude: []string{"b"}}},
	} {
		if _, err := storedfields.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	p, err := storedfields.New(nil)
	if err != nil || !p.Empty() {
		t.Fatalf("empty policy: %v %v", p, err)
	}
}
