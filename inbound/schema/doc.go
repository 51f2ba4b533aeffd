// Package schema holds the SCIM 2.0 schemas scimsync serves — the core
// User and Group schemas, the enterprise User extension and the common
// attributes (RFC 7643 §3, §4, §8.7) — as immutable tables, and resolves
// attribute paths against them: case-insensitively, URN-qualified or not,
// with OneLogin's legacy URNs accepted as aliases.
//
// It also renders the /Schemas and /ResourceTypes resources and defines
// Error, the client error every inbound SCIM engine package returns.
package schema
