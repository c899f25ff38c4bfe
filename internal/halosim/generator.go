package halosim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Event is one webhook event the tenant raised for a change: what a Sender turns into a
// delivery body (see Payload).
type Event struct {
	ID       string // the message id, a uuid: every delivery of the event carries it
	EscMsgID string // a uuid
	Name     string // Halo's event name, lower case: "ticket status changed"
	EventNo  int    // the fake's number for the event (see EventNumber)
	// Kind and Op are what the event is about: the kind of ObjectID and whether it was
	// upserted or deleted. A note added is a ticket event (Kind Ticket) nesting the
	// ticket and the new action.
	Kind     change.Kind
	Op       change.Operation
	ObjectID int64
	AgentID  int64 // the agent who made the change
	Message  string
	// Timestamp is when Halo raised the event: the tenant's clock, never before the
	// change markers of the objects it nests.
	Timestamp time.Time
	// Objects are snapshots of the objects the event concerns, taken when it was raised
	// (the ticket, and the action a note or a status change added). A hard delete
	// (client, user, asset) has none.
	Objects map[change.Kind]map[string]any
}

// ChangeType is one kind of change the generator makes.
type ChangeType string

// The changes the generator makes, with the event each raises.
const (
	NewTicket     ChangeType = "new ticket"     // "new ticket logged"
	UpdateTicket  ChangeType = "update ticket"  // "ticket updated": priority, type, category, custom field
	ChangeStatus  ChangeType = "change status"  // "ticket status changed", nesting the status action
	Reassign      ChangeType = "reassign"       // "ticket reassigned" (agent and team), nesting its action
	AddNote       ChangeType = "add note"       // "ticket updated", nesting the ticket and the new action
	DeleteTicket  ChangeType = "delete ticket"  // "ticket deleted" (soft: the ticket stays, deleted)
	CreateClient  ChangeType = "create client"  // "client created"
	UpdateClient  ChangeType = "update client"  // "client updated"
	DeleteClient  ChangeType = "delete client"  // "client deleted" (only a client with nothing under it)
	CreateUser    ChangeType = "create user"    // "user created"
	UpdateUser    ChangeType = "update user"    // "user updated"
	DeleteUser    ChangeType = "delete user"    // "user deleted"
	CreateAsset   ChangeType = "create asset"   // "asset created"
	UpdateAsset   ChangeType = "update asset"   // "asset updated"
	ReassignAsset ChangeType = "reassign asset" // "asset updated": another user or site
	DeleteAsset   ChangeType = "delete asset"   // "asset deleted"
)

// changeWeights are how often Step picks each change.
func changeWeights() []struct {
	ct ChangeType
	w  int
} {
	return []struct {
		ct ChangeType
		w  int
	}{
		{NewTicket, 14}, {UpdateTicket, 10}, {ChangeStatus, 12}, {Reassign, 7}, {AddNote, 22},
		{DeleteTicket, 2}, {CreateClient, 3}, {UpdateClient, 4}, {DeleteClient, 2},
		{CreateUser, 4}, {UpdateUser, 5}, {DeleteUser, 1},
		{CreateAsset, 4}, {UpdateAsset, 4}, {ReassignAsset, 3}, {DeleteAsset, 1},
	}
}

// ChangeTypes lists every change the generator makes.
func ChangeTypes() []ChangeType {
	var out []ChangeType
	for _, c := range changeWeights() {
		out = append(out, c.ct)
	}
	return out
}

// EventNumber is the fake's eventno for an event name, as its Notification subscriptions
// use; 0 for a name it does not raise. Halo's own catalogue is undocumented: these numbers
// are the fake's (61 is "ticket updated" as django-psa subscribes to it).
func EventNumber(name string) int {
	switch name {
	case "new ticket logged":
		return 1
	case "ticket status changed":
		return 3
	case "ticket reassigned":
		return 5
	case "ticket deleted":
		return 9
	case "ticket updated":
		return 61
	case "client created":
		return 101
	case "client updated":
		return 102
	case "client deleted":
		return 103
	case "user created":
		return 111
	case "user updated":
		return 112
	case "user deleted":
		return 113
	case "asset created":
		return 121
	case "asset updated":
		return 122
	case "asset deleted":
		return 123
	}
	return 0
}

// Step makes one random, realistic change drawn from rng and returns the event it raised.
// An empty tenant first gets a client.
func (t *Tenant) Step(rng *rand.Rand) Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := &gen{t: t, rng: rng}
	if len(t.objects[change.Client]) == 0 {
		e, _ := g.do(CreateClient)
		return e
	}
	weights := changeWeights()
	total := 0
	for _, c := range weights {
		total += c.w
	}
	for {
		n := rng.IntN(total)
		for _, c := range weights {
			if n -= c.w; n < 0 {
				if e, ok := g.do(c.ct); ok {
					return e
				}
				break
			}
		}
	}
}

// Run makes n changes with Step and returns their events in order.
func (t *Tenant) Run(rng *rand.Rand, n int) []Event {
	out := make([]Event, 0, n)
	for range n {
		out = append(out, t.Step(rng))
	}
	return out
}

// Do makes one change of the given type, drawing its details from rng. ok is false when the
// tenant has nothing to make it on (no live ticket to update, no client empty enough to
// delete, ...); nothing changed then.
func (t *Tenant) Do(rng *rand.Rand, ct ChangeType) (e Event, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return (&gen{t: t, rng: rng}).do(ct)
}

// do makes one change; t.mu is held.
func (g *gen) do(ct ChangeType) (Event, bool) {
	t, rng := g.t, g.rng
	now := t.now()
	switch ct {
	case NewTicket:
		c, ok := g.pickRecord(change.Client)
		if !ok {
			return Event{}, false
		}
		tk := g.newTicket(c.fields["id"].(int64), now)
		id := tk.fields["id"].(int64)
		return g.event("new ticket logged", change.Ticket, change.OpUpsert, id, g.ticketAgent(tk).id,
			fmt.Sprintf("A new ticket has been logged: Ticket ID: %07d.", id), now, tk), true

	case UpdateTicket:
		tk, ok := g.liveTicket()
		if !ok {
			return Event{}, false
		}
		switch rng.IntN(4) {
		case 0:
			tk.fields["priority_id"] = int64(1 + rng.IntN(4))
		case 1:
			typ := pickNamed(rng, ticketTypes())
			tk.fields["tickettype_id"], tk.fields["tickettype_name"] = typ.id, typ.name
		case 2:
			tk.fields["category_1"] = pick(rng, problems()).category
		default:
			tk.fields["customfields"] = []any{map[string]any{
				"id": int64(150), "name": "CFAssetTag", "value": fmt.Sprintf("TAG-%04d", rng.IntN(10000)),
			}}
		}
		t.bump(change.Ticket, tk, now)
		id := tk.fields["id"].(int64)
		return g.event("ticket updated", change.Ticket, change.OpUpsert, id, pick(rng, agents()).id,
			fmt.Sprintf("Ticket ID: %07d has been updated.", id), now, tk), true

	case ChangeStatus:
		tk, ok := g.liveTicket()
		if !ok {
			return Event{}, false
		}
		old, _ := toInt64(tk.fields["status_id"])
		next := old
		for next == old {
			next = pickNamed(rng, statuses()).id
		}
		by := g.ticketAgent(tk)
		a := g.setStatus(tk, next, by, now)
		id := tk.fields["id"].(int64)
		return g.event("ticket status changed", change.Ticket, change.OpUpsert, id, by.id,
			fmt.Sprintf("The status has been changed for Ticket ID: %07d.", id), now, tk, a), true

	case Reassign:
		tk, ok := g.liveTicket()
		if !ok {
			return Event{}, false
		}
		old := g.ticketAgent(tk)
		next := old
		for next.id == old.id {
			next = pick(rng, agents())
		}
		tk.fields["agent_id"], tk.fields["agent_name"] = next.id, next.name
		tk.fields["team_id"], tk.fields["team"] = next.team, teamName(next.team)
		note := fmt.Sprintf("Reassigned from %s to %s", old.name, next.name)
		a := g.action(tk, now, map[string]any{
			"outcome": "Reassigned", "outcome_id": int64(8), "note": note, "note_html": htmlPara(note),
			"hiddenfromuser": true, "who": old.name, "who_type": int64(1), "who_agentid": old.id,
			"actionby_agent_id": old.id, "actionby_user_id": int64(0),
			"new_agent": next.id, "new_team": next.team, "emailbody": "",
		})
		id := tk.fields["id"].(int64)
		return g.event("ticket reassigned", change.Ticket, change.OpUpsert, id, old.id,
			fmt.Sprintf("Ticket ID: %07d has been reassigned to %s.", id, next.name), now, tk, a), true

	case AddNote:
		tk, ok := g.liveTicket()
		if !ok {
			return Event{}, false
		}
		a := g.addNote(tk, now)
		id := tk.fields["id"].(int64)
		agentID, _ := toInt64(a.fields["who_agentid"])
		return g.event("ticket updated", change.Ticket, change.OpUpsert, id, agentID,
			fmt.Sprintf("A new action has been added to Ticket ID: %07d.", id), now, tk, a), true

	case DeleteTicket:
		tk, ok := g.liveTicket()
		if !ok {
			return Event{}, false
		}
		id := tk.fields["id"].(int64)
		t.delete(change.Ticket, id, now)
		return g.event("ticket deleted", change.Ticket, change.OpDelete, id, pick(rng, agents()).id,
			fmt.Sprintf("Ticket ID: %07d has been deleted.", id), now, tk), true

	case CreateClient:
		c := g.newClient(now)
		id := c.fields["id"].(int64)
		return g.event("client created", change.Client, change.OpUpsert, id, pick(rng, agents()).id,
			fmt.Sprintf("Client %s has been created.", c.fields["name"]), now, c), true

	case UpdateClient:
		c, ok := g.pickRecord(change.Client)
		if !ok {
			return Event{}, false
		}
		id := c.fields["id"].(int64)
		switch n := rng.IntN(10); {
		case n < 6:
			c.fields["customfields"] = []any{map[string]any{"id": int64(201), "name": "CFAccountManager", "value": pick(rng, agents()).name}}
		case n < 9:
			s := g.newSite(id)
			if rng.IntN(2) == 0 {
				c.fields["main_site_id"], c.fields["main_site_name"] = s.ID, s.Name
			}
		default:
			c.fields["inactive"] = !truthy(c.fields["inactive"])
		}
		t.bump(change.Client, c, now)
		return g.event("client updated", change.Client, change.OpUpsert, id, pick(rng, agents()).id,
			fmt.Sprintf("Client %s has been updated.", c.fields["name"]), now, c), true

	case DeleteClient:
		tickets, users, assets := t.perClient(change.Ticket), t.perClient(change.Contact), t.perClient(change.Asset)
		var empty []*record
		for _, c := range t.sorted(change.Client) {
			if tickets[c.id]+users[c.id]+assets[c.id] == 0 {
				empty = append(empty, c)
			}
		}
		if len(empty) == 0 {
			return Event{}, false
		}
		c := t.own(change.Client, pick(rng, empty))
		id := c.fields["id"].(int64)
		t.delete(change.Client, id, now)
		for _, s := range t.clientSites(id) {
			delete(t.sites, s.ID)
		}
		return g.event("client deleted", change.Client, change.OpDelete, id, pick(rng, agents()).id,
			fmt.Sprintf("Client %s has been deleted.", c.fields["name"]), now), true

	case CreateUser:
		c, ok := g.pickRecord(change.Client)
		if !ok {
			return Event{}, false
		}
		u := g.newUser(c.fields["id"].(int64), now)
		return g.event("user created", change.Contact, change.OpUpsert, u.fields["id"].(int64), pick(rng, agents()).id,
			fmt.Sprintf("User %s has been created.", u.fields["name"]), now, u), true

	case UpdateUser:
		u, ok := g.pickRecord(change.Contact)
		if !ok {
			return Event{}, false
		}
		cid, _ := toInt64(u.fields["client_id"])
		switch n := rng.IntN(10); {
		case n < 4:
			u.fields["phonenumber"] = fmt.Sprintf("01632 %06d", rng.IntN(1000000))
		case n < 6:
			u.fields["emailaddress"] = fmt.Sprintf("%s%d@%s", u.fields["firstname"], rng.IntN(100), g.domain(cid))
		case n < 9:
			if sites := t.clientSites(cid); len(sites) > 0 {
				s := pick(rng, sites)
				u.fields["site_id"], u.fields["site_name"] = s.ID, s.Name
			}
		default:
			u.fields["inactive"] = !truthy(u.fields["inactive"])
		}
		t.bump(change.Contact, u, now)
		return g.event("user updated", change.Contact, change.OpUpsert, u.fields["id"].(int64), pick(rng, agents()).id,
			fmt.Sprintf("User %s has been updated.", u.fields["name"]), now, u), true

	case DeleteUser:
		u, ok := g.pickRecord(change.Contact)
		if !ok {
			return Event{}, false
		}
		id := u.fields["id"].(int64)
		t.delete(change.Contact, id, now)
		return g.event("user deleted", change.Contact, change.OpDelete, id, pick(rng, agents()).id,
			fmt.Sprintf("User %s has been deleted.", u.fields["name"]), now), true

	case CreateAsset:
		c, ok := g.pickRecord(change.Client)
		if !ok {
			return Event{}, false
		}
		a := g.newAsset(c.fields["id"].(int64), now)
		return g.event("asset created", change.Asset, change.OpUpsert, a.fields["id"].(int64), pick(rng, agents()).id,
			fmt.Sprintf("Asset %s has been created.", a.fields["inventory_number"]), now, a), true

	case UpdateAsset:
		a, ok := g.pickRecord(change.Asset)
		if !ok {
			return Event{}, false
		}
		switch n := rng.IntN(10); {
		case n < 6:
			s := pickNamed(rng, assetStatuses())
			a.fields["status_id"], a.fields["status_name"] = s.id, s.name
		case n < 9:
			a.fields["fields"] = []any{
				map[string]any{"id": int64(1), "name": "Serial Number", "value": fmt.Sprintf("SN%08d", rng.IntN(100000000))},
				map[string]any{"id": int64(2), "name": "Warranty Expiry", "value": haloTime(now.AddDate(1+rng.IntN(3), 0, 0).Truncate(24 * time.Hour))},
			}
		default:
			a.fields["inactive"] = !truthy(a.fields["inactive"])
		}
		t.bump(change.Asset, a, now)
		a.fields["last_modified"] = a.fields["dlastupdate"]
		return g.event("asset updated", change.Asset, change.OpUpsert, a.fields["id"].(int64), pick(rng, agents()).id,
			fmt.Sprintf("Asset %s has been updated.", a.fields["inventory_number"]), now, a), true

	case ReassignAsset:
		// An asset issued to a person moves to another of its client's users (and their
		// site); any other moves to another of its client's sites.
		users, sites := t.perClient(change.Contact), map[int64]int{}
		for _, s := range t.sites {
			sites[s.ClientID]++
		}
		var movable []*record
		for _, a := range t.sorted(change.Asset) {
			cid, _ := toInt64(t.attr(change.Asset, a, "client_id"))
			typ, _ := toInt64(t.attr(change.Asset, a, "assettype_id"))
			if personal(typ) && users[cid] > 1 || sites[cid] > 1 {
				movable = append(movable, a)
			}
		}
		if len(movable) == 0 {
			return Event{}, false
		}
		a := t.own(change.Asset, pick(rng, movable))
		cid, _ := toInt64(a.fields["client_id"])
		typ, _ := toInt64(a.fields["assettype_id"])
		if users := t.clientRecords(change.Contact, cid); personal(typ) && len(users) > 1 {
			cur := int64(-1)
			if list, _ := a.fields["users"].([]any); len(list) > 0 {
				if m, ok := list[0].(map[string]any); ok {
					cur, _ = toInt64(m["id"])
				}
			}
			u := pick(rng, users)
			for u.id == cur {
				u = pick(rng, users)
			}
			uf := t.view(change.Contact, u)
			a.fields["users"] = []any{map[string]any{"id": uf["id"], "name": uf["name"]}}
			if sid, _ := toInt64(uf["site_id"]); t.sites[sid].ID != 0 {
				s := t.sites[sid]
				a.fields["site_id"], a.fields["site_name"] = s.ID, s.Name
			}
		} else {
			sites := t.clientSites(cid)
			cur, _ := toInt64(a.fields["site_id"])
			s := pick(rng, sites)
			for s.ID == cur {
				s = pick(rng, sites)
			}
			a.fields["site_id"], a.fields["site_name"] = s.ID, s.Name
		}
		t.bump(change.Asset, a, now)
		a.fields["last_modified"] = a.fields["dlastupdate"]
		return g.event("asset updated", change.Asset, change.OpUpsert, a.fields["id"].(int64), pick(rng, agents()).id,
			fmt.Sprintf("Asset %s has been reassigned.", a.fields["inventory_number"]), now, a), true

	case DeleteAsset:
		a, ok := g.pickRecord(change.Asset)
		if !ok {
			return Event{}, false
		}
		id := a.fields["id"].(int64)
		t.delete(change.Asset, id, now)
		return g.event("asset deleted", change.Asset, change.OpDelete, id, pick(rng, agents()).id,
			fmt.Sprintf("Asset %s has been deleted.", a.fields["inventory_number"]), now), true
	}
	return Event{}, false
}

// pickRecord draws one object of a kind, with fields to change.
func (g *gen) pickRecord(kind change.Kind) (*record, bool) {
	recs := g.t.sorted(kind)
	if len(recs) == 0 {
		return nil, false
	}
	return g.t.own(kind, pick(g.rng, recs)), true
}

// liveTicket draws a ticket that is not deleted, with fields to change: the n-th live
// one by id, n drawn as pick draws from the list of live tickets.
func (g *gen) liveTicket() (*record, bool) {
	t := g.t
	recs := t.sorted(change.Ticket)
	live := 0
	for _, r := range recs {
		if !truthy(t.attr(change.Ticket, r, "deleted")) {
			live++
		}
	}
	if live == 0 {
		return nil, false
	}
	n := g.rng.IntN(live)
	for _, r := range recs {
		if !truthy(t.attr(change.Ticket, r, "deleted")) {
			if n == 0 {
				return t.own(change.Ticket, r), true
			}
			n--
		}
	}
	return nil, false
}

// event builds the Event for a change, snapshotting the objects it nests.
func (g *gen) event(name string, kind change.Kind, op change.Operation, objectID, agentID int64, msg string, at time.Time, objs ...*record) Event {
	e := Event{
		ID: randUUID(g.rng), EscMsgID: randUUID(g.rng), Name: name, EventNo: EventNumber(name),
		Kind: kind, Op: op, ObjectID: objectID, AgentID: agentID, Message: msg,
		Objects: map[change.Kind]map[string]any{},
	}
	ts := at
	for i, r := range objs {
		k := kind
		if i > 0 {
			k = change.Action
		}
		e.Objects[k] = copyMap(r.fields)
		if r.marker.After(ts) {
			ts = r.marker
		}
	}
	// Halo's timestamps have 7 fractional digits: a little after the change.
	e.Timestamp = ts.Add(time.Duration(g.rng.Int64N(int64(time.Millisecond))) + 100).Truncate(100 * time.Nanosecond).UTC()
	return e
}
