// Package storedfields keeps fields out of the copy: per kind, an include list keeps only
// the fields it names and an exclude list drops the ones it names, so sensitive fields
// (details_html, e-mail bodies, custom fields) never reach the queue or the store. The
// object's id, its change marker and the fields halosync itself reads (its parent and
// client ids) are always kept.
package storedfields

import (
	"fmt"

	"github.com/halosync/halosync/internal/change"
	"github.com/halosync/halosync/internal/config"
)

// Policy is the compiled field lists of one connection.
type Policy struct {
	kinds map[change.Kind]list
}

type list struct {
	include bool // true: keep only names; false: drop names
	names   map[string]bool
}

// New compiles a connection's stored_fields.
func New(cfg map[string]config.FieldList) (*Policy, error) {
	p := &Policy{kinds: map[change.Kind]list{}}
	for name, fl := range cfg {
		kind, err := change.ParseKind(name)
		if err != nil {
			return nil, fmt.Errorf("stored_fields: %w", err)
		}
		if len(fl.Include) > 0 && len(fl.Exclude) > 0 {
			return nil, fmt.Errorf("stored_fields.%s: give include or exclude, not both", name)
		}
		l := list{include: len(fl.Include) > 0, names: map[string]bool{}}
		for _, f := range append(fl.Include, fl.Exclude...) {
			l.names[f] = true
		}
		if len(l.names) > 0 {
			p.kinds[kind] = l
		}
	}
	return p, nil
}

// Empty reports whether the policy keeps every field of every kind.
func (p *Policy) Empty() bool { return p == nil || len(p.kinds) == 0 }

// Applies reports whether the policy removes anything from a change of kind k.
func (p *Policy) Applies(k change.Kind) bool {
	if p == nil {
		return false
	}
	_, ok := p.kinds[k]
	return ok
}

// Apply returns the change with its fields cut to the policy; the change's own map is not
// modified.
func (p *Policy) Apply(c change.Change) change.Change {
	if c.Fields == nil || !p.Applies(c.Kind) {
		return c
	}
	l := p.kinds[c.Kind]
	spec, _ := change.Lookup(c.Kind)
	always := map[string]bool{"id": true, spec.VersionField: true}
	if spec.ParentField != "" {
		always[spec.ParentField] = true
	}
	if spec.ClientField != "" {
		always[spec.ClientField] = true
	}
	out := make(map[string]any, len(c.Fields))
	for k, v := range c.Fields {
		if always[k] || l.names[k] == l.include {
			out[k] = v
		}
	}
	c.Fields = out
	return c
}
