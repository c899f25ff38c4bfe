package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// WebhookManage is the webhook `halosync webhooks apply` creates and keeps in Halo for a
// connection, through Halo's API (so the connection needs halo: settings).
type WebhookManage struct {
	// URL is this connection's endpoint as Halo must call it: the stack's WebhookUrl
	// output with the connection id, https://<api>/webhooks/halo/<id>. Required.
	URL string `yaml:"url"`
	// BackupURL, when set, is a second endpoint for a second webhook in Halo, the backup:
	// the stack's BackupWebhookUrl output with the connection id,
	// https://<url-id>.lambda-url.<region>.on.aws/webhooks/halo/<id>. It is named
	// "<name_prefix>:<connection id> (backup)", subscribed to the same events with the same
	// authentication, so Halo delivers every change to both; newest-wins makes the second
	// copy a duplicate. Empty: one webhook.
	BackupURL string `yaml:"backup_url"`
	// NamePrefix starts the webhook's name, "<name_prefix>:<connection id>" (default
	// "halosync"). halosync recognises its webhook by that exact name and never changes or
	// deletes a webhook with another name.
	NamePrefix string `yaml:"name_prefix"`
	// Auth is how Halo authenticates the deliveries: basic (default: the first basic
	// scheme of webhook.auth, its username and its last password) or hmac (the first hmac
	// scheme: its header and its last secret, signed body, Halo's authentication_type 3).
	Auth string `yaml:"auth"`
	// Events are the events the webhook is subscribed to, each a name and Halo's event
	// number (eventno). A name in KnownWebhookEvents may leave the number out; any other
	// needs it. Default: DefaultManagedEvents.
	Events []ManagedEvent `yaml:"events"`
	// PayloadType is the webhook's payload_type code. Halo's codes are not documented:
	// unset leaves Halo's default (the full object on the tenants seen so far).
	PayloadType *int `yaml:"payload_type"`
	// Batching groups events into one delivery (a JSON array). Default: none.
	Batching WebhookBatching `yaml:"batching"`
	// AutoDisableAttempts sets how many consecutive failures make Halo disable the
	// webhook (0: never). Unset leaves Halo's value.
	AutoDisableAttempts *int `yaml:"auto_disable_attempts"`
	// Repair is what the periodic check does with a disabled or drifted webhook:
	// re-enable (default: switch a disabled webhook back on, report drift), reapply (make
	// it match, as apply does) or off (report only).
	Repair string `yaml:"repair"`
	// CheckMinutes is the least time between two periodic checks (default 15).
	CheckMinutes int `yaml:"check_minutes"`
}

// ManagedEvent is one event subscription of the managed webhook. In YAML it is a name
// ("ticket updated") or a mapping {name: ..., eventno: N}.
type ManagedEvent struct {
	Name    string `yaml:"name"`
	EventNo int    `yaml:"eventno"`
}

// UnmarshalYAML accepts a bare name or a mapping with name and eventno, and nothing else.
func (e *ManagedEvent) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*e = ManagedEvent{Name: n.Value}
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch k, v := n.Content[i].Value, n.Content[i+1]; k {
			case "name":
				if err := v.Decode(&e.Name); err != nil {
					return err
				}
			case "eventno":
				if err := v.Decode(&e.EventNo); err != nil {
					return err
				}
			default:
				return fmt.Errorf("line %d: field %s not found in type config.ManagedEvent", n.Content[i].Line, k)
			}
		}
		return nil
	default:
		return fmt.Errorf("line %d: an event is a name or {name, eventno}", n.Line)
	}
}

// WebhookBatching is the managed webhook's batching.
type WebhookBatching struct {
	// Method: none (default), time (deliver what gathered every delay_seconds) or count
	// (deliver every limit events). Halo's batch_method codes 0, 1, 2 are taken from
	// public client code and are unconfirmed.
	Method       string `yaml:"method"`
	DelaySeconds int    `yaml:"delay_seconds"`
	Limit        int    `yaml:"limit"`
}

// KnownWebhookEvents are Halo's event numbers known from public code that works against
// real tenants: "ticket updated" is 61 (django-psa). Halo does not publish the catalogue;
// read the numbers of other events from a webhook made in Halo's form (`halosync webhooks
// events`) and give them as eventno.
var KnownWebhookEvents = map[string]int{"ticket updated": 61}

// DefaultManagedEvents are subscribed when webhook.manage.events is empty.
var DefaultManagedEvents = []string{"ticket updated"}

// Defaults of the managed webhook.
const (
	DefaultWebhookNamePrefix  = "halosync"
	DefaultWebhookCheckPeriod = 15 * time.Minute
)

// Repair modes of the managed webhook's periodic check.
const (
	RepairReEnable = "re-enable"
	RepairReapply  = "reapply"
	RepairOff      = "off"
)

// Prefix is the name prefix (default "halosync").
func (m WebhookManage) Prefix() string {
	if p := strings.TrimSpace(m.NamePrefix); p != "" {
		return p
	}
	return DefaultWebhookNamePrefix
}

// WebhookName is the managed webhook's name in Halo: "<prefix>:<connection id>".
func (m WebhookManage) WebhookName(connection string) string {
	return m.Prefix() + ":" + connection
}

// BackupSuffix ends the backup webhook's name.
const BackupSuffix = " (backup)"

// BackupWebhookName is the backup webhook's name in Halo: "<prefix>:<connection id> (backup)".
func (m WebhookManage) BackupWebhookName(connection string) string {
	return m.WebhookName(connection) + BackupSuffix
}

// AuthMethod is basic (default) or hmac.
func (m WebhookManage) AuthMethod() string {
	if m.Auth == "" {
		return "basic"
	}
	return m.Auth
}

// RepairMode is re-enable (default), reapply or off.
func (m WebhookManage) RepairMode() string {
	if m.Repair == "" {
		return RepairReEnable
	}
	return m.Repair
}

// CheckPeriod is the least time between two periodic checks (default 15 minutes).
func (m WebhookManage) CheckPeriod() time.Duration {
	if m.CheckMinutes > 0 {
		return time.Duration(m.CheckMinutes) * time.Minute
	}
	return DefaultWebhookCheckPeriod
}

// EventList is the events with their numbers: the configured ones, or the defaults.
func (m WebhookManage) EventList() []ManagedEvent {
	if len(m.Events) == 0 {
		out := make([]ManagedEvent, 0, len(DefaultManagedEvents))
		for _, name := range DefaultManagedEvents {
			out = append(out, ManagedEvent{Name: name, EventNo: KnownWebhookEvents[name]})
		}
		return out
	}
	out := make([]ManagedEvent, 0, len(m.Events))
	for _, e := range m.Events {
		name := normalEventName(e.Name)
		if e.EventNo == 0 {
			e.EventNo = KnownWebhookEvents[name]
		}
		out = append(out, e)
	}
	return out
}

// BatchCode is Halo's batch_method for Method: 0 none, 1 time, 2 count.
func (b WebhookBatching) BatchCode() int {
	switch b.Method {
	case "time":
		return 1
	case "count":
		return 2
	}
	return 0
}

func normalEventName(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

func (m WebhookManage) validate(conn Connection) error {
	if !conn.Halo.Configured() {
		return errors.New("needs halo: settings (the webhook is managed through Halo's API)")
	}
	if m.URL == "" {
		return errors.New("url is missing: the endpoint Halo must call, https://<api>/webhooks/halo/" + conn.ID)
	}
	if err := endpointURL("url", m.URL); err != nil {
		return err
	}
	if m.BackupURL != "" {
		if err := endpointURL("backup_url", m.BackupURL); err != nil {
			return err
		}
		if strings.TrimSpace(m.BackupURL) == strings.TrimSpace(m.URL) {
			return errors.New("backup_url is url: the backup must be another endpoint (the stack's BackupWebhookUrl), or none")
		}
	}
	if p := m.NamePrefix; len(p) > 64 || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return errors.New("name_prefix must be at most 64 printable characters")
	}
	switch m.AuthMethod() {
	case "basic":
		if !hasScheme(conn.Webhook.Auth, func(a AuthScheme) bool { return a.Scheme == "basic" }) {
			return errors.New("auth basic needs a basic scheme in webhook.auth (its username and last password are set in Halo)")
		}
	case "hmac":
		if !hasScheme(conn.Webhook.Auth, hmacAsHalo) {
			return errors.New("auth hmac needs an hmac scheme in webhook.auth with base64 encoding and no prefix, as Halo signs")
		}
	default:
		return fmt.Errorf("auth %q (basic or hmac)", m.Auth)
	}
	names, numbers := map[string]bool{}, map[int]bool{}
	for i, e := range m.EventList() {
		name := normalEventName(e.Name)
		switch {
		case name == "":
			return fmt.Errorf("events[%d]: the name is empty", i)
		case e.EventNo < 0:
			return fmt.Errorf("events[%d] %q: eventno cannot be negative", i, e.Name)
		case e.EventNo == 0:
			return fmt.Errorf("events[%d] %q: Halo's event number is not known for this name: give it as eventno (see docs/WEBHOOKS.md)", i, e.Name)
		case names[name]:
			return fmt.Errorf("events[%d] %q is listed twice", i, e.Name)
		case numbers[e.EventNo]:
			return fmt.Errorf("events[%d] %q: eventno %d is listed twice", i, e.Name, e.EventNo)
		}
		names[name], numbers[e.EventNo] = true, true
	}
	if m.PayloadType != nil && *m.PayloadType < 0 {
		return errors.New("payload_type cannot be negative")
	}
	if m.AutoDisableAttempts != nil && *m.AutoDisableAttempts < 0 {
		return errors.New("auto_disable_attempts cannot be negative")
	}
	b := m.Batching
	switch {
	case b.Method != "" && b.Method != "none" && b.Method != "time" && b.Method != "count":
		return fmt.Errorf("batching.method %q (none, time or count)", b.Method)
	case b.DelaySeconds < 0 || b.Limit < 0:
		return errors.New("batching: delay_seconds and limit cannot be negative")
	case b.Method == "time" && b.DelaySeconds == 0:
		return errors.New("batching.method time needs delay_seconds")
	case b.Method == "count" && b.Limit == 0:
		return errors.New("batching.method count needs limit")
	}
	switch m.RepairMode() {
	case RepairReEnable, RepairReapply, RepairOff:
	default:
		return fmt.Errorf("repair %q (re-enable, reapply or off)", m.Repair)
	}
	if m.CheckMinutes < 0 {
		return errors.New("check_minutes cannot be negative")
	}
	return nil
}

// endpointURL checks an endpoint Halo is to call: http(s), with a host, no credentials.
func endpointURL(key, raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return fmt.Errorf("%s %q is not an http(s) URL", key, raw)
	case u.User != nil:
		return fmt.Errorf("%s must not carry credentials; they come from webhook.auth", key)
	}
	return nil
}

func hasScheme(list []AuthScheme, ok func(AuthScheme) bool) bool {
	for _, a := range list {
		if ok(a) {
			return true
		}
	}
	return false
}

// hmacAsHalo reports whether an hmac scheme reads signatures the way Halo writes them:
// base64, without a prefix.
func hmacAsHalo(a AuthScheme) bool {
	return a.Scheme == "hmac" && a.Prefix == "" && (a.Encoding == "" || strings.EqualFold(a.Encoding, "base64"))
}
