package patch

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/scimsync/scimsync/inbound/schema"
)

// normalize returns a client-supplied value of attribute a in canonical
// form, or nil when it carries no value: null, "", or a complex or
// multi-valued value left empty. See normalizeOne for the rules.
func normalize(a *schema.Attribute, raw any) (any, error) {
	if !a.MultiValued {
		return normalizeOne(a, raw)
	}
	list, err := normalizeList(a, raw)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	return list, nil
}

// normalizeList normalizes the values of a multi-valued attribute. A lone
// value stands for a one-element list.
func normalizeList(a *schema.Attribute, raw any) ([]any, error) {
	items, ok := raw.([]any)
	if !ok {
		if raw == nil {
			return nil, nil
		}
		items = []any{raw}
	}
	out := make([]any, 0, len(items))
	for _, item := range items {
		v, err := normalizeOne(a, item)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// normalizeOne normalizes one value of attribute a (an element, if a is
// multi-valued):
//   - null and "" mean no value, so Entra's "title": null is absent and
//     its Replace with "" clears the attribute;
//   - "True"/"false" become booleans for boolean attributes;
//   - a bare value given for a complex attribute that has a "value"
//     sub-attribute is that sub-attribute, so Entra's manager "id" is
//     stored as {"value": "id"};
//   - sub-attribute names take the schema's spelling; unknown and
//     readOnly sub-attributes are dropped, as RFC 7644 §3.3 allows.
func normalizeOne(a *schema.Attribute, raw any) (any, error) {
	if raw == nil {
		return nil, nil
	}
	switch a.Type {
	case schema.TypeComplex:
		obj, ok := raw.(map[string]any)
		if !ok {
			return complexFromScalar(a, raw)
		}
		out := make(map[string]any, len(obj))
		if err := mergeSubAttributes(a, out, obj); err != nil || len(out) == 0 {
			return nil, err
		}
		return out, nil
	case schema.TypeBoolean:
		switch v := raw.(type) {
		case bool:
			return v, nil
		case string:
			switch {
			case v == "":
				return nil, nil
			case strings.EqualFold(v, "true"):
				return true, nil
			case strings.EqualFold(v, "false"):
				return false, nil
			}
		}
		return nil, invalidValue(a, raw, "a boolean")
	case schema.TypeInteger, schema.TypeDecimal:
		f, ok := toNumber(raw)
		if !ok || a.Type == schema.TypeInteger && f != math.Trunc(f) {
			return nil, invalidValue(a, raw, "a number")
		}
		return f, nil
	}
	// string, reference, binary, dateTime
	s, ok := raw.(string)
	if !ok {
		return nil, invalidValue(a, raw, "a string")
	}
	if s == "" {
		return nil, nil
	}
	if a.Type == schema.TypeDateTime {
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, invalidValue(a, raw, "an RFC 3339 dateTime")
		}
	}
	return s, nil
}

func complexFromScalar(a *schema.Attribute, raw any) (any, error) {
	value, ok := a.SubAttribute("value")
	if _, isList := raw.([]any); isList || !ok {
		return nil, invalidValue(a, raw, "an object")
	}
	v, err := normalizeOne(value, raw)
	if err != nil || v == nil {
		return nil, err
	}
	return map[string]any{value.Name: v}, nil
}

// mergeSubAttributes writes the sub-attributes given in src into dst,
// deleting those given as null or "". When src spells one sub-attribute
// several ways, the schema's spelling wins, then the last in sorted
// order, so the outcome does not depend on map iteration order.
func mergeSubAttributes(a *schema.Attribute, dst, src map[string]any) error {
	var variants []string
	for k, v := range src {
		sub, ok := a.SubAttribute(k)
		if !ok {
			continue
		}
		if sub.Name != k {
			variants = append(variants, k)
			continue
		}
		if err := setSubAttribute(dst, sub, v); err != nil {
			return err
		}
	}
	slices.Sort(variants)
	for _, k := range variants {
		sub, _ := a.SubAttribute(k)
		if _, canonical := src[sub.Name]; canonical {
			continue
		}
		if err := setSubAttribute(dst, sub, src[k]); err != nil {
			return err
		}
	}
	return nil
}

func setSubAttribute(dst map[string]any, sub *schema.Attribute, raw any) error {
	if sub.Mutability == schema.ReadOnly {
		return nil
	}
	v, err := normalize(sub, raw)
	if err != nil {
		return err
	}
	store(dst, sub.Name, v)
	return nil
}

// store sets name to v in m, or deletes it when v is empty, so that
// resources never hold nulls or empty containers.
func store(m map[string]any, name string, v any) {
	switch x := v.(type) {
	case nil:
		delete(m, name)
		return
	case []any:
		if len(x) == 0 {
			delete(m, name)
			return
		}
	case map[string]any:
		if len(x) == 0 {
			delete(m, name)
			return
		}
	}
	m[name] = v
}

func toNumber(v any) (float64, bool) {
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return f, !math.IsInf(f, 0) && !math.IsNaN(f)
}

func invalidValue(a *schema.Attribute, raw any, want string) error {
	return schema.Errorf(schema.ScimTypeInvalidValue, "%s must be %s, not %s", a.Name, want, describe(raw))
}

// describe names a JSON value's type for error messages, quoting short
// strings so that the client can see what it sent.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			return "a string"
		}
		q, _ := json.Marshal(v)
		return "the string " + string(q)
	case bool:
		return "a boolean"
	case float64, int, int64, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "null"
}
