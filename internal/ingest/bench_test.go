package ingest_test

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/halosync/halosync/internal/auth/authtest"
	"github.com/halosync/halosync/internal/connection"
	"github.com/halosync/halosync/internal/ingest"
	"github.com/halosync/halosync/internal/message"
	"github.com/halosync/halosync/internal/metrics"
)

type discardQueue struct{}

func (discardQueue) Send(context.Context, []message.Message) error { return nil }

// sizingQueue discards messages, keeping the size of the last send's bodies.
type sizingQueue struct{ bytes int }

func (q *sizingQueue) Send(_ context.Context, msgs []message.Message) error {
	q.bytes = 0
	for _, m := range msgs {
		q.bytes += len(m.Body)
	}
	return nil
}

// ticketDelivery is a full-object ticket delivery of about size bytes.
func ticketDelivery(size int) []byte {
	ticket := map[string]any{
		"id": 4242, "summary": "Printer on the 3rd floor is jammed", "status_id": 2, "priority_id": 3,
		"tickettype_id": 1, "client_id": 12, "client_name": "Contoso Ltd", "site_id": 31, "user_id": 88,
		"agent_id": 7, "team_id": 2, "team": "Service Desk", "last_update": "2026-09-25T06:41:07.523",
		"dateoccurred": "2026-09-25T06:30:00", "deleted": false, "hasbeenclosed": false,
		"customfields": []any{map[string]any{"id": 150, "name": "CFAssetTag", "value": "PRN-0031"}},
	}
	delivery := map[string]any{
		"id": "6f1c2a4e-3b7d-4e0a-9a51-2c8d7e6f5a10", "webhook_id": "0b7e9d3c-1f2a-4c5b-8e6d-7a9b0c1d2e3f",
		"notification_id": 41, "event": "ticket status changed", "object_id": 4242,
		"timestamp": "2026-09-25T06:41:08.7895915Z", "ticket": ticket,
	}
	base, _ := json.Marshal(delivery)
	if pad := size - len(base) - len(`,"details":""`); pad > 0 {
		ticket["details"] = strings.Repeat("Paper jam in tray 2. ", pad/21+1)[:pad]
	}
	b, _ := json.Marshal(delivery)
	return b
}

func BenchmarkHandle(b *testing.B) {
	for _, size := range []int{2 << 10, 50 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			cfg := testConfig()
			cfg.Connections[0].Webhook.MaxBodyBytes = 1 << 20
			conns, err := connection.CompileAll(cfg)
			if err != nil {
				b.Fatal(err)
			}
			q := &sizingQueue{}
			h := ingest.New(conns, q, metrics.Discard{}, slog.New(slog.DiscardHandler))
			req := ingest.Request{Connection: "default", Method: "POST", Body: ticketDelivery(size),
				Header: map[string]string{"authorization": authtest.Basic(user, newPass), "content-type": "application/json"}}
			b.SetBytes(int64(len(req.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if resp := h.Handle(context.Background(), req); resp.Status != 200 {
					b.Fatalf("status %d: %s", resp.Status, resp.Body)
				}
			}
			// The queue message's body beside the delivery's: what SQS carries per byte
			// Halo sent.
			b.ReportMetric(float64(q.bytes)/float64(len(req.Body)), "msg/delivery")
		})
	}
}

// BenchmarkHandleByScheme is a 2 KB delivery through the whole handler under each
// authentication scheme: the scheme's share is the difference from the cheapest.
func BenchmarkHandleByScheme(b *testing.B) {
	body := ticketDelivery(2 << 10)
	jsonCT := map[string]string{"content-type": "application/json"}
	schemes := []struct {
		conn, secret string
		header       map[string]string
	}{
		{conn: "basic", header: with(jsonCT, "authorization", authtest.Basic(user, newPass))},
		{conn: "token", header: with(jsonCT, "authorization", "Bearer "+tokenNew)},
		{conn: "signed", header: with(jsonCT, "token", authtest.HMACBase64(hmacNew, body))},
		{conn: "stdwh", header: stdSign(whsecNew, "msg_1", time.Now(), body)},
		{conn: "path", secret: pathNew, header: jsonCT},
	}
	cfg := edgeConfig()
	for i := range cfg.Connections {
		cfg.Connections[i].Webhook.MaxBodyBytes = 1 << 20
	}
	for _, s := range schemes {
		b.Run(s.conn, func(b *testing.B) {
			conns, err := connection.CompileAll(cfg)
			if err != nil {
				b.Fatal(err)
			}
			h := ingest.New(conns, discardQueue{}, metrics.Discard{}, slog.New(slog.DiscardHandler))
			req := ingest.Request{Connection: s.conn, PathSecret: s.secret, Method: "POST", Header: s.header, Body: body}
			b.ReportAllocs()
			for b.Loop() {
				if resp := h.Handle(context.Background(), req); resp.Status != 200 {
					b.Fatalf("status %d: %s", resp.Status, resp.Body)
				}
			}
		})
	}
}

// BenchmarkFloorHandle is the least work a delivery needs, beside BenchmarkHandle with the
// same bodies and credentials: check the Basic credentials, check the body is JSON, and
// marshal an envelope carrying the raw body. It decodes no fields, applies no limits and
// sends nothing; the ratio to BenchmarkHandle is what the handler adds to this floor.
func BenchmarkFloorHandle(b *testing.B) {
	want := sha256.Sum256([]byte(user + ":" + newPass))
	for _, size := range []int{2 << 10, 50 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			body := ticketDelivery(size)
			header := map[string]string{"authorization": authtest.Basic(user, newPass), "content-type": "application/json"}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				creds, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(header["authorization"], "Basic "))
				got := sha256.Sum256(creds)
				if err != nil || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
					b.Fatal("credentials refused")
				}
				if !json.Valid(body) {
					b.Fatal("body is not JSON")
				}
				if _, err := json.Marshal(message.Envelope{Raw: body, ReceivedAt: time.Now()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
