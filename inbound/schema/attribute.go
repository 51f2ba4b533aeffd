package schema

import "strings"

// Type is an attribute's data type (RFC 7643 §2.3).
type Type string

// The attribute data types of RFC 7643 §2.3.
const (
	TypeString    Type = "string"
	TypeBoolean   Type = "boolean"
	TypeDecimal   Type = "decimal"
	TypeInteger   Type = "integer"
	TypeDateTime  Type = "dateTime"
	TypeBinary    Type = "binary"
	TypeReference Type = "reference"
	TypeComplex   Type = "complex"
)

// Mutability says whether and when a client may write an attribute
// (RFC 7643 §7).
type Mutability string

// The mutability values of RFC 7643 §7.
const (
	ReadOnly  Mutability = "readOnly"
	ReadWrite Mutability = "readWrite"
	Immutable Mutability = "immutable"
	WriteOnly Mutability = "writeOnly"
)

// Returned says when an attribute appears in responses (RFC 7643 §7).
type Returned string

// The returned values of RFC 7643 §7.
const (
	ReturnedAlways  Returned = "always"
	ReturnedNever   Returned = "never"
	ReturnedDefault Returned = "default"
	ReturnedRequest Returned = "request"
)

// Uniqueness says how unique an attribute's value must be (RFC 7643 §7).
type Uniqueness string

// The uniqueness values of RFC 7643 §7.
const (
	UniquenessNone   Uniqueness = "none"
	UniquenessServer Uniqueness = "server"
	UniquenessGlobal Uniqueness = "global"
)

// Attribute describes one attribute or sub-attribute of a schema. Its
// exported fields marshal to the RFC 7643 §7 attribute representation.
//
// Attributes are shared, immutable tables: callers must not modify them.
type Attribute struct {
	Name            string       `json:"name"`
	Type            Type         `json:"type"`
	SubAttributes   []*Attribute `json:"subAttributes,omitempty"`
	MultiValued     bool         `json:"multiValued"`
	Description     string       `json:"description,omitempty"`
	Required        bool         `json:"required"`
	CanonicalValues []string     `json:"canonicalValues,omitempty"`
	CaseExact       bool         `json:"caseExact"`
	Mutability      Mutability   `json:"mutability"`
	Returned        Returned     `json:"returned"`
	Uniqueness      Uniqueness   `json:"uniqueness"`
	ReferenceTypes  []string     `json:"referenceTypes,omitempty"`

	subs index
}

// SubAttribute finds a sub-attribute by name, ignoring case as RFC 7643
// §2.1 requires.
func (a *Attribute) SubAttribute(name string) (*Attribute, bool) {
	return a.subs.lookup(name)
}

// index is a case-insensitive name table. The exact map serves the common
// case, canonical spelling, without lower-casing the key.
type index struct {
	exact  map[string]*Attribute
	folded map[string]*Attribute
}

func newIndex(attrs []*Attribute) index {
	ix := index{
		exact:  make(map[string]*Attribute, len(attrs)),
		folded: make(map[string]*Attribute, len(attrs)),
	}
	for _, a := range attrs {
		ix.exact[a.Name] = a
		ix.folded[strings.ToLower(a.Name)] = a
	}
	return ix
}

func (ix index) lookup(name string) (*Attribute, bool) {
	if a, ok := ix.exact[name]; ok {
		return a, true
	}
	a, ok := ix.folded[strings.ToLower(name)]
	return a, ok
}

// option adjusts an attribute while the tables are built.
type option func(*Attribute)

// attr builds an attribute with the RFC 7643 §2.2 defaults: single-valued,
// optional, case-insensitive, readWrite, returned by default, not unique.
func attr(name string, t Type, description string, opts ...option) *Attribute {
	a := &Attribute{
		Name:        name,
		Type:        t,
		Description: description,
		Mutability:  ReadWrite,
		Returned:    ReturnedDefault,
		Uniqueness:  UniquenessNone,
	}
	for _, o := range opts {
		o(a)
	}
	if t == TypeReference && a.ReferenceTypes == nil {
		a.ReferenceTypes = []string{"external"}
	}
	a.subs = newIndex(a.SubAttributes)
	return a
}

func multiValued(a *Attribute) { a.MultiValued = true }
func required(a *Attribute)    { a.Required = true }
func caseExact(a *Attribute)   { a.CaseExact = true }
func readOnly(a *Attribute)    { a.Mutability = ReadOnly }
func immutable(a *Attribute)   { a.Mutability = Immutable }
func writeOnly(a *Attribute)   { a.Mutability = WriteOnly }
func uniqueServer(a *Attribute) {
	a.Uniqueness = UniquenessServer
}

func returned(r Returned) option {
	return func(a *Attribute) { a.Returned = r }
}

func canonical(values ...string) option {
	return func(a *Attribute) { a.CanonicalValues = values }
}

func referenceTypes(types ...string) option {
	return func(a *Attribute) { a.ReferenceTypes = types }
}

func subAttributes(subs ...*Attribute) option {
	return func(a *Attribute) { a.SubAttributes = subs }
}
