package lifecycle

// Decision is what is decided for one member or group: by converge, which
// applies it, and by the reconciler's plan, which previews it. Each
// decision has one name here; the strings it is known by outside (audit
// events, plan items, converge's outcome in metrics and job results) are
// written in the table below and nowhere else.
type Decision int

// Decisions. A directory user that cannot be provisioned is skipped with
// an audit event, because nothing else would tell an operator why the
// person never got an invite.
const (
	None         Decision = iota
	Provision             // create a membership, pending setup, and invite
	Reprovision           // re-activate a deprovisioned membership, with a new invite
	Update                // attributes, role, or the users row's e-mail
	Invite                // a pending member with no open invite
	Deprovision           // the IdP says inactive
	Remove                // the directory user is gone
	Skip                  // would provision, but cannot (no e-mail, e-mail taken)
	Keep                  // left as it is on purpose: the organization's last admin
	ResendInvite          // an unaccepted invite is due again (the reconciler's)
	Settle                // an operator settles a kept last admin
	Promote               // a member made admin in the kept admin's place
	GroupCreate
	GroupUpdate  // name, source or external id
	GroupMembers // members only
	GroupDelete  // the directory group is gone
	numDecisions
)

// Outcome sums up what applying a decision changed, as converge reports
// it (job results, metrics labels, audit events).
type Outcome string

// Outcomes.
const (
	Unchanged Outcome = "unchanged"
	Created   Outcome = "created"
	Updated   Outcome = "updated"
	Removed   Outcome = "removed"
	Kept      Outcome = "kept"
)

// names are each decision's external strings. They are contract (see the
// README and SPEC): audit actions and plan items are read by operators and
// stored in audit_events and sync_run_items.
var names = [numDecisions]struct {
	audit, planItem string
	outcome         Outcome
	event           string
}{
	None:         {"", "", Unchanged, ""},
	Provision:    {"member.provision", "provision", Created, EventMemberProvisioned},
	Reprovision:  {"member.reprovision", "provision", Updated, EventMemberReactivated},
	Update:       {"member.update", "update", Updated, EventMemberUpdated},
	Invite:       {"member.invite", "update", Updated, EventMemberUpdated},
	Deprovision:  {"member.deprovision", "deprovision", Updated, EventMemberDeprovisioned},
	Remove:       {"member.remove", "remove", Removed, EventMemberRemoved},
	Skip:         {"member.skip", "skip", Unchanged, ""},
	Keep:         {"member.keep", "keep", Kept, ""},
	ResendInvite: {"", "resendInvite", Unchanged, ""},
	Settle:       {"member.settle", "", Updated, ""},
	Promote:      {"member.promote", "", Updated, EventMemberUpdated},
	GroupCreate:  {"group.create", "groupCreate", Created, EventGroupCreated},
	GroupUpdate:  {"group.update", "groupUpdate", Updated, EventGroupUpdated},
	GroupMembers: {"group.members", "groupUpdate", Updated, ""},
	GroupDelete:  {"group.delete", "groupDelete", Removed, EventGroupDeleted},
}

// AuditAction is the decision's audit event action ("member.provision"),
// "" for one that converge never audits.
func (d Decision) AuditAction() string { return names[d].audit }

// PlanItem is the action of the reconciler plan's item for the decision
// ("provision"), "" for one that no plan holds. Decisions the plan does
// not tell apart share one: a re-activation is a provision, an invite an
// update, a change of members a group update.
func (d Decision) PlanItem() string { return names[d].planItem }

// Outcome is what applying the decision changes.
func (d Decision) Outcome() Outcome { return names[d].outcome }

// EventType is the change feed's type of the decision's change of the
// member or group itself, "" for none. A change of a group's members is an
// event per link (EventGroupMemberAdded, EventGroupMemberRemoved), and
// member.updated is written only when a field the admin API shows changed
// (an invite alone, or only the shared users row's e-mail, is none).
func (d Decision) EventType() string { return names[d].event }

// String is the audit action, or the plan item for a decision without one.
func (d Decision) String() string {
	if d < 0 || d >= numDecisions {
		return "Decision(invalid)"
	}
	if a := d.AuditAction(); a != "" {
		return a
	}
	return d.PlanItem()
}
