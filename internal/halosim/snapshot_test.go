package halosim_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/halosim"
)

// TestSnapshotContinuesTheTenant: a tenant restored from a saved snapshot holds the same
// objects, webhooks and credentials, and goes on exactly as the first would have: the same
// changes, the same new ids.
func TestSnapshotContinuesTheTenant(t *testing.T) {
	clock := halosim.NewClock(start)
	first := halosim.NewHandler(halosim.Options{ClientID: "demo", ClientSecret: "s3cret", Clock: clock.Now})
	first.Seed(rand.New(rand.NewPCG(1, 2)), 3)
	first.Run(rand.New(rand.NewPCG(3, 4)), 40)
	hook := first.AddWebhook(map[string]any{"name": "halosync", "url": "https://example.com/webhooks/halo/acme"})
	if _, err := first.Subscribe(hook, halosim.EventNumber("ticket updated")); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(t.TempDir(), "tenant.json")
	if err := first.SaveSnapshot(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if left, _ := filepath.Glob(path + ".tmp-*"); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	s, err := halosim.LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if o := s.Options(); o.ClientID != "demo" || o.ClientSecret != "s3cret" {
		t.Errorf("credentials kept: %q %q", o.ClientID, o.ClientSecret)
	}
	o := s.Options()
	o.Clock = clock.Now
	second := halosim.NewHandler(o)
	if err := second.Restore(s); err != nil {
		t.Fatal(err)
	}
	same(t, "after restore", first, second)
	if got, want := jsonOf(t, second.Notifications(hook)), jsonOf(t, first.Notifications(hook)); got != want || got == "[]" {
		t.Errorf("subscriptions: %s, want %s", got, want)
	}

	// The same draws make the same changes on both: every counter was kept.
	a := first.Run(rand.New(rand.NewPCG(5, 6)), 60)
	b := second.Run(rand.New(rand.NewPCG(5, 6)), 60)
	if ja, jb := jsonOf(t, a), jsonOf(t, b); ja != jb {
		t.Errorf("the restored tenant changes differently:\n first %.400s\nsecond %.400s", ja, jb)
	}
	same(t, "after 60 more changes", first, second)
	next := map[string]any{"name": "second", "url": "https://example.com/webhooks/halo/globex"}
	if a, b := first.AddWebhook(next), second.AddWebhook(next); a != b {
		t.Errorf("the next webhook id: %s, want %s", b, a)
	}

	if err := second.SaveSnapshot(filepath.Join(t.TempDir(), "missing", "tenant.json")); err == nil {
		t.Error("saving into a missing directory succeeded")
	}
	if _, err := halosim.LoadSnapshot(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("loading a missing snapshot: %v, want not-exist", err)
	}
}

func same(t *testing.T, when string, a, b *halosim.Tenant) {
	t.Helper()
	for _, k := range change.Kinds() {
		if ja, jb := jsonOf(t, a.Objects(k.Kind)), jsonOf(t, b.Objects(k.Kind)); ja != jb || a.Count(k.Kind) == 0 {
			t.Errorf("%s: %s differ (or none):\n first %.300s\nsecond %.300s", when, k.Kind, ja, jb)
		}
	}
	if ja, jb := jsonOf(t, a.Webhooks()), jsonOf(t, b.Webhooks()); ja != jb {
		t.Errorf("%s: webhooks %s, want %s", when, jb, ja)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
