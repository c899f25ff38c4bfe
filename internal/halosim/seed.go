package halosim

import (
	"fmt"
	"html"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// The tenant's fixed catalogues: statuses, agents, teams, types. They are functions so that
// nothing package-level can be changed.

type named struct {
	id   int64
	name string
}

// statuses are the ticket statuses; 9 is closed.
func statuses() []named {
	return []named{{1, "New"}, {2, "In Progress"}, {3, "Waiting on Customer"}, {4, "On Hold"}, {8, "Resolved"}, {9, "Closed"}}
}

const closedStatus = 9

func isClosedStatus(v any) bool {
	id, ok := toInt64(v)
	return ok && id == closedStatus
}

func statusName(id int64) string {
	for _, s := range statuses() {
		if s.id == id {
			return s.name
		}
	}
	return ""
}

func ticketTypes() []named {
	return []named{{1, "Incident"}, {3, "Service Request"}, {4, "Problem"}, {21, "Change Request"}}
}

func teams() []named {
	return []named{{1, "Service Desk"}, {2, "Second Line"}, {3, "Field Services"}, {4, "Projects"}}
}

type agent struct {
	id   int64
	name string
	team int64
}

func agents() []agent {
	return []agent{
		{2, "Alex Carter", 1}, {3, "Sam Patel", 1}, {4, "Jordan Lee", 2}, {5, "Priya Shah", 2},
		{6, "Chris Morgan", 3}, {7, "Taylor Brooks", 1}, {8, "Morgan Hughes", 4},
	}
}

func teamName(id int64) string {
	for _, t := range teams() {
		if t.id == id {
			return t.name
		}
	}
	return ""
}

type assetType struct {
	id     int64
	name   string
	prefix string
}

func assetTypes() []assetType {
	return []assetType{
		{1, "Laptop", "LAP"}, {2, "Desktop", "PC"}, {3, "Printer", "PRN"}, {4, "Server", "SRV"},
		{5, "Firewall", "FW"}, {6, "Switch", "SW"}, {7, "Mobile Phone", "MOB"},
	}
}

func assetStatuses() []named { return []named{{1, "Active"}, {2, "In Repair"}, {3, "In Storage"}} }

type outcome struct {
	id     int64
	name   string
	hidden bool
	byUser bool
}

func noteOutcomes() []outcome {
	return []outcome{
		{5, "Private Note", true, false}, {1, "Email User", false, false}, {2, "Phone Call", false, false},
		{3, "Remote Session", true, false}, {6, "Email Received", false, true},
	}
}

func companyNames() []string {
	return []string{
		"Contoso Ltd", "Fabrikam Inc", "Northwind Traders", "Adventure Works", "Tailspin Toys",
		"Wide World Importers", "Litware Inc", "Proseware", "Woodgrove Bank", "Alpine Ski House",
		"Coho Winery", "Fourth Coffee", "Lucerne Publishing", "Margie's Travel", "Trey Research",
		"Blue Yonder Airlines", "Humongous Insurance", "Graphic Design Institute", "Southridge Video",
		"Wingtip Toys", "Relecloud", "VanArsdel Ltd", "Bellows College", "Consolidated Messenger",
	}
}

func siteNames() []string {
	return []string{"Head Office", "Warehouse", "Branch Office", "Data Centre", "Retail Store", "Remote Workers"}
}

func firstNames() []string {
	return []string{
		"Dana", "Alex", "Sam", "Jordan", "Priya", "Chris", "Taylor", "Jamie", "Robin", "Casey",
		"Avery", "Riley", "Quinn", "Hannah", "Oliver", "Amelia", "George", "Isla", "Noah", "Mia",
		"Leo", "Zara", "Ethan", "Grace", "Lucas", "Chloe", "Arjun", "Fatima", "Mateo", "Ingrid",
	}
}

func surnames() []string {
	return []string{
		"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
		"Wright", "Walker", "Thompson", "Evans", "Roberts", "Green", "Hall", "Wood", "Clarke",
		"Hughes", "Khan", "Murphy", "Lewis", "Martin", "Ahmed", "Nguyen", "Kowalski",
	}
}

type problem struct {
	summary, details, category string
}

func problems() []problem {
	return []problem{
		{"Printer on the 3rd floor is jammed", "Paper jam in tray 2.", "Hardware>Printer"},
		{"VPN drops every hour", "The VPN client disconnects roughly every hour since Monday.", "Network>VPN"},
		{"New starter laptop", "Please prepare a laptop for a new starter on the 1st.", "Hardware>Laptop"},
		{"Outlook keeps asking for password", "Outlook prompts for credentials several times a day.", "Software>Email"},
		{"Cannot access shared drive", "The S: drive shows as disconnected.", "Network>File Shares"},
		{"Laptop battery swelling", "The trackpad is lifting; the battery looks swollen.", "Hardware>Laptop"},
		{"Wi-Fi slow in meeting room", "Video calls drop in the large meeting room.", "Network>Wi-Fi"},
		{"Reset MFA for user", "User has a new phone and cannot sign in.", "Accounts>MFA"},
		{"Install Adobe Acrobat", "Request to install Acrobat Pro for the finance team.", "Software>Install"},
		{"Server disk space low", "Monitoring alert: C: below 10% free.", "Server>Storage"},
		{"Phones not ringing", "Incoming calls go straight to voicemail.", "Telephony"},
		{"Email bouncing to external domain", "Mail to one supplier bounces with 550 5.7.1.", "Software>Email"},
		{"Locked out of account", "Account locked after password change.", "Accounts>Password"},
		{"Monitor flickering", "Second monitor flickers when docked.", "Hardware>Peripherals"},
		{"Backup job failed overnight", "The nightly backup reported 3 failed files.", "Server>Backup"},
		{"Leaver: disable account", "Please disable the account and forward mail to the manager.", "Accounts>Leaver"},
		{"Firewall blocking supplier portal", "The supplier portal times out from the office.", "Network>Firewall"},
	}
}

func agentNotes() []string {
	return []string{
		"Called the user, no answer; left a voicemail.",
		"Remote session started, investigating.",
		"Restarted the service and monitoring.",
		"Ordered a replacement part.",
		"User confirms the issue is resolved.",
		"Escalated to second line.",
		"Applied the latest updates & rebooted.",
		"Waiting for the supplier to respond.",
	}
}

func userNotes() []string {
	return []string{
		"Hi, any update on this please?",
		"Thanks, that has fixed it.",
		"It has happened again this morning.",
		"I'm out of the office until Monday <back 9am>.",
	}
}

func pickNamed(rng *rand.Rand, list []named) named { return list[rng.IntN(len(list))] }

func pick[T any](rng *rand.Rand, list []T) T { return list[rng.IntN(len(list))] }

// randUUID draws a version 4 uuid from rng.
func randUUID(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return formatUUID(b[:])
}

// Seed fills the tenant with a realistic starting state drawn from rng: n clients, each
// with one to three sites, contacts (Halo "users"), assets and tickets with notes, dated
// over the 90 days before the tenant's clock. Ids follow on from what exists.
func (t *Tenant) Seed(rng *rand.Rand, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	g := &gen{t: t, rng: rng}
	for range n {
		created := now.Add(-time.Duration(rng.Int64N(int64(90*24*time.Hour))) - 24*time.Hour)
		client := g.newClient(created)
		cid := client.fields["id"].(int64)
		for range rng.IntN(3) {
			g.newSite(cid)
		}
		for range 2 + rng.IntN(5) {
			g.newUser(cid, between(rng, created, now))
		}
		for range 1 + rng.IntN(5) {
			g.newAsset(cid, between(rng, created, now))
		}
		for range 2 + rng.IntN(7) {
			opened := between(rng, created, now.Add(-time.Hour))
			tk := g.newTicket(cid, opened)
			at := opened
			for range rng.IntN(5) {
				at = between(rng, at, now.Add(-time.Minute))
				g.addNote(tk, at)
			}
			if rng.IntN(4) == 0 { // a quarter are closed
				at = between(rng, at, now.Add(-time.Minute))
				g.setStatus(tk, closedStatus, pick(rng, agents()), at)
			}
		}
	}
}

// between draws a time in [from, to].
func between(rng *rand.Rand, from, to time.Time) time.Time {
	if !to.After(from) {
		return from
	}
	return from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)) + 1))).Truncate(time.Millisecond)
}

// gen makes and changes objects; t.mu is held while it works.
type gen struct {
	t   *Tenant
	rng *rand.Rand
}

func (g *gen) newClient(at time.Time) *record {
	t, rng := g.t, g.rng
	id := t.nextID[change.Client]
	name := clientName(id)
	main := g.newSite(id)
	return t.upsert(change.Client, map[string]any{
		"id": id, "name": name, "inactive": false,
		"toplevel_id": int64(1), "toplevel_name": "Customers",
		"main_site_id": main.ID, "main_site_name": main.Name,
		"ref":          clientRef(name),
		"datecreated":  haloTime(at),
		"customfields": []any{map[string]any{"id": int64(201), "name": "CFAccountManager", "value": pick(rng, agents()).name}},
	}, at)
}

// clientRef makes a client's short reference from its name: CONTOSO, FABRIK, ...
func clientRef(name string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') && b.Len() < 6 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// personal reports whether an asset type is issued to a person (laptops, desktops, phones).
func personal(assetType int64) bool { return assetType == 1 || assetType == 2 || assetType == 7 }

func (g *gen) newSite(clientID int64) site {
	t := g.t
	have := t.clientSites(clientID)
	names := siteNames()
	s := site{ID: t.nextSite, ClientID: clientID, Name: names[len(have)%len(names)]}
	t.nextSite++
	t.sites[s.ID] = s
	return s
}

// anySite draws one of a client's sites, making one if it has none.
func (g *gen) anySite(clientID int64) site {
	if sites := g.t.clientSites(clientID); len(sites) > 0 {
		return pick(g.rng, sites)
	}
	return g.newSite(clientID)
}

// str reads a string field ("" when it is not one).
func str(v any) string {
	s, _ := v.(string)
	return s
}

// clientSites lists a client's sites by id.
func (t *Tenant) clientSites(clientID int64) []site {
	var out []site
	for id := int64(30); id < t.nextSite; id++ {
		if s, ok := t.sites[id]; ok && s.ClientID == clientID {
			out = append(out, s)
		}
	}
	return out
}

// perClient counts a kind's objects by client id.
func (t *Tenant) perClient(kind change.Kind) map[int64]int {
	out := map[int64]int{}
	for _, r := range t.table(kind) {
		if id, ok := toInt64(t.attr(kind, r, "client_id")); ok {
			out[id]++
		}
	}
	return out
}

// clientRecords lists a kind's records belonging to a client, by id.
func (t *Tenant) clientRecords(kind change.Kind, clientID int64) []*record {
	var out []*record
	for _, r := range t.sorted(kind) {
		if id, _ := toInt64(t.attr(kind, r, "client_id")); id == clientID {
			out = append(out, r)
		}
	}
	return out
}

func (g *gen) clientName(clientID int64) string {
	if c, ok := g.t.objects[change.Client][clientID]; ok {
		s, _ := g.t.attr(change.Client, c, "name").(string)
		return s
	}
	return ""
}

func (g *gen) domain(clientID int64) string { return domainOf(g.clientName(clientID)) }

func (g *gen) newUser(clientID int64, at time.Time) *record {
	rng := g.rng
	first, last := pick(rng, firstNames()), pick(rng, surnames())
	s := g.anySite(clientID)
	return g.t.upsert(change.Contact, map[string]any{
		"name": first + " " + last, "firstname": first, "surname": last,
		"emailaddress": strings.ToLower(first+"."+last) + "@" + g.domain(clientID),
		"phonenumber":  fmt.Sprintf("01632 %06d", rng.IntN(1000000)),
		"client_id":    clientID, "client_name": g.clientName(clientID),
		"site_id": s.ID, "site_name": s.Name,
		"inactive": false, "linked_agent_id": int64(0), "isimportantcontact": rng.IntN(5) == 0,
		"datecreated": haloTime(at),
	}, at)
}

func (g *gen) newAsset(clientID int64, at time.Time) *record {
	t, rng := g.t, g.rng
	typ := pick(rng, assetTypes())
	s := g.anySite(clientID)
	id := t.nextID[change.Asset]
	tag := fmt.Sprintf("%s-%04d", typ.prefix, id)
	users := []any{}
	if us := t.clientRecords(change.Contact, clientID); len(us) > 0 && personal(typ.id) {
		u := t.view(change.Contact, pick(rng, us))
		users = append(users, map[string]any{"id": u["id"], "name": u["name"]})
	}
	status := assetStatuses()[0]
	return t.upsert(change.Asset, map[string]any{
		"id": id, "inventory_number": tag,
		"key_field": strings.ToUpper(strings.SplitN(g.domain(clientID), ".", 2)[0]) + "-" + tag,
		"client_id": clientID, "client_name": g.clientName(clientID),
		"site_id": s.ID, "site_name": s.Name,
		"assettype_id": typ.id, "assettype_name": typ.name,
		"status_id": status.id, "status_name": status.name, "inactive": false,
		"users": users,
		"fields": []any{
			map[string]any{"id": int64(1), "name": "Serial Number", "value": fmt.Sprintf("SN%08d", rng.IntN(100000000))},
			map[string]any{"id": int64(2), "name": "Warranty Expiry", "value": haloTime(at.AddDate(3, 0, 0).Truncate(24 * time.Hour))},
		},
		"customfields": []any{},
		"datecreated":  haloTime(at),
	}, at)
}

func (g *gen) newTicket(clientID int64, at time.Time) *record {
	t, rng := g.t, g.rng
	p := pick(rng, problems())
	typ := pickNamed(rng, ticketTypes())
	ag := pick(rng, agents())
	s := g.anySite(clientID)
	var userID int64
	userName := ""
	if us := t.clientRecords(change.Contact, clientID); len(us) > 0 {
		u := t.view(change.Contact, pick(rng, us))
		userID = u["id"].(int64)
		userName, _ = u["name"].(string)
		if sid, ok := toInt64(u["site_id"]); ok {
			if site, ok := t.sites[sid]; ok {
				s = site
			}
		}
	}
	priority := int64(1 + rng.IntN(4))
	return t.upsert(change.Ticket, map[string]any{
		"summary": p.summary, "details": p.details, "details_html": htmlPara(p.details),
		"status_id": int64(1), "status_name": statusName(1), "priority_id": priority,
		"tickettype_id": typ.id, "tickettype_name": typ.name, "sla_id": int64(1),
		"client_id": clientID, "client_name": g.clientName(clientID),
		"site_id": s.ID, "site_name": s.Name, "user_id": userID, "user_name": userName,
		"agent_id": ag.id, "agent_name": ag.name, "team_id": ag.team, "team": teamName(ag.team),
		"dateoccurred":   haloTime(at.Add(-time.Duration(rng.IntN(30)) * time.Minute)),
		"datecreated":    haloTime(at),
		"lastactiondate": haloTime(at),
		"datecleared":    emptyDate,
		"fixbydate":      haloTime(at.Add(time.Duration(4*priority) * time.Hour)),
		"deleted":        false, "hasbeenclosed": false,
		"category_1": p.category,
		"customfields": []any{
			map[string]any{"id": int64(150), "name": "CFAssetTag", "value": ""},
		},
		"utcoffset": int64(0),
	}, at)
}

// action adds an action to a ticket and bumps the ticket (lastactiondate, last_update).
func (g *gen) action(tk *record, at time.Time, fields map[string]any) *record {
	tid := tk.fields["id"].(int64)
	fields["ticket_id"] = tid
	fields["datetime"] = haloTime(at)
	fields["actiondatecreated"] = haloTime(at)
	for _, k := range []string{"new_status", "new_agent", "new_team"} {
		if _, ok := fields[k]; !ok {
			fields[k] = int64(0)
		}
	}
	a := g.t.upsert(change.Action, fields, at)
	tk.fields["lastactiondate"] = a.fields["datetime"]
	g.t.bump(change.Ticket, tk, at)
	return a
}

func (g *gen) addNote(tk *record, at time.Time) *record {
	rng := g.rng
	o := pick(rng, noteOutcomes())
	note := pick(rng, agentNotes())
	if o.byUser {
		note = pick(rng, userNotes())
	}
	f := map[string]any{
		"outcome": o.name, "outcome_id": o.id, "note": note, "note_html": htmlPara(note),
		"hiddenfromuser": o.hidden, "emailbody": "",
	}
	if o.byUser {
		uid, _ := toInt64(tk.fields["user_id"])
		f["who"], f["who_type"], f["who_agentid"] = tk.fields["user_name"], int64(2), int64(0)
		f["actionby_agent_id"], f["actionby_user_id"] = int64(0), uid
	} else {
		ag := g.ticketAgent(tk)
		f["who"], f["who_type"], f["who_agentid"] = ag.name, int64(1), ag.id
		f["actionby_agent_id"], f["actionby_user_id"] = ag.id, int64(0)
	}
	return g.action(tk, at, f)
}

// ticketAgent is the ticket's agent, or a random one.
func (g *gen) ticketAgent(tk *record) agent {
	id, _ := toInt64(tk.fields["agent_id"])
	for _, a := range agents() {
		if a.id == id {
			return a
		}
	}
	return pick(g.rng, agents())
}

// setStatus changes a ticket's status through an action, as Halo records it.
func (g *gen) setStatus(tk *record, status int64, by agent, at time.Time) *record {
	old, _ := toInt64(tk.fields["status_id"])
	tk.fields["status_id"], tk.fields["status_name"] = status, statusName(status)
	if status == closedStatus {
		tk.fields["hasbeenclosed"] = true
		tk.fields["datecleared"] = haloTime(at)
	} else if old == closedStatus {
		tk.fields["datecleared"] = emptyDate
	}
	note := fmt.Sprintf("Status changed from %s to %s", statusName(old), statusName(status))
	return g.action(tk, at, map[string]any{
		"outcome": "Status Change", "outcome_id": int64(7), "note": note, "note_html": htmlPara(note),
		"hiddenfromuser": true, "who": by.name, "who_type": int64(1), "who_agentid": by.id,
		"actionby_agent_id": by.id, "actionby_user_id": int64(0), "new_status": status, "emailbody": "",
	})
}

// htmlPara is text as a Halo *_html field holds it.
func htmlPara(text string) string { return "<p>" + html.EscapeString(text) + "</p>" }
