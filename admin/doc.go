// Package admin owns the operator-facing side of scimsync: the admin token,
// the /api/v1 admin API with its OpenAPI document, and the operator actions
// it and the command line share: organizations, SCIM tokens, connectors,
// reconciliations, and the settlement of a kept last admin.
package admin
