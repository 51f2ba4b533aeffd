package lifecycle

import "testing"

// The strings decisions are known by outside are contract (audit events,
// plan items in sync-run answers, metrics labels): this table pins them,
// and every decision must be in it.
func TestDecisionNames(t *testing.T) {
	want := map[Decision]struct {
		audit, planItem string
		outcome         Outcome
	}{
		None:         {"", "", "unchanged"},
		Provision:    {"member.provision", "provision", "created"},
		Reprovision:  {"member.reprovision", "provision", "updated"},
		Update:       {"member.update", "update", "updated"},
		Invite:       {"member.invite", "update", "updated"},
		Deprovision:  {"member.deprovision", "deprovision", "updated"},
		Remove:       {"member.remove", "remove", "removed"},
		Skip:         {"member.skip", "skip", "unchanged"},
		Keep:         {"member.keep", "keep", "kept"},
		ResendInvite: {"", "resendInvite", "unchanged"},
		Settle:       {"member.settle", "", "updated"},
		Promote:      {"member.promote", "", "updated"},
		GroupCreate:  {"group.create", "groupCreate", "created"},
		GroupUpdate:  {"group.update", "groupUpdate", "updated"},
		GroupMembers: {"group.members", "groupUpdate", "updated"},
		GroupDelete:  {"group.delete", "groupDelete", "removed"},
	}
	for d := None; d < numDecisions; d++ {
		w, ok := want[d]
		if !ok {
			t.Errorf("decision %d (%s) has no row in the contract table", int(d), d)
			continue
		}
		if d.AuditAction() != w.audit || d.PlanItem() != w.planItem || d.Outcome() != w.outcome {
			t.Errorf("decision %d = (%q, %q, %q), want (%q, %q, %q)", int(d),
				d.AuditAction(), d.PlanItem(), d.Outcome(), w.audit, w.planItem, w.outcome)
		}
	}
}
