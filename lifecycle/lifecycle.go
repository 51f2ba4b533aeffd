// Package lifecycle holds the domain's words for members and groups that
// store, converge, the reconciler and the admin API share: membership
// statuses and roles, the decisions made about members and groups with
// the one table of the strings each is known by outside, and the change
// feed's event types.
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
