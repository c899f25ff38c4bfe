package halo

import (
	"fmt"
	"strings"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

// EventsFromConfig adds a connection's configured event names to Halo's known ones.
func EventsFromConfig(m map[string]config.EventMapping) (Events, error) {
	if len(m) == 0 {
		return Events{}, nil
	}
	extra := make(map[string]EventRule, len(m))
	for name, em := range m {
		kind, err := change.ParseKind(em.Kind)
		if err != nil {
			return Events{}, fmt.Errorf("events[%q]: %w", name, err)
		}
		op := change.OpUpsert
		switch em.Op {
		case "", "upsert":
		case "delete":
			op = change.OpDelete
		default:
			return Events{}, fmt.Errorf("events[%q]: op %q (upsert or delete)", name, em.Op)
		}
		extra[strings.ToLower(strings.Join(strings.Fields(name), " "))] = EventRule{Kind: kind, Op: op}
	}
	return Events{Extra: extra}, nil
}
