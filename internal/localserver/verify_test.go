package localserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halotest/pollscenario"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/poller"
	"github.com/halosync/halosync/internal/verify"
)

// TestVerificationRepairsPlantedFaultsThroughServe: `halosync serve`'s poller, on the
// SQLite store, finds each fault planted in the copy or in the simulated tenant (a lost
// webhook, a wrong field, a version from the future, a ticket deleted in Halo without an
// event, a client missing from the copy) within its window and repairs it through the
// queue and the worker: the copy then equals Halo, the delivery record of each repair
// carries its reason, and GET /status carries the verification.
func TestVerificationRepairsPlantedFaultsThroughServe(t *testing.T) {
	ctx := context.Background()
	h := newPollHarness(t, true)
	sc := pollscenario.New(t, h, pollscenario.Setup{Seed: 41, Poll: "    poll: {mode: webhook}\n    verify: {window_hours: 2}\n"})
	sc.Seed(3)
	sc.Start()
	conn := pollscenario.Conn
	for range 20 {
		h.Poll(t, false)
		h.Drain(t)
		sc.Clock.Advance(time.Minute)
		if c, err := poller.ReadCursor(ctx, h.store, conn, change.Asset); err != nil {
			t.Fatal(err)
		} else if c.Backfilled {
			break
		}
	}
	h.Poll(t, false) // the first reconcile; the next is a day away
	h.Drain(t)

	tickets := sc.Tenant.Objects(change.Ticket)
	id := func(o map[string]any) string { return strconv.FormatInt(int64(o["id"].(int64)), 10) }
	lost, wrong, future, gone := id(tickets[0]), id(tickets[1]), id(tickets[2]), id(tickets[3])
	client := id(sc.Tenant.Objects(change.Client)[0])
	get := func(kind change.Kind, id string) change.Object {
		o, _, err := h.store.Get(ctx, conn, kind, id, "")
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	apply := func(c change.Change) {
		c.Connection, c.Source = conn, change.SourceWebhook
		if _, err := h.store.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	sc.Tenant.Upsert(change.Ticket, map[string]any{"id": n(lost), "summary": "changed while the webhook was lost"})
	o := get(change.Ticket, wrong)
	bad := map[string]any{}
	for k, v := range o.Fields {
		bad[k] = v
	}
	bad["summary"] = "not what Halo says"
	apply(change.Change{Kind: change.Ticket, ID: wrong, Op: change.OpUpsert, Version: o.Version, Repairs: o.Version, Fields: bad})
	o = get(change.Ticket, future)
	apply(change.Change{Kind: change.Ticket, ID: future, Op: change.OpUpsert, Version: change.VersionOf(h.now().Add(time.Hour)), Fields: o.Fields})
	sc.Tenant.Delete(change.Ticket, n(gone))
	c := get(change.Client, client)
	apply(change.Change{Kind: change.Client, ID: client, Op: change.OpDelete, Version: c.Version + 1})

	planted := []struct {
		kind  change.Kind
		id    string
		cause verify.Cause
	}{
		{change.Ticket, lost, verify.Stale}, {change.Ticket, wrong, verify.Fields}, {change.Ticket, future, verify.Ahead},
		{change.Ticket, gone, verify.Extra}, {change.Client, client, verify.Missing},
	}
	repaired := func() bool {
		for _, p := range planted {
			if get(p.kind, p.id).Event != "verify: "+string(p.cause) {
				return false
			}
		}
		return true
	}
	// Within the two-hour window, at a run a minute: an hour at the most.
	for minute := 0; minute < 60 && !repaired(); minute++ {
		sc.Clock.Advance(time.Minute)
		h.Poll(t, false)
		h.Drain(t)
	}
	rules := verify.Rules{Versions: change.VersionRule{MaxSkew: 24 * time.Hour}}
	for _, p := range planted {
		o := get(p.kind, p.id)
		if o.Event != "verify: "+string(p.cause) {
			t.Errorf("%s %s (%s): not repaired within the hour: last written by %q", p.kind, p.id, p.cause, o.Event)
			continue
		}
		halo, _ := sc.Tenant.Object(p.kind, n(p.id))
		if v, err := verify.Compare(p.kind, halo, &o, rules, h.now()); err != nil || v.Cause != verify.Equal {
			t.Errorf("%s %s after its repair: %+v, %v; want equal to Halo", p.kind, p.id, v, err)
		}
		ds, err := h.store.Deliveries(ctx, conn, o.DeliveryID)
		if err != nil || len(ds) != 1 || ds[0].Event != "verify: "+string(p.cause) || ds[0].Source != change.SourcePoll {
			t.Errorf("%s %s: delivery record %+v, %v; want one with event %q", p.kind, p.id, ds, err, "verify: "+string(p.cause))
		}
	}

	alarmed := false
	for _, rec := range h.Logs(t) {
		alarmed = alarmed || (rec.Str("msg") == "verification: the share of the copy equal to Halo is below verify.alarm_below" && rec.Str("level") == "WARN")
	}
	if !alarmed {
		t.Error("no warning that the share equal fell below verify.alarm_below")
	}

	r := do(t, http.MethodGet, h.s.url+"/status", bearer, nil)
	var st struct {
		ByConnection map[string]localserver.ConnectionReport `json:"by_connection"`
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	v := st.ByConnection[conn].Verification
	if v == nil || v.WindowHours != 2 || v.All.Repaired < len(planted) || v.All.Checked <= v.All.Repaired || v.Kinds["ticket"].Differing["ahead"] < 1 {
		t.Fatalf("GET /status verification = %+v", v)
	}
}
