package filter

import "strings"

// IndexedEmail is the attribute IndexedEq reports for the e-mail shapes
// emails.value eq "…" and emails[type eq "work"].value eq "…".
const IndexedEmail = "email"

// indexedAttributes are the top-level attributes the store indexes.
var indexedAttributes = map[string]bool{
	"userName": true, "externalId": true, "displayName": true, "id": true,
}

// IndexedEq recognises the lookups IdPs send before every create — a
// single eq on an indexed attribute — so that the caller can answer them
// with an indexed query instead of matching every resource:
//
//	userName eq "x"                      → ("userName", "x")
//	externalId eq "x"                    → ("externalId", "x")
//	displayName eq "x"                   → ("displayName", "x")
//	id eq "x"                            → ("id", "x")
//	emails.value eq "x", emails eq "x"   → ("email", "x")
//	emails[type eq "work"].value eq "x"  → ("email", "x")
//
// userName, displayName and email compare case-insensitively, id and
// externalId exactly (their caseExact in the schema). Any other filter
// reports false and should be evaluated with Match.
func IndexedEq(e Expr) (attribute, value string, ok bool) {
	c, isCompare := e.(*Compare)
	if !isCompare || c.Op != Eq || c.Path.Extension != "" || c.Path.Attribute == nil {
		return "", "", false
	}
	value, isString := c.Value.(string)
	if !isString {
		return "", "", false
	}
	p := c.Path
	if p.Sub == nil && p.Filter == nil && indexedAttributes[p.Attribute.Name] {
		return p.Attribute.Name, value, true
	}
	if p.Attribute.Name == "emails" && p.Sub != nil && p.Sub.Name == "value" && (p.Filter == nil || isWorkType(p.Filter)) {
		return IndexedEmail, value, true
	}
	return "", "", false
}

// isWorkType reports whether e is exactly type eq "work".
func isWorkType(e Expr) bool {
	c, ok := e.(*Compare)
	if !ok || c.Op != Eq || c.Path.Attribute == nil || c.Path.Attribute.Name != "type" {
		return false
	}
	s, ok := c.Value.(string)
	return ok && strings.EqualFold(s, "work")
}
