package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"time"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/halosim"
)

// demo gives every connection that has no Halo API settings a simulated Halo tenant: it
// becomes the connection's Halo (so event-only deliveries are fetched from it), it
// generates activity across every kind of object, and it delivers webhooks to the server
// the way Halo does. A new user sees the copy fill and follow changes.
type demo struct {
	every   time.Duration
	tenants []demoTenant
	log     *slog.Logger
}

type demoTenant struct {
	conn     string
	tenant   *halosim.Tenant
	user     string
	password string
}

// prepareDemo points the connections without Halo settings at simulated tenants; it must
// run before the handlers are built.
func prepareDemo(cfg *config.Config, every time.Duration, log *slog.Logger) (*demo, error) {
	d := &demo{every: every, log: log}
	for i := range cfg.Connections {
		c := &cfg.Connections[i]
		if c.Halo.Configured() {
			continue
		}
		user, password := basicCredentials(c.Webhook.Auth)
		if user == "" {
			log.Warn("demo: the connection accepts no basic credentials, so no simulated webhooks", "connection", c.ID)
			continue
		}
		secret := make([]byte, 16)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		opts := halosim.Options{ClientID: "halosync-demo", ClientSecret: hex.EncodeToString(secret)}
		t := halosim.New(opts)
		t.Seed(mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))), 3)
		c.Halo = config.Halo{BaseURL: t.URL(), ClientID: opts.ClientID, ClientSecret: opts.ClientSecret}
		d.tenants = append(d.tenants, demoTenant{conn: c.ID, tenant: t, user: user, password: password})
	}
	return d, nil
}

func basicCredentials(schemes []config.AuthScheme) (user, password string) {
	for _, s := range schemes {
		if s.Scheme == "basic" && len(s.Passwords) > 0 {
			return s.Username, s.Passwords[0]
		}
	}
	return "", ""
}

// connections are the connections the demo drives; none without a demo.
func (d *demo) connections() []string {
	if d == nil {
		return nil
	}
	ids := make([]string, 0, len(d.tenants))
	for _, t := range d.tenants {
		ids = append(ids, t.conn)
	}
	return ids
}

// announce says what the demo does.
func (d *demo) announce(w io.Writer) {
	for _, t := range d.tenants {
		fmt.Fprintf(w, "  demo: connection %q follows a simulated Halo tenant at %s (a few changes every %s)\n", t.conn, t.tenant.URL(), d.every)
	}
}

// run generates changes and delivers their webhooks to serverURL until ctx ends. Most
// deliveries carry the full object; every third tick's carry only the event, so the worker
// fetches the object from the simulated tenant's API.
func (d *demo) run(ctx context.Context, serverURL string) {
	for i, t := range d.tenants {
		rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
		url := serverURL + "/webhooks/halo/" + t.conn
		full := halosim.NewSender(halosim.SenderOptions{URL: url, Auth: halosim.BasicAuth(t.user, t.password),
			PayloadType: halosim.PayloadFull, Tenant: t.tenant, Rand: mrand.New(mrand.NewPCG(1, uint64(i)))})
		eventOnly := halosim.NewSender(halosim.SenderOptions{URL: url, Auth: halosim.BasicAuth(t.user, t.password),
			PayloadType: halosim.PayloadEventOnly, Tenant: t.tenant, Rand: mrand.New(mrand.NewPCG(2, uint64(i)))})
		go func() {
			ticker := time.NewTicker(d.every)
			defer ticker.Stop()
			for tick := 1; ; tick++ {
				select {
				case <-ctx.Done():
					return
				case <-ticker.C:
				}
				sender := full
				if tick%3 == 0 {
					sender = eventOnly
				}
				sender.Send(t.tenant.Run(rng, 1+rng.IntN(3))...)
				if _, err := sender.Flush(ctx); err != nil && ctx.Err() == nil {
					d.log.Warn("demo: webhooks not delivered", "connection", t.conn, "error", err.Error())
				}
			}
		}()
	}
}

// close stops the simulated tenants.
func (d *demo) close() {
	for _, t := range d.tenants {
		t.tenant.Close()
	}
}
