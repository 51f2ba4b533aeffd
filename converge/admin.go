package converge

import (
	"context"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

func isAdmin(m *store.Membership) bool {
	return m != nil && m.Role == lifecycle.RoleAdmin && m.Status != lifecycle.StatusDeprovisioned
}

// takesAdmin reports the admin membership (role admin, not deprovisioned)
// whose admin access the plan takes away, if any: by removing or
// deprovisioning it, demoting it, or replacing it with a membership that
// is not an admin.
func takesAdmin(p UserPlan) *store.Membership {
	switch {
	case p.Action == lifecycle.Provision && isAdmin(p.Replace) && !isAdmin(p.After):
		return p.Replace
	case p.Action == lifecycle.Remove && isAdmin(p.Before):
		return p.Before
	case p.Before != nil && p.After != nil && isAdmin(p.Before) && !isAdmin(p.After):
		return p.Before
	}
	return nil
}

// grantsAdmin reports whether the plan makes an admin: a new admin
// membership, or a promotion.
func grantsAdmin(p UserPlan) bool {
	return isAdmin(p.After) && !isAdmin(p.Before) && (p.Replace == nil || !isAdmin(p.Replace))
}

// guardAdmins keeps an organization with an admin, as the reconciler's
// plan does: converge never leaves it without one on its own. plans are
// the plans a batch applies (entangled ones are guarded when they run
// alone).
//
//   - When a plan makes an admin, an admin stays whatever else the batch
//     does. An admin that is, before the batch, the organization's only
//     one may have been kept back from losing its access (below): it is
//     returned, to be converged again once the batch commits.
//   - Otherwise, when the plans would take every admin's access away, those
//     of the oldest admin become lifecycle.Keep: its membership stays as it is,
//     with an audit event. With lock (inside a transaction) converges of
//     the organization that take admin access away run one after the
//     other, so two of them cannot each remove one of the last two admins.
func guardAdmins(ctx context.Context, s *store.Store, orgID string, plans []UserPlan, lock bool) (again []string, err error) {
	losing := map[string][]int{} // membership id → indexes in plans
	granting := false
	inBatch := make(map[string]bool, len(plans))
	for i, p := range plans {
		inBatch[p.DirectoryUserID] = true
		if m := takesAdmin(p); m != nil {
			losing[m.ID] = append(losing[m.ID], i)
		}
		granting = granting || grantsAdmin(p)
	}
	if !granting && len(losing) == 0 {
		return nil, nil
	}
	admins, err := s.AdminMemberships(ctx, orgID, lock && !granting)
	if err != nil {
		return nil, err
	}
	if granting {
		if len(admins) == 1 && !inBatch[admins[0].DirectoryUserID] {
			return []string{admins[0].DirectoryUserID}, nil
		}
		return nil, nil
	}
	var oldest *store.Membership
	for i := range admins {
		if _, ok := losing[admins[i].ID]; !ok {
			return nil, nil // an admin stays
		}
		if oldest == nil {
			oldest = &admins[i]
		}
	}
	if oldest == nil {
		return nil, nil
	}
	for _, i := range losing[oldest.ID] {
		p := &plans[i]
		*p = UserPlan{OrgID: p.OrgID, DirectoryUserID: p.DirectoryUserID, Action: lifecycle.Keep,
			Before: p.Before, Reason: lifecycle.ReasonLastAdmin, Kept: oldest}
	}
	return nil, nil
}
