// Package store owns scimsync's persistent state and every query on it:
// organizations and their SCIM tokens and connectors, directory state (what
// the IdP says: directory users, groups and members), local state (users,
// memberships, groups, invites), the outbox, sync runs, audit events, the
// change feed (events, appended in the transaction of each change of local
// state and numbered per organization in commit order), webhook endpoints
// with their cursors and delivery attempts, and the mail log.
//
// It runs on embedded SQLite (pure Go, no cgo) and on Postgres, with the same
// versioned migrations. Every method that touches tenant data takes the
// organization id and scopes its query by it: a caller can never reach
// another organization's rows by id alone. Webhook endpoints are the one
// exception: an endpoint may serve every organization, so WebhookEndpoint
// scopes by organization only when given one, and an endpoint's attempts
// are reached through the endpoint.
package store
