package filter

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/scimsync/scimsync/inbound/schema"
)

// Expr is a parsed filter expression: *Logical, *Not, *Compare or
// *ValuePath. Exprs are immutable, so one may be matched from many
// goroutines at once.
type Expr interface {
	// String renders the expression in canonical filter syntax; parsing
	// the result gives an equal expression.
	String() string

	appendTo(b []byte) []byte
	match(m map[string]any) bool
	precedence() int
}

// LogicalOp is "and" or "or".
type LogicalOp string

// The logical operators.
const (
	And LogicalOp = "and"
	Or  LogicalOp = "or"
)

// Operator is a comparison operator (RFC 7644 §3.4.2.2).
type Operator string

// The comparison operators.
const (
	Eq Operator = "eq"
	Ne Operator = "ne"
	Co Operator = "co"
	Sw Operator = "sw"
	Ew Operator = "ew"
	Gt Operator = "gt"
	Ge Operator = "ge"
	Lt Operator = "lt"
	Le Operator = "le"
	Pr Operator = "pr"
)

// Logical joins two expressions with "and" or "or".
type Logical struct {
	Op          LogicalOp
	Left, Right Expr
}

// Not negates an expression: not (X).
type Not struct {
	X Expr
}

// Compare is an attribute expression: "path op value", or "path pr".
type Compare struct {
	Path Path
	Op   Operator
	// Value is the literal: a string, float64, bool or nil (null). It is
	// unused for Pr.
	Value any

	// lit is the literal prepared for matching by the parser; hand-built
	// Compares, which lack it, prepare it on each match instead.
	lit      literal
	prepared bool
}

// ValuePath matches when a value of a complex attribute matches
// Path.Filter, as in emails[type eq "work" and value co "@example.com"].
type ValuePath struct {
	Path Path
}

// Path is an attribute path as filters and PATCH paths write it:
// attr, attr.sub, attr[filter] or attr[filter].sub, each optionally
// URN-qualified.
type Path struct {
	// Extension is the canonical URN of the extension schema that holds
	// Attribute; empty for core and common attributes.
	Extension string
	// Attribute is the attribute. Inside a value filter it is a
	// sub-attribute of the enclosing attribute. It is nil only when a
	// path given to ParsePath names a whole extension schema.
	Attribute *schema.Attribute
	// Filter selects values of a complex Attribute; nil selects all.
	// Its paths are relative to those values.
	Filter Expr
	// Sub is the sub-attribute, if any.
	Sub *schema.Attribute
}

// literal holds a comparison value in the forms matching needs, so that
// matching does no per-resource work on the literal.
type literal struct {
	str     string // the string value, if any
	folded  string // str lower-cased, for case-insensitive comparison
	ascii   bool   // folded is pure ASCII
	num     float64
	boolean bool
	instant time.Time
	timeOK  bool // instant holds the parsed dateTime
}

const (
	precOr = iota + 1
	precAnd
	precUnary
)

// String renders the filter; see Expr.
func (e *Logical) String() string   { return string(e.appendTo(nil)) }
func (e *Not) String() string       { return string(e.appendTo(nil)) }
func (e *Compare) String() string   { return string(e.appendTo(nil)) }
func (e *ValuePath) String() string { return string(e.appendTo(nil)) }

// String renders the path canonically: URN-qualified for extension
// attributes, plain for core ones.
func (p Path) String() string { return string(p.appendTo(nil)) }

func (e *Logical) precedence() int {
	if e.Op == And {
		return precAnd
	}
	return precOr
}
func (e *Not) precedence() int       { return precUnary }
func (e *Compare) precedence() int   { return precUnary }
func (e *ValuePath) precedence() int { return precUnary }

func (e *Logical) appendTo(b []byte) []byte {
	p := e.precedence()
	// Operators associate to the left, so a right operand of equal
	// precedence needs parentheses to keep its shape.
	b = appendOperand(b, e.Left, e.Left.precedence() < p)
	b = append(b, ' ')
	b = append(b, e.Op...)
	b = append(b, ' ')
	return appendOperand(b, e.Right, e.Right.precedence() <= p)
}

func appendOperand(b []byte, e Expr, paren bool) []byte {
	if !paren {
		return e.appendTo(b)
	}
	b = append(b, '(')
	b = e.appendTo(b)
	return append(b, ')')
}

func (e *Not) appendTo(b []byte) []byte {
	b = append(b, "not ("...)
	b = e.X.appendTo(b)
	return append(b, ')')
}

func (e *Compare) appendTo(b []byte) []byte {
	b = e.Path.appendTo(b)
	b = append(b, ' ')
	b = append(b, e.Op...)
	if e.Op == Pr {
		return b
	}
	b = append(b, ' ')
	return appendValue(b, e.Value)
}

func (e *ValuePath) appendTo(b []byte) []byte { return e.Path.appendTo(b) }

func (p Path) appendTo(b []byte) []byte {
	if p.Extension != "" {
		b = append(b, p.Extension...)
		if p.Attribute != nil {
			b = append(b, ':')
		}
	}
	if p.Attribute != nil {
		b = append(b, p.Attribute.Name...)
	}
	if p.Filter != nil {
		b = append(b, '[')
		b = p.Filter.appendTo(b)
		b = append(b, ']')
	}
	if p.Sub != nil {
		b = append(b, '.')
		b = append(b, p.Sub.Name...)
	}
	return b
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendJSONString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case nil:
		return append(b, "null"...)
	}
	// Only the parser's value types reach here; render anything else as
	// null rather than produce an unparsable filter.
	return append(b, "null"...)
}

// appendJSONString appends s as a JSON string literal (RFC 8259 §7).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
