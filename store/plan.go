package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/scimsync/scimsync/lifecycle"
)

// A reconciliation plan is computed in the database: each kind of change is
// one INSERT … SELECT that joins directory state against local state and
// writes a sync_run_items row per difference, so neither side is ever held
// in memory. The conditions mirror converge's per-entity decision
// (decideUser and its last-admin guard), so that converging every planned
// entity leaves nothing to plan; an item's action is the plan item of
// converge's decision (lifecycle.Decision.PlanItem). The two copies are
// pinned to one table of cases, run through both on every backend:
// converge's TestDecisionAgreement. A change to either side starts with a
// case there.

// Plan item entity types.
const (
	EntityDirectoryUser  = "directory_user"
	EntityDirectoryGroup = "directory_group"
	EntityMember         = "member"
)

// PlanScope is what a plan compares: an organization's directory as it will
// be once the run applies, against its local state.
type PlanScope struct {
	OrgID, RunID string
	// Snapshot is the run's generation: pulled rows that carry it were
	// written, and so seen, by the run's pull.
	Snapshot int64
	// Pulled says the run completed a pull: then a pulled row counts only
	// if the pull saw it, and with the activity the pull saw. Without a
	// pull (no connector) every directory row counts as it is.
	Pulled bool
	// Delta says the pull was a delta (see WritePulledDelta): then a pulled
	// row counts unless the delta says it is gone.
	Delta bool
	// Touched, when not nil, limits the member plan to the directory users
	// with these external ids and their memberships: a delta's users, when
	// nothing else it changed can change anyone's plan. Nil plans every one.
	Touched []string
	// RoleMapping maps IdP group names to roles (see MappedRole).
	RoleMapping JSONMap
	// Keep lists directory users the plan leaves alone; they count as
	// present, with their group links.
	Keep []string
}

// args are the named parameters of every plan statement.
func (sc PlanScope) args() map[string]any {
	keep := sc.Keep
	if len(keep) == 0 {
		keep = []string{""} // ids are never empty
	}
	admin := AdminGroupKeys(sc.RoleMapping)
	if len(admin) == 0 {
		admin = []string{" "} // no group name folds to a space
	}
	touched := sc.Touched
	if len(touched) == 0 {
		touched = []string{""} // matches no external id the scope reads
	}
	return map[string]any{"touched": touched, "org": sc.OrgID, "run": sc.RunID, "snapshot": sc.Snapshot, "pulled": btoi(sc.Pulled), "delta": btoi(sc.Delta), "keep": keep, "admin": admin}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AdminGroupKeys lists, folded by Key, the group names a role mapping makes
// admins.
func AdminGroupKeys(m JSONMap) []string {
	var out []string
	for name, role := range m {
		if role == lifecycle.RoleAdmin {
			out = append(out, Key(name))
		}
	}
	slices.Sort(out)
	return out
}

// SQL fragments over aliases. Named parameters must be followed by a space
// or a closing parenthesis.

// seen: the run's pull saw key (an SQL expression) of kind.
func seen(kind, key string) string {
	return "EXISTS (SELECT 1 FROM pull_seen ps WHERE ps.run_id = @run AND ps.kind = '" + kind + "' AND ps.key = " + key + ")"
}

// seenUserRow: the run's pull saw the pulled directory user a, either by
// writing it (it carries the run's snapshot) or by marking it seen.
func seenUserRow(a string) string {
	return "((@snapshot > 0 AND " + a + ".snapshot = @snapshot) OR " + seen(seenUser, a+".external_id") + ")"
}

// presentUser: the directory user counts after the run applies.
func presentUser(a string) string {
	return "(@pulled = 0 OR " + a + ".source = '" + SourceSCIM + "' OR " + a + ".id IN @keep OR " +
		"(@delta <> 0 AND NOT " + seen(goneUser, a+".external_id") + ") OR " + seenUserRow(a) + ")"
}

// activeUser: the activity the directory user has after the run applies.
func activeUser(a string) string {
	return "(CASE WHEN @pulled <> 0 AND " + a + ".source <> '" + SourceSCIM + "' THEN " + a + ".pulled_active ELSE " + a + ".active END)"
}

func presentGroup(g string) string {
	return "(@pulled = 0 OR " + g + ".source = '" + SourceSCIM + "' OR " +
		"(@delta <> 0 AND NOT " + seen(goneGroup, g+".external_id") + ") OR " + seen(seenGroup, g+".external_id") + ")"
}

// presentLink: the group link gm (of group g) counts after the run applies.
func presentLink(gm, g string) string {
	return "(@pulled = 0 OR " + g + ".source = '" + SourceSCIM + "' OR " + gm + ".user_id IN @keep OR " +
		"(@delta <> 0 AND NOT " + seen(goneLink, gm+".group_id || ':' || "+gm+".user_id") + ") OR " +
		seen(seenLink, gm+".group_id || ':' || "+gm+".user_id") + ")"
}

// inAdminGroup: the directory user is in a group the role mapping makes
// admins.
func inAdminGroup(a string) string {
	return "EXISTS (SELECT 1 FROM directory_group_members ag JOIN directory_groups agg ON agg.id = ag.group_id AND agg.org_id = ag.org_id" +
		" WHERE ag.org_id = " + a + ".org_id AND ag.user_id = " + a + ".id AND agg.display_name_key IN @admin AND " +
		presentGroup("agg") + " AND " + presentLink("ag", "agg") + ")"
}

// mappedRole is the role the mapping gives the directory user, or "" (SQL
// NULL never arises) when roles are not mapped.
func mappedRole(sc PlanScope, a string) string {
	if len(sc.RoleMapping) == 0 {
		return ""
	}
	return "(CASE WHEN " + inAdminGroup(a) + " THEN '" + lifecycle.RoleAdmin + "' ELSE '" + lifecycle.RoleMember + "' END)"
}

// emailTaken: another membership of the person with the directory user's
// e-mail is linked to a directory user that stays.
func emailTaken(a string) string {
	return "EXISTS (SELECT 1 FROM users pu JOIN org_memberships po ON po.user_id = pu.id" +
		" JOIN directory_users px ON px.org_id = po.org_id AND px.id = po.directory_user_id" +
		" WHERE pu.email_key = " + a + ".email_key AND po.org_id = " + a + ".org_id AND " + presentUser("px") + ")"
}

// The shared users row and a directory's e-mail. A person's users row is
// shared by their memberships in every organization, each following its
// own IdP; a membership's e-mail always follows its directory user. The
// users row takes the e-mail a directory gives one of its memberships
// only when every other membership of the person already carries that
// e-mail and no other users row has it. So one organization's IdP never
// changes the address the person's other organizations still know them
// by (the row follows once they all agree), and two users rows are never
// merged, nor one's address handed to another (the row follows once the
// other lets the address go). This is the one statement of the rule:
// converge reads its verdict (UserEmails) and the plan writes it.
const (
	UserEmailFollows = "follows" // the users row takes the directory's e-mail
	UserEmailShared  = "shared"  // another membership of the person carries another e-mail
	UserEmailTaken   = "taken"   // another users row has the directory's e-mail
)

// userEmailVerdict is the rule above for the users row u of membership m,
// linked to directory user d: one of the UserEmail verdicts, or empty when
// the row has the directory's e-mail already, the directory gives none, or
// there is no membership (u is NULL). Only that first test runs for a
// row in step.
func userEmailVerdict(u, m, d string) string {
	return "(CASE WHEN " + u + ".id IS NULL OR " + d + ".email_key = '' OR " + u + ".email = " + d + ".email THEN ''" +
		" WHEN EXISTS (SELECT 1 FROM org_memberships uo WHERE uo.user_id = " + u + ".id AND uo.id <> " + m + ".id AND uo.email <> " + d + ".email)" +
		" THEN '" + UserEmailShared + "'" +
		" WHEN EXISTS (SELECT 1 FROM users ut WHERE ut.email_key = " + d + ".email_key AND ut.id <> " + u + ".id) THEN '" + UserEmailTaken + "'" +
		" ELSE '" + UserEmailFollows + "' END)"
}

// inviteMissing: a pending member that converge would invite, having no
// open invite.
func inviteMissing(d, m string) string {
	return "(" + activeUser(d) + " AND " + m + ".status = '" + lifecycle.StatusPendingSetup + "'" +
		" AND (CASE WHEN " + d + ".email_key <> '' THEN " + d + ".email ELSE " + m + ".email END) <> ''" +
		" AND NOT EXISTS (SELECT 1 FROM invites i WHERE i.org_id = " + m + ".org_id AND i.membership_id = " + m + ".id" +
		" AND i.accepted_at IS NULL AND i.superseded_at IS NULL))"
}

const insertItems = "INSERT INTO sync_run_items (run_id, org_id, action, entity_type, entity_id, detail) "

// planExec runs one statement of the plan, on Postgres in a transaction of
// its own without JIT (see noJIT).
func (s *Store) planExec(ctx context.Context, sc PlanScope, what, sql string) error {
	exec := func(tx *Store) error {
		if err := tx.noJIT(ctx); err != nil {
			return err
		}
		return tx.conn(ctx).Exec(sql, sc.args()).Error
	}
	var err error
	if s.d.settingsTx {
		err = s.Tx(ctx, exec)
	} else {
		err = exec(s)
	}
	if err != nil {
		return fmt.Errorf("plan %s: %w", what, err)
	}
	return nil
}

// PlanUsers writes the run's member changes: provisions, skips,
// deprovisions and updates in one pass over the directory joined to the
// memberships, and removals in one pass over the memberships.
func (s *Store) PlanUsers(ctx context.Context, sc PlanScope) error {
	role := mappedRole(sc, "d")
	roleDrift, roleText, provisionRole := "FALSE", "''", "''"
	if role != "" {
		roleDrift = "m.role <> " + role
		roleText = "CASE WHEN m.role <> " + role + " THEN 'role ' || m.role || ' → ' || " + role + " || ', ' ELSE '' END"
		provisionRole = "CASE WHEN " + role + " = '" + lifecycle.RoleAdmin + "' THEN '; as admin' ELSE '' END"
	}
	// What converge would do, in its order of precedence (decideUser). The
	// e-mail lookup is made only for users without a member.
	active := activeUser("d")
	action := "CASE" +
		" WHEN " + active + " AND m.status = '" + lifecycle.StatusDeprovisioned + "' THEN '" + lifecycle.Provision.PlanItem() + "'" +
		" WHEN " + active + " AND m.id IS NULL THEN CASE WHEN d.email_key = '' OR " + emailTaken("d") +
		" THEN '" + lifecycle.Skip.PlanItem() + "' ELSE '" + lifecycle.Provision.PlanItem() + "' END" +
		" WHEN m.id IS NULL THEN NULL" +
		" WHEN NOT " + active + " AND m.status IN ('" + lifecycle.StatusPendingSetup + "', '" + lifecycle.StatusActive + "') THEN '" + lifecycle.Deprovision.PlanItem() + "'" +
		" WHEN (d.email_key <> '' AND m.email <> d.email) OR m.first_name <> d.given_name OR m.last_name <> d.family_name" +
		" OR m.external_id <> d.external_id OR m.source <> d.source OR " + inviteMissing("d", "m") + " OR " + roleDrift +
		" OR " + userEmailVerdict("u", "m", "d") + " = '" + UserEmailFollows + "'" +
		" THEN '" + lifecycle.Update.PlanItem() + "' END"
	detail := "CASE x.action" +
		" WHEN '" + lifecycle.Provision.PlanItem() + "' THEN CASE WHEN x.mid IS NULL THEN x.email ELSE x.memail || ': re-activate the deprovisioned member' END || x.provision_role" +
		" WHEN '" + lifecycle.Skip.PlanItem() + "' THEN CASE WHEN x.email_key = '' THEN x.user_name || ': no e-mail address, so no member can be created or invited'" +
		" ELSE x.email || ': the e-mail belongs to a member linked to another directory user' END" +
		" WHEN '" + lifecycle.Deprovision.PlanItem() + "' THEN x.memail || ': ' || x.mstatus || ' → deprovisioned' ||" +
		" CASE WHEN x.raw_status <> '' THEN ' (IdP status ' || x.raw_status || ')' ELSE '' END" +
		" ELSE x.memail || ': ' || RTRIM(x.changes, ', ') END"
	changes := "CASE WHEN d.email_key <> '' AND m.email <> d.email THEN 'email → ' || d.email || ', ' ELSE '' END ||" +
		" CASE WHEN m.first_name <> d.given_name THEN 'firstName, ' ELSE '' END ||" +
		" CASE WHEN m.last_name <> d.family_name THEN 'lastName, ' ELSE '' END ||" +
		" CASE WHEN m.external_id <> d.external_id THEN 'externalId, ' ELSE '' END ||" +
		" CASE WHEN m.source <> d.source THEN 'source, ' ELSE '' END ||" +
		" CASE WHEN " + inviteMissing("d", "m") + " THEN 'invite (none open), ' ELSE '' END || " + roleText + " ||" +
		" CASE WHEN " + userEmailVerdict("u", "m", "d") + " = '" + UserEmailFollows + "' THEN 'user email → ' || d.email || ', ' ELSE '' END"
	// A scope reads its users by the (org_id, external_id) index; the
	// index is partial, and the query names its condition.
	scopeD, scopeM := "", ""
	if sc.Touched != nil {
		scopeD = " AND d.external_id <> '' AND d.external_id IN @touched"
		scopeM = " AND m.directory_user_id IN (SELECT t.id FROM directory_users t WHERE t.org_id = @org AND t.external_id <> '' AND t.external_id IN @touched)"
	}
	steps := []struct{ what, sql string }{
		{"member changes", insertItems + "SELECT @run, x.org_id, x.action, '" + EntityDirectoryUser + "', x.id, " + detail +
			" FROM (SELECT d.org_id, d.id, d.email, d.email_key, d.user_name, d.raw_status, m.id AS mid, m.email AS memail, m.status AS mstatus," +
			" " + action + " AS action," +
			" CASE WHEN m.id IS NOT NULL THEN " + changes + " ELSE '' END AS changes," +
			" " + provisionRole + " AS provision_role" +
			" FROM directory_users d LEFT JOIN org_memberships m ON m.org_id = d.org_id AND m.directory_user_id = d.id" +
			" LEFT JOIN users u ON u.id = m.user_id" +
			" WHERE d.org_id = @org AND " + presentUser("d") + scopeD + ") x WHERE x.action IS NOT NULL"},
		{"removals", insertItems + "SELECT @run, m.org_id, '" + lifecycle.Remove.PlanItem() + "', '" + EntityDirectoryUser + "', m.directory_user_id," +
			" m.email || ': ' || m.status || ' member whose directory user is gone'" +
			" FROM org_memberships m WHERE m.org_id = @org AND m.directory_user_id <> ''" + scopeM +
			" AND NOT EXISTS (SELECT 1 FROM directory_users d WHERE d.org_id = m.org_id AND d.id = m.directory_user_id AND " + presentUser("d") + ")"},
	}
	for _, st := range steps {
		if err := s.planExec(ctx, sc, st.what, st.sql); err != nil {
			return err
		}
	}
	return nil
}

// PlanGroups writes the run's group changes: local groups to create, to
// update (name, source, external id, or member set) and to delete.
func (s *Store) PlanGroups(ctx context.Context, sc PlanScope) error {
	adds := "(SELECT COUNT(*) FROM directory_group_members gm" +
		" JOIN directory_users u ON u.org_id = gm.org_id AND u.id = gm.user_id" +
		" JOIN org_memberships m ON m.org_id = gm.org_id AND m.directory_user_id = gm.user_id" +
		" WHERE gm.org_id = g.org_id AND gm.group_id = g.id AND " + presentLink("gm", "g") + " AND " + presentUser("u") +
		" AND NOT EXISTS (SELECT 1 FROM local_group_members lm WHERE lm.group_id = l.id AND lm.membership_id = m.id))"
	removes := "(SELECT COUNT(*) FROM local_group_members lm JOIN org_memberships m ON m.org_id = lm.org_id AND m.id = lm.membership_id" +
		" WHERE lm.org_id = g.org_id AND lm.group_id = l.id" +
		" AND NOT EXISTS (SELECT 1 FROM directory_group_members gm JOIN directory_users u ON u.org_id = gm.org_id AND u.id = gm.user_id" +
		" WHERE gm.group_id = g.id AND gm.user_id = m.directory_user_id AND " + presentLink("gm", "g") + " AND " + presentUser("u") + "))"
	steps := []struct{ what, sql string }{
		{"group changes", insertItems + "SELECT @run, @org ," +
			" CASE WHEN x.lid IS NULL THEN '" + lifecycle.GroupCreate.PlanItem() + "' ELSE '" + lifecycle.GroupUpdate.PlanItem() + "' END, '" + EntityDirectoryGroup + "', x.gid," +
			" x.name || ': ' || RTRIM(" +
			"CASE WHEN x.lid IS NULL THEN 'create, ' ELSE '' END ||" +
			" CASE WHEN x.lid IS NOT NULL AND x.lname <> x.name THEN 'rename from ' || x.lname || ', ' ELSE '' END ||" +
			" CASE WHEN x.lid IS NOT NULL AND (x.lext <> x.ext OR x.lsrc <> x.src) THEN 'externalId/source, ' ELSE '' END ||" +
			" CASE WHEN x.adds > 0 OR x.removes > 0 THEN 'members +' || CAST(x.adds AS TEXT) || ' -' || CAST(x.removes AS TEXT) ELSE '' END, ', ')" +
			" FROM (SELECT g.id AS gid, g.display_name AS name, g.external_id AS ext, g.source AS src," +
			" l.id AS lid, l.name AS lname, l.external_id AS lext, l.source AS lsrc, " + adds + " AS adds, " + removes + " AS removes" +
			" FROM directory_groups g LEFT JOIN local_groups l ON l.org_id = g.org_id AND l.directory_group_id = g.id" +
			" WHERE g.org_id = @org AND " + presentGroup("g") + ") x" +
			" WHERE x.lid IS NULL OR x.lname <> x.name OR x.lext <> x.ext OR x.lsrc <> x.src OR x.adds > 0 OR x.removes > 0"},
		{"group deletions", insertItems + "SELECT @run, l.org_id, '" + lifecycle.GroupDelete.PlanItem() + "', '" + EntityDirectoryGroup + "', l.directory_group_id," +
			" l.name || ': delete, its directory group is gone'" +
			" FROM local_groups l WHERE l.org_id = @org AND l.directory_group_id <> ''" +
			" AND NOT EXISTS (SELECT 1 FROM directory_groups g WHERE g.org_id = l.org_id AND g.id = l.directory_group_id AND " + presentGroup("g") + ")"},
	}
	for _, st := range steps {
		if err := s.planExec(ctx, sc, st.what, st.sql); err != nil {
			return err
		}
	}
	return nil
}

// AdminFate is one of an organization's admins and whether the run's plan
// takes their admin access away.
type AdminFate struct {
	MembershipID    string `gorm:"column:id"`
	DirectoryUserID string `gorm:"column:directory_user_id"`
	Email           string `gorm:"column:email"`
	Losing          bool   `gorm:"column:losing"`
}

// PlanAdminFates lists the organization's admins (role admin, not
// deprovisioned), oldest first, each marked losing when the plan (written
// by PlanUsers) deprovisions or removes them, or the role mapping makes them
// members.
func (s *Store) PlanAdminFates(ctx context.Context, sc PlanScope) ([]AdminFate, error) {
	demoted := "FALSE"
	if role := mappedRole(sc, "d"); role != "" {
		demoted = "EXISTS (SELECT 1 FROM directory_users d WHERE d.org_id = m.org_id AND d.id = m.directory_user_id AND " +
			presentUser("d") + " AND " + role + " <> '" + lifecycle.RoleAdmin + "')"
	}
	var out []AdminFate
	err := s.conn(ctx).Raw("SELECT m.id, m.directory_user_id, m.email,"+
		" (EXISTS (SELECT 1 FROM sync_run_items i WHERE i.run_id = @run AND i.entity_id = m.directory_user_id"+
		" AND i.action IN ('"+lifecycle.Deprovision.PlanItem()+"', '"+lifecycle.Remove.PlanItem()+"') ) OR "+demoted+") AS losing"+
		" FROM org_memberships m WHERE m.org_id = @org AND m.role = '"+lifecycle.RoleAdmin+"' AND m.status <> '"+lifecycle.StatusDeprovisioned+"'"+
		" ORDER BY m.created_at, m.id", sc.args()).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("plan admin fates: %w", err)
	}
	return out, nil
}

// PlanReplacers lists the directory users that the plan (written into
// sync_run_items) provisions in place of a membership: active users without
// a membership of their own whose e-mail is the membership's, which
// converge would link to it in its directory user's stead.
func (s *Store) PlanReplacers(ctx context.Context, sc PlanScope, m AdminFate) ([]string, error) {
	args := sc.args()
	args["key"] = Key(m.Email)
	var out []string
	err := s.conn(ctx).Raw("SELECT i.entity_id FROM sync_run_items i"+
		" JOIN directory_users d ON d.org_id = i.org_id AND d.id = i.entity_id"+
		" WHERE i.run_id = @run AND i.org_id = @org AND i.entity_type = '"+EntityDirectoryUser+"'"+
		" AND i.action = '"+lifecycle.Provision.PlanItem()+"' AND d.email_key = @key"+
		" AND NOT EXISTS (SELECT 1 FROM org_memberships o WHERE o.org_id = d.org_id AND o.directory_user_id = d.id)"+
		" ORDER BY i.entity_id", args).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("plan replacers: %w", err)
	}
	return out, nil
}

// AdminMemberships lists the organization's admins (role admin, not
// deprovisioned), oldest first. With lock, inside a transaction, it first
// waits for any other transaction that took the lock for the same
// organization to end (on SQLite, where transactions take the one write
// lock up front, they already do), so that those deciding whether an
// admin stays see each other's decisions.
func (s *Store) AdminMemberships(ctx context.Context, orgID string, lock bool) ([]Membership, error) {
	if lock && s.d.orgLock != "" {
		if err := s.conn(ctx).Exec(s.d.orgLock, adminLockClass, orgID).Error; err != nil {
			return nil, fmt.Errorf("admin memberships: lock: %w", err)
		}
	}
	var out []Membership
	if err := s.conn(ctx).Where("org_id = ? AND role = ? AND status <> ?", orgID, lifecycle.RoleAdmin, lifecycle.StatusDeprovisioned).
		Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("admin memberships: %w", err)
	}
	return out, nil
}

// adminLockClass is the first key of the advisory locks of AdminMemberships.
const adminLockClass = 0x5c1a

// MappedRole is the role an organization's role mapping gives a directory
// user: admin when the IdP puts the user in a group (matched by name,
// case-insensitively) that the mapping maps to "admin", else member.
// managed is false when the mapping names no group at all: roles are then
// not the IdP's to set. Converge and the reconciler's plan share this rule.
func (s *Store) MappedRole(ctx context.Context, orgID string, mapping JSONMap, directoryUserID string) (role string, managed bool, err error) {
	sc := PlanScope{OrgID: orgID, RoleMapping: mapping}
	expr := mappedRole(sc, "d")
	if expr == "" {
		return "", false, nil
	}
	args := sc.args()
	args["id"] = directoryUserID
	var got []string
	if err := s.conn(ctx).Raw("SELECT "+expr+" AS role FROM directory_users d WHERE d.org_id = @org AND d.id = @id ", args).
		Scan(&got).Error; err != nil {
		return "", false, fmt.Errorf("mapped role: %w", err)
	}
	if len(got) == 0 {
		return "", false, fmt.Errorf("directory user %w", ErrNotFound)
	}
	return strings.TrimSpace(got[0]), true, nil
}
