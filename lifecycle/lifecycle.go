// Package lifecycle holds the words of a member's life in an organization
// (statuses, roles) that store, converge, the reconciler and the admin API
// share, so that storage only stores them.
package lifecycle

// Membership statuses. Only accepting an invite makes a member active; the
// IdP can only create (pending_setup) or deprovision.
const (
	StatusPendingSetup  = "pending_setup"
	StatusActive        = "active"
	StatusDeprovisioned = "deprovisioned"
)

// Membership roles.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// ReasonLastAdmin explains why the organization's last admin keeps its
// access, in a plan's keep item and in converge's audit event alike.
const ReasonLastAdmin = "the organization's last admin: deprovisioning, removing or demoting it is never automatic; " +
	"an operator settles it (name a new admin, or confirm the removal) if that is intended"
