package converge

import (
	"context"

	"github.com/scimsync/scimsync/store"
)

// MemberKeep is the decision not to apply a change: the one that would
// leave the organization without an admin.
const MemberKeep Action = "member.keep"

// Kept is the outcome of MemberKeep.
const Kept Outcome = "kept"

// takesAdmin reports the admin membership (role admin, not deprovisioned)
// whose admin access the plan takes away, if any: by removing or
// deprovisioning it, demoting it, or replacing it with a membership that
// is not an admin.
func takesAdmin(p UserPlan) *store.Membership {
	isAdmin := func(m *store.Membership) bool {
		return m != nil && m.Role == store.RoleAdmin && m.Status != store.StatusDeprovisioned
	}
	switch {
	case p.Action == MemberProvision && isAdmin(p.Replace) && !isAdmin(p.After):
		return p.Replace
	case p.Action == MemberRemove && isAdmin(p.Before):
		return p.Before
	case p.Before != nil && p.After != nil && isAdmin(p.Before) && !isAdmin(p.After):
		return p.Before
	}
	return nil
}

// keepLastAdmin turns the plan that would take away the organization's
// last admin into MemberKeep, so that converge, like the reconciler's
// plan, never leaves an organization without an admin on its own. When
// every remaining admin would lose access, the oldest keeps it. With lock
// (inside a transaction) concurrent converges of the organization that
// take admin access away run one after the other, so two of them cannot
// each remove one of the last two admins.
func keepLastAdmin(ctx context.Context, s *store.Store, orgID string, plans []UserPlan, lock bool) error {
	losing := map[string]int{} // membership id → index in plans
	for i, p := range plans {
		if m := takesAdmin(p); m != nil {
			losing[m.ID] = i
		}
	}
	if len(losing) == 0 {
		return nil
	}
	admins, err := s.AdminMemberships(ctx, orgID, lock)
	if err != nil {
		return err
	}
	var oldest *store.Membership
	for i := range admins {
		if _, ok := losing[admins[i].ID]; !ok {
			return nil // an admin stays
		}
		if oldest == nil {
			oldest = &admins[i]
		}
	}
	if oldest == nil {
		return nil
	}
	p := &plans[losing[oldest.ID]]
	*p = UserPlan{OrgID: p.OrgID, DirectoryUserID: p.DirectoryUserID, Action: MemberKeep, Outcome: Kept,
		Before: p.Before, Reason: store.ReasonLastAdmin, Kept: oldest}
	return nil
}
