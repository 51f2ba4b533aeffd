// Package inbound is scimsync's SCIM 2.0 service provider (RFC 7643/7644)
// at /scim/v2: it authenticates an organization's bearer tokens, speaks the
// protocol as real IdPs use it, and commits each write to directory state
// together with an audit event and the outbox work it implies.
//
// The protocol engines it calls live in subpackages: schema (attribute
// definitions and discovery resources), filter (the filter grammar), patch
// (the PATCH engine) and project (attributes and excludedAttributes).
package inbound
