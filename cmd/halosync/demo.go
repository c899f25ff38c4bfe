package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/config"
	"github.com/halosync/halosync/internal/halosim"
)

// demo gives every connection that has no Halo API settings a simulated Halo tenant: it
// becomes the connection's Halo (so event-only deliveries are fetched from it), it
// generates activity across every kind of object, and it delivers webhooks to the server
// the way Halo does. A new user sees the copy fill and follow changes.
//
// Each tenant is kept in the data directory (demoFile), written after every round of
// changes, before their webhooks leave, and when serve stops; a restart continues it. A
// new tenant over the copy of an old one would share its ids but not its objects, and
// the copy would take its updates and deletes for the old objects'.
type demo struct {
	every   time.Duration
	tenants []demoTenant
	log     *slog.Logger
	ctx     context.Context // ends run's goroutines, with stop
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

type demoTenant struct {
	conn      string
	tenant    *halosim.Tenant
	user      string
	password  string
	path      string // where the tenant is kept
	continued bool   // whether it was read from path
}

// sendTimeout bounds one round of the demo's deliveries.
const sendTimeout = 10 * time.Second

// demoFile is where the simulated tenant of connection conn is kept in the data directory.
func demoFile(dataDir, conn string) string {
	return filepath.Join(dataDir, "demo-tenant-"+conn+".json")
}

// prepareDemo points the connections without Halo settings at simulated tenants, read
// from the data directory when kept there, else new; it must run before the handlers are
// built.
func prepareDemo(cfg *config.Config, every time.Duration, dataDir string, log *slog.Logger) (*demo, error) {
	d := &demo{every: every, log: log}
	d.ctx, d.stop = context.WithCancel(context.Background())
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
		dt := demoTenant{conn: c.ID, user: user, password: password, path: demoFile(dataDir, c.ID)}
		kept, err := halosim.LoadSnapshot(dt.path)
		switch {
		case err == nil:
			dt.tenant, dt.continued = halosim.New(kept.Options()), true
			err = dt.tenant.Restore(kept)
		case errors.Is(err, fs.ErrNotExist):
			dt.tenant, err = newDemoTenant(i)
		}
		if err != nil {
			if dt.tenant != nil {
				dt.tenant.Close()
			}
			d.release()
			return nil, fmt.Errorf("demo tenant of connection %s: %w (remove %s to start a new one over a new --data)", c.ID, err, dt.path)
		}
		d.tenants = append(d.tenants, dt)
		o := dt.tenant.Options()
		c.Halo = config.Halo{BaseURL: dt.tenant.URL(), ClientID: o.ClientID, ClientSecret: o.ClientSecret}
	}
	if len(d.tenants) > 0 {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			d.release()
			return nil, fmt.Errorf("make data dir: %w", err)
		}
	}
	for _, t := range d.tenants {
		if err := t.tenant.SaveSnapshot(t.path); err != nil {
			d.release()
			return nil, err
		}
	}
	return d, nil
}

// newDemoTenant makes a simulated tenant with a few clients and their history, and
// credentials of its own.
func newDemoTenant(i int) (*halosim.Tenant, error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	t := halosim.New(halosim.Options{ClientID: "halosync-demo", ClientSecret: hex.EncodeToString(secret)})
	t.Seed(mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))), 3)
	return t, nil
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
		kept := "a new one, kept in " + t.path
		if t.continued {
			kept = "continued from " + t.path
		}
		fmt.Fprintf(w, "  demo: connection %q follows a simulated Halo tenant at %s (a few changes every %s; %s)\n", t.conn, t.tenant.URL(), d.every, kept)
	}
}

// run generates changes and delivers their webhooks to serverURL until ctx ends. Most
// deliveries carry the full object; every third tick's carry only the event, so the worker
// fetches the object from the simulated tenant's API.
func (d *demo) run(ctx context.Context, serverURL string) {
	context.AfterFunc(ctx, d.stop)
	ctx = d.ctx
	for i, t := range d.tenants {
		rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
		url := serverURL + "/webhooks/halo/" + t.conn
		full := halosim.NewSender(halosim.SenderOptions{URL: url, Auth: halosim.BasicAuth(t.user, t.password),
			PayloadType: halosim.PayloadFull, Tenant: t.tenant, Rand: mrand.New(mrand.NewPCG(1, uint64(i)))})
		eventOnly := halosim.NewSender(halosim.SenderOptions{URL: url, Auth: halosim.BasicAuth(t.user, t.password),
			PayloadType: halosim.PayloadEventOnly, Tenant: t.tenant, Rand: mrand.New(mrand.NewPCG(2, uint64(i)))})
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
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
				events := t.tenant.Run(rng, 1+rng.IntN(3))
				// Kept before the webhooks leave: the copy never holds what a restart
				// would not find in the tenant.
				d.keep(t)
				sender.Send(events...)
				// A delivery under way is finished, not cut short, when the demo stops:
				// the server, which stops after the demo (halt), would refuse a cut one.
				sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
				_, err := sender.Flush(sendCtx)
				cancel()
				if err != nil {
					d.log.Warn("demo: webhooks not delivered", "connection", t.conn, "error", err.Error())
				}
			}
		}()
	}
}

// keep writes the tenant to its file; a failure is logged, and the demo goes on.
func (d *demo) keep(t demoTenant) {
	if err := t.tenant.SaveSnapshot(t.path); err != nil {
		d.log.Warn("demo: the simulated tenant is not kept", "connection", t.conn, "error", err.Error())
	}
}

// halt stops the changes and waits for the deliveries under way.
func (d *demo) halt() {
	d.stop()
	d.wg.Wait()
}

// close halts the demo, keeps the simulated tenants in their files and stops them.
func (d *demo) close() {
	d.halt()
	for _, t := range d.tenants {
		d.keep(t)
	}
	d.release()
}

// release stops the simulated tenants' servers.
func (d *demo) release() {
	d.stop()
	for _, t := range d.tenants {
		t.tenant.Close()
	}
}
