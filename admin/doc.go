// Package admin owns the operator-facing side of scimsync: the admin token,
// the /api/v1 admin API, and the operations on organizations and SCIM tokens
// that the API and the command line share.
package admin
