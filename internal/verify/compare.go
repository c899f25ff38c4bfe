// Package verify holds the pure core of checking the copy against Halo: one object's
// verdict (Compare), an estimate of the share of the copy equal to Halo with its
// uncertainty (Tally, Window, Wilson), and which objects a period's request budget reads
// (PlanSample). It reads nothing itself: the caller brings Halo's object and the stored
// one (docs/ARCHITECTURE.md, "Verification").
package verify

import (
	"fmt"
	"strings"
	"time"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/storedfields"
)

// Cause is what one comparison found.
type Cause string

const (
	Equal Cause = "equal"
	// Missing: Halo has the object, the copy has none (or a tombstone, or only a pending
	// marker).
	Missing Cause = "missing"
	// Extra: the copy holds a live object Halo has not, or has deleted.
	Extra Cause = "extra"
	// Stale: the stored version is older than Halo's marker.
	Stale Cause = "stale"
	// Ahead: the stored version is newer than Halo's own marker, a version no Halo change
	// made ("Versions"); a difference even when the fields agree.
	Ahead Cause = "ahead"
	// Fields: same version, different fields.
	Fields Cause = "fields"
)

// Causes lists every cause, in report order.
var Causes = []Cause{Equal, Missing, Extra, Stale, Ahead, Fields}

// FieldDiff is one field whose value differs: as the copy holds it and as Halo returned it
// (after the stored-fields cut). InCopy is false when the copy lacks the field.
type FieldDiff struct {
	Name   string
	Copy   any
	Halo   any
	InCopy bool
}

// Verdict is the comparison of one object.
type Verdict struct {
	Cause Cause
	// Fields lists, by name, the fields that differ; set for Fields, and for Stale and
	// Ahead when the fields differ too.
	Fields []FieldDiff
	// CopyVersion and HaloVersion are the stored version and Halo's marker as a version (0
	// when absent).
	CopyVersion, HaloVersion int64
}

// Rules are the connection's rules a comparison applies as the worker does.
type Rules struct {
	Fields   *storedfields.Policy
	Versions change.VersionRule
}

// Compare judges the stored object (nil: none stored) against Halo's object of kind as
// read at readAt (nil: Halo has none). Halo's object is cut to the stored fields first,
// and its change marker checked by the connection's version rule, as the poller does: a
// marker too far ahead was stored at a read time, so only the fields are compared. Only
// the fields Halo returned are compared: the copy merges every snapshot it was sent, and
// a webhook carries fields a read does not. An error means Halo's object cannot be
// judged (no readable marker): the poller would skip it too.
func Compare(kind change.Kind, halo map[string]any, stored *change.Object, rules Rules, readAt time.Time) (Verdict, error) {
	spec, ok := change.Lookup(kind)
	if !ok {
		return Verdict{}, fmt.Errorf("verify: %w: unknown kind %q", change.ErrInvalid, kind)
	}
	var v Verdict
	copyHas := stored != nil && !stored.Deleted && stored.Version > 0
	if copyHas {
		v.CopyVersion = stored.Version
	}
	c := change.Change{Kind: kind, Op: change.OpUpsert, Fields: halo}
	haloHas := halo != nil && !c.Deleted()
	if !haloHas {
		if copyHas {
			v.Cause = Extra
		} else {
			v.Cause = Equal
		}
		return v, nil
	}
	s, _ := halo[spec.VersionField].(string)
	marker, ok, err := change.ParseHaloTime(s)
	if err != nil || !ok {
		return Verdict{}, fmt.Errorf("verify: %s without a readable %s: %q", kind, spec.VersionField, s)
	}
	c.Version = change.VersionOf(marker)
	c, vc := rules.Versions.Check(c, readAt)
	v.HaloVersion = c.Version
	if !copyHas {
		v.Cause = Missing
		return v, nil
	}
	v.Fields = diffFields(stored.Fields, rules.Fields.Apply(c).Fields)
	switch {
	case vc.Clamped:
		// The stored version is a read or receipt time, not Halo's marker.
	case stored.Version < c.Version:
		v.Cause = Stale
		return v, nil
	case stored.Version > c.Version:
		v.Cause = Ahead
		return v, nil
	}
	if len(v.Fields) > 0 {
		v.Cause = Fields
	} else {
		v.Cause = Equal
	}
	return v, nil
}

// diffFields lists, by name, the fields of halo whose value differs from the copy's once
// Halo's quirks are set aside (plain). A field Halo returns empty (null, the empty
// date) equals one the copy lacks.
func diffFields(stored, halo map[string]any) []FieldDiff {
	a := make(map[string]any, len(halo))
	b := make(map[string]any, len(halo))
	for k, hv := range halo {
		nh := plain(k, hv)
		sv, had := stored[k]
		if !had && nh == nil {
			continue
		}
		b[k] = nh
		if had {
			a[k] = plain(k, sv)
		}
	}
	names := change.DifferentFields(a, b)
	out := make([]FieldDiff, len(names))
	for i, k := range names {
		sv, had := stored[k]
		out[i] = FieldDiff{Name: k, Copy: sv, Halo: halo[k], InCopy: had}
	}
	return out
}

// haloDate marks a date read as an instant, so that it never equals a string as written.
type haloDate string

// plain is a field's value with Halo's representational quirks set aside: a Halo
// date (with or without fraction or Z) as its instant, the empty date (any year up to 1980,
// change.ParseHaloTime) as null, an id field (id, *_id) as its canonical id. Numbers are
// left to change.DifferentFields, which compares them by value whatever their Go type.
func plain(name string, v any) any {
	switch x := v.(type) {
	case string:
		if x == "" {
			return x
		}
		if t, ok, err := change.ParseHaloTime(x); err == nil {
			if !ok {
				return nil
			}
			return haloDate(t.Format(time.RFC3339Nano))
		}
		if isIDField(name) {
			if id, err := change.ParseID(x); err == nil {
				return id
			}
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(name, e)
		}
		return out
	}
	if isIDField(name) && v != nil {
		// A number in an id field meets a string id: Halo writes ids as 12 or "12".
		if id, err := change.CanonicalID(v); err == nil {
			return id
		}
	}
	return v
}

// isIDField reports whether a field holds an id, which Halo writes as a number or a string.
func isIDField(name string) bool {
	return name == "id" || strings.HasSuffix(strings.ToLower(name), "_id")
}
