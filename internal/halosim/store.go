package halosim

import (
	"cmp"
	"slices"

	"github.com/halosync/halosync/internal/change"
)

// How the tenant holds its objects: per kind a map by id, the records in id order (every
// list reads them in that order, so it is kept rather than sorted per request),
// and each ticket's note ids (the Actions list reads one ticket's notes). Every method
// here runs with t.mu held.

// sorted returns a kind's records by id. The slice is the tenant's: do not change it.
func (t *Tenant) sorted(kind change.Kind) []*record {
	if recs, ok := t.order[kind]; ok && recs != nil {
		return recs
	}
	tab := t.table(kind)
	recs := make([]*record, 0, len(tab))
	for _, r := range tab {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(a, b *record) int { return cmp.Compare(a.id, b.id) })
	t.order[kind] = recs
	return recs
}

// added records a new object in the order: appended when its id is the largest (the
// usual case), else the order is rebuilt at the next read.
func (t *Tenant) added(kind change.Kind, r *record) {
	recs, ok := t.order[kind]
	if !ok || recs == nil {
		return
	}
	if len(recs) == 0 || recs[len(recs)-1].id < r.id {
		t.order[kind] = append(recs, r)
		return
	}
	t.order[kind] = nil
}

// removed drops an id from the order.
func (t *Tenant) removed(kind change.Kind, id int64) {
	recs := t.order[kind]
	if i, ok := slices.BinarySearchFunc(recs, id, func(r *record, id int64) int { return cmp.Compare(r.id, id) }); ok {
		t.order[kind] = slices.Delete(recs, i, i+1)
	}
}

// noteMoved keeps the notes index when a note's ticket is set or changes (from 0: new,
// to 0: removed).
func (t *Tenant) noteMoved(id, from, to int64) {
	if from == to {
		return
	}
	if from != 0 {
		list := t.notes[from]
		if i, ok := slices.BinarySearch(list, id); ok {
			list = slices.Delete(list, i, i+1)
		}
		if len(list) == 0 {
			delete(t.notes, from)
		} else {
			t.notes[from] = list
		}
	}
	if to != 0 {
		list := t.notes[to]
		if i, ok := slices.BinarySearch(list, id); !ok {
			t.notes[to] = slices.Insert(list, i, id)
		}
	}
}

// reindex rebuilds the order and the notes index from the objects (after Restore).
func (t *Tenant) reindex() {
	t.order = map[change.Kind][]*record{}
	t.notes = map[int64][]int64{}
	for _, r := range t.sorted(change.Action) {
		t.noteMoved(r.id, 0, t.noteTicket(r))
	}
}

// noteTicket is the ticket a note is under (0: none).
func (t *Tenant) noteTicket(r *record) int64 {
	id, _ := toInt64(t.attr(change.Action, r, "ticket_id"))
	return id
}

// view returns an object's fields: those stored, or for an object as SeedScale made it,
// fields drawn again (a new map each time). Read it only; own gives fields to change.
func (t *Tenant) view(kind change.Kind, r *record) map[string]any {
	if r.fields != nil {
		return r.fields
	}
	return t.scaled.fields(t, kind, r)
}

// viewCopy returns a copy of an object's fields that the caller may keep.
func (t *Tenant) viewCopy(kind change.Kind, r *record) map[string]any {
	if r.fields != nil {
		return copyMap(r.fields)
	}
	return t.scaled.fields(t, kind, r)
}

// own gives an object stored fields, drawing them once for an object as SeedScale made
// it, so that they can be changed.
func (t *Tenant) own(kind change.Kind, r *record) *record {
	if r.fields == nil {
		r.fields = t.scaled.fields(t, kind, r)
	}
	return r
}

// attr reads one field of an object, without drawing all of a SeedScale object's fields
// when the field is one of those its record keeps.
func (t *Tenant) attr(kind change.Kind, r *record, name string) any {
	if r.fields != nil {
		return r.fields[name]
	}
	if v, ok := t.scaled.attr(t, kind, r, name); ok {
		return v
	}
	return t.scaled.fields(t, kind, r)[name]
}
