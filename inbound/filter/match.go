package filter

import (
	"encoding/json"
	"strings"

	"github.com/scimsync/scimsync/inbound/schema"
)

// Match reports whether a resource matches a filter. The resource is a
// SCIM resource as encoding/json decodes it into map[string]any, with
// attribute names spelled as the schema spells them (as the patch
// package's Normalize and Apply leave them); other spellings are found
// too, only more slowly. A nil Expr matches every resource.
//
// Comparisons follow RFC 7644 §3.4.2.2: a multi-valued attribute matches
// when any of its values does; strings compare case-insensitively unless
// the attribute is caseExact; dateTimes compare as instants. An attribute
// without a value matches only "ne" and "eq null".
func Match(e Expr, resource map[string]any) bool {
	if e == nil {
		return true
	}
	return e.match(resource)
}

func (e *Logical) match(m map[string]any) bool {
	if e.Op == And {
		return e.Left.match(m) && e.Right.match(m)
	}
	return e.Left.match(m) || e.Right.match(m)
}

func (e *Not) match(m map[string]any) bool { return !e.X.match(m) }

func (e *ValuePath) match(m map[string]any) bool {
	return e.Path.each(m, func(any) bool { return true })
}

func (c *Compare) match(m map[string]any) bool {
	switch {
	case c.Op == Pr:
		return c.Path.each(m, isPresent)
	case c.Value == nil:
		// "eq null" asks for absence, "ne null" for presence.
		return c.Path.each(m, isPresent) == (c.Op == Ne)
	}
	lit := c.lit
	if !c.prepared {
		lit = prepare(c)
	}
	target := c.Path.target()
	found := false
	if c.Path.each(m, func(v any) bool {
		found = true
		return test(target, c.Op, v, &lit)
	}) {
		return true
	}
	return !found && c.Op == Ne
}

// each calls fn with every non-null value the path selects in m — the
// attribute's value, or each of its values if it is multi-valued,
// narrowed by the value filter and then to the sub-attribute — until fn
// returns true. It reports whether fn did.
func (p Path) each(m map[string]any, fn func(any) bool) bool {
	if p.Attribute == nil {
		return false
	}
	if p.Extension != "" {
		ext, _ := lookup(m, p.Extension)
		if m, _ = ext.(map[string]any); m == nil {
			return false
		}
	}
	v, _ := lookup(m, p.Attribute.Name)
	if list, ok := v.([]any); ok {
		for _, el := range list {
			if p.visit(el, fn) {
				return true
			}
		}
		return false
	}
	return p.visit(v, fn)
}

// visit applies the value filter and sub-attribute to one value.
func (p Path) visit(v any, fn func(any) bool) bool {
	if v == nil {
		return false
	}
	if p.Filter == nil && p.Sub == nil {
		return fn(v)
	}
	el, ok := v.(map[string]any)
	if !ok || p.Filter != nil && !p.Filter.match(el) {
		return false
	}
	if p.Sub == nil {
		return fn(el)
	}
	sv, _ := lookup(el, p.Sub.Name)
	return sv != nil && fn(sv)
}

// lookup finds an attribute by its canonical name, falling back to a
// case-insensitive scan for resources spelled otherwise.
func lookup(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// isPresent implements "pr": a non-empty value, or a complex or
// multi-valued value with some non-empty part (RFC 7644 §3.4.2.2).
func isPresent(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		for _, el := range v {
			if isPresent(el) {
				return true
			}
		}
		return false
	case map[string]any:
		for _, el := range v {
			if isPresent(el) {
				return true
			}
		}
		return false
	}
	return true
}

// test compares one value of attribute a with the literal. A value of the
// wrong type is simply not equal.
func test(a *schema.Attribute, op Operator, v any, lit *literal) bool {
	switch a.Type {
	case schema.TypeBoolean:
		b, ok := toBool(v)
		if !ok {
			return op == Ne
		}
		return (b == lit.boolean) == (op == Eq)
	case schema.TypeInteger, schema.TypeDecimal:
		f, ok := toFloat(v)
		if !ok {
			return op == Ne
		}
		return compareOrdered(op, f, lit.num)
	case schema.TypeComplex:
		return false
	}
	s, ok := v.(string)
	if !ok {
		return op == Ne
	}
	if a.Type == schema.TypeDateTime && lit.timeOK {
		if t, ok := parseTime(s); ok {
			return compareOrdered(op, t.Compare(lit.instant), 0)
		}
	}
	if a.CaseExact {
		switch op {
		case Co:
			return strings.Contains(s, lit.str)
		case Sw:
			return strings.HasPrefix(s, lit.str)
		case Ew:
			return strings.HasSuffix(s, lit.str)
		}
		return compareOrdered(op, strings.Compare(s, lit.str), 0)
	}
	switch op {
	case Eq:
		return strings.EqualFold(s, lit.str)
	case Ne:
		return !strings.EqualFold(s, lit.str)
	}
	if lit.ascii && isASCII(s) {
		return testFoldASCII(op, s, lit.folded)
	}
	ls := strings.ToLower(s)
	switch op {
	case Co:
		return strings.Contains(ls, lit.folded)
	case Sw:
		return strings.HasPrefix(ls, lit.folded)
	case Ew:
		return strings.HasSuffix(ls, lit.folded)
	}
	return compareOrdered(op, strings.Compare(ls, lit.folded), 0)
}

// compareOrdered applies an equality or ordering operator to x and y.
func compareOrdered[T int | float64](op Operator, x, y T) bool {
	switch op {
	case Eq:
		return x == y
	case Ne:
		return x != y
	case Gt:
		return x > y
	case Ge:
		return x >= y
	case Lt:
		return x < y
	case Le:
		return x <= y
	}
	return false
}

// testFoldASCII applies co, sw, ew or an ordering to an ASCII value and a
// lower-cased ASCII literal without allocating.
func testFoldASCII(op Operator, s, lower string) bool {
	switch op {
	case Co:
		for i := 0; i+len(lower) <= len(s); i++ {
			if equalLowerASCII(s[i:i+len(lower)], lower) {
				return true
			}
		}
		return false
	case Sw:
		return len(s) >= len(lower) && equalLowerASCII(s[:len(lower)], lower)
	case Ew:
		return len(s) >= len(lower) && equalLowerASCII(s[len(s)-len(lower):], lower)
	}
	n := min(len(s), len(lower))
	for i := 0; i < n; i++ {
		if c, d := toLowerASCII(s[i]), lower[i]; c != d {
			if c < d {
				return compareOrdered(op, -1, 0)
			}
			return compareOrdered(op, 1, 0)
		}
	}
	return compareOrdered(op, len(s)-len(lower), 0)
}

func equalLowerASCII(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		if toLowerASCII(s[i]) != lower[i] {
			return false
		}
	}
	return true
}

func toLowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func toBool(v any) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		// Stored values may predate normalization of string booleans.
		switch {
		case strings.EqualFold(v, "true"):
			return true, true
		case strings.EqualFold(v, "false"):
			return false, true
		}
	}
	return false, false
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}
