package lifecycle

import "testing"

// The strings decisions are known by outside are contract (audit events,
// plan items in sync-run answers, metrics labels): this table pins them,
// and every decision must be in it.
func TestDecisionNames(t *testing.T) {
	want := map[Decision]struct {
		audit, planItem string
		outcome         Outcome
		event           string
	}{
		None:         {"", "", "unchanged", ""},
		Provision:    {"member.provision", "provision", "created", "member.provisioned"},
		Reprovision:  {"member.reprovision", "provision", "updated", "member.reactivated"},
		Update:       {"member.update", "update", "updated", "member.updated"},
		Invite:       {"member.invite", "update", "updated", "member.updated"},
		Deprovision:  {"member.deprovision", "deprovision", "updated", "member.deprovisioned"},
		Remove:       {"member.remove", "remove", "removed", "member.removed"},
		Skip:         {"member.skip", "skip", "unchanged", ""},
		Keep:         {"member.keep", "keep", "kept", ""},
		ResendInvite: {"", "resendInvite", "unchanged", ""},
		Settle:       {"member.settle", "", "updated", ""},
		Promote:      {"member.promote", "", "updated", "member.updated"},
		GroupCreate:  {"group.create", "groupCreate", "created", "group.created"},
		GroupUpdate:  {"group.update", "groupUpdate", "updated", "group.updated"},
		GroupMembers: {"group.members", "groupUpdate", "updated", ""},
		GroupDelete:  {"group.delete", "groupDelete", "removed", "group.deleted"},
	}
	for d := None; d < numDecisions; d++ {
		w, ok := want[d]
		if !ok {
			t.Errorf("decision %d (%s) has no row in the contract table", int(d), d)
			continue
		}
		if d.AuditAction() != w.audit || d.PlanItem() != w.planItem || d.Outcome() != w.outcome || d.EventType() != w.event {
			t.Errorf("decision %d = (%q, %q, %q, %q), want (%q, %q, %q, %q)", int(d),
				d.AuditAction(), d.PlanItem(), d.Outcome(), d.EventType(), w.audit, w.planItem, w.outcome, w.event)
		}
		if e := d.EventType(); e != "" && !IsEventType(e) {
			t.Errorf("decision %s: event type %q is not in EventTypes", d, e)
		}
	}
}
