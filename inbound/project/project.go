// Package project applies the attributes and excludedAttributes query
// parameters (RFC 7644 §3.4.2.5, §3.9) to SCIM resources held as
// JSON-decoded maps, together with the schema's "returned"
// characteristic: id and schemas are always returned, password never.
package project

import (
	"maps"
	"strings"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/schema"
)

// Projection selects the attributes of a response. Build one per request
// with New and apply it to each resource; it is safe for concurrent use.
type Projection struct {
	rt *schema.ResourceType
	// include holds what the attributes parameter names; nil when the
	// parameter is absent and every attribute returned by default is.
	include map[key]*selection
	// exclude holds what the excludedAttributes parameter names.
	exclude map[key]*selection
}

// key names a top-level attribute by its extension URN ("" for core and
// common attributes) and schema name, or a whole extension by its URN and
// an empty name.
type key struct {
	ext, name string
}

// selection is what one parameter names within one attribute. Several
// entries for the same attribute merge into the broader reading:
// emails[type eq "work"] with emails.value names every email whole.
type selection struct {
	whole  bool            // some entry named the attribute, not a sub-attribute
	subs   map[string]bool // sub-attributes named, by schema name
	all    bool            // some entry named all values, without a value filter
	filter filter.Expr     // the value filters of the other entries, or-ed
}

// New parses the attributes and excludedAttributes parameters, each a
// comma-separated list of attribute paths such as "userName",
// "name.givenName", "emails[type eq \"work\"].value" or
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager".
// An empty string leaves that parameter out. Attributes the resource type
// does not have are ignored, since a client may ask for attributes a
// service provider does not support; a malformed path is an error with
// scimType invalidPath.
func New(rt *schema.ResourceType, attributes, excludedAttributes string) (*Projection, error) {
	p := &Projection{rt: rt}
	var err error
	if p.include, err = parseList(rt, attributes); err != nil {
		return nil, err
	}
	if p.exclude, err = parseList(rt, excludedAttributes); err != nil {
		return nil, err
	}
	return p, nil
}

// parseList parses one parameter; it returns nil for an empty one.
func parseList(rt *schema.ResourceType, list string) (map[key]*selection, error) {
	entries := splitList(list)
	if len(entries) == 0 {
		return nil, nil
	}
	into := make(map[key]*selection, len(entries))
	for _, entry := range entries {
		// Skip attributes we do not have before parsing the whole entry,
		// so that only malformed syntax is an error.
		head, _, _ := strings.Cut(entry, "[")
		if _, err := rt.Resolve(head); err != nil {
			continue
		}
		path, err := filter.ParsePath(entry, rt)
		if err != nil {
			return nil, err
		}
		k := key{ext: path.Extension}
		if path.Attribute != nil {
			k.name = path.Attribute.Name
		}
		sel := into[k]
		if sel == nil {
			sel = &selection{subs: map[string]bool{}}
			into[k] = sel
		}
		if path.Sub == nil {
			sel.whole = true
		} else {
			sel.subs[path.Sub.Name] = true
		}
		switch {
		case path.Filter == nil:
			sel.all = true
		case sel.filter == nil:
			sel.filter = path.Filter
		default:
			sel.filter = &filter.Logical{Op: filter.Or, Left: sel.filter, Right: path.Filter}
		}
	}
	return into, nil
}

// splitList splits a parameter at commas outside brackets and quotes,
// since a value filter may contain both.
func splitList(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ',' && depth <= 0:
			out = appendEntry(out, s[start:i])
			start = i + 1
		}
	}
	return appendEntry(out, s[start:])
}

func appendEntry(out []string, entry string) []string {
	if entry = strings.TrimSpace(entry); entry != "" {
		out = append(out, entry)
	}
	return out
}

// Returns reports whether the projection may return the named top-level
// attribute, so that the caller can avoid loading what it would drop:
// group members under excludedAttributes=members, say.
func (p *Projection) Returns(attribute string) bool {
	ap, err := p.rt.Resolve(attribute)
	if err != nil || ap.Attribute == nil || ap.Sub != nil {
		return false
	}
	switch ap.Attribute.Returned {
	case schema.ReturnedNever:
		return false
	case schema.ReturnedAlways:
		return true
	}
	k := key{ext: ap.Extension, name: ap.Attribute.Name}
	wholeExt := key{ext: ap.Extension}
	switch {
	case p.include != nil && p.include[k] == nil && (ap.Extension == "" || p.include[wholeExt] == nil):
		return false
	case p.include == nil && ap.Attribute.Returned == schema.ReturnedRequest:
		return false
	case ap.Extension != "" && p.exclude[wholeExt] != nil:
		return false
	}
	ex := p.exclude[k]
	return ex == nil || !ex.whole || !ex.all
}

// Apply returns the projected resource. It does not modify resource, but
// the result shares with it the values it keeps whole.
func (p *Projection) Apply(resource map[string]any) map[string]any {
	out := make(map[string]any, len(resource))
	for k, v := range resource {
		if urn, ok := p.rt.CanonicalURN(k); ok && urn != p.rt.Schema.ID {
			if obj := p.extension(urn, v); obj != nil {
				out[k] = obj
			}
			continue
		}
		a, ok := p.rt.Attribute(k)
		if !ok {
			// Not ours to judge: kept unless the client chose attributes.
			if p.include == nil {
				out[k] = v
			}
			continue
		}
		if pv := p.value(key{name: a.Name}, a, v, false); pv != nil {
			out[k] = pv
		}
	}
	return out
}

// extension projects an extension object, or returns nil to drop it.
func (p *Projection) extension(urn string, v any) map[string]any {
	ext, _ := p.rt.Extension(urn)
	obj, _ := v.(map[string]any)
	if ext == nil || obj == nil || p.exclude[key{ext: urn}] != nil {
		return nil
	}
	whole := p.include[key{ext: urn}] != nil
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		a, ok := ext.Attribute(k)
		if !ok {
			if p.include == nil || whole {
				out[k] = v
			}
			continue
		}
		if pv := p.value(key{ext: urn, name: a.Name}, a, v, whole); pv != nil {
			out[k] = pv
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// value projects one attribute's value, or returns nil to drop it.
// wholeExt says the attribute's extension was named whole.
func (p *Projection) value(k key, a *schema.Attribute, v any, wholeExt bool) any {
	switch a.Returned {
	case schema.ReturnedNever:
		return nil
	case schema.ReturnedAlways:
		return v
	}
	switch {
	case p.include != nil && !wholeExt:
		sel := p.include[k]
		if sel == nil {
			return nil
		}
		v = keep(v, sel)
	case p.include == nil && a.Returned == schema.ReturnedRequest:
		return nil
	}
	if sel := p.exclude[k]; sel != nil {
		v = drop(v, sel)
	}
	if v == nil {
		return nil
	}
	return dropNeverReturned(a, v)
}

// keep narrows a value to what an attributes selection names.
func keep(v any, sel *selection) any {
	if sel.whole && sel.all {
		return v
	}
	filterOf := sel.filter
	if sel.all {
		filterOf = nil
	}
	return eachValue(v, func(obj map[string]any) map[string]any {
		if filterOf != nil && !filter.Match(filterOf, obj) {
			return nil
		}
		if sel.whole {
			return obj
		}
		kept := make(map[string]any, len(sel.subs))
		for name := range sel.subs {
			if sv, ok := obj[name]; ok {
				kept[name] = sv
			}
		}
		return kept
	})
}

// drop removes from a value what an excludedAttributes selection names.
func drop(v any, sel *selection) any {
	if sel.whole && sel.all {
		return nil
	}
	filterOf := sel.filter
	if sel.all {
		filterOf = nil
	}
	return eachValue(v, func(obj map[string]any) map[string]any {
		if filterOf != nil && !filter.Match(filterOf, obj) {
			return obj
		}
		if sel.whole {
			return nil
		}
		rest := maps.Clone(obj)
		for name := range sel.subs {
			delete(rest, name)
		}
		return rest
	})
}

// dropNeverReturned removes sub-attributes that are never returned.
func dropNeverReturned(a *schema.Attribute, v any) any {
	var never []string
	for _, sub := range a.SubAttributes {
		if sub.Returned == schema.ReturnedNever {
			never = append(never, sub.Name)
		}
	}
	if len(never) == 0 || v == nil {
		return v
	}
	return eachValue(v, func(obj map[string]any) map[string]any {
		rest := maps.Clone(obj)
		for _, name := range never {
			delete(rest, name)
		}
		return rest
	})
}

// eachValue rewrites a complex value, or each value of a multi-valued
// complex attribute, with fn, dropping values fn empties. It returns nil
// when nothing is left. Simple values pass through unchanged.
func eachValue(v any, fn func(map[string]any) map[string]any) any {
	switch v := v.(type) {
	case map[string]any:
		if obj := fn(v); len(obj) > 0 {
			return obj
		}
		return nil
	case []any:
		out := make([]any, 0, len(v))
		for _, el := range v {
			obj, ok := el.(map[string]any)
			if !ok {
				out = append(out, el)
				continue
			}
			if obj = fn(obj); len(obj) > 0 {
				out = append(out, obj)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}
