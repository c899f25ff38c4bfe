package halosim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// Scale is the size and shape of a tenant SeedScale makes.
type Scale struct {
	Clients, Users, Assets, Tickets, Notes int
	// OpenShare is the share of tickets still open (default 0.1), most of them recent.
	OpenShare float64
	// Years is how long ago the first ticket was logged (default 5). Tickets are logged
	// at a rate doubling every two years, so recent months hold more of them.
	Years float64
}

// MSPScale is a managed service provider's tenant: 3,000 clients with 30,000 users and
// 40,000 assets between them, 100,000 tickets over five years with 600,000 notes, a
// tenth of the tickets open.
func MSPScale() Scale {
	return Scale{Clients: 3000, Users: 30000, Assets: 40000, Tickets: 100000, Notes: 600000, OpenShare: 0.1, Years: 5}
}

// Divided is the scale with every count divided by n (at least one client), for tests
// of the same shape at a small size.
func (s Scale) Divided(n int) Scale {
	n = max(n, 1)
	s.Clients, s.Users, s.Assets = max(s.Clients/n, 1), s.Users/n, s.Assets/n
	s.Tickets, s.Notes = s.Tickets/n, s.Notes/n
	return s
}

// Record state bits of SeedScale's objects.
const (
	stateClosed   = 1 << 0 // a ticket closed
	stateInactive = 1 << 1 // a client, user or asset inactive
	stateShift    = 2      // an open ticket's status, an index into openStatuses
)

// openStatuses are the statuses an open ticket of SeedScale's has.
func openStatuses() []int64 { return []int64{1, 2, 3, 4} }

// layout is how SeedScale drew a tenant: what an object's record does not keep is drawn
// again from the seed and its id whenever its fields are read.
type layout struct {
	seed uint64
	// Client c (ids firstClient+c) has users userFrom[c]..userFrom[c+1]-1 (ids from
	// firstUser), assets likewise, and sites siteFrom[c]..siteFrom[c+1]-1 (ids from
	// firstSite).
	firstClient, firstUser, firstAsset, firstSite int64
	userFrom, assetFrom, siteFrom                 []int32
}

// SeedScale fills an empty tenant with s's objects drawn from seed, dated before the
// tenant's clock: the same seed and clock make the same tenant. Its objects hold only
// their ids, change markers and the few values lists filter on; their other fields are
// drawn again from the seed whenever they are read, until a change (Upsert, the
// generator) gives them stored fields. Clients differ in size (users, assets and
// tickets follow a client's weight); a ticket's notes are dated between its logging and
// its last update.
func (t *Tenant) SeedScale(seed uint64, s Scale) error {
	if s.OpenShare == 0 {
		s.OpenShare = 0.1
	}
	if s.Years <= 0 {
		s.Years = 5
	}
	if s.Clients < 1 || s.Users < 0 || s.Assets < 0 || s.Tickets < 0 || s.Notes < 0 || s.Notes > 0 && s.Tickets == 0 ||
		s.OpenShare < 0 || s.OpenShare > 1 {
		return fmt.Errorf("halosim: scale %+v: at least one client, no negative counts, no notes without tickets, an open share within 0..1", s)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range kinds() {
		if len(t.objects[k.kind]) > 0 {
			return errors.New("halosim: SeedScale needs an empty tenant")
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5ca1ab1e))
	now := t.now().Truncate(time.Millisecond)
	span := time.Duration(s.Years * 365.25 * float64(24*time.Hour))
	l := &layout{seed: seed, firstClient: t.nextID[change.Client], firstUser: t.nextID[change.Contact],
		firstAsset: t.nextID[change.Asset], firstSite: t.nextSite}

	// Clients, of log-normal weights: a few large, many small.
	weights := make([]float64, s.Clients)
	clients := make([]record, s.Clients)
	l.siteFrom = make([]int32, s.Clients+1)
	names := siteNames()
	for c := range s.Clients {
		weights[c] = math.Exp(1.1 * rng.NormFloat64())
		id := l.firstClient + int64(c)
		born := between(rng, now.Add(-span-90*24*time.Hour), now.Add(-30*24*time.Hour))
		clients[c] = record{id: id, born: born.UnixMilli(), marker: between(rng, born, now)}
		if rng.IntN(20) == 0 {
			clients[c].state = stateInactive
		}
		l.siteFrom[c] = int32(t.nextSite - l.firstSite)
		for k := range 1 + rng.IntN(3) {
			t.sites[t.nextSite] = site{ID: t.nextSite, ClientID: id, Name: names[k%len(names)]}
			t.nextSite++
		}
	}
	l.siteFrom[s.Clients] = int32(t.nextSite - l.firstSite)
	t.store(change.Client, clients)

	// Users and assets, in blocks per client sized by its weight.
	l.userFrom = apportion(s.Users, weights, s.Users >= s.Clients)
	l.assetFrom = apportion(s.Assets, weights, false)
	for _, k := range []struct {
		kind     change.Kind
		first    int64
		from     []int32
		n        int
		inactive int // one in inactive is inactive
	}{{change.Contact, l.firstUser, l.userFrom, s.Users, 12}, {change.Asset, l.firstAsset, l.assetFrom, s.Assets, 16}} {
		recs := make([]record, k.n)
		for c := range s.Clients {
			cborn := time.UnixMilli(clients[c].born).UTC()
			for i := l.from(k.from, c, 0); i < l.from(k.from, c, 1); i++ {
				born := between(rng, cborn, now)
				recs[i] = record{id: k.first + int64(i), owner: clients[c].id, born: born.UnixMilli(), marker: between(rng, born, now)}
				if rng.IntN(k.inactive) == 0 {
					recs[i].state = stateInactive
				}
			}
		}
		t.store(k.kind, recs)
	}

	// Tickets, logged at a rate doubling every two years, each for a client drawn by weight.
	cum := make([]float64, s.Clients)
	total := 0.0
	for c, w := range weights {
		total += w
		cum[c] = total
	}
	growth := math.Ln2 / float64(2*365*24*time.Hour)
	spanGrowth := math.Expm1(growth * float64(span))
	tickets := make([]record, s.Tickets)
	age := make([]float64, s.Tickets)
	first := now.Add(-span)
	for i := range s.Tickets {
		x := (float64(i) + rng.Float64()) / float64(s.Tickets)
		born := first.Add(time.Duration(math.Log1p(x*spanGrowth) / growth)).Truncate(time.Millisecond)
		c := min(sort.SearchFloat64s(cum, rng.Float64()*total), s.Clients-1)
		tickets[i] = record{id: t.nextID[change.Ticket] + int64(i), owner: clients[c].id, born: born.UnixMilli()}
		age[i] = float64(now.Sub(born))
	}
	// The open ones: OpenShare of them, drawn weighted towards the recent (weighted
	// sampling without replacement: the largest log(u)/w).
	keys := make([]float64, s.Tickets)
	for i := range keys {
		w := math.Exp(-age[i]/float64(60*24*time.Hour)) + 0.01
		keys[i] = math.Log(rng.Float64()) / w
	}
	byKey := make([]int, s.Tickets)
	for i := range byKey {
		byKey[i] = i
	}
	slices.SortFunc(byKey, func(a, b int) int { return -compareFloat(keys[a], keys[b]) })
	open := make([]bool, s.Tickets)
	for _, i := range byKey[:int(math.Round(s.OpenShare*float64(s.Tickets)))] {
		open[i] = true
	}
	// Notes: one per ticket, the rest spread at random (while there are enough).
	notes := make([]int32, s.Tickets)
	for j := range s.Notes {
		if j < s.Tickets {
			notes[j]++
		} else {
			notes[rng.IntN(s.Tickets)]++
		}
	}
	actions := make([]record, s.Notes)
	next := t.nextID[change.Action]
	n := 0
	for i := range tickets {
		tk := &tickets[i]
		born := time.UnixMilli(tk.born).UTC()
		var last time.Time
		if open[i] {
			tk.state = uint8(rng.IntN(len(openStatuses()))) << stateShift
			last = between(rng, born, now.Add(-time.Minute))
		} else {
			tk.state = stateClosed
			// Closed within ten minutes to three weeks, log-uniformly.
			d := math.Exp(math.Log(float64(10*time.Minute)) + rng.Float64()*math.Log(float64(21*24*time.Hour)/float64(10*time.Minute)))
			last = born.Add(time.Duration(d)).Truncate(time.Millisecond)
			if limit := now.Add(-time.Minute); last.After(limit) {
				last = limit
			}
		}
		tk.marker = last
		for k := range int(notes[i]) {
			at := born.Add(last.Sub(born) * time.Duration(k+1) / time.Duration(notes[i])).Truncate(time.Millisecond)
			actions[n] = record{id: next, owner: tk.id, born: at.UnixMilli(), marker: at}
			t.notes[tk.id] = append(t.notes[tk.id], next)
			next++
			n++
		}
	}
	t.store(change.Ticket, tickets)
	t.store(change.Action, actions)
	t.scaled = l
	return nil
}

func compareFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// store adds SeedScale's records of a kind (ascending ids, one allocation for all).
func (t *Tenant) store(kind change.Kind, recs []record) {
	tab := t.table(kind)
	for i := range recs {
		tab[recs[i].id] = &recs[i]
		t.added(kind, &recs[i])
		t.nextID[kind] = max(t.nextID[kind], recs[i].id+1)
	}
}

// apportion divides n among the weights (at least one each when atLeastOne) and returns
// where each one's share starts, with n at the end.
func apportion(n int, weights []float64, atLeastOne bool) []int32 {
	total := 0.0
	for _, w := range weights {
		total += w
	}
	base := 0
	if atLeastOne {
		base = 1
	}
	rest := n - base*len(weights)
	from := make([]int32, len(weights)+1)
	given, acc := 0, 0.0
	for i, w := range weights {
		from[i] = int32(given)
		acc += w
		share := int(math.Round(acc/total*float64(rest))) + base*(i+1) - given
		given += share
	}
	from[len(weights)] = int32(n)
	return from
}

// from reads a client's block start (end: 1) in a from table.
func (l *layout) from(table []int32, c, end int) int { return int(table[c+end]) }

// ---- drawing fields ----

// mix is SplitMix64's finaliser: a well-spread hash of x.
func mix(x uint64) uint64 {
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// draw is a source of choices for one object: the same seed, kind and id give the same
// choices.
type draw struct{ x uint64 }

func (l *layout) draw(kind change.Kind, id int64) *draw {
	x := l.seed
	for _, b := range []byte(kind) {
		x = mix(x ^ uint64(b))
	}
	return &draw{x: mix(x ^ uint64(id))}
}

// n draws a number in [0, n).
func (d *draw) n(n int) int {
	d.x = mix(d.x + 0x9e3779b97f4a7c15)
	return int(d.x % uint64(n))
}

func drawFrom[T any](d *draw, list []T) T { return list[d.n(len(list))] }

// clientIndex is a client's place in the layout (-1 when SeedScale did not make it).
func (l *layout) clientIndex(id int64) int {
	c := int(id - l.firstClient)
	if c < 0 || c >= len(l.siteFrom)-1 {
		return -1
	}
	return c
}

// clientName is the name a client is made with, from its id.
func clientName(id int64) string {
	names := companyNames()
	name := names[(int(id)-12)%len(names)]
	if round := (int(id) - 12) / len(names); round > 0 {
		name = fmt.Sprintf("%s %d", name, round+1)
	}
	return name
}

// domainOf is the mail domain of a client's name.
func domainOf(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "example.com"
	}
	return b.String() + ".example"
}

// siteOf draws one of a client's sites for an object.
func (l *layout) siteOf(t *Tenant, clientID int64, d *draw) site {
	c := l.clientIndex(clientID)
	if c < 0 {
		return site{}
	}
	from, to := l.siteFrom[c], l.siteFrom[c+1]
	return t.sites[l.firstSite+int64(from)+int64(d.n(int(to-from)))]
}

// userOf draws one of a client's users for an object (0 when it has none).
func (l *layout) userOf(clientID int64, d *draw) int64 {
	c := l.clientIndex(clientID)
	if c < 0 {
		return 0
	}
	from, to := l.userFrom[c], l.userFrom[c+1]
	if to == from {
		return 0
	}
	return l.firstUser + int64(from) + int64(d.n(int(to-from)))
}

// person is a user's name and site, drawn from the user's id.
func (l *layout) person(t *Tenant, id, clientID int64) (first, last string, s site) {
	d := l.draw(change.Contact, id)
	first, last = drawFrom(d, firstNames()), drawFrom(d, surnames())
	return first, last, l.siteOf(t, clientID, d)
}

// userName is a user's name: stored, or drawn for one of SeedScale's users.
func (t *Tenant) userName(id int64) string {
	r, ok := t.objects[change.Contact][id]
	if !ok {
		return ""
	}
	s, _ := t.attr(change.Contact, r, "name").(string)
	return s
}

// ticketDraws are a SeedScale ticket's first choices, drawn in this order by fields too:
// its problem, type, agent, site and user.
func (l *layout) ticketDraws(t *Tenant, r *record) (d *draw, p problem, typ named, ag agent, s site, uid int64) {
	d = l.draw(change.Ticket, r.id)
	p, typ, ag = drawFrom(d, problems()), drawFrom(d, ticketTypes()), drawFrom(d, agents())
	s = l.siteOf(t, r.owner, d)
	uid = l.userOf(r.owner, d)
	return d, p, typ, ag, s, uid
}

// attr draws one field of a SeedScale object when its record keeps it or it is cheap to
// draw; ok is false for the others.
func (l *layout) attr(t *Tenant, kind change.Kind, r *record, name string) (any, bool) {
	if name == "id" {
		return r.id, true
	}
	switch kind {
	case change.Ticket:
		switch name {
		case "client_id":
			return r.owner, true
		case "deleted":
			return false, true
		case "agent_id":
			_, _, _, ag, _, _ := l.ticketDraws(t, r)
			return ag.id, true
		case "user_id":
			_, _, _, _, _, uid := l.ticketDraws(t, r)
			return uid, true
		case "status_id":
			if r.state&stateClosed != 0 {
				return int64(closedStatus), true
			}
			return openStatuses()[r.state>>stateShift], true
		}
	case change.Action:
		switch name {
		case "ticket_id":
			return r.owner, true
		case "datetime":
			return haloTime(time.UnixMilli(r.born)), true
		}
	case change.Client:
		switch name {
		case "inactive":
			return r.state&stateInactive != 0, true
		case "name":
			return clientName(r.id), true
		}
	case change.Contact, change.Asset:
		switch name {
		case "name":
			if kind == change.Contact {
				d := l.draw(change.Contact, r.id)
				first := drawFrom(d, firstNames())
				return first + " " + drawFrom(d, surnames()), true
			}
		case "client_id":
			return r.owner, true
		case "inactive":
			return r.state&stateInactive != 0, true
		}
	}
	return nil, false
}

// fields draws all of a SeedScale object's fields, in the shapes Seed's objects have.
func (l *layout) fields(t *Tenant, kind change.Kind, r *record) map[string]any {
	born := time.UnixMilli(r.born).UTC()
	d := l.draw(kind, r.id)
	var f map[string]any
	switch kind {
	case change.Client:
		name := clientName(r.id)
		main := site{}
		if c := l.clientIndex(r.id); c >= 0 {
			main = t.sites[l.firstSite+int64(l.siteFrom[c])]
		}
		f = map[string]any{
			"name": name, "toplevel_id": int64(1), "toplevel_name": "Customers",
			"main_site_id": main.ID, "main_site_name": main.Name, "ref": clientRef(name),
			"datecreated":  haloTime(born),
			"customfields": []any{map[string]any{"id": int64(201), "name": "CFAccountManager", "value": drawFrom(d, agents()).name}},
		}
	case change.Contact:
		first, last, s := l.person(t, r.id, r.owner)
		cname := clientName(r.owner)
		f = map[string]any{
			"name": first + " " + last, "firstname": first, "surname": last,
			"emailaddress": strings.ToLower(first+"."+last) + "@" + domainOf(cname),
			"phonenumber":  fmt.Sprintf("01632 %06d", d.n(1000000)),
			"client_id":    r.owner, "client_name": cname, "site_id": s.ID, "site_name": s.Name,
			"linked_agent_id": int64(0), "isimportantcontact": d.n(5) == 0,
			"datecreated": haloTime(born),
		}
	case change.Asset:
		typ := drawFrom(d, assetTypes())
		s := l.siteOf(t, r.owner, d)
		cname := clientName(r.owner)
		tag := fmt.Sprintf("%s-%04d", typ.prefix, r.id)
		users := []any{}
		if uid := l.userOf(r.owner, d); uid != 0 && personal(typ.id) {
			if _, ok := t.objects[change.Contact][uid]; ok {
				users = append(users, map[string]any{"id": uid, "name": t.userName(uid)})
			}
		}
		status := assetStatuses()[0]
		f = map[string]any{
			"inventory_number": tag,
			"key_field":        strings.ToUpper(strings.SplitN(domainOf(cname), ".", 2)[0]) + "-" + tag,
			"client_id":        r.owner, "client_name": cname, "site_id": s.ID, "site_name": s.Name,
			"assettype_id": typ.id, "assettype_name": typ.name,
			"status_id": status.id, "status_name": status.name, "users": users,
			"fields": []any{
				map[string]any{"id": int64(1), "name": "Serial Number", "value": fmt.Sprintf("SN%08d", d.n(100000000))},
				map[string]any{"id": int64(2), "name": "Warranty Expiry", "value": haloTime(born.AddDate(3, 0, 0).Truncate(24 * time.Hour))},
			},
			"customfields": []any{},
			"datecreated":  haloTime(born),
		}
		f["last_modified"] = haloTime(r.marker)
	case change.Ticket:
		d, p, typ, ag, s, uid := l.ticketDraws(t, r)
		uname := ""
		if uid != 0 {
			_, _, s = l.person(t, uid, r.owner)
			uname = t.userName(uid)
		}
		status, _ := l.attr(t, kind, r, "status_id")
		closed := r.state&stateClosed != 0
		cleared := emptyDate
		if closed {
			cleared = haloTime(r.marker)
		}
		priority := int64(1 + d.n(4))
		f = map[string]any{
			"summary": p.summary, "details": p.details, "details_html": htmlPara(p.details),
			"status_id": status, "status_name": statusName(status.(int64)), "priority_id": priority,
			"tickettype_id": typ.id, "tickettype_name": typ.name, "sla_id": int64(1),
			"client_id": r.owner, "client_name": clientName(r.owner),
			"site_id": s.ID, "site_name": s.Name, "user_id": uid, "user_name": uname,
			"agent_id": ag.id, "agent_name": ag.name, "team_id": ag.team, "team": teamName(ag.team),
			"dateoccurred":   haloTime(born.Add(-time.Duration(d.n(30)) * time.Minute)),
			"datecreated":    haloTime(born),
			"lastactiondate": haloTime(r.marker),
			"datecleared":    cleared,
			"fixbydate":      haloTime(born.Add(time.Duration(4*priority) * time.Hour)),
			"deleted":        false, "hasbeenclosed": closed,
			"category_1":   p.category,
			"customfields": []any{map[string]any{"id": int64(150), "name": "CFAssetTag", "value": ""}},
			"utcoffset":    int64(0),
		}
	case change.Action:
		o := drawFrom(d, noteOutcomes())
		f = map[string]any{
			"ticket_id": r.owner, "datetime": haloTime(born), "actiondatecreated": haloTime(born),
			"outcome": o.name, "outcome_id": o.id, "hiddenfromuser": o.hidden, "emailbody": "",
			"new_status": int64(0), "new_agent": int64(0), "new_team": int64(0),
		}
		var agentID, userID int64
		if tk, ok := t.objects[change.Ticket][r.owner]; ok {
			agentID, _ = toInt64(t.attr(change.Ticket, tk, "agent_id"))
			userID, _ = toInt64(t.attr(change.Ticket, tk, "user_id"))
		}
		if o.byUser {
			note := drawFrom(d, userNotes())
			f["note"], f["note_html"] = note, htmlPara(note)
			f["who"], f["who_type"], f["who_agentid"] = t.userName(userID), int64(2), int64(0)
			f["actionby_agent_id"], f["actionby_user_id"] = int64(0), userID
		} else {
			note := drawFrom(d, agentNotes())
			ag := agents()[0]
			for _, a := range agents() {
				if a.id == agentID {
					ag = a
				}
			}
			f["note"], f["note_html"] = note, htmlPara(note)
			f["who"], f["who_type"], f["who_agentid"] = ag.name, int64(1), ag.id
			f["actionby_agent_id"], f["actionby_user_id"] = ag.id, int64(0)
		}
	}
	f["id"] = r.id
	if v, ok := l.attr(t, kind, r, "inactive"); ok {
		f["inactive"] = v
	}
	f[mustInfo(kind).marker] = haloTime(r.marker)
	return f
}
