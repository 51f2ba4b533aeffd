package filter

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scimsync/scimsync/inbound/schema"
)

// maxNesting bounds parentheses and brackets, so that a hostile filter
// cannot make parsing or matching recurse without limit.
const maxNesting = 32

// Parse parses a filter (RFC 7644 §3.4.2.2) against a resource type.
// Attribute names, operators and keywords are case-insensitive; values
// must be JSON literals as the RFC requires. Every attribute must exist in
// the resource type. Errors are *schema.Error with scimType invalidFilter.
func Parse(filter string, rt *schema.ResourceType) (Expr, error) {
	p := &parser{lex: lexer{src: filter}, rt: rt, errType: schema.ScimTypeInvalidFilter}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, p.errorf(p.tok, "empty filter")
	}
	e, err := p.parseOr(nil)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokEOF {
		return nil, p.errorf(p.tok, "unexpected %s", p.tok.describe())
	}
	return e, nil
}

// ParsePath parses an attribute path as PATCH operations and the
// attributes query parameter write it (RFC 7644 §3.5.2, §3.10):
// "name.givenName", "emails[type eq \"work\"].value",
// "members[value eq \"id\"]",
// "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
// or a bare extension URN, which gives a Path with a nil Attribute.
// Errors are *schema.Error with scimType invalidPath.
func ParsePath(path string, rt *schema.ResourceType) (Path, error) {
	p := &parser{lex: lexer{src: path}, rt: rt, errType: schema.ScimTypeInvalidPath}
	if err := p.advance(); err != nil {
		return Path{}, err
	}
	if p.tok.kind != tokWord {
		return Path{}, p.errorf(p.tok, "expected an attribute path, found %s", p.tok.describe())
	}
	result, _, err := p.parsePath(nil, true)
	if err != nil {
		return Path{}, err
	}
	if p.tok.kind != tokEOF {
		return Path{}, p.errorf(p.tok, "unexpected %s after the path", p.tok.describe())
	}
	return result, nil
}

type parser struct {
	lex     lexer
	tok     token
	rt      *schema.ResourceType
	errType schema.ScimType
	depth   int
}

func (p *parser) errorf(at token, format string, args ...any) error {
	return schema.Errorf(p.errType, "%s (at offset %d)", fmt.Sprintf(format, args...), at.pos)
}

func (p *parser) advance() error {
	pos := p.lex.pos
	t, err := p.lex.next()
	if err != nil {
		return p.errorf(token{pos: pos}, "%v", err)
	}
	p.tok = t
	return nil
}

func (p *parser) isKeyword(kw string) bool {
	return p.tok.kind == tokWord && strings.EqualFold(p.tok.text, kw)
}

func (p *parser) expect(kind tokenKind, what string) error {
	if p.tok.kind != kind {
		return p.errorf(p.tok, "expected %s, found %s", what, p.tok.describe())
	}
	return p.advance()
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errorf(p.tok, "nested more than %d deep", maxNesting)
	}
	return nil
}

// parseOr parses "A or B or …". Inside a value filter, ctx is the
// complex attribute whose sub-attributes the names refer to.
func (p *parser) parseOr(ctx *schema.Attribute) (Expr, error) {
	left, err := p.parseAnd(ctx)
	for err == nil && p.isKeyword("or") {
		if err = p.advance(); err != nil {
			break
		}
		var right Expr
		if right, err = p.parseAnd(ctx); err == nil {
			left = &Logical{Op: Or, Left: left, Right: right}
		}
	}
	return left, err
}

func (p *parser) parseAnd(ctx *schema.Attribute) (Expr, error) {
	left, err := p.parseUnary(ctx)
	for err == nil && p.isKeyword("and") {
		if err = p.advance(); err != nil {
			break
		}
		var right Expr
		if right, err = p.parseUnary(ctx); err == nil {
			left = &Logical{Op: And, Left: left, Right: right}
		}
	}
	return left, err
}

func (p *parser) parseUnary(ctx *schema.Attribute) (Expr, error) {
	switch {
	case p.isKeyword("not"):
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind != tokLParen {
			return nil, p.errorf(p.tok, `expected "(" after "not", found %s`, p.tok.describe())
		}
		x, err := p.parseGroup(ctx)
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	case p.tok.kind == tokLParen:
		return p.parseGroup(ctx)
	case p.tok.kind == tokWord:
		return p.parseAttrExpr(ctx)
	}
	return nil, p.errorf(p.tok, `expected an attribute path, "not" or "(", found %s`, p.tok.describe())
}

// parseGroup parses "(" filter ")".
func (p *parser) parseGroup(ctx *schema.Attribute) (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	x, err := p.parseOr(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.expect(tokRParen, `")"`); err != nil {
		return nil, err
	}
	p.depth--
	return x, nil
}

func (p *parser) parseAttrExpr(ctx *schema.Attribute) (Expr, error) {
	path, valuePath, err := p.parsePath(ctx, false)
	if err != nil {
		return nil, err
	}
	if valuePath {
		return &ValuePath{Path: path}, nil
	}
	return p.parseComparison(path)
}

// parsePath parses an attribute path starting at the current word, with
// an optional value filter and sub-attribute after it. valuePath reports
// a filter without a sub-attribute, which in a filter is a complete
// expression. allowSchema admits a bare extension URN.
func (p *parser) parsePath(ctx *schema.Attribute, allowSchema bool) (path Path, valuePath bool, err error) {
	start := p.tok
	if path, err = p.resolve(start, ctx); err != nil {
		return Path{}, false, err
	}
	if err := p.advance(); err != nil {
		return Path{}, false, err
	}
	if path.Attribute == nil {
		if !allowSchema || p.tok.kind != tokEOF {
			return Path{}, false, p.errorf(start, "%q names a schema, not an attribute", start.text)
		}
		return path, false, nil
	}
	if p.tok.kind != tokLBracket {
		return path, false, nil
	}
	switch {
	case ctx != nil:
		return Path{}, false, p.errorf(p.tok, "value filters cannot be nested")
	case path.Sub != nil || path.Attribute.Type != schema.TypeComplex:
		return Path{}, false, p.errorf(p.tok, "%s is not a complex attribute, so it takes no value filter", path)
	}
	if err := p.enter(); err != nil {
		return Path{}, false, err
	}
	if err := p.advance(); err != nil {
		return Path{}, false, err
	}
	if path.Filter, err = p.parseOr(path.Attribute); err != nil {
		return Path{}, false, err
	}
	closing := p.tok
	if err := p.expect(tokRBracket, `"]"`); err != nil {
		return Path{}, false, err
	}
	p.depth--
	// A sub-attribute follows the bracket directly: emails[…].value.
	if p.tok.kind != tokWord || p.tok.pos != closing.end || p.tok.text[0] != '.' {
		return path, true, nil
	}
	sub, ok := path.Attribute.SubAttribute(p.tok.text[1:])
	if !ok {
		return Path{}, false, p.errorf(p.tok, "unknown sub-attribute %q of %s", p.tok.text[1:], path.Attribute.Name)
	}
	path.Sub = sub
	return path, false, p.advance()
}

func (p *parser) resolve(t token, ctx *schema.Attribute) (Path, error) {
	if ctx == nil {
		ap, err := p.rt.Resolve(t.text)
		if err != nil {
			return Path{}, p.errorf(t, "%v", err)
		}
		return Path{Extension: ap.Extension, Attribute: ap.Attribute, Sub: ap.Sub}, nil
	}
	sub, ok := ctx.SubAttribute(t.text)
	if !ok {
		return Path{}, p.errorf(t, "unknown sub-attribute %q of %s", t.text, ctx.Name)
	}
	return Path{Attribute: sub}, nil
}

var operators = map[string]Operator{
	"eq": Eq, "ne": Ne, "co": Co, "sw": Sw, "ew": Ew,
	"gt": Gt, "ge": Ge, "lt": Lt, "le": Le, "pr": Pr,
}

func (p *parser) parseComparison(path Path) (Expr, error) {
	opTok := p.tok
	if opTok.kind != tokWord {
		return nil, p.errorf(opTok, "expected an operator after %s, found %s", path, opTok.describe())
	}
	op, ok := operators[strings.ToLower(opTok.text)]
	if !ok {
		return nil, p.errorf(opTok, "unknown operator %q", opTok.text)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	c := &Compare{Path: path, Op: op}
	if op != Pr {
		valTok := p.tok
		v, err := p.parseValue()
		if err != nil {
			return nil, err
		}
		c.Value = v
		if err := p.check(c); err != nil {
			return nil, p.errorf(valTok, "%v", err)
		}
	}
	c.lit, c.prepared = prepare(c), true
	return c, nil
}

func (p *parser) parseValue() (any, error) {
	t := p.tok
	switch t.kind {
	case tokString:
		return t.text, p.advance()
	case tokWord:
		var v any
		switch {
		case strings.EqualFold(t.text, "true"):
			v = true
		case strings.EqualFold(t.text, "false"):
			v = false
		case strings.EqualFold(t.text, "null"):
			v = nil
		case isJSONNumber(t.text):
			f, err := strconv.ParseFloat(t.text, 64)
			if err != nil {
				return nil, p.errorf(t, "number %s is out of range", t.text)
			}
			v = f
		default:
			return nil, p.errorf(t, "expected a value (a quoted string, number, true, false or null), found %s", t.describe())
		}
		return v, p.advance()
	}
	return nil, p.errorf(t, "expected a value (a quoted string, number, true, false or null), found %s", t.describe())
}

// check validates a comparison against the attribute's type (RFC 7644
// §3.4.2.2) and fills in the implied "value" sub-attribute. It may
// rewrite c.Path and c.Value.
func (p *parser) check(c *Compare) error {
	a := c.Path.target()
	if a.Type == schema.TypeComplex {
		// "emails co "x"" compares the primary sub-attribute "value".
		v, ok := a.SubAttribute("value")
		if !ok || !a.MultiValued || c.Path.Sub != nil {
			return fmt.Errorf("%s is complex; compare one of its sub-attributes", c.Path)
		}
		c.Path.Sub, a = v, v
	}
	if c.Value == nil {
		if c.Op != Eq && c.Op != Ne {
			return fmt.Errorf("null can only be compared with eq or ne")
		}
		return nil
	}
	ordering := c.Op == Gt || c.Op == Ge || c.Op == Lt || c.Op == Le
	substring := c.Op == Co || c.Op == Sw || c.Op == Ew
	switch a.Type {
	case schema.TypeBoolean:
		if s, ok := c.Value.(string); ok {
			// Some clients quote booleans; the meaning is unambiguous.
			switch {
			case strings.EqualFold(s, "true"):
				c.Value = true
			case strings.EqualFold(s, "false"):
				c.Value = false
			}
		}
		if _, ok := c.Value.(bool); !ok {
			return fmt.Errorf("%s is a boolean", c.Path)
		}
		if ordering || substring {
			return fmt.Errorf("%s is a boolean and supports only eq, ne and pr", c.Path)
		}
	case schema.TypeInteger, schema.TypeDecimal:
		if _, ok := c.Value.(float64); !ok {
			return fmt.Errorf("%s is a number", c.Path)
		}
		if substring {
			return fmt.Errorf("%s is a number and does not support %s", c.Path, c.Op)
		}
	case schema.TypeDateTime:
		s, ok := c.Value.(string)
		if !ok {
			return fmt.Errorf("%s is a dateTime and needs a quoted value", c.Path)
		}
		if !substring {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				return fmt.Errorf("%q is not an RFC 3339 dateTime", s)
			}
		}
	default: // string, reference, binary
		if _, ok := c.Value.(string); !ok {
			return fmt.Errorf("%s is a string and needs a quoted value", c.Path)
		}
		if ordering && a.Type == schema.TypeBinary {
			return fmt.Errorf("%s is binary and cannot be ordered", c.Path)
		}
	}
	return nil
}

// target is the attribute whose values a comparison tests.
func (p Path) target() *schema.Attribute {
	if p.Sub != nil {
		return p.Sub
	}
	return p.Attribute
}

func prepare(c *Compare) literal {
	var lit literal
	switch v := c.Value.(type) {
	case string:
		lit.str = v
		lit.folded = strings.ToLower(v)
		lit.ascii = isASCII(lit.folded)
		if c.Path.Attribute != nil && c.Path.target().Type == schema.TypeDateTime {
			lit.instant, lit.timeOK = parseTime(v)
		}
	case float64:
		lit.num = v
	case bool:
		lit.boolean = v
	}
	return lit
}

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
