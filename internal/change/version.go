package change

import (
	"sort"
	"time"
)

// DefaultMaxVersionSkew is how far ahead of the time a change was received its version may
// be before it is no longer believed (docs/ARCHITECTURE.md, "Versions").
const DefaultMaxVersionSkew = 10 * time.Minute

// VersionFromClamped is Change.VersionFrom for a version that was too far ahead of the
// receipt time and was replaced by it.
const VersionFromClamped = "received (clamped)"

// VersionRule checks versions instead of trusting them: a version more than MaxSkew ahead
// of the time its change was received would make every later real change of the object
// stale, so it is replaced by the receipt time.
type VersionRule struct {
	MaxSkew time.Duration
}

// VersionCheck is what checking one change's version found.
type VersionCheck struct {
	// Clamped: the version was more than the skew ahead; Was is the version it had.
	Clamped bool
	Was     int64
	// Missing: the change carries a snapshot without a readable change marker, so its
	// version came from the delivery timestamp or the receipt time.
	Missing bool
	// Marker is the change marker as the snapshot wrote it, for the log ("" if none).
	Marker string
}

// Check returns c with its version checked against received, the time it was received (or
// read from Halo), and what it found. A rule without a skew uses the default.
func (r VersionRule) Check(c Change, received time.Time) (Change, VersionCheck) {
	skew := r.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxVersionSkew
	}
	var vc VersionCheck
	if spec, ok := Lookup(c.Kind); ok && c.HasSnapshot() {
		vc.Marker, _ = c.Fields[spec.VersionField].(string)
		_, ok, err := ParseHaloTime(vc.Marker)
		vc.Missing = err != nil || !ok
	}
	if c.Version > VersionOf(received.Add(skew)) {
		vc.Clamped, vc.Was = true, c.Version
		c.Version, c.VersionFrom = VersionOf(received), VersionFromClamped
	}
	return c, vc
}

// DifferentFields lists, sorted, the fields of fields whose value is not the one stored
// (compared as JSON values, as delivery records compare them): a field stored is only
// compared when fields carries it.
func DifferentFields(stored, fields map[string]any) []string {
	var out []string
	for k, v := range fields {
		if old, ok := stored[k]; !ok || !sameValue(old, v) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
