package halosim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/halosync/halosync/internal/change"
)

// snapshotFormat is the version of the snapshot document; Restore refuses others.
const snapshotFormat = 1

// keptDeliveries bounds the delivery log a snapshot keeps: the whole log (maxLog, with
// each request's body) would make a snapshot written every few seconds tens of megabytes.
const keptDeliveries = 1000

// Snapshot is a tenant's data kept outside the process, so that a tenant made again from
// it continues where the first stopped: the same objects with their change markers, the
// same next ids, sites, webhooks and delivery log, and the API application's credentials.
// Access tokens and the request log are not kept: a client asks for a new token, as it
// does when one expires. Of the delivery log, the last keptDeliveries are.
type Snapshot struct {
	Format       int    `json:"format"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	TenantName   string `json:"tenant_name,omitempty"`

	Objects          map[change.Kind][]snapshotRecord `json:"objects"`
	NextID           map[change.Kind]int64            `json:"next_id"`
	Sites            []snapshotSite                   `json:"sites"`
	NextSite         int64                            `json:"next_site"`
	Seq              uint64                           `json:"seq"`
	Webhooks         []map[string]any                 `json:"webhooks"`
	Notifications    []map[string]any                 `json:"notifications"`
	NextNotification int64                            `json:"next_notification"`
	Deliveries       []map[string]any                 `json:"deliveries"`
}

type snapshotRecord struct {
	Marker time.Time      `json:"marker"`
	Fields map[string]any `json:"fields"`
}

type snapshotSite struct {
	ID       int64  `json:"id"`
	ClientID int64  `json:"client_id"`
	Name     string `json:"name"`
}

// Options are the options a tenant restored from s is made with: its credentials.
func (s *Snapshot) Options() Options {
	return Options{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TenantName: s.TenantName}
}

// Snapshot copies the tenant's data.
func (t *Tenant) Snapshot() *Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &Snapshot{
		Format: snapshotFormat, ClientID: t.opts.ClientID, ClientSecret: t.opts.ClientSecret, TenantName: t.opts.TenantName,
		Objects: map[change.Kind][]snapshotRecord{}, NextID: map[change.Kind]int64{},
		NextSite: t.nextSite, Seq: t.seq, NextNotification: t.nextNotification,
		Webhooks: copyMaps(t.webhooks), Notifications: copyMaps(t.notifications), Deliveries: copyMaps(t.deliveries[max(0, len(t.deliveries)-keptDeliveries):]),
	}
	for _, k := range kinds() {
		recs := t.sorted(k.kind)
		out := make([]snapshotRecord, len(recs))
		for i, r := range recs {
			out[i] = snapshotRecord{Marker: r.marker, Fields: t.viewCopy(k.kind, r)}
		}
		s.Objects[k.kind] = out
		s.NextID[k.kind] = t.nextID[k.kind]
	}
	for id := int64(30); id < t.nextSite; id++ { // by id, so equal tenants write equal files
		if st, ok := t.sites[id]; ok {
			s.Sites = append(s.Sites, snapshotSite(st))
		}
	}
	return s
}

// Restore replaces the tenant's data with the snapshot's. The tenant's options (its
// credentials among them) stay as made: make it with s.Options() to keep them too.
func (t *Tenant) Restore(s *Snapshot) error {
	if s.Format != snapshotFormat {
		return fmt.Errorf("halosim: snapshot format %d, want %d", s.Format, snapshotFormat)
	}
	objects := map[change.Kind]map[int64]*record{}
	nextID := map[change.Kind]int64{}
	for _, k := range kinds() {
		tab := map[int64]*record{}
		for _, r := range s.Objects[k.kind] {
			fields, _ := wholeNumbers(copyMap(r.Fields)).(map[string]any)
			id, ok := toInt64(fields["id"])
			if !ok || id <= 0 {
				return fmt.Errorf("halosim: snapshot: a %s without a valid id", k.kind)
			}
			fields["id"] = id
			tab[id] = &record{id: id, fields: fields, marker: r.Marker.UTC()}
		}
		objects[k.kind] = tab
		nextID[k.kind] = max(s.NextID[k.kind], k.firstID)
	}
	sites := map[int64]site{}
	for _, st := range s.Sites {
		sites[st.ID] = site(st)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.objects, t.nextID, t.sites, t.scaled = objects, nextID, sites, nil
	t.reindex()
	t.nextSite, t.seq, t.nextNotification = max(s.NextSite, 30), s.Seq, max(s.NextNotification, 40)
	t.webhooks = restoredMaps(s.Webhooks)
	t.notifications = restoredMaps(s.Notifications)
	t.deliveries = restoredMaps(s.Deliveries)
	return nil
}

// SaveSnapshot writes the tenant's snapshot to path, readable by its owner only, whole or
// not at all: a temporary file renamed over path, so a crash mid-write leaves the
// previous snapshot.
func (t *Tenant) SaveSnapshot(path string) error {
	b, err := json.Marshal(t.Snapshot())
	if err != nil {
		return fmt.Errorf("halosim: snapshot: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("halosim: save snapshot: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("halosim: save snapshot %s: %w", path, err)
	}
	return nil
}

// LoadSnapshot reads a snapshot SaveSnapshot wrote. A missing file's error wraps
// fs.ErrNotExist.
func LoadSnapshot(path string) (*Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("halosim: load snapshot: %w", err)
	}
	var s Snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // ids stay whole numbers, as the tenant made them
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("halosim: load snapshot %s: %w", path, err)
	}
	if s.Format != snapshotFormat {
		return nil, fmt.Errorf("halosim: load snapshot %s: format %d, want %d", path, s.Format, snapshotFormat)
	}
	return &s, nil
}

func copyMaps(list []map[string]any) []map[string]any {
	out := make([]map[string]any, len(list))
	for i, m := range list {
		out[i] = copyMap(m)
	}
	return out
}

func restoredMaps(list []map[string]any) []map[string]any {
	out := make([]map[string]any, len(list))
	for i, m := range list {
		out[i], _ = wholeNumbers(copyMap(m)).(map[string]any)
	}
	return out
}

// wholeNumbers turns the json.Numbers of a decoded value into what the tenant stores:
// int64 for whole numbers (ids, the generator reads them as such), float64 for others.
func wholeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = wholeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = wholeNumbers(e)
		}
		return x
	}
	return v
}
