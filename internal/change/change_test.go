package change

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

var (
	// now is deliberately not in UTC: Apply must store SyncedAt in UTC.
	applyNow = time.Date(2026, 9, 25, 8, 41, 8, 0, time.FixedZone("CEST", 2*60*60))
	synced0  = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
)

func upsertChange(version int64, fields map[string]any) Change {
	return Change{
		Connection: "conn", Kind: Ticket, ID: "42", Op: OpUpsert, Version: version,
		VersionFrom: "last_update", Source: SourceWebhook, DeliveryID: "d-new", Event: "ticket updated",
		Fields: fields,
	}
}

func eventOnly(version int64) Change {
	c := upsertChange(version, nil)
	c.Event = "ticket status changed"
	c.DeliveryID = "d-event"
	return c
}

func deleteChange(version int64) Change {
	c := upsertChange(version, nil)
	c.Op = OpDelete
	c.Event = "ticket deleted"
	c.DeliveryID = "d-delete"
	return c
}

// stored returns a stored ticket at version v with pending version p.
func stored(v, p int64, deleted bool) *Object {
	return &Object{
		Connection: "conn", Kind: Ticket, ID: "42", Version: v, PendingVersion: p, Deleted: deleted,
		Fields:   map[string]any{"summary": "old summary", "status_id": 1, "client_id": 12},
		ClientID: "12", SyncedAt: synced0, Source: SourcePoll, DeliveryID: "d-old", Event: "poll",
	}
}

func TestApply(t *testing.T) {
	utcNow := applyNow.UTC()
	tests := []struct {
		name    string
		stored  *Object
		change  Change
		outcome Outcome
		want    Object
	}{
		{
			name:    "absent object, snapshot is applied",
			change:  upsertChange(10, map[string]any{"summary": "printer", "client_id": 12}),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 10,
				Fields: map[string]any{"summary": "printer", "client_id": 12}, ClientID: "12",
				SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-new", Event: "ticket updated"},
		},
		{
			name:    "duplicate version leaves the stored state",
			stored:  stored(10, 0, false),
			change:  upsertChange(10, map[string]any{"summary": "changed"}),
			outcome: Duplicate,
			want:    *stored(10, 0, false),
		},
		{
			name:    "stale version leaves the stored state",
			stored:  stored(10, 0, false),
			change:  upsertChange(9, map[string]any{"summary": "changed"}),
			outcome: Stale,
			want:    *stored(10, 0, false),
		},
		{
			name:    "newer partial snapshot merges and keeps unmentioned fields",
			stored:  stored(10, 0, false),
			change:  upsertChange(11, map[string]any{"status_id": 2, "team": "1st line"}),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 11,
				Fields:   map[string]any{"summary": "old summary", "status_id": 2, "client_id": 12, "team": "1st line"},
				ClientID: "12", SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-new", Event: "ticket updated"},
		},
		{
			name:    "newer snapshot moving the ticket to another client changes the client id",
			stored:  stored(10, 0, false),
			change:  upsertChange(11, map[string]any{"client_id": 99}),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 11,
				Fields:   map[string]any{"summary": "old summary", "status_id": 1, "client_id": 99},
				ClientID: "99", SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-new", Event: "ticket updated"},
		},
		{
			name:    "event only on an absent object records it as pending",
			change:  eventOnly(10),
			outcome: Pending,
			want:    Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 0, PendingVersion: 10, Fields: map[string]any{}},
		},
		{
			name:    "event only on an existing object marks it pending and keeps everything else",
			stored:  stored(10, 0, false),
			change:  eventOnly(20),
			outcome: Pending,
			want: func() Object {
				o := *stored(10, 20, false)
				return o
			}(),
		},
		{
			name:    "event only older than the stored fields is stale",
			stored:  stored(10, 0, false),
			change:  eventOnly(9),
			outcome: Stale,
			want:    *stored(10, 0, false),
		},
		{
			name:    "event only at the stored version is a duplicate",
			stored:  stored(10, 0, false),
			change:  eventOnly(10),
			outcome: Duplicate,
			want:    *stored(10, 0, false),
		},
		{
			name:    "pending duplicate",
			stored:  stored(10, 20, false),
			change:  eventOnly(20),
			outcome: Duplicate,
			want:    *stored(10, 20, false),
		},
		{
			name:    "pending stale: newer than the fields but older than the pending event",
			stored:  stored(10, 20, false),
			change:  eventOnly(15),
			outcome: Stale,
			want:    *stored(10, 20, false),
		},
		{
			name:    "newer event only raises the pending version",
			stored:  stored(10, 20, false),
			change:  eventOnly(25),
			outcome: Pending,
			want:    *stored(10, 25, false),
		},
		{
			name:    "data at the pending version clears pending",
			stored:  stored(10, 20, false),
			change:  upsertChange(20, map[string]any{"status_id": 3}),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 20, PendingVersion: 20,
				Fields:   map[string]any{"summary": "old summary", "status_id": 3, "client_id": 12},
				ClientID: "12", SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-new", Event: "ticket updated"},
		},
		{
			name:    "data older than the pending event is applied but the object stays pending",
			stored:  stored(10, 20, false),
			change:  upsertChange(15, map[string]any{"status_id": 3}),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 15, PendingVersion: 20,
				Fields:   map[string]any{"summary": "old summary", "status_id": 3, "client_id": 12},
				ClientID: "12", SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-new", Event: "ticket updated"},
		},
		{
			name:    "delete leaves a tombstone with the last known fields",
			stored:  stored(10, 0, false),
			change:  deleteChange(20),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 20, Deleted: true,
				Fields:   map[string]any{"summary": "old summary", "status_id": 1, "client_id": 12},
				ClientID: "12", SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-delete", Event: "ticket deleted"},
		},
		{
			name:    "delete of an absent object stores a tombstone",
			change:  deleteChange(20),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 20, Deleted: true,
				Fields: map[string]any{}, SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-delete", Event: "ticket deleted"},
		},
		{
			name:    "late update on a tombstone is stale",
			stored:  stored(20, 0, true),
			change:  upsertChange(15, map[string]any{"summary": "late"}),
			outcome: Stale,
			want:    *stored(20, 0, true),
		},
		{
			name:    "newer update resurrects a tombstone",
			stored:  stored(20, 0, true),
			change:  upsertChange(30, map[string]any{"summary": "back"}),
			outcome: Applied,
			want: Object{Connection: "conn", Kind: Ticket, ID: "42", Version: 30, Deleted: false,
				Fields:   map[string]any{"summary": "back", "status_id": 1, "client_id": 12},
				ClientID: "12", SyncedAt: utcNow, Source: SourceWebhook, DeliveryID: "d-new", Event: "ticket updated"},
		},
		{
			name:    "delete older than the stored version is stale",
			stored:  stored(20, 0, false),
			change:  deleteChange(10),
			outcome: Stale,
			want:    *stored(20, 0, false),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before Object
			if tt.stored != nil {
				before = *tt.stored
				before.Fields = copyFields(tt.stored.Fields)
			}
			got, res := Apply(tt.stored, tt.change, applyNow)
			if res.Outcome != tt.outcome {
				t.Errorf("outcome = %q, want %q", res.Outcome, tt.outcome)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("object =\n %+v\nwant\n %+v", got, tt.want)
			}
			if tt.stored != nil && !reflect.DeepEqual(*tt.stored, before) {
				t.Errorf("Apply modified the stored object:\n %+v\nwas\n %+v", *tt.stored, before)
			}
			if got.SyncedAt.Location() != time.UTC {
				t.Errorf("SyncedAt location = %v, want UTC", got.SyncedAt.Location())
			}
		})
	}
}

func TestApplyIsPending(t *testing.T) {
	obj, _ := Apply(nil, eventOnly(10), applyNow)
	if !obj.IsPending() {
		t.Fatalf("after an event-only change on an absent object IsPending = false")
	}
	obj, _ = Apply(&obj, upsertChange(10, map[string]any{"summary": "x"}), applyNow)
	if obj.IsPending() {
		t.Fatalf("after data at the pending version IsPending = true: %+v", obj)
	}
	obj, _ = Apply(&obj, eventOnly(11), applyNow)
	if !obj.IsPending() {
		t.Fatalf("after a newer event-only change IsPending = false: %+v", obj)
	}
	obj, _ = Apply(&obj, upsertChange(12, map[string]any{"summary": "y"}), applyNow)
	if obj.IsPending() {
		t.Fatalf("after newer data IsPending = true: %+v", obj)
	}
}

func TestApplyDoesNotAliasChangeFields(t *testing.T) {
	fields := map[string]any{"summary": "x"}
	obj, _ := Apply(nil, upsertChange(1, fields), applyNow)
	obj.Fields["summary"] = "mutated"
	if fields["summary"] != "x" {
		t.Fatalf("the stored object shares its map with the change")
	}
}

func TestApplyClientIDPerKind(t *testing.T) {
	tests := []struct {
		name   string
		kind   Kind
		id     string
		parent string
		fields map[string]any
		want   string
	}{
		{"ticket from client_id", Ticket, "42", "", map[string]any{"client_id": 12}, "12"},
		{"ticket client_id as float", Ticket, "42", "", map[string]any{"client_id": 12.0}, "12"},
		{"ticket client_id as string", Ticket, "42", "", map[string]any{"client_id": " 12 "}, "12"},
		{"ticket client_id zero", Ticket, "42", "", map[string]any{"client_id": 0}, ""},
		{"ticket client_id unreadable", Ticket, "42", "", map[string]any{"client_id": true}, ""},
		{"ticket without client_id", Ticket, "42", "", map[string]any{"summary": "x"}, ""},
		{"client is its own client", Client, "12", "", map[string]any{"name": "Contoso"}, "12"},
		{"contact from client_id", Contact, "301", "", map[string]any{"client_id": 12}, "12"},
		{"asset from client_id", Asset, "900", "", map[string]any{"client_id": 12}, "12"},
		{"action has none", Action, "7", "42", map[string]any{"client_id": 12}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Change{Connection: "conn", Kind: tt.kind, ID: tt.id, ParentID: tt.parent, Op: OpUpsert, Version: 1, Fields: tt.fields}
			if got := c.ClientID(); got != tt.want {
				t.Errorf("Change.ClientID() = %q, want %q", got, tt.want)
			}
			obj, res := Apply(nil, c, applyNow)
			if res.Outcome != Applied {
				t.Fatalf("outcome %q", res.Outcome)
			}
			if obj.ClientID != tt.want {
				t.Errorf("Object.ClientID = %q, want %q", obj.ClientID, tt.want)
			}
			if obj.ParentID != tt.parent {
				t.Errorf("Object.ParentID = %q, want %q", obj.ParentID, tt.parent)
			}
		})
	}
	// A client id the stored object has is kept when a newer snapshot does not tell.
	obj, _ := Apply(stored(1, 0, false), upsertChange(2, map[string]any{"summary": "y", "client_id": 0}), applyNow)
	if obj.ClientID != "12" {
		t.Errorf("ClientID after a snapshot without a usable client id = %q, want the stored %q", obj.ClientID, "12")
	}
	// The client kind never reads a field, so an event-only change still knows it.
	if got := (Change{Kind: Client, ID: "5"}).ClientID(); got != "5" {
		t.Errorf("client ClientID without fields = %q, want 5", got)
	}
	if got := (Change{Kind: "widget", ID: "5", Fields: map[string]any{"client_id": 1}}).ClientID(); got != "" {
		t.Errorf("unknown kind ClientID = %q, want empty", got)
	}
}

func TestHasSnapshot(t *testing.T) {
	if (Change{}).HasSnapshot() {
		t.Error("nil Fields: HasSnapshot = true")
	}
	if !(Change{Fields: map[string]any{}}).HasSnapshot() {
		t.Error("empty non-nil Fields: HasSnapshot = false")
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		v, stored int64
		want      Outcome
	}{
		{2, 1, Applied},
		{1, 0, Applied},
		{1, 1, Duplicate},
		{0, 0, Duplicate},
		{1, 2, Stale},
		{-1, 0, Stale},
	}
	for _, tt := range tests {
		if got := Compare(tt.v, tt.stored); got != tt.want {
			t.Errorf("Compare(%d, %d) = %q, want %q", tt.v, tt.stored, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	valid := Change{Connection: "conn", Kind: Ticket, ID: "42", Op: OpUpsert, Version: 1}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid change: %v", err)
	}
	repair := Change{Connection: "conn", Kind: Ticket, ID: "42", Op: OpUpsert, Version: 1, Repairs: 5, Fields: map[string]any{}}
	if err := repair.Validate(); err != nil {
		t.Fatalf("valid repair: %v", err)
	}
	validAction := Change{Connection: "conn", Kind: Action, ID: "7", ParentID: "42", Op: OpDelete, Version: 1}
	if err := validAction.Validate(); err != nil {
		t.Fatalf("valid action: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Change)
	}{
		{"no connection", func(c *Change) { c.Connection = "" }},
		{"unknown kind", func(c *Change) { c.Kind = "widget" }},
		{"empty kind", func(c *Change) { c.Kind = "" }},
		{"no id", func(c *Change) { c.ID = "" }},
		{"action without its ticket", func(c *Change) { c.Kind = Action; c.ID = "7" }},
		{"unknown operation", func(c *Change) { c.Op = "merge" }},
		{"empty operation", func(c *Change) { c.Op = "" }},
		{"zero version", func(c *Change) { c.Version = 0 }},
		{"negative version", func(c *Change) { c.Version = -5 }},
		{"repair that raises the version", func(c *Change) { c.Fields, c.Version, c.Repairs = map[string]any{}, 2, 1 }},
		{"repair without a snapshot", func(c *Change) { c.Repairs = 5 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate() = nil, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, does not wrap ErrInvalid", err)
			}
		})
	}
}
