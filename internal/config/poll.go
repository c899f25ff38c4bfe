package config

import (
	"fmt"
	"math"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// pollUnits are the poll: keys that count whole units, with their unit.
var pollUnits = []struct{ key, unit string }{
	{"interval_minutes", "minutes"},
	{"fallback_minutes", "minutes"},
	{"silence_minutes", "minutes"},
	{"overlap_seconds", "seconds"},
	{"reconcile_hours", "hours"},
	{"notes_max_age_days", "days"},
	{"scan_hours", "hours"},
}

// checkPollNumbers refuses a poll interval that is not a whole number. The YAML library
// decodes 1.5 into an int as 1, and 0.5 as 0 (which means the default): the interval
// asked for would be replaced without a word. A whole number written as a float (2.0) is
// honoured as it is.
func checkPollNumbers(root *yaml.Node) error {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	conns := mapValue(doc, "connections")
	if conns == nil || conns.Kind != yaml.SequenceNode {
		return nil
	}
	for i, conn := range conns.Content {
		poll := mapValue(conn, "poll")
		if poll == nil || poll.Kind != yaml.MappingNode {
			continue
		}
		if err := checkPollChoices(poll, i); err != nil {
			return err
		}
		for _, u := range pollUnits {
			v := mapValue(poll, u.key)
			if v == nil || v.Kind != yaml.ScalarNode {
				continue
			}
			switch v.ShortTag() {
			case "!!int", "!!null":
				continue
			case "!!float":
				if f, err := strconv.ParseFloat(v.Value, 64); err == nil && f == math.Trunc(f) && !math.IsInf(f, 0) {
					continue
				}
				return fmt.Errorf("%w: line %d: connections[%d].poll.%s: %s is not a whole number; give whole %s (0 or absent for the default)",
					ErrInvalid, v.Line, i, u.key, v.Value, u.unit)
			}
			// A string (a duration such as 90s, a quoted number) is not echoed: a value in
			// the wrong place may be a secret.
			return fmt.Errorf("%w: line %d: connections[%d].poll.%s must be a whole number of %s (0 or absent for the default), not a string",
				ErrInvalid, v.Line, i, u.key, u.unit)
		}
	}
	return nil
}

// checkPollChoices refuses, naming the line, a poll.share that is not a number in (0, 1]
// and a poll.bulk_notes other than auto, on or off.
func checkPollChoices(poll *yaml.Node, i int) error {
	if v := mapValue(poll, "share"); v != nil && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
		f, err := strconv.ParseFloat(v.Value, 64)
		if (v.ShortTag() != "!!int" && v.ShortTag() != "!!float") || err != nil || f < 0 || f > 1 || math.IsNaN(f) {
			return fmt.Errorf("%w: line %d: connections[%d].poll.share must be a number above 0 and at most 1 (the part of halo.budget the poller may spend; 0 or absent: 1/3)",
				ErrInvalid, v.Line, i)
		}
	}
	if v := mapValue(poll, "bulk_notes"); v != nil && v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
		switch v.Value {
		case "auto", "on", "off":
		default:
			return fmt.Errorf("%w: line %d: connections[%d].poll.bulk_notes must be auto, on or off (notes listed across tickets by date, or per ticket)",
				ErrInvalid, v.Line, i)
		}
	}
	return nil
}

// mapValue is the value of key in a mapping node, or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}
