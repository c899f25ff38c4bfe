package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
)

// TestGetDelivery: `halosync get delivery ID` prints what GET
// /connections/{c}/deliveries/{id} serves: a reassigned ticket's record.
func TestGetDelivery(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, nil, "--data", data)
	auth := authtest.Basic("halo", p.password)
	full := samples(t)["ticket-full"].body
	mustPost(t, p.url, "default", auth, full, http.StatusOK)
	waitObject(t, p, "/connections/default/tickets/4242", nil)

	dec := json.NewDecoder(bytes.NewReader(full))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	const id = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
	m["id"], m["event"] = id, "ticket reassigned"
	tk := m["ticket"].(map[string]any)
	tk["agent_id"], tk["team_id"], tk["last_update"] = 11, 3, "2026-09-25T06:50:00.000"
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	mustPost(t, p.url, "default", auth, body, http.StatusOK)

	var served []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := p.get("/connections/default/deliveries/" + id)
		if err != nil {
			t.Fatal(err)
		}
		served, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the delivery's record is not served: %d %s", resp.StatusCode, served)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var records []map[string]any
	if err := json.Unmarshal(served, &records); err != nil || len(records) != 1 {
		t.Fatalf("served %s: %v", served, err)
	}
	if got := records[0]["summary"]; got != "reassigned: agent_id 7 → 11, team_id 2 → 3" {
		t.Errorf("summary %q", got)
	}

	out, errOut, code := runCLI(t, nil, "get", "--data", data, "delivery", id)
	if code != 0 {
		t.Fatalf("get delivery: exit %d: %s", code, errOut)
	}
	var printed []map[string]any
	if err := json.Unmarshal([]byte(out), &printed); err != nil {
		t.Fatalf("get delivery printed %q: %v", out, err)
	}
	if a, b := mustJSON(t, printed), mustJSON(t, records); a != b {
		t.Errorf("get delivery printed\n%s\nthe server serves\n%s", a, b)
	}

	out, errOut, code = runCLI(t, nil, "get", "--data", data, "delivery", "no-such-delivery")
	if code == 0 || out != "" || !strings.Contains(errOut, "no record of delivery no-such-delivery in connection default") {
		t.Errorf("get of an unknown delivery: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
