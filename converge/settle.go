package converge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// Settling a kept last admin. Converge and the reconciler never take the
// organization's last admin's access away on their own (guardAdmins,
// reconciler's keepLastAdmin); when the directory means it, an operator
// settles it: by naming another member the new admin, or by confirming
// that the organization may be left without one.

// ActorAdmin is the audit actor of a settlement's events: the operator,
// as for every admin API action.
const ActorAdmin = "admin"

// Settlement is an operator's decision about a kept last admin: exactly
// one of NewAdminMemberID, a member of the organization to make admin, or
// ConfirmRemoval.
type Settlement struct {
	NewAdminMemberID string
	ConfirmRemoval   bool
}

// Settled is what a settlement did.
type Settled struct {
	// Member is the kept admin as the settlement leaves it, nil once
	// removed.
	Member *store.Membership
	// Applied is the change the kept admin underwent: what converge would
	// have done (lifecycle.Remove, lifecycle.Deprovision, lifecycle.Update),
	// or, when only the reconciler's pull knows the IdP's verdict,
	// lifecycle.Update for the loss of the admin role on a confirmed
	// removal; lifecycle.None when that waits for the next
	// reconciliation.
	Applied lifecycle.Decision
	// NewAdmin is the member made admin, if any.
	NewAdmin *store.Membership
	// AwaitsReconciliation says that what the IdP's listing says of the
	// kept admin (gone, inactive) is applied by the next reconciliation:
	// in an organization with a connector the reconciler, not the stored
	// directory, knows it.
	AwaitsReconciliation bool
}

// ErrCannotSettle: the settlement does not apply, as its message says: the
// member is not a kept-back last admin, or the named member cannot be the
// admin in its place. Nothing was changed.
var ErrCannotSettle = errors.New("cannot settle")

// SettleAdmin carries out an operator's settlement of the organization's
// last admin, memberID, whose change converge or the reconciler keeps
// back, in one transaction with its audit events (actor "admin"):
//
//   - the new admin is promoted, if one is named: a member that is not
//     deprovisioned and that its own directory record leaves an admin
//     (present, active, and, where the role mapping manages roles, in an
//     admin group);
//   - the kept admin then undergoes what converge would have done with it
//     (removed, deprovisioned or demoted, as the directory says). Where
//     only the reconciler keeps it (the IdP's listing no longer has it, or
//     says inactive, but the directory rows are kept as they were), a
//     confirmed removal takes its admin role now and the next
//     reconciliation the rest; with a new admin, the next reconciliation
//     applies the change, since the admin is no longer the last.
//
// It takes the memberships' row locks and then the organization's admin
// lock, in converge's order, so that no converge can take away the admin
// left in between. Unknown ids are store.ErrNotFound.
func (c *Converger) SettleAdmin(ctx context.Context, orgID, memberID string, s Settlement) (Settled, error) {
	if s.ConfirmRemoval == (s.NewAdminMemberID != "") {
		return Settled{}, errors.New("settle admin: name a new admin or confirm the removal, one of the two")
	}
	var out Settled
	var applied []UserPlan
	// Durable: an operator's action is not re-derived if a crash lost it.
	err := c.retryTx(ctx, false, func(tx *store.Store) error {
		var err error
		out, applied, err = c.settle(ctx, tx, orgID, memberID, s)
		return err
	})
	if err != nil {
		return Settled{}, fmt.Errorf("settle admin: %w", err)
	}
	c.notifyInvites(applied)
	return out, nil
}

func (c *Converger) settle(ctx context.Context, tx *store.Store, orgID, memberID string, s Settlement) (Settled, []UserPlan, error) {
	kept, err := tx.Membership(ctx, orgID, memberID)
	if err != nil {
		return Settled{}, nil, err
	}
	var heir *store.Membership
	if s.NewAdminMemberID != "" {
		m, err := tx.Membership(ctx, orgID, s.NewAdminMemberID)
		if err != nil {
			return Settled{}, nil, fmt.Errorf("new admin: %w", err)
		}
		heir = &m
		if heir.ID == kept.ID {
			return Settled{}, nil, fmt.Errorf("%w: the new admin must be another member", ErrCannotSettle)
		}
	}
	if kept.DirectoryUserID == "" {
		return Settled{}, nil, fmt.Errorf("%w: member %s (%s) is not linked to a directory user: nothing keeps it back", ErrCannotSettle, kept.ID, kept.Email)
	}

	// Lock as a converge does: the memberships by directory user, in
	// order, then the organization's admin lock.
	ids := []string{kept.DirectoryUserID}
	if heir != nil && heir.DirectoryUserID != "" {
		ids = append(ids, heir.DirectoryUserID)
	}
	fs, err := loadUsers(ctx, tx, orgID, sortedDistinct(ids), true)
	if err != nil {
		return Settled{}, nil, err
	}
	facts := make(map[string]userFacts, len(fs))
	for _, f := range fs {
		facts[f.directoryUserID] = f
	}
	kf := facts[kept.DirectoryUserID]
	if kf.member == nil || kf.member.ID != kept.ID {
		return Settled{}, nil, store.ErrConflict // changed since read: read again
	}
	kept = *kf.member
	if heir != nil {
		if heir.DirectoryUserID == "" {
			m, err := tx.LockMembership(ctx, orgID, heir.ID)
			if err != nil {
				return Settled{}, nil, fmt.Errorf("new admin: %w", err)
			}
			heir = &m
		} else if hf := facts[heir.DirectoryUserID]; hf.member == nil || hf.member.ID != heir.ID {
			return Settled{}, nil, store.ErrConflict
		} else {
			heir = hf.member
		}
	}
	admins, err := tx.AdminMemberships(ctx, orgID, true)
	if err != nil {
		return Settled{}, nil, err
	}

	if !isAdmin(&kept) {
		return Settled{}, nil, fmt.Errorf("%w: member %s (%s) is not an admin", ErrCannotSettle, kept.ID, kept.Email)
	}
	if len(admins) != 1 {
		return Settled{}, nil, fmt.Errorf("%w: member %s (%s) is not the organization's last admin (it has %d): converge applies the directory's change to it",
			ErrCannotSettle, kept.ID, kept.Email, len(admins))
	}
	now := tx.Now()
	p := decideUser(kf, now)
	bySelf := takesAdmin(p) != nil // converge keeps it back
	if !bySelf {
		id, err := tx.KeptByLatestRun(ctx, orgID)
		if err != nil {
			return Settled{}, nil, err
		}
		if id != kept.DirectoryUserID {
			return Settled{}, nil, fmt.Errorf("%w: the directory does not take member %s (%s)'s admin access: nothing is kept back",
				ErrCannotSettle, kept.ID, kept.Email)
		}
	}
	if heir != nil {
		if heir.Status == lifecycle.StatusDeprovisioned {
			return Settled{}, nil, fmt.Errorf("%w: member %s (%s) is deprovisioned and cannot be the new admin", ErrCannotSettle, heir.ID, heir.Email)
		}
		if why := wouldLoseAdmin(facts, *heir, now); why != "" {
			return Settled{}, nil, fmt.Errorf("%w: member %s (%s) would not stay an admin: %s", ErrCannotSettle, heir.ID, heir.Email, why)
		}
	}

	t := bulk{actor: ActorAdmin}
	out := Settled{AwaitsReconciliation: !bySelf}
	if heir != nil {
		m := *heir
		m.Role = lifecycle.RoleAdmin
		if err := tx.UpdateMembership(ctx, &m); err != nil {
			return Settled{}, nil, err
		}
		out.NewAdmin = &m
		t.add(orgID, lifecycle.Promote, "member", m.ID, "admin in place of member "+kept.ID+" ("+kept.Email+")")
		if heir.Role != m.Role {
			t.memberEvent(orgID, lifecycle.Promote, m.ID, []string{"role"})
		}
		t.add(orgID, lifecycle.Settle, "member", kept.ID, "handed over to member "+m.ID+" ("+m.Email+")")
	} else {
		t.add(orgID, lifecycle.Settle, "member", kept.ID, "removal confirmed: the organization may be left without an admin")
	}
	var applied []UserPlan
	switch {
	case bySelf:
		if err := c.applyUser(ctx, tx, &t, p); err != nil {
			return Settled{}, nil, err
		}
		applied, out.Applied = []UserPlan{p}, p.Action
	case s.ConfirmRemoval:
		m := kept
		m.Role = lifecycle.RoleMember
		if err := tx.UpdateMembership(ctx, &m); err != nil {
			return Settled{}, nil, err
		}
		out.Applied = lifecycle.Update
		t.add(orgID, lifecycle.Update, "member", m.ID, "directory user "+m.DirectoryUserID, changedDetail([]string{"role"}),
			"the next reconciliation applies what the IdP says of it")
		t.memberEvent(orgID, lifecycle.Update, m.ID, []string{"role"})
	}
	if out.Applied != lifecycle.Remove {
		m, err := tx.Membership(ctx, orgID, kept.ID)
		if err != nil {
			return Settled{}, nil, err
		}
		out.Member = &m
	}
	return out, applied, t.flush(ctx, tx)
}

// wouldLoseAdmin says why converge would take a member's admin access
// away again once promoted (its directory user is gone or inactive, or the
// role mapping makes it a member), or "" when it would not. A member not
// linked to a directory user is not converge's.
func wouldLoseAdmin(facts map[string]userFacts, m store.Membership, now time.Time) string {
	if m.DirectoryUserID == "" {
		return ""
	}
	f := facts[m.DirectoryUserID]
	promoted := m
	promoted.Role = lifecycle.RoleAdmin
	f.member = &promoted
	p := decideUser(f, now)
	if takesAdmin(p) == nil {
		return ""
	}
	switch p.Action {
	case lifecycle.Remove:
		return "its directory user is gone"
	case lifecycle.Deprovision:
		return "its directory user is inactive"
	}
	return "the organization's role mapping makes it a member"
}

func sortedDistinct(ids []string) []string {
	out := distinct(ids)
	slices.Sort(out)
	return out
}
