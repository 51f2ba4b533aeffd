package schema

import (
	"fmt"
	"slices"
	"strings"
)

// Schema is one schema resource: a URN and the attributes it defines
// (RFC 7643 §7). Schemas are shared, immutable tables.
type Schema struct {
	ID          string
	Name        string
	Description string
	Attributes  []*Attribute

	attrs index
}

func newSchema(id, name, description string, attrs ...*Attribute) *Schema {
	return &Schema{ID: id, Name: name, Description: description, Attributes: attrs, attrs: newIndex(attrs)}
}

// Attribute finds a top-level attribute of the schema by name, ignoring
// case.
func (s *Schema) Attribute(name string) (*Attribute, bool) {
	return s.attrs.lookup(name)
}

// Extension is a schema extension of a resource type (RFC 7643 §6).
type Extension struct {
	Schema   *Schema
	Required bool
}

// ResourceType is a kind of resource the service provider serves, such as
// User, with its core schema and extensions (RFC 7643 §6). Resource types
// are shared, immutable tables.
type ResourceType struct {
	ID          string
	Name        string
	Endpoint    string
	Description string
	Schema      *Schema
	Extensions  []Extension

	// attrs indexes the common and core attributes together.
	attrs index
	// urns maps every schema URN this type accepts, legacy aliases
	// included, to its canonical spelling, both as spelled and lower-cased.
	urns map[string]string
}

func newResourceType(id, endpoint, description string, core *Schema, legacyCore string, exts ...Extension) *ResourceType {
	rt := &ResourceType{
		ID:          id,
		Name:        id,
		Endpoint:    endpoint,
		Description: description,
		Schema:      core,
		Extensions:  exts,
		attrs:       newIndex(append(slices.Clone(commonAttributes), core.Attributes...)),
		urns:        make(map[string]string),
	}
	alias := func(urn, canonical string) {
		rt.urns[urn] = canonical
		rt.urns[strings.ToLower(urn)] = canonical
	}
	alias(core.ID, core.ID)
	if legacyCore != "" {
		alias(legacyCore, core.ID)
	}
	for _, e := range exts {
		alias(e.Schema.ID, e.Schema.ID)
		if legacy, ok := legacyExtensionURNs[e.Schema.ID]; ok {
			alias(legacy, e.Schema.ID)
		}
	}
	return rt
}

// CanonicalURN maps a schema URN of this resource type, in any case or in
// a legacy spelling OneLogin still sends, to its RFC 7643 spelling. It
// reports false for URNs the resource type does not know.
func (rt *ResourceType) CanonicalURN(urn string) (string, bool) {
	if !hasURNPrefix(urn) {
		return "", false
	}
	if c, ok := rt.urns[urn]; ok {
		return c, true
	}
	c, ok := rt.urns[strings.ToLower(urn)]
	return c, ok
}

// Extension returns the extension schema with the given canonical URN.
func (rt *ResourceType) Extension(urn string) (*Schema, bool) {
	for _, e := range rt.Extensions {
		if e.Schema.ID == urn {
			return e.Schema, true
		}
	}
	return nil, false
}

// Attribute finds an unqualified attribute name among the common
// attributes and the core schema, ignoring case. Extension attributes
// must be URN-qualified (RFC 7644 §3.10), so they are not found here.
func (rt *ResourceType) Attribute(name string) (*Attribute, bool) {
	return rt.attrs.lookup(name)
}

// AttrPath locates an attribute of a resource and optionally one of its
// sub-attributes.
type AttrPath struct {
	// Extension is the canonical URN of the extension schema that holds
	// Attribute, whose values live in the resource under that URN. It is
	// empty for core and common attributes, which live at the top level.
	Extension string
	// Attribute is nil when the path names a whole extension schema.
	Attribute *Attribute
	// Sub is the sub-attribute, if the path names one.
	Sub *Attribute
}

// String renders the path canonically: URN-qualified for extension
// attributes, plain for core ones.
func (p AttrPath) String() string {
	var b strings.Builder
	if p.Extension != "" {
		b.WriteString(p.Extension)
		if p.Attribute != nil {
			b.WriteByte(':')
		}
	}
	if p.Attribute != nil {
		b.WriteString(p.Attribute.Name)
	}
	if p.Sub != nil {
		b.WriteByte('.')
		b.WriteString(p.Sub.Name)
	}
	return b.String()
}

// Resolve resolves an attribute path without value filters:
// "userName", "name.familyName", "emails.Value",
// "urn:ietf:params:scim:schemas:core:2.0:User:userName",
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
// or a bare extension URN, which names the whole extension. Names and URNs
// are matched without regard to case and legacy URNs are accepted.
func (rt *ResourceType) Resolve(path string) (AttrPath, error) {
	urn, rest, err := rt.SplitURN(path)
	if err != nil {
		return AttrPath{}, err
	}
	if urn != "" && rest == "" {
		if urn == rt.Schema.ID {
			return AttrPath{}, fmt.Errorf("%q names the core schema, not an attribute", path)
		}
		return AttrPath{Extension: urn}, nil
	}
	name, subName, dotted := strings.Cut(rest, ".")
	var p AttrPath
	switch {
	case urn == "" || urn == rt.Schema.ID:
		a, ok := rt.Attribute(name)
		if !ok {
			return AttrPath{}, fmt.Errorf("unknown attribute %q", path)
		}
		p.Attribute = a
	default:
		ext, _ := rt.Extension(urn)
		a, ok := ext.Attribute(name)
		if !ok {
			return AttrPath{}, fmt.Errorf("unknown attribute %q", path)
		}
		p.Extension, p.Attribute = urn, a
	}
	if dotted {
		sub, ok := p.Attribute.SubAttribute(subName)
		if !ok {
			return AttrPath{}, fmt.Errorf("unknown sub-attribute %q", path)
		}
		p.Sub = sub
	}
	return p, nil
}

// SplitURN splits a possibly URN-qualified attribute path into the
// canonical URN of its schema and the rest. Plain names come back with an
// empty URN; a bare schema URN comes back with an empty rest. A URN this
// resource type does not know is an error.
func (rt *ResourceType) SplitURN(path string) (urn, rest string, err error) {
	if !hasURNPrefix(path) {
		return "", path, nil
	}
	if c, ok := rt.CanonicalURN(path); ok {
		return c, "", nil
	}
	// Attribute names never contain ':', but URNs contain '.' ("2.0"), so
	// the URN ends at the last colon.
	i := strings.LastIndexByte(path, ':')
	c, ok := rt.CanonicalURN(path[:i])
	if !ok {
		return "", "", fmt.Errorf("unknown schema in %q", path)
	}
	if i == len(path)-1 {
		return "", "", fmt.Errorf("no attribute name after the schema in %q", path)
	}
	return c, path[i+1:], nil
}

func hasURNPrefix(s string) bool {
	return len(s) >= 4 && strings.EqualFold(s[:4], "urn:")
}
