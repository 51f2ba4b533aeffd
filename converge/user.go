package converge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// UserPlan is what converging one directory user does.
type UserPlan struct {
	OrgID           string
	DirectoryUserID string
	// Action is the decision; the plan's Outcome follows from it.
	Action lifecycle.Decision
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
	// Reason says why a directory user is skipped or its change kept back.
	Reason string
	// Kept is the admin membership a lifecycle.Keep leaves as it is.
	Kept *store.Membership
	// UserEmail is the e-mail the person's shared users row takes with
	// the change, "" for none. UserEmailKept says why the users row keeps
	// its e-mail though the member's changes.
	UserEmail, UserEmailKept string
}

// Reasons for lifecycle.Skip.
const (
	ReasonNoEmail    = "the directory user has no e-mail address, so no member can be created or invited"
	ReasonEmailTaken = "the e-mail belongs to a member linked to another directory user of the organization"
)

// Why the shared users row keeps its e-mail while the member's changes
// (the rule is store's: see store.UserEmailFollows).
var userEmailKept = map[string]string{
	store.UserEmailShared: "the person's other organizations still know them by it",
	store.UserEmailTaken:  "another user has the new e-mail",
}

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
	// user is the member's shared users row when it does not carry the
	// directory's e-mail, with the e-mail rule's verdict; nil when it does.
	user *store.UserEmail
}

// ConvergeUser makes the organization's membership match one directory
// user (which may no longer exist).
func (c *Converger) ConvergeUser(ctx context.Context, orgID, directoryUserID string) (lifecycle.Outcome, error) {
	p, err := c.ApplyUser(ctx, orgID, directoryUserID)
	return p.Outcome(), err
}

// Outcome is what applying the plan changes.
func (p UserPlan) Outcome() lifecycle.Outcome { return p.Action.Outcome() }

// PlanUser says what ConvergeUser would do now, changing nothing.
func (c *Converger) PlanUser(ctx context.Context, orgID, directoryUserID string) (UserPlan, error) {
	fs, err := loadUsers(ctx, c.Store, orgID, []string{directoryUserID}, false)
	if err != nil {
		return UserPlan{}, wrap("plan user converge", err)
	}
	plans := []UserPlan{decideUser(fs[0], c.Store.Now())}
	if _, err := guardAdmins(ctx, c.Store, orgID, plans, false); err != nil {
		return UserPlan{}, wrap("plan user converge", err)
	}
	return plans[0], nil
}

// ApplyUser is ConvergeUser returning the plan it applied: the batch of
// one.
func (c *Converger) ApplyUser(ctx context.Context, orgID, directoryUserID string) (UserPlan, error) {
	ps, _, err := c.applyBatch(ctx, orgID, []string{directoryUserID})
	if err != nil {
		return UserPlan{OrgID: orgID, DirectoryUserID: directoryUserID}, wrap("converge user", err)
	}
	c.notifyInvites(ps)
	return ps[0], nil
}

// ApplyUsers converges many directory users of one organization and
// returns the plans it applied, one per distinct id, in id order (the
// order every batch takes its locks and inserts in, so that overlapping
// batches queue rather than deadlock).
//
// The batch is read with a few set-based queries and applied in one
// transaction; the decision for each user is decideUser's, exactly as for
// ApplyUser. Users whose provisioning depends on another user of the same
// batch (two of them with one e-mail, or one replacing another's stale
// membership) are converged alone afterwards, so each reads what the other
// wrote. When the batch transaction fails, every user is converged alone:
// one user's failure never holds back the others. The error joins the
// failures, each naming its directory user, and the plans returned are the
// users that converged.
func (c *Converger) ApplyUsers(ctx context.Context, orgID string, directoryUserIDs []string) ([]UserPlan, error) {
	ids := distinct(directoryUserIDs)
	if len(ids) == 0 {
		return nil, nil
	}
	slices.Sort(ids)
	ps, alone, err := c.applyBatch(ctx, orgID, ids)
	if err != nil {
		if ctx.Err() != nil || len(ids) == 1 {
			return nil, fmt.Errorf("converge users: %w", err)
		}
		ps, alone = nil, ids
	}
	var errs []error
	for _, id := range alone {
		p, _, err := c.applyBatch(ctx, orgID, []string{id})
		if err != nil {
			errs = append(errs, fmt.Errorf("converge user %s: %w", id, err))
			continue
		}
		ps = append(ps, p[0])
	}
	c.notifyInvites(ps)
	return ps, errors.Join(errs...)
}

// applyBatch converges ids in one transaction, leaving out and returning
// those that must be converged alone (never one of a batch of one).
func (c *Converger) applyBatch(ctx context.Context, orgID string, ids []string) (applied []UserPlan, alone []string, err error) {
	err = c.inTx(ctx, func(tx *store.Store) error {
		fs, err := loadUsers(ctx, tx, orgID, ids, true)
		if err != nil {
			return err
		}
		now := tx.Now()
		plans := make([]UserPlan, len(fs))
		for i, f := range fs {
			plans[i] = decideUser(f, now)
		}
		applied, alone = splitEntangled(plans)
		again, err := guardAdmins(ctx, tx, orgID, applied, true)
		if err != nil {
			return err
		}
		var t bulk
		for _, id := range again {
			t.outbox = append(t.outbox, task.ConvergeUserRow(orgID, id, false))
		}
		for _, p := range applied {
			if err := c.applyUser(ctx, tx, &t, p); err != nil {
				return fmt.Errorf("directory user %s: %w", p.DirectoryUserID, err)
			}
		}
		if err := c.provisionAll(ctx, tx, &t); err != nil {
			return err
		}
		return t.flush(ctx, tx)
	})
	return applied, alone, err
}

// splitEntangled separates the provisions that depend on another plan of
// the same batch: two that would create a member for one person, and one
// that replaces a membership another plan of the batch also acts on.
// Applied from facts read before either ran, they would conflict.
func splitEntangled(plans []UserPlan) (independent []UserPlan, alone []string) {
	inBatch := make(map[string]bool, len(plans))
	people := map[string]int{}
	for _, p := range plans {
		inBatch[p.DirectoryUserID] = true
		if p.Action == lifecycle.Provision {
			people[store.Key(p.After.Email)]++
		}
	}
	for _, p := range plans {
		if p.Action == lifecycle.Provision &&
			(people[store.Key(p.After.Email)] > 1 || p.Replace != nil && inBatch[p.Replace.DirectoryUserID]) {
			alone = append(alone, p.DirectoryUserID)
			continue
		}
		independent = append(independent, p)
	}
	return independent, alone
}

func (c *Converger) notifyInvites(ps []UserPlan) {
	if c.Notify == nil {
		return
	}
	for _, p := range ps {
		if p.Invite > 0 {
			c.Notify()
			return
		}
	}
}

func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// loadUsers reads the facts of distinct directory users, in the order
// given. With lock (inside a transaction) their membership rows are held,
// so concurrent converges of the same user run one after the other, each
// reading what the previous one wrote.
func loadUsers(ctx context.Context, s *store.Store, orgID string, ids []string, lock bool) ([]userFacts, error) {
	for range 3 {
		fs, err := readUsers(ctx, s, orgID, ids, lock)
		if !errors.Is(err, errCreatedMeanwhile) {
			return fs, err
		}
	}
	return nil, store.ErrConflict
}

// errCreatedMeanwhile: a membership for a directory user being read was
// found by its e-mail, though not by its directory user: a concurrent
// converge created it between the two reads. Reading again finds (and
// locks) it.
var errCreatedMeanwhile = errors.New("membership created meanwhile")

func readUsers(ctx context.Context, s *store.Store, orgID string, ids []string, lock bool) ([]userFacts, error) {
	var members map[string]store.Membership
	var userEmails map[string]string
	var err error
	if lock {
		members, userEmails, err = s.LockMembershipsByDirectoryUsers(ctx, orgID, ids)
	} else {
		members, userEmails, err = s.MembershipsByDirectoryUsers(ctx, orgID, ids)
	}
	if err != nil {
		return nil, err
	}
	dirs, mapping, err := s.DirectoryUsersWithRoleMapping(ctx, orgID, ids)
	if err != nil {
		return nil, err
	}
	fs := make([]userFacts, len(ids))
	var emails, pending, mapped, drifted []string
	for i, id := range ids {
		f := userFacts{orgID: orgID, directoryUserID: id}
		if m, ok := members[id]; ok {
			f.member = &m
		}
		if d, ok := dirs[id]; ok {
			f.dir = &d
			mapped = append(mapped, id)
			if f.member != nil && hasEmail(&d) && userEmails[id] != d.Email {
				drifted = append(drifted, id)
			}
		}
		switch {
		case f.dir == nil || !f.dir.Active:
		case f.member == nil && hasEmail(f.dir):
			emails = append(emails, f.dir.Email)
		case f.member != nil && f.member.Status == lifecycle.StatusPendingSetup:
			pending = append(pending, f.member.ID)
		}
		fs[i] = f
	}
	roles, err := s.MappedRoles(ctx, orgID, mapping, mapped)
	if err != nil {
		return nil, err
	}
	people, err := s.MembershipsByEmails(ctx, orgID, emails)
	if err != nil {
		return nil, err
	}
	open, err := s.OpenInvites(ctx, orgID, pending)
	if err != nil {
		return nil, err
	}
	users, err := s.UserEmails(ctx, orgID, drifted, lock)
	if err != nil {
		return nil, err
	}
	for i := range fs {
		f := &fs[i]
		if f.dir == nil {
			continue
		}
		if u, ok := users[f.directoryUserID]; ok {
			f.user = &u
		}
		f.role = roles[f.directoryUserID]
		switch {
		case !f.dir.Active:
		case f.member == nil && hasEmail(f.dir):
			if p, ok := people[store.Key(f.dir.Email)]; ok {
				if p.DirectoryUserID == f.directoryUserID {
					return nil, errCreatedMeanwhile
				}
				f.person = &p
			}
		case f.member != nil && f.member.Status == lifecycle.StatusPendingSetup:
			f.openInvite = open[f.member.ID]
		}
	}
	return fs, nil
}

// decideUser is the provisioning policy.
//
//   - Active directory user without a membership: create one, pending
//     setup, and invite. Without an e-mail (one of only whitespace is
//     none) there is no one to invite and no user to attach (users are
//     keyed by e-mail): skip, with a reason.
//   - Attribute drift (e-mail, names, external id, source, and the role
//     when the organization maps IdP groups to roles): update. The
//     person's shared users row takes the new e-mail too when store's
//     rule allows (store.UserEmailFollows); else it keeps its own.
//   - Inactive: deprovision (status and time), keeping the row and its
//     group links so that re-activation restores them.
//   - Re-activated: pending setup again, with the next invite.
//   - Pending with an e-mail but no open invite (it had no e-mail before):
//     invite.
//   - Directory user gone: remove the membership.
//
// Converge never makes a member active; accepting an invite does. The
// reconciler's plan (store.PlanUsers) decides alike in SQL: a change here
// needs its case in TestDecisionAgreement, and the plan's match.
func decideUser(f userFacts, now time.Time) UserPlan {
	p := UserPlan{OrgID: f.orgID, DirectoryUserID: f.directoryUserID, Before: f.member}
	switch {
	case f.dir == nil && f.member == nil:
		return p
	case f.dir == nil:
		p.Action = lifecycle.Remove
		return p
	case f.member == nil:
		return decideNewMember(p, f)
	}

	after := *f.member
	p.Changed = copyAttributes(&after, f.dir, f.role)
	if f.user != nil {
		if f.user.Verdict == store.UserEmailFollows {
			p.UserEmail = f.dir.Email
			p.Changed = append(p.Changed, "userEmail")
		} else if slices.Contains(p.Changed, "email") {
			p.UserEmailKept = "the user keeps " + f.user.Email + ": " + userEmailKept[f.user.Verdict]
		}
	}
	switch {
	case !f.dir.Active && after.Status != lifecycle.StatusDeprovisioned:
		after.Status, after.DeprovisionedAt = lifecycle.StatusDeprovisioned, &now
		p.Action = lifecycle.Deprovision
	case f.dir.Active && after.Status == lifecycle.StatusDeprovisioned:
		after.Status, after.DeprovisionedAt = lifecycle.StatusPendingSetup, nil
		p.Action = lifecycle.Reprovision
		if after.Email != "" {
			p.Invite = after.InviteSends + 1
		}
	case f.dir.Active && after.Status == lifecycle.StatusPendingSetup && after.Email != "" && !f.openInvite:
		p.Action, p.Invite = lifecycle.Invite, after.InviteSends+1
	case len(p.Changed) > 0:
		p.Action = lifecycle.Update
	default:
		return p
	}
	if after.Status != f.member.Status {
		p.Changed = append(p.Changed, "status")
	}
	p.After = &after
	return p
}

func decideNewMember(p UserPlan, f userFacts) UserPlan {
	if !f.dir.Active {
		return p
	}
	if !hasEmail(f.dir) {
		p.Action, p.Reason = lifecycle.Skip, ReasonNoEmail
		return p
	}
	if f.person != nil {
		if f.person.DirectoryUserExists {
			p.Action, p.Reason = lifecycle.Skip, ReasonEmailTaken
			return p
		}
		stale := f.person.Membership
		p.Replace = &stale
	}
	m := &store.Membership{OrgID: f.orgID, DirectoryUserID: f.dir.ID, Status: lifecycle.StatusPendingSetup}
	copyAttributes(m, f.dir, f.role)
	p.Action, p.After, p.Invite = lifecycle.Provision, m, 1
	return p
}

// hasEmail says whether the directory user has an e-mail address. One of
// only whitespace is none, whichever path wrote it: the plan tests the
// e-mail's key (store.Key) alike.
func hasEmail(d *store.DirectoryUser) bool { return store.Key(d.Email) != "" }

// copyAttributes copies what the directory says into m, and role unless it
// is "", and returns the names of the fields that changed. A directory
// without an e-mail keeps the member's: the member must stay reachable.
func copyAttributes(m *store.Membership, d *store.DirectoryUser, role string) []string {
	var changed []string
	set := func(name string, dst *string, v string) {
		if *dst != v {
			*dst = v
			changed = append(changed, name)
		}
	}
	if hasEmail(d) {
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

func (c *Converger) applyUser(ctx context.Context, tx *store.Store, t *bulk, p UserPlan) error {
	switch p.Action {
	case lifecycle.None:
		return nil
	case lifecycle.Skip:
		t.add(p.OrgID, p.Action, "directory_user", p.DirectoryUserID, p.Reason)
		return nil
	case lifecycle.Keep:
		t.add(p.OrgID, p.Action, "member", p.Kept.ID, "directory user "+p.DirectoryUserID, p.Reason)
		return nil
	case lifecycle.Remove:
		return c.removeMember(ctx, tx, t, *p.Before, "directory user is gone")
	case lifecycle.Provision:
		return c.provision(ctx, tx, t, p)
	}
	m := *p.After
	if err := tx.UpdateMembership(ctx, &m); err != nil {
		return err
	}
	if p.UserEmail != "" {
		if err := tx.SetUserEmail(ctx, m.UserID, p.UserEmail); err != nil {
			return err
		}
	}
	if p.Action == lifecycle.Deprovision {
		if err := tx.SupersedeInvites(ctx, p.OrgID, m.ID); err != nil {
			return err
		}
	}
	if err := c.invite(ctx, tx, t, p.OrgID, m.ID, p.Invite); err != nil {
		return err
	}
	t.add(p.OrgID, p.Action, "member", m.ID,
		"directory user "+p.DirectoryUserID, changedDetail(p.Changed), p.UserEmailKept, inviteDetail(p.Invite))
	t.memberEvent(p.OrgID, p.Action, m.ID, p.Changed)
	return nil
}

// provision removes the membership a provision replaces, and queues the
// provision for provisionAll.
func (c *Converger) provision(ctx context.Context, tx *store.Store, t *bulk, p UserPlan) error {
	if p.Replace != nil {
		if err := c.removeMember(ctx, tx, t, *p.Replace, "directory user "+p.Replace.DirectoryUserID+" is gone; replaced by "+p.DirectoryUserID); err != nil {
			return err
		}
	}
	t.provisions = append(t.provisions, p)
	return nil
}

// provisionAll creates the queued provisions' users and memberships, a
// few statements for all of them, then decides their invites.
func (c *Converger) provisionAll(ctx context.Context, tx *store.Store, t *bulk) error {
	if len(t.provisions) == 0 {
		return nil
	}
	emails := make([]string, len(t.provisions))
	for i, p := range t.provisions {
		emails[i] = p.After.Email
	}
	users, err := tx.EnsureUsers(ctx, emails)
	if err != nil {
		return err
	}
	ms := make([]store.Membership, len(t.provisions))
	spelled := map[string]string{} // directory user → its e-mail, where the users row found spells it otherwise
	for i, p := range t.provisions {
		u := users[store.Key(p.After.Email)]
		ms[i] = *p.After
		ms[i].UserID = u.ID
		if u.Email != p.After.Email {
			spelled[p.DirectoryUserID] = p.After.Email
		}
	}
	if err := tx.CreateMemberships(ctx, ms); err != nil {
		return err
	}
	if err := followUserEmails(ctx, tx, t.provisions[0].OrgID, spelled); err != nil {
		return err
	}
	// A new member's invite is its first (decideNewMember): those are
	// decided together.
	var first []string
	for i, p := range t.provisions {
		m := ms[i]
		if p.Invite == 1 {
			first = append(first, m.ID)
		} else if err := c.invite(ctx, tx, t, p.OrgID, m.ID, p.Invite); err != nil {
			return fmt.Errorf("directory user %s: %w", p.DirectoryUserID, err)
		}
		t.link(p.OrgID, p.DirectoryUserID, m.ID)
		t.add(p.OrgID, p.Action, "member", m.ID,
			"directory user "+p.DirectoryUserID, inviteDetail(p.Invite))
		t.memberEvent(p.OrgID, p.Action, m.ID, nil)
	}
	if len(first) == 0 {
		return nil
	}
	rows, err := c.Invites.DecideFirst(ctx, tx, t.provisions[0].OrgID, first)
	if err != nil {
		return err
	}
	t.outbox = append(t.outbox, rows...)
	return nil
}

// followUserEmails gives the users rows of new memberships, keyed by
// directory user, the spelling of their directory's e-mail (found by key,
// a row may spell it otherwise) where the e-mail rule lets them, as an
// update of an existing member would.
func followUserEmails(ctx context.Context, tx *store.Store, orgID string, emails map[string]string) error {
	if len(emails) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(emails))
	users, err := tx.UserEmails(ctx, orgID, ids, true)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if u, ok := users[id]; ok && u.Verdict == store.UserEmailFollows {
			if err := tx.SetUserEmail(ctx, u.UserID, emails[id]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Converger) removeMember(ctx context.Context, tx *store.Store, t *bulk, m store.Membership, why string) error {
	if err := tx.DeleteMembership(ctx, m.OrgID, m.ID); err != nil {
		return err
	}
	t.add(m.OrgID, lifecycle.Remove, "member", m.ID, why)
	// Gone with its group links; the event carries it as it was last.
	t.change(m.OrgID, store.Change{Type: lifecycle.EventMemberRemoved, EntityType: store.EntityMember, EntityID: m.ID, Data: m})
	return nil
}

func (c *Converger) invite(ctx context.Context, tx *store.Store, t *bulk, orgID, membershipID string, sendNumber int) error {
	if sendNumber == 0 {
		return nil
	}
	row, ok, err := c.Invites.Decide(ctx, tx, orgID, membershipID, sendNumber)
	if ok {
		t.outbox = append(t.outbox, row)
	}
	return err
}

func inviteDetail(n int) string {
	if n == 0 {
		return ""
	}
	return "invite #" + strconv.Itoa(n)
}
