package change

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeys(t *testing.T) {
	tests := []struct {
		name         string
		kind         Kind
		id, parentID string
		pk, sk       string
	}{
		{"ticket", Ticket, "42", "", "C#conn#ticket#42", "STATE"},
		{"action under its ticket", Action, "7", "42", "C#conn#ticket#42", "ACTION#7"},
		{"client", Client, "12", "", "C#conn#client#12", "STATE"},
		{"contact", Contact, "301", "", "C#conn#contact#301", "STATE"},
		{"asset", Asset, "900", "", "C#conn#asset#900", "STATE"},
		{"parent id ignored for top-level kinds", Ticket, "42", "99", "C#conn#ticket#42", "STATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PartitionKey("conn", tt.kind, tt.id, tt.parentID); got != tt.pk {
				t.Errorf("PartitionKey = %q, want %q", got, tt.pk)
			}
			if got := SortKey(tt.kind, tt.id); got != tt.sk {
				t.Errorf("SortKey = %q, want %q", got, tt.sk)
			}
		})
	}
	// A ticket and its actions share a partition; the ticket's own item sorts apart.
	if PartitionKey("conn", Action, "7", "42") != PartitionKey("conn", Ticket, "42", "") {
		t.Error("an action is not stored in its ticket's partition")
	}
	if SortKey(Action, "7") == SortKey(Ticket, "42") {
		t.Error("an action's sort key collides with its ticket's")
	}
	// Connections never share a partition.
	if PartitionKey("a", Ticket, "1", "") == PartitionKey("b", Ticket, "1", "") {
		t.Error("two connections share a partition")
	}
}

func TestClientIndexKeys(t *testing.T) {
	if got, want := ClientIndexKey("conn", "12"), "C#conn#CLIENT#12"; got != want {
		t.Errorf("ClientIndexKey = %q, want %q", got, want)
	}
	tests := []struct {
		kind Kind
		id   string
		want string
	}{
		{Ticket, "42", "ticket#42"},
		{Contact, "301", "contact#301"},
		{Asset, "900", "asset#900"},
		{Client, "12", "client#12"},
	}
	for _, tt := range tests {
		if got := ClientIndexSort(tt.kind, tt.id); got != tt.want {
			t.Errorf("ClientIndexSort(%q, %q) = %q, want %q", tt.kind, tt.id, got, tt.want)
		}
	}
	// The client index partition never collides with an object's partition.
	if ClientIndexKey("conn", "12") == PartitionKey("conn", Client, "12", "") {
		t.Error("client index key collides with the client's own partition key")
	}
}

func TestKindIndexKeys(t *testing.T) {
	if got, want := KindIndexKey("conn", Ticket), "C#conn#KIND#ticket"; got != want {
		t.Errorf("KindIndexKey = %q, want %q", got, want)
	}
	if got, want := KindIndexSort(Ticket, "42", "7"), "42"; got != want {
		t.Errorf("KindIndexSort(ticket) = %q, want %q", got, want)
	}
	if got, want := KindIndexSort(Action, "3", "42"), "42#3"; got != want {
		t.Errorf("KindIndexSort(action) = %q, want %q", got, want)
	}
	if KindIndexKey("a", Ticket) == KindIndexKey("b", Ticket) || KindIndexKey("a", Ticket) == KindIndexKey("a", Action) {
		t.Error("kind index partitions collide")
	}
}

func TestCursorKeys(t *testing.T) {
	if got, want := CursorPartitionKey("conn"), "C#conn#CURSOR"; got != want {
		t.Errorf("CursorPartitionKey = %q, want %q", got, want)
	}
	if got, want := CursorSortKey("ticket"), "ticket"; got != want {
		t.Errorf("CursorSortKey = %q, want %q", got, want)
	}
	// Kinds are lower case, so no object partition (C#<conn>#<kind>#<id>) is a cursor's.
	for _, k := range Kinds() {
		if strings.HasPrefix(CursorPartitionKey("conn"), "C#conn#"+string(k.Kind)+"#") {
			t.Errorf("cursor partition collides with the %s partitions", k.Kind)
		}
	}
}

func TestChangedIndexSortOrdersByWriteTime(t *testing.T) {
	base := time.Date(2026, 9, 25, 6, 45, 0, 0, time.UTC)
	// Written in this order; the id breaks a tie within the nanosecond.
	keys := []string{
		ChangedIndexSort(base, Ticket, "9", ""),
		ChangedIndexSort(base.Add(time.Nanosecond), Ticket, "10", ""),
		ChangedIndexSort(base.Add(time.Nanosecond), Ticket, "11", ""),
		ChangedIndexSort(base.Add(500*time.Millisecond), Ticket, "1", ""),
		ChangedIndexSort(base.Add(time.Second).In(time.FixedZone("east", 3600)), Ticket, "1", ""), // zone does not matter
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Errorf("%q sorts at or after %q", keys[i-1], keys[i])
		}
	}
	if got, want := ChangedIndexSort(base.Add(time.Second), Action, "3", "4242"), "2026-09-25T06:45:01.000000000Z#4242#3"; got != want {
		t.Errorf("note key = %q, want %q", got, want)
	}
	from := ChangedFrom(base.Add(time.Nanosecond))
	if !(keys[0] < from && from < keys[1]) {
		t.Errorf("ChangedFrom(%v) = %q does not fall between %q and %q", base.Add(time.Nanosecond), from, keys[0], keys[1])
	}
	for _, k := range append(keys, from) {
		if _, err := ParseChangedSort(k); err != nil {
			t.Errorf("ParseChangedSort(%q): %v", k, err)
		}
	}
	for _, bad := range []string{"", "2026-09-25T06:45:00Z", "2026-09-25T06:45:00.000000000+01:00", "tomorrow#1", "2026-09-25T06:45:00.000000000Z##1"} {
		if _, err := ParseChangedSort(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseChangedSort(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
