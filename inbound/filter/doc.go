// Package filter parses and evaluates SCIM filters (RFC 7644 §3.4.2.2):
// the ten comparison operators, and/or/not with parentheses, value
// filters such as emails[type eq "work"], and URN-qualified attribute
// paths. Parsing resolves every attribute against a schema.ResourceType,
// so an unknown attribute is an invalidFilter error rather than a filter
// that silently matches everything; Match then evaluates the result
// against JSON-decoded resources without further lookups.
//
// The package also parses the attribute paths of PATCH operations and of
// the attributes query parameter (ParsePath), which share the filter
// grammar.
package filter
