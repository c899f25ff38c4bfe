package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/halosim"
	"github.com/halosync/halosync/internal/localserver"
	"github.com/halosync/halosync/internal/sqlite"
)

// demoCopy makes the data directory serve --demo leaves: its simulated tenant kept there,
// and a copy of it in the embedded store, with one ticket's summary wrong and one client
// missing. It returns the two.
func demoCopy(t *testing.T, data string) (wrong, missing string) {
	t.Helper()
	ctx := context.Background()
	tenant := halosim.New(halosim.Options{ClientID: "halosync-demo", ClientSecret: "demo-secret-0123456789"})
	defer tenant.Close()
	tenant.Seed(rand.New(rand.NewPCG(5, 8)), 2)
	if err := tenant.SaveSnapshot(demoFile(data, "default")); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(filepath.Join(data, "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := db.Store()
	for _, kind := range []change.Kind{change.Ticket, change.Client, change.Contact, change.Asset} {
		spec, _ := change.Lookup(kind)
		for i, obj := range tenant.Objects(kind) {
			id := fmt.Sprint(obj["id"])
			if kind == change.Client && i == 0 {
				missing = id
				continue
			}
			if deleted, _ := obj["deleted"].(bool); deleted {
				continue
			}
			marker, _, err := change.ParseHaloTime(fmt.Sprint(obj[spec.VersionField]))
			if err != nil {
				t.Fatal(err)
			}
			c := change.Change{Connection: "default", Kind: kind, ID: id, Op: change.OpUpsert, Version: change.VersionOf(marker),
				VersionFrom: spec.VersionField, Source: change.SourcePoll, Fields: obj}
			if kind == change.Ticket && wrong == "" {
				wrong = id
				c.Fields = map[string]any{}
				for k, v := range obj {
					c.Fields[k] = v
				}
				c.Fields["summary"] = "not what Halo says"
			}
			if _, err := store.Apply(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	return wrong, missing
}

func TestVerifyReportsAndRepairsTheDemoCopy(t *testing.T) {
	data := t.TempDir()
	wrong, missing := demoCopy(t, data)

	out, errOut, code := runCLI(t, nil, "verify", "--data", data, "--all", "--dry-run")
	if code != 0 {
		t.Fatalf("verify --all --dry-run: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"Halo is serve --demo's simulated tenant",
		"ticket " + wrong + ": fields differ at the same version, not repaired (--dry-run)\n    summary: copy not what Halo says, Halo ",
		"client " + missing + ": missing from the copy, not repaired (--dry-run)",
		"2 differing (missing 1, fields 1)",
		"equal: ",
		"nothing repaired (--dry-run)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify --dry-run output lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = runCLI(t, nil, "verify", "--data", data, "--sample", "400")
	if code != 0 || !strings.Contains(out, "reading about ") || !strings.Contains(out, "checked ") {
		t.Fatalf("verify --sample 400: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "ticket "+wrong+": fields differ at the same version, repair queued") ||
		!strings.Contains(out, "client "+missing+": missing from the copy, repair queued") || !strings.Contains(out, "; halosync serve's worker") {
		t.Errorf("verify output, repairing:\n%s", out)
	}
	db, err := sqlite.Open(filepath.Join(data, "halosync.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	changes, _ := localserver.Queues(db, config.Queue{})
	if visible, _, err := changes.Stats(context.Background()); err != nil || visible < 2 {
		t.Errorf("the changes queue holds %d, %v; want the repairs", visible, err)
	}
}

func TestVerifyErrorsSayWhatToDo(t *testing.T) {
	data := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--data", data}, "configure the connection's halo:"},
		{[]string{"verify", "--data", data, "--sample", "0"}, "read at least one object"},
		{[]string{"verify", "--data", data, "--all", "--sample", "5"}, "--all reads every object"},
		{[]string{"verify", "--data", data, "--connection", "acme"}, "pass one of them with --connection"},
		{[]string{"verify", "--data", data, "--kind", "widget"}, "widget"},
	} {
		_, errOut, code := runCLI(t, nil, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("halosync %s: exit %d, stderr %q; want 2 and %q", strings.Join(tt.args, " "), code, errOut, tt.want)
		}
	}
}
