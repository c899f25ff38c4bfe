package ingest_test

import (
	"context"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/metrics"
)

// counted keeps every count, kind included, summed by metric.
type counted struct {
	mu sync.Mutex
	m  map[metrics.Metric]int64
}

func (c *counted) Count(m metrics.Metric, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[m] += n
}

// only returns the counts of one metric name.
func (c *counted) only(name string) map[metrics.Metric]int64 {
	out := map[metrics.Metric]int64{}
	for m, n := range c.m {
		if m.Name == name {
			out[m] = n
		}
	}
	return out
}

// TestDeliveryVolumeAndDuration: an accepted delivery counts its changes by kind and its
// events by name (a name halosync does not know as "other"), and every delivery, refused
// too, its time through ingest.
func TestDeliveryVolumeAndDuration(t *testing.T) {
	cfg := testConfig()
	cfg.Connections[0].Events = map[string]config.EventMapping{"SLA breached": {Kind: "ticket"}}
	conns, err := connection.CompileAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &counted{m: map[metrics.Metric]int64{}}
	h := ingest.New(conns, &recorder{}, c, slog.New(slog.DiscardHandler))
	now := time.Date(2026, 9, 25, 6, 42, 0, 0, time.UTC)
	h.SetClock(func() time.Time {
		now = now.Add(15 * time.Millisecond) // each reading of the clock takes 15 ms
		return now
	})
	// A ticket event nesting its note (two changes), a configured name spelt otherwise, an
	// unknown event kept, and a client event.
	body := `[` + ticketBody[:len(ticketBody)-1] + `,"action":{"id":5,"ticket_id":42,"note":"n","last_updated":"2026-09-25T06:41:07"}},
 {"id":"d-2","event":"sla  Breached","object_id":43},
 {"id":"d-3","event":"invoice paid","object_id":1},
 {"id":"d-4","event":"Client Updated","object_id":12,"client":{"id":12,"name":"Acme","alastupdate":"2026-09-25T06:40:00"}}]`
	good := map[string]string{"authorization": authtest.Basic(user, oldPass), "content-type": "application/json"}
	resp := h.Handle(context.Background(), ingest.Request{Connection: "default", Method: "POST", Header: good, Body: []byte(body)})
	if resp.Status != 200 {
		t.Fatalf("status %d %s", resp.Status, resp.Body)
	}
	byKind := map[metrics.Metric]int64{
		{Name: metrics.ChangesByKind, Connection: "default", Kind: "ticket"}: 2,
		{Name: metrics.ChangesByKind, Connection: "default", Kind: "action"}: 1,
		{Name: metrics.ChangesByKind, Connection: "default", Kind: "client"}: 1,
	}
	if got := c.only(metrics.ChangesByKind); !reflect.DeepEqual(got, byKind) {
		t.Errorf("ChangesByKind %v, want %v", got, byKind)
	}
	byName := map[metrics.Metric]int64{
		{Name: metrics.EventsByName, Connection: "default", Label: "ticket updated"}: 1,
		{Name: metrics.EventsByName, Connection: "default", Label: "sla breached"}:   1,
		{Name: metrics.EventsByName, Connection: "default", Label: "other"}:          1,
		{Name: metrics.EventsByName, Connection: "default", Label: "client updated"}: 1,
	}
	if got := c.only(metrics.EventsByName); !reflect.DeepEqual(got, byName) {
		t.Errorf("EventsByName %v, want %v", got, byName)
	}
	durations := c.only(metrics.IngestDuration)
	d := durations[metrics.Metric{Name: metrics.IngestDuration, Connection: "default"}]
	if len(durations) != 1 || d < 15 || d%15 != 0 {
		t.Errorf("IngestDuration %v, want one delivery's clock readings apart", durations)
	}

	// A refusal is timed too, under its connection label, and carries no volume.
	c.m = map[metrics.Metric]int64{}
	h.Handle(context.Background(), ingest.Request{Connection: "nope", Method: "POST", Header: good, Body: []byte(ticketBody)})
	got := c.only(metrics.IngestDuration)
	if d := got[metrics.Metric{Name: metrics.IngestDuration, Connection: "_unknown"}]; len(got) != 1 || d < 15 || d%15 != 0 {
		t.Errorf("refused: IngestDuration %v, want the clock readings apart under _unknown", got)
	}
	if len(c.only(metrics.ChangesByKind))+len(c.only(metrics.EventsByName)) != 0 {
		t.Errorf("a refused delivery counted volume: %v", c.m)
	}
}
