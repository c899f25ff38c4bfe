package change

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid marks a change or value that can never be applied, however often it is retried.
var ErrInvalid = errors.New("invalid change")

// Kind names a kind of Halo object halosync mirrors.
type Kind string

const (
	Ticket  Kind = "ticket"
	Action  Kind = "action" // a ticket note; stored under its ticket
	Client  Kind = "client"
	Contact Kind = "contact" // a Halo "user"
	Asset   Kind = "asset"
)

// KindSpec is everything halosync knows of one kind, as data.
type KindSpec struct {
	Kind Kind
	// PayloadKey is the key under which a webhook delivery nests the object.
	PayloadKey string
	// VersionField is the object's own change marker; the delivery timestamp stands in
	// when it is absent.
	VersionField string
	// Parent is the kind this kind is stored under, and ParentField the field naming it.
	Parent      Kind
	ParentField string
	// ClientField names the field holding the owning client's id; ClientIsSelf marks the
	// client kind itself.
	ClientField  string
	ClientIsSelf bool
}

var registry = map[Kind]KindSpec{
	Ticket:  {Kind: Ticket, PayloadKey: "ticket", VersionField: "last_update", ClientField: "client_id"},
	Action:  {Kind: Action, PayloadKey: "action", VersionField: "last_updated", Parent: Ticket, ParentField: "ticket_id"},
	Client:  {Kind: Client, PayloadKey: "client", VersionField: "alastupdate", ClientIsSelf: true},
	Contact: {Kind: Contact, PayloadKey: "user", VersionField: "ulastupdate", ClientField: "client_id"},
	Asset:   {Kind: Asset, PayloadKey: "asset", VersionField: "dlastupdate", ClientField: "client_id"},
}

// Lookup returns the spec of a kind.
func Lookup(k Kind) (KindSpec, bool) {
	s, ok := registry[k]
	return s, ok
}

// Kinds lists every kind, sorted by name.
func Kinds() []KindSpec {
	out := make([]KindSpec, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// KindNames lists every kind's name, sorted: the one list of kinds, for messages and
// validation elsewhere.
func KindNames() []string {
	specs := Kinds()
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = string(s.Kind)
	}
	return out
}

// ParseKind accepts a kind's name or its Halo payload key ("user" for contacts), singular
// or plural ("tickets"); an unknown kind's error lists the kinds.
func ParseKind(s string) (Kind, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, spec := range registry {
		for _, name := range []string{string(spec.Kind), spec.PayloadKey} {
			if s == name || s == name+"s" {
				return spec.Kind, nil
			}
		}
	}
	return "", fmt.Errorf("unknown kind %q: the kinds are %s (singular or plural)", s, strings.Join(KindNames(), ", "))
}

// CanonicalID turns a Halo id given as 12, 12.0 or "12" into "12". Non-integral numbers
// and other types are errors; nil is "".
func CanonicalID(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return "", nil
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.FormatInt(i, 10), nil // "0004242", "+12" and "12" are one id
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return CanonicalID(f)
		}
		// GUIDs and other opaque ids are kept as given.
		return s, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return strconv.FormatInt(i, 10), nil
		}
		f, err := x.Float64()
		if err != nil {
			return "", fmt.Errorf("id %q is not a number", x.String())
		}
		return CanonicalID(f)
	case float64:
		if x != math.Trunc(x) || math.IsInf(x, 0) || math.Abs(x) > 1<<53 {
			return "", fmt.Errorf("id %v is not a whole number", x)
		}
		return strconv.FormatInt(int64(x), 10), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	default:
		return "", fmt.Errorf("id of type %T", v)
	}
}

// haloTimeLayouts are the forms Halo writes datetimes in; all are UTC.
var haloTimeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// maxYear is the last year whose times fit a version (Unix nanoseconds in an int64 end in
// April 2262).
const maxYear = 2261

// ParseHaloTime parses a Halo datetime. Halo writes UTC with or without a trailing Z and
// uses 1900-01-01 (or any year up to 1980) for "no date": that yields the zero time and
// ok false.
func ParseHaloTime(s string) (t time.Time, ok bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false, nil
	}
	layouts := haloTimeLayouts
	if !strings.HasSuffix(s, "Z") && strings.LastIndexAny(s, "+-") <= len("2006-01-02") {
		layouts = layouts[1:] // no zone: RFC 3339 cannot read it, and its failure allocates
	}
	for _, layout := range layouts {
		if p, perr := time.Parse(layout, s); perr == nil {
			p = p.UTC()
			if p.Year() <= 1980 {
				return time.Time{}, false, nil
			}
			if p.Year() > maxYear {
				return time.Time{}, false, fmt.Errorf("date %q is out of range", s)
			}
			return p, true, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("unreadable date %q", s)
}

// VersionOf turns a time into a version: Unix nanoseconds.
func VersionOf(t time.Time) int64 { return t.UTC().UnixNano() }
