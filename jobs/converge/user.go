package converge

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/scimsync/scimsync/store"
)

// UserPlan is what converging one directory user does.
type UserPlan struct {
	OrgID           string
	DirectoryUserID string
	Action          Action
	Outcome         Outcome
	// Before is the membership as found, After as converge leaves it; nil
	// for none. After.UserID is empty for a membership still to be created.
	Before, After *store.Membership
	// Changed lists the membership fields that change.
	Changed []string
	// Invite is the send number of a new invite decision, 0 for none.
	Invite int
	// Replace is a membership of the same person linked to a directory user
	// that no longer exists; it is removed before After is created.
	Replace *store.Membership
	// Reason says why a directory user is skipped.
	Reason string
}

// Reasons for MemberSkip.
const (
	ReasonNoEmail    = "the directory user has no e-mail address, so no member can be created or invited"
	ReasonEmailTaken = "the e-mail belongs to a member linked to another directory user of the organization"
)

// userFacts is everything decideUser looks at.
type userFacts struct {
	orgID, directoryUserID string
	dir                    *store.DirectoryUser
	member                 *store.Membership
	// person is the organization's membership of the user with dir's
	// e-mail; read only when member is nil.
	person *store.MemberOfPerson
	// openInvite says whether a pending member has an unaccepted,
	// unsuperseded invite; read only for pending members.
	openInvite bool
	// role is what the organization's role mapping makes the directory
	// user, or "" when the mapping names no group (roles are then not the
	// IdP's to set).
	role string
}

// ConvergeUser makes the organization's membership match one directory
// user (which may no longer exist).
func (c *Converger) ConvergeUser(ctx context.Context, orgID, directoryUserID string) (Outcome, error) {
	p, err := c.ApplyUser(ctx, orgID, directoryUserID)
	return p.Outcome, err
}

// PlanUser says what ConvergeUser would do now, changing nothing.
func (c *Converger) PlanUser(ctx context.Context, orgID, directoryUserID string) (UserPlan, error) {
	f, err := loadUser(ctx, c.Store, orgID, directoryUserID, false)
	if err != nil {
		return UserPlan{}, wrap("plan user converge", err)
	}
	return decideUser(f, c.Store.Now()), nil
}

// ApplyUser is ConvergeUser returning the plan it applied.
func (c *Converger) ApplyUser(ctx context.Context, orgID, directoryUserID string) (UserPlan, error) {
	var p UserPlan
	err := c.inTx(ctx, func(tx *store.Store) error {
		f, err := loadUser(ctx, tx, orgID, directoryUserID, true)
		if err != nil {
			return err
		}
		p = decideUser(f, tx.Now())
		return c.applyUser(ctx, tx, p)
	})
	if err != nil {
		return UserPlan{OrgID: orgID, DirectoryUserID: directoryUserID, Outcome: Unchanged}, wrap("converge user", err)
	}
	if p.Invite > 0 && c.Notify != nil {
		c.Notify()
	}
	return p, nil
}

// loadUser reads the facts. With lock (inside a transaction) the membership
// row is held, so concurrent converges of the same user run one after the
// other, each reading what the previous one wrote.
func loadUser(ctx context.Context, s *store.Store, orgID, directoryUserID string, lock bool) (userFacts, error) {
	for range 3 {
		f, err := readUser(ctx, s, orgID, directoryUserID, lock)
		// A membership for this very user found by e-mail was created by a
		// concurrent converge between the two reads: read again, which
		// now finds (and locks) it.
		if err != nil || f.person == nil || f.person.DirectoryUserID != directoryUserID {
			return f, err
		}
	}
	return userFacts{}, store.ErrConflict
}

func readUser(ctx context.Context, s *store.Store, orgID, directoryUserID string, lock bool) (userFacts, error) {
	f := userFacts{orgID: orgID, directoryUserID: directoryUserID}
	var err error
	if lock {
		f.member, err = notFoundAsNil(s.LockMembershipByDirectoryUser(ctx, orgID, directoryUserID))
	} else {
		f.member, err = notFoundAsNil(s.MembershipByDirectoryUser(ctx, orgID, directoryUserID))
	}
	if err != nil {
		return f, err
	}
	dir, mapping, err := s.DirectoryUserWithRoleMapping(ctx, orgID, directoryUserID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = nil // gone: the directory user's absence is a fact too
	case err != nil:
		return f, err
	default:
		f.dir = &dir
		if f.role, err = mappedRole(ctx, s, orgID, mapping, directoryUserID); err != nil {
			return f, err
		}
	}
	switch {
	case f.dir == nil || !f.dir.Active:
	case f.member == nil && f.dir.Email != "":
		f.person, err = notFoundAsNil(s.MembershipByEmail(ctx, orgID, f.dir.Email))
	case f.member != nil && f.member.Status == store.StatusPendingSetup:
		f.openInvite, err = s.HasOpenInvite(ctx, orgID, f.member.ID)
	}
	return f, err
}

// mappedRole is the role an organization's role mapping gives a directory
// user, "" when roles are not mapped.
func mappedRole(ctx context.Context, s *store.Store, orgID string, mapping store.JSONMap, directoryUserID string) (string, error) {
	if len(mapping) == 0 {
		return "", nil
	}
	role, managed, err := s.MappedRole(ctx, orgID, mapping, directoryUserID)
	if err != nil || !managed {
		return "", err
	}
	return role, nil
}

// decideUser is the provisioning policy.
//
//   - Active directory user without a membership: create one, pending
//     setup, and invite. Without an e-mail there is no one to invite and no
//     user to attach (users are keyed by e-mail): skip, with a reason.
//   - Attribute drift (e-mail, names, external id, source, and the role
//     when the organization maps IdP groups to roles): update.
//   - Inactive: deprovision (status and time), keeping the row and its
//     group links so that re-activation restores them.
//   - Re-activated: pending setup again, with the next invite.
//   - Pending with an e-mail but no open invite (it had no e-mail before):
//     invite.
//   - Directory user gone: remove the membership.
//
// Converge never makes a member active; accepting an invite does.
func decideUser(f userFacts, now time.Time) UserPlan {
	p := UserPlan{OrgID: f.orgID, DirectoryUserID: f.directoryUserID, Outcome: Unchanged, Before: f.member}
	switch {
	case f.dir == nil && f.member == nil:
		return p
	case f.dir == nil:
		p.Action, p.Outcome = MemberRemove, Removed
		return p
	case f.member == nil:
		return decideNewMember(p, f)
	}

	after := *f.member
	p.Changed = copyAttributes(&after, f.dir, f.role)
	switch {
	case !f.dir.Active && after.Status != store.StatusDeprovisioned:
		after.Status, after.DeprovisionedAt = store.StatusDeprovisioned, &now
		p.Action = MemberDeprovision
	case f.dir.Active && after.Status == store.StatusDeprovisioned:
		after.Status, after.DeprovisionedAt = store.StatusPendingSetup, nil
		p.Action = MemberReprovision
		if after.Email != "" {
			p.Invite = after.InviteSends + 1
		}
	case f.dir.Active && after.Status == store.StatusPendingSetup && after.Email != "" && !f.openInvite:
		p.Action, p.Invite = MemberInvite, after.InviteSends+1
	case len(p.Changed) > 0:
		p.Action = MemberUpdate
	default:
		return p
	}
	if after.Status != f.member.Status {
		p.Changed = append(p.Changed, "status")
	}
	p.After, p.Outcome = &after, Updated
	return p
}

func decideNewMember(p UserPlan, f userFacts) UserPlan {
	if !f.dir.Active {
		return p
	}
	if f.dir.Email == "" {
		p.Action, p.Reason = MemberSkip, ReasonNoEmail
		return p
	}
	if f.person != nil {
		if f.person.DirectoryUserExists {
			p.Action, p.Reason = MemberSkip, ReasonEmailTaken
			return p
		}
		stale := f.person.Membership
		p.Replace = &stale
	}
	m := &store.Membership{OrgID: f.orgID, DirectoryUserID: f.dir.ID, Status: store.StatusPendingSetup}
	copyAttributes(m, f.dir, f.role)
	p.Action, p.Outcome, p.After, p.Invite = MemberProvision, Created, m, 1
	return p
}

// copyAttributes copies what the directory says into m, and role unless it
// is "", and returns the names of the fields that changed. An empty
// directory e-mail keeps the member's: the member must stay reachable.
func copyAttributes(m *store.Membership, d *store.DirectoryUser, role string) []string {
	var changed []string
	set := func(name string, dst *string, v string) {
		if *dst != v {
			*dst = v
			changed = append(changed, name)
		}
	}
	if d.Email != "" {
		set("email", &m.Email, d.Email)
	}
	set("firstName", &m.FirstName, d.GivenName)
	set("lastName", &m.LastName, d.FamilyName)
	set("externalId", &m.ExternalID, d.ExternalID)
	set("source", &m.Source, d.Source)
	if role != "" {
		set("role", &m.Role, role)
	}
	return changed
}

func (c *Converger) applyUser(ctx context.Context, tx *store.Store, p UserPlan) error {
	switch p.Action {
	case None:
		return nil
	case MemberSkip:
		return audit(ctx, tx, p.OrgID, p.Action, p.Outcome, "directory_user", p.DirectoryUserID, p.Reason)
	case MemberRemove:
		return c.removeMember(ctx, tx, *p.Before, "directory user is gone")
	case MemberProvision:
		return c.provision(ctx, tx, p)
	}
	m := *p.After
	if err := tx.UpdateMembership(ctx, &m); err != nil {
		return err
	}
	if p.Action == MemberDeprovision {
		if err := tx.SupersedeInvites(ctx, p.OrgID, m.ID); err != nil {
			return err
		}
	}
	if err := c.invite(ctx, tx, p.OrgID, m.ID, p.Invite); err != nil {
		return err
	}
	return audit(ctx, tx, p.OrgID, p.Action, p.Outcome, "member", m.ID,
		"directory user "+p.DirectoryUserID, changedDetail(p.Changed), inviteDetail(p.Invite))
}

func (c *Converger) provision(ctx context.Context, tx *store.Store, p UserPlan) error {
	if p.Replace != nil {
		if err := c.removeMember(ctx, tx, *p.Replace, "directory user "+p.Replace.DirectoryUserID+" is gone; replaced by "+p.DirectoryUserID); err != nil {
			return err
		}
	}
	u, err := tx.EnsureUser(ctx, p.After.Email)
	if err != nil {
		return err
	}
	m := *p.After
	m.UserID = u.ID
	if err := tx.CreateMembership(ctx, &m); err != nil {
		return err
	}
	// Groups converged before this user could not link it; link it now, so
	// the order of user and group jobs does not matter.
	if _, err := tx.LinkMembershipToGroups(ctx, p.OrgID, m.ID, p.DirectoryUserID); err != nil {
		return err
	}
	if err := c.invite(ctx, tx, p.OrgID, m.ID, p.Invite); err != nil {
		return err
	}
	return audit(ctx, tx, p.OrgID, p.Action, p.Outcome, "member", m.ID,
		"directory user "+p.DirectoryUserID, inviteDetail(p.Invite))
}

func (c *Converger) removeMember(ctx context.Context, tx *store.Store, m store.Membership, why string) error {
	if err := tx.DeleteMembership(ctx, m.OrgID, m.ID); err != nil {
		return err
	}
	return audit(ctx, tx, m.OrgID, MemberRemove, Removed, "member", m.ID, why)
}

func (c *Converger) invite(ctx context.Context, tx *store.Store, orgID, membershipID string, sendNumber int) error {
	if sendNumber == 0 {
		return nil
	}
	_, err := c.Invites.Issue(ctx, tx, orgID, membershipID, sendNumber)
	return err
}

func inviteDetail(n int) string {
	if n == 0 {
		return ""
	}
	return "invite #" + strconv.Itoa(n)
}
