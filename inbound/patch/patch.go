package patch

import (
	"errors"
	"maps"
	"strconv"
	"strings"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/schema"
)

// PatchOpURN is the schema of a PATCH request body (RFC 7644 §3.5.2).
const PatchOpURN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

// Request is a PATCH request body as encoding/json decodes it.
type Request struct {
	Schemas    []string    `json:"schemas"`
	Operations []Operation `json:"Operations"`
}

// Operation is one PATCH operation. Value is as encoding/json decodes it
// into an any.
type Operation struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

type opKind uint8

const (
	opAdd opKind = iota + 1
	opReplace
	opRemove
)

// parseOp accepts op names in any case: Entra sends "Add", "Replace" and
// "Remove".
func parseOp(name string) (opKind, bool) {
	switch {
	case strings.EqualFold(name, "add"):
		return opAdd, true
	case strings.EqualFold(name, "replace"):
		return opReplace, true
	case strings.EqualFold(name, "remove"):
		return opRemove, true
	}
	return 0, false
}

// ParsePath parses the path of a PATCH operation (RFC 7644 §3.5.2):
// "name.givenName", "emails[type eq \"work\"].value",
// "members[value eq \"id\"]",
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
// or a bare extension URN (a Path with a nil Attribute). Errors are
// *schema.Error with scimType invalidPath.
func ParsePath(path string, rt *schema.ResourceType) (filter.Path, error) {
	p, err := filter.ParsePath(path, rt)
	if err != nil {
		return filter.Path{}, err
	}
	if p.Filter != nil && !p.Attribute.MultiValued {
		return filter.Path{}, schema.Errorf(schema.ScimTypeInvalidPath,
			"%s is single-valued, so it takes no value filter", p.Attribute.Name)
	}
	return p, nil
}

// Apply applies PATCH operations to a resource and returns the result,
// leaving resource itself untouched. The operations apply in order and
// all or nothing (RFC 7644 §3.5.2): on error the result is nil. The
// result shares the values no operation changed with resource, so copy
// a nested value before modifying it in either.
//
// resource is a stored resource in the canonical form Normalize and
// Apply produce. The result is canonical too: no nulls or empty values,
// the schema's attribute spelling, complex manager values, and a
// "schemas" list naming the core schema and every extension present.
//
// Beyond RFC 7644, Apply accepts what IdPs really send: op names in any
// case; string booleans; path-less values whose keys are dotted or
// URN-qualified paths; null or "" to clear an attribute; add or replace
// through a value filter that matches nothing, which creates the value
// from the filter's equalities; Entra's removal of members listed in
// "value"; and readOnly attributes inside values, which are ignored.
// An explicit path to a readOnly attribute is still a mutability error.
//
// Errors are *schema.Error with scimType invalidSyntax (unknown op),
// invalidPath, invalidValue, mutability or noTarget.
func Apply(resource map[string]any, ops []Operation, rt *schema.ResourceType) (map[string]any, error) {
	e := &editor{rt: rt, res: maps.Clone(resource)}
	if e.res == nil {
		e.res = make(map[string]any)
	}
	for i, op := range ops {
		if err := e.apply(op); err != nil {
			return nil, annotate(err, i)
		}
	}
	e.finish()
	for _, a := range rt.Schema.Attributes {
		if _, had := resource[a.Name]; had && a.Required && e.res[a.Name] == nil {
			return nil, schema.Errorf(schema.ScimTypeInvalidValue, "%s is required and cannot be removed", a.Name)
		}
	}
	return e.res, nil
}

// Normalize canonicalises a resource a client sent with POST or PUT:
// nulls and "" are dropped as absent (Entra sends "title": null), string
// booleans become booleans, attribute names take the schema's spelling,
// legacy URNs (OneLogin's) and URN-qualified keys are folded into the
// extension objects, manager becomes {"value": …}, and readOnly
// attributes (id, meta, groups) and unknown attributes are dropped. The
// "schemas" list is canonicalised; URNs of unknown extensions, such as
// Entra's ADSCIM Group schema, are kept in it. Repeated values of a
// multi-valued attribute are merged, and if several are primary the last
// stays primary. The writeOnly password is kept for the caller to
// consume. The result shares nothing with resource.
//
// Errors are *schema.Error with scimType invalidValue, for values of the
// wrong type and for a missing required attribute.
func Normalize(resource map[string]any, rt *schema.ResourceType) (map[string]any, error) {
	e := &editor{rt: rt, res: make(map[string]any, len(resource))}
	if err := e.applyObject(opAdd, resource); err != nil {
		return nil, err
	}
	e.finish()
	for _, a := range rt.Schema.Attributes {
		if a.Required && e.res[a.Name] == nil {
			return nil, schema.Errorf(schema.ScimTypeInvalidValue, "%s is required", a.Name)
		}
	}
	return e.res, nil
}

func (e *editor) apply(op Operation) error {
	kind, ok := parseOp(op.Op)
	if !ok {
		return schema.Errorf(schema.ScimTypeInvalidSyntax, "unknown op %q; want add, replace or remove", op.Op)
	}
	if strings.TrimSpace(op.Path) == "" {
		if kind == opRemove {
			return schema.Errorf(schema.ScimTypeNoTarget, "remove needs a path")
		}
		obj, ok := op.Value.(map[string]any)
		if !ok {
			return schema.Errorf(schema.ScimTypeInvalidValue, "without a path, value must be an object of attributes, not %s", describe(op.Value))
		}
		return e.applyObject(kind, obj)
	}
	p, err := ParsePath(op.Path, e.rt)
	if err != nil {
		return err
	}
	for _, a := range []*schema.Attribute{p.Attribute, p.Sub} {
		if a != nil && a.Mutability == schema.ReadOnly {
			return schema.Errorf(schema.ScimTypeMutability, "%s is read-only", a.Name)
		}
	}
	if kind == opRemove {
		return e.remove(p, op.Value)
	}
	return e.set(p, op.Value, kind)
}

// annotate says which operation failed, keeping the scimType.
func annotate(err error, i int) error {
	var se *schema.Error
	if !errors.As(err, &se) {
		return err
	}
	return &schema.Error{ScimType: se.ScimType, Detail: "Operations[" + strconv.Itoa(i) + "]: " + se.Detail}
}
