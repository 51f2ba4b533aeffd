package patch

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/schema"
)

// editor applies operations to res, a shallow copy of the caller's
// resource. It copies each nested map or list before changing it, so the
// caller's resource is never modified and unchanged parts are shared.
type editor struct {
	rt  *schema.ResourceType
	res map[string]any
}

// assignment is one key of a path-less value, resolved.
type assignment struct {
	key   string
	path  filter.Path
	value any
	rank  int // 0: a whole schema, 1: an attribute, 2: a sub-attribute or filtered values
}

// applyObject applies a path-less add or replace, whose value is an
// object of attributes keyed by name, dotted path ("name.givenName"),
// URN-qualified path or schema URN. Unknown and readOnly attributes are
// skipped (Okta's group rename carries the group's id). Keys apply from
// whole schemas to attributes to sub-attributes, and in sorted order
// within each, so that "name" does not undo "name.givenName" and the
// outcome never depends on map iteration order.
func (e *editor) applyObject(kind opKind, obj map[string]any) error {
	assignments := make([]assignment, 0, len(obj))
	for k, v := range obj {
		if urn, ok := e.rt.CanonicalURN(k); ok {
			assignments = append(assignments, assignment{key: k, path: filter.Path{Extension: urn}, value: v})
			continue
		}
		p, ok := e.resolveKey(k)
		if !ok || isReadOnly(p) {
			continue
		}
		rank := 1
		if p.Sub != nil || p.Filter != nil {
			rank = 2
		}
		assignments = append(assignments, assignment{key: k, path: p, value: v, rank: rank})
	}
	sortAssignments(assignments)
	for _, a := range assignments {
		var err error
		switch {
		case a.rank > 0:
			err = e.set(a.path, a.value, kind)
		case a.path.Extension == e.rt.Schema.ID:
			// Core attributes wrapped in the core schema URN.
			inner, ok := a.value.(map[string]any)
			if !ok {
				return schema.Errorf(schema.ScimTypeInvalidValue, "%s must be an object of attributes, not %s", a.key, describe(a.value))
			}
			err = e.applyObject(kind, inner)
		default:
			err = e.setExtension(a.path.Extension, a.value, kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sortAssignments orders assignments from whole schemas to attributes to
// sub-attributes, and by key within each.
func sortAssignments(assignments []assignment) {
	slices.SortFunc(assignments, func(a, b assignment) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), strings.Compare(a.key, b.key))
	})
}

// resolveKey resolves a key of a path-less value. Plain names, the
// common case, skip the path parser.
func (e *editor) resolveKey(k string) (filter.Path, bool) {
	if !strings.ContainsAny(k, ".:[") {
		a, ok := e.rt.Attribute(k)
		return filter.Path{Attribute: a}, ok
	}
	p, err := ParsePath(k, e.rt)
	return p, err == nil && p.Attribute != nil
}

func isReadOnly(p filter.Path) bool {
	return p.Attribute.Mutability == schema.ReadOnly || p.Sub != nil && p.Sub.Mutability == schema.ReadOnly
}

// setExtension applies an add or replace whose target is a whole
// extension schema. Its value is an object of the extension's attributes;
// like a complex attribute's, attributes it leaves out are kept.
func (e *editor) setExtension(urn string, raw any, kind opKind) error {
	obj, ok := raw.(map[string]any)
	if !ok {
		if raw == nil || raw == "" {
			if kind == opReplace {
				delete(e.res, urn)
			}
			return nil
		}
		return schema.Errorf(schema.ScimTypeInvalidValue, "%s must be an object of attributes, not %s", urn, describe(raw))
	}
	ext, _ := e.rt.Extension(urn)
	assignments := make([]assignment, 0, len(obj))
	for k, v := range obj {
		name, subName, dotted := strings.Cut(k, ".")
		a, ok := ext.Attribute(name)
		if !ok {
			continue
		}
		p := filter.Path{Extension: urn, Attribute: a}
		rank := 1
		if dotted {
			if p.Sub, ok = a.SubAttribute(subName); !ok {
				continue
			}
			rank = 2
		}
		if isReadOnly(p) {
			continue
		}
		assignments = append(assignments, assignment{key: k, path: p, value: v, rank: rank})
	}
	sortAssignments(assignments)
	for _, a := range assignments {
		if err := e.set(a.path, a.value, kind); err != nil {
			return err
		}
	}
	return nil
}

// container returns the map that holds the attributes of an extension
// (a private copy, created if create is set and it is missing), or the
// resource itself for core and common attributes.
func (e *editor) container(ext string, create bool) map[string]any {
	if ext == "" {
		return e.res
	}
	obj, _ := e.res[ext].(map[string]any)
	switch {
	case obj != nil:
		obj = maps.Clone(obj)
	case create:
		obj = make(map[string]any)
	default:
		return nil
	}
	e.res[ext] = obj
	return obj
}

// set applies an add or replace with an explicit path.
func (e *editor) set(p filter.Path, raw any, kind opKind) error {
	if p.Attribute == nil {
		return e.setExtension(p.Extension, raw, kind)
	}
	c := e.container(p.Extension, true)
	a := p.Attribute
	switch {
	case p.Filter != nil:
		return setFiltered(c, p, raw, kind)
	case p.Sub != nil && a.MultiValued:
		return setSubOfEach(c, p, raw)
	case p.Sub != nil:
		v, err := normalize(p.Sub, raw)
		if err != nil {
			return err
		}
		obj := cloneMap(c[a.Name])
		store(obj, p.Sub.Name, v)
		store(c, a.Name, obj)
		return nil
	case a.MultiValued:
		values, err := normalizeList(a, raw)
		if err != nil {
			return err
		}
		var list []any
		if kind == opAdd {
			list = cloneList(c[a.Name])
		}
		store(c, a.Name, addValues(a, list, values))
		return nil
	case a.Type == schema.TypeComplex:
		obj, isObject := raw.(map[string]any)
		if !isObject {
			// A bare value (Entra's manager id) or "" replaces the whole
			// value: keeping the old $ref would point at the old manager.
			v, err := normalize(a, raw)
			if err != nil {
				return err
			}
			store(c, a.Name, v)
			return nil
		}
		// Sub-attributes left out are kept (RFC 7644 §3.5.2.3), except
		// when the value names a different resource: a manager's new
		// "value" makes the old $ref and displayName wrong.
		merged := cloneMap(c[a.Name])
		if id, ok := identity(a); ok && hasKeyFold(obj, id.Name) {
			clear(merged)
		}
		if err := mergeSubAttributes(a, merged, obj); err != nil {
			return err
		}
		store(c, a.Name, merged)
		return nil
	}
	v, err := normalize(a, raw)
	if err != nil {
		return err
	}
	store(c, a.Name, v)
	return nil
}

// setSubOfEach sets a sub-attribute of every value of a multi-valued
// attribute (emails.value), creating a value if there is none.
func setSubOfEach(c map[string]any, p filter.Path, raw any) error {
	a := p.Attribute
	v, err := normalize(p.Sub, raw)
	if err != nil {
		return err
	}
	list := cloneList(c[a.Name])
	if len(list) == 0 && v != nil {
		list = append(list, map[string]any{})
	}
	primary := -1
	for i, el := range list {
		obj := cloneMap(el)
		store(obj, p.Sub.Name, v)
		list[i] = obj
		if isPrimary(obj) {
			primary = i
		}
	}
	storeList(c, a, list, primary)
	return nil
}

// setFiltered applies an add or replace through a value filter:
// emails[type eq "work"] or emails[type eq "work"].value. When nothing
// matches, the value is created from the filter's equalities, because
// Entra sends replace emails[type eq "work"].value to a user without a
// work address and expects one to appear.
func setFiltered(c map[string]any, p filter.Path, raw any, kind opKind) error {
	a := p.Attribute
	list := cloneList(c[a.Name])
	matched := matchingIndexes(list, p.Filter)

	target := a
	if p.Sub != nil {
		target = p.Sub
	}
	v, err := normalizeOne(target, raw)
	if err != nil {
		return err
	}
	if v == nil && p.Sub == nil {
		// Replacing values with nothing removes them; adding nothing
		// changes nothing.
		if kind == opReplace {
			store(c, a.Name, deleteIndexes(list, matched))
		}
		return nil
	}

	primary := -1
	if len(matched) == 0 {
		if v == nil {
			return nil
		}
		created, ok := equalities(p.Filter)
		if !ok {
			return schema.Errorf(schema.ScimTypeNoTarget, "no value of %s matches %s", a.Name, p.Filter)
		}
		if p.Sub != nil {
			created[p.Sub.Name] = v
		} else {
			maps.Copy(created, v.(map[string]any))
		}
		list = append(list, created)
		if isPrimary(created) {
			primary = len(list) - 1
		}
		storeList(c, a, list, primary)
		return nil
	}

	for _, i := range matched {
		var obj map[string]any
		switch {
		case p.Sub != nil:
			obj = cloneMap(list[i])
			store(obj, p.Sub.Name, v)
		case kind == opReplace:
			// The new value replaces the old one but keeps what the
			// filter selected it by, so that it still matches.
			obj, _ = equalities(p.Filter)
			maps.Copy(obj, v.(map[string]any))
		default:
			obj = cloneMap(list[i])
			maps.Copy(obj, v.(map[string]any))
		}
		list[i] = obj
		if isPrimary(obj) {
			primary = i
		}
	}
	storeList(c, a, list, primary)
	return nil
}

// remove applies a remove operation.
func (e *editor) remove(p filter.Path, raw any) error {
	if p.Attribute == nil {
		delete(e.res, p.Extension)
		return nil
	}
	c := e.container(p.Extension, false)
	if c == nil {
		return nil
	}
	a := p.Attribute
	switch {
	case p.Filter == nil && p.Sub == nil:
		if a.MultiValued && raw != nil {
			// Entra removes members by listing them in value:
			// {"op":"Remove","path":"members","value":[{"value":"id"}]}.
			doomed, err := normalizeList(a, raw)
			if err != nil {
				return err
			}
			list := slices.DeleteFunc(cloneList(c[a.Name]), func(el any) bool {
				return slices.ContainsFunc(doomed, func(d any) bool { return matchesItem(a, el, d) })
			})
			store(c, a.Name, list)
			return nil
		}
		delete(c, a.Name)
	case p.Filter == nil && !a.MultiValued:
		obj := cloneMap(c[a.Name])
		delete(obj, p.Sub.Name)
		store(c, a.Name, obj)
	case p.Filter == nil:
		list := cloneList(c[a.Name])
		for i, el := range list {
			obj := cloneMap(el)
			delete(obj, p.Sub.Name)
			list[i] = obj
		}
		storeList(c, a, list, -1)
	case p.Sub == nil:
		list := cloneList(c[a.Name])
		store(c, a.Name, deleteIndexes(list, matchingIndexes(list, p.Filter)))
	default:
		list := cloneList(c[a.Name])
		for _, i := range matchingIndexes(list, p.Filter) {
			obj := cloneMap(list[i])
			delete(obj, p.Sub.Name)
			list[i] = obj
		}
		storeList(c, a, list, -1)
	}
	return nil
}

// finish restores the invariants every stored resource keeps: no empty
// extension objects, and a "schemas" list that starts with the core
// schema, uses canonical URNs without duplicates, and names every
// extension present. URNs it does not know are kept.
func (e *editor) finish() {
	schemas := []any{e.rt.Schema.ID}
	add := func(urn string) {
		for _, s := range schemas {
			if strings.EqualFold(s.(string), urn) {
				return
			}
		}
		schemas = append(schemas, urn)
	}
	existing, _ := e.res["schemas"].([]any)
	for _, s := range existing {
		urn, ok := s.(string)
		if !ok || urn == "" {
			continue
		}
		if c, known := e.rt.CanonicalURN(urn); known {
			urn = c
		}
		add(urn)
	}
	for _, ext := range e.rt.Extensions {
		urn := ext.Schema.ID
		v, present := e.res[urn]
		if !present {
			continue
		}
		if obj, _ := v.(map[string]any); len(obj) > 0 {
			add(urn)
		} else {
			delete(e.res, urn)
		}
	}
	e.res["schemas"] = schemas
}

// storeList stores a multi-valued attribute whose values were edited in
// place, restoring the invariants of its values: at most one primary (the
// one at index primary, if the operation just chose one), none left empty
// by removing sub-attributes, and no duplicates. Removing whole values
// breaks none of these, so removals store their list directly.
func storeList(c map[string]any, a *schema.Attribute, list []any, primary int) {
	list = dropEmpty(settlePrimary(a, list, primary))
	store(c, a.Name, addValues(a, nil, list))
}

// addValues adds values to a multi-valued attribute without duplicates
// (RFC 7644 §3.5.2.1): a value already present is merged into, not added
// again. If any added value is primary, it becomes the only primary one.
func addValues(a *schema.Attribute, list, values []any) []any {
	find := newFinder(a, list, len(values))
	primary := -1
	for _, v := range values {
		i := find.index(list, v)
		switch {
		case i < 0:
			list = append(list, v)
			i = len(list) - 1
			find.added(v, i)
		case a.Type == schema.TypeComplex:
			obj := cloneMap(list[i])
			maps.Copy(obj, v.(map[string]any))
			list[i] = obj
		}
		if isPrimary(v) {
			primary = i
		}
	}
	return settlePrimary(a, list, primary)
}

// finder finds a value in a list. Group member lists run to many
// thousands, so when many values identified by id are added, they are
// found through a map.
type finder struct {
	a   *schema.Attribute
	id  *schema.Attribute // the identifying sub-attribute, if any
	ids map[string]int    // identity key → index in the list
}

func newFinder(a *schema.Attribute, list []any, adding int) *finder {
	f := &finder{a: a}
	f.id, _ = identity(a)
	// Building the map costs more than a few scans of the list.
	if f.id == nil || adding <= 8 {
		return f
	}
	f.ids = make(map[string]int, len(list))
	for i := len(list) - 1; i >= 0; i-- {
		f.added(list[i], i)
	}
	return f
}

func (f *finder) index(list []any, v any) int {
	switch {
	case f.ids != nil:
		if k, ok := f.key(v); ok {
			if i, found := f.ids[k]; found {
				return i
			}
		}
		return -1
	case f.id != nil:
		obj, _ := v.(map[string]any)
		id := obj[f.id.Name]
		if id == nil {
			return -1
		}
		return slices.IndexFunc(list, func(el any) bool {
			elObj, _ := el.(map[string]any)
			return equalScalar(f.id, elObj[f.id.Name], id)
		})
	}
	return slices.IndexFunc(list, func(el any) bool { return sameValue(f.a, el, v) })
}

func (f *finder) added(v any, i int) {
	if f.ids == nil {
		return
	}
	if k, ok := f.key(v); ok {
		f.ids[k] = i
	}
}

// key is the identity of a value that points at another resource: its
// id, folded unless ids are case-exact.
func (f *finder) key(v any) (string, bool) {
	obj, _ := v.(map[string]any)
	s, ok := obj[f.id.Name].(string)
	if !ok {
		return "", false
	}
	if !f.id.CaseExact {
		s = strings.ToLower(s)
	}
	return s, true
}

// settlePrimary keeps "primary" true on at most one value: the one at
// index chosen, if any, which an operation just made primary (RFC 7643
// §2.4, RFC 7644 §3.5.2).
func settlePrimary(a *schema.Attribute, list []any, chosen int) []any {
	if chosen < 0 || a.Type != schema.TypeComplex {
		return list
	}
	for i, el := range list {
		if i != chosen && isPrimary(el) {
			obj := cloneMap(el)
			obj["primary"] = false
			list[i] = obj
		}
	}
	return list
}

func isPrimary(v any) bool {
	obj, _ := v.(map[string]any)
	return obj["primary"] == true
}

// sameValue reports whether two values of a multi-valued attribute are
// the same value. Values with a $ref sub-attribute (members, groups) point
// at other resources and are identified by their "value", the target's
// id; others must be equal in every sub-attribute.
func sameValue(a *schema.Attribute, x, y any) bool {
	if a.Type != schema.TypeComplex {
		return equalScalar(a, x, y)
	}
	xo, _ := x.(map[string]any)
	yo, _ := y.(map[string]any)
	if xo == nil || yo == nil {
		return false
	}
	if id, ok := identity(a); ok {
		return xo[id.Name] != nil && equalScalar(id, xo[id.Name], yo[id.Name])
	}
	if len(xo) != len(yo) {
		return false
	}
	return containsAll(a, xo, yo)
}

// matchesItem reports whether a value is one that a remove lists in its
// value: the same value for resource references, else one that has every
// sub-attribute the item gives.
func matchesItem(a *schema.Attribute, el, item any) bool {
	if _, ok := identity(a); ok || a.Type != schema.TypeComplex {
		return sameValue(a, el, item)
	}
	obj, _ := el.(map[string]any)
	want, _ := item.(map[string]any)
	return obj != nil && want != nil && containsAll(a, obj, want)
}

func hasKeyFold(obj map[string]any, name string) bool {
	for k := range obj {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// identity returns the sub-attribute that identifies values which point
// at other resources.
func identity(a *schema.Attribute) (*schema.Attribute, bool) {
	if _, ok := a.SubAttribute("$ref"); !ok {
		return nil, false
	}
	return a.SubAttribute("value")
}

// containsAll reports whether obj has every sub-attribute of want with an
// equal value.
func containsAll(a *schema.Attribute, obj, want map[string]any) bool {
	for k, w := range want {
		sub, ok := a.SubAttribute(k)
		if !ok || !equalScalar(sub, obj[k], w) {
			return false
		}
	}
	return true
}

// equalScalar compares two simple values of attribute a, honouring
// caseExact. Values of other types, which a stored resource should not
// hold, are never equal.
func equalScalar(a *schema.Attribute, x, y any) bool {
	switch xv := x.(type) {
	case string:
		yv, ok := y.(string)
		if a.CaseExact {
			return ok && xv == yv
		}
		return ok && strings.EqualFold(xv, yv)
	case bool:
		yv, ok := y.(bool)
		return ok && xv == yv
	case float64:
		yv, ok := y.(float64)
		return ok && xv == yv
	}
	return false
}

// equalities returns the sub-attribute values a filter pins down with eq,
// joined by and: emails[type eq "work" and primary eq true] gives
// {type: work, primary: true}. It reports false for any other filter.
func equalities(f filter.Expr) (map[string]any, bool) {
	out := make(map[string]any)
	var walk func(filter.Expr) bool
	walk = func(f filter.Expr) bool {
		switch f := f.(type) {
		case *filter.Logical:
			return f.Op == filter.And && walk(f.Left) && walk(f.Right)
		case *filter.Compare:
			if f.Op != filter.Eq || f.Value == nil || f.Path.Sub != nil || f.Path.Attribute.Mutability == schema.ReadOnly {
				return false
			}
			// "" is no value, so there is nothing to set.
			if f.Value != "" {
				out[f.Path.Attribute.Name] = f.Value
			}
			return true
		}
		return false
	}
	return out, walk(f)
}

func matchingIndexes(list []any, f filter.Expr) []int {
	var out []int
	for i, el := range list {
		if obj, ok := el.(map[string]any); ok && filter.Match(f, obj) {
			out = append(out, i)
		}
	}
	return out
}

// deleteIndexes removes the values at the given ascending indexes.
func deleteIndexes(list []any, indexes []int) []any {
	out := list[:0]
	for i, el := range list {
		if len(indexes) > 0 && indexes[0] == i {
			indexes = indexes[1:]
			continue
		}
		out = append(out, el)
	}
	return out
}

// dropEmpty removes values left empty by removing their sub-attributes.
func dropEmpty(list []any) []any {
	return slices.DeleteFunc(list, func(el any) bool {
		obj, ok := el.(map[string]any)
		return ok && len(obj) == 0
	})
}

// cloneList copies a multi-valued attribute's list for editing. A stored
// single value, which a canonical resource would not hold, is treated as
// a one-element list.
func cloneList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return slices.Clone(v)
	}
	return []any{v}
}

// cloneMap copies a complex value for editing, or starts an empty one.
func cloneMap(v any) map[string]any {
	if obj, ok := v.(map[string]any); ok {
		return maps.Clone(obj)
	}
	return make(map[string]any)
}
