package lifecycle

import "slices"

// Event types: what the change feed says happened to local state. They are
// contract (SPEC and README): applications filter on them and webhooks are
// subscribed by them.
const (
	EventMemberProvisioned   = "member.provisioned"   // a new membership, pending setup, invited
	EventMemberActivated     = "member.activated"     // its invite accepted
	EventMemberUpdated       = "member.updated"       // e-mail, names, external id, source or role
	EventMemberDeprovisioned = "member.deprovisioned" // access revoked, kept with its group links
	EventMemberReactivated   = "member.reactivated"   // pending setup again, with a new invite
	EventMemberRemoved       = "member.removed"       // the membership and its group links removed

	EventGroupCreated       = "group.created"
	EventGroupUpdated       = "group.updated" // name, external id or source
	EventGroupDeleted       = "group.deleted" // with its member links
	EventGroupMemberAdded   = "group.member_added"
	EventGroupMemberRemoved = "group.member_removed"

	EventSyncRunFinished = "sync_run.finished" // succeeded or failed
	EventSyncRunBlocked  = "sync_run.blocked"  // waits for an operator's confirmation
)

// EventTypes lists every event type.
var EventTypes = []string{
	EventMemberProvisioned, EventMemberActivated, EventMemberUpdated, EventMemberDeprovisioned,
	EventMemberReactivated, EventMemberRemoved,
	EventGroupCreated, EventGroupUpdated, EventGroupDeleted, EventGroupMemberAdded, EventGroupMemberRemoved,
	EventSyncRunFinished, EventSyncRunBlocked,
}

// IsEventType reports whether t is one of EventTypes.
func IsEventType(t string) bool { return slices.Contains(EventTypes, t) }
