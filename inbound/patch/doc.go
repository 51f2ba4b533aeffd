// Package patch applies SCIM PATCH operations (RFC 7644 §3.5.2) to
// resources held as JSON-decoded maps, and normalises the bodies of POST
// and PUT requests into the same canonical form.
//
// Both follow the RFC where IdPs do, and accept what Okta, Entra ID,
// OneLogin and JumpCloud actually send where they do not: op names in any
// case, booleans as strings, nulls for absent attributes, path-less values
// keyed by dotted or URN-qualified paths, a manager given as a bare id,
// legacy schema URNs, and Entra's way of removing group members. The
// package does no I/O; errors are *schema.Error values that the HTTP
// layer renders as SCIM error responses.
package patch
