package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm/clause"

	"github.com/scimsync/scimsync/lifecycle"
)

// Set-based reads and writes for converging many entities of one
// organization in one transaction. Each is the many-ids form of a
// single-entity query elsewhere in this package.

// eachRow returns a FROM clause of the rows of table (as alias) whose
// column equals one of values and for which cond (when not empty, with
// its own parameters, bound after the returned one) holds, and the one
// argument that carries the values. Each value is one index lookup
// (Postgres), whatever the statistics say: an organization's first
// provisioning fills its memberships faster than statistics follow, and
// Postgres without them took "org_id = ?" for a few rows and read the
// organization's every membership for each batch. A value matching
// several rows yields one of them on Postgres.
func (s *Store) eachRow(table, alias, column string, values []string, cond string) (string, any) {
	on := alias + "." + column + " = k.value"
	if cond != "" {
		on += " AND " + cond
	}
	from, arg := s.d.list(values)
	return "(" + from + ") k " + s.d.joinEach(table, alias, on), arg
}

// MembershipsByDirectoryUsers returns the organization's memberships linked
// to any of the directory users, keyed by directory user id, and the
// e-mail of each one's shared users row, keyed alike.
func (s *Store) MembershipsByDirectoryUsers(ctx context.Context, orgID string, directoryUserIDs []string) (members map[string]Membership, userEmails map[string]string, err error) {
	return s.membershipsByDirectoryUsers(ctx, orgID, directoryUserIDs, "")
}

// LockMembershipsByDirectoryUsers is MembershipsByDirectoryUsers, holding
// the membership rows (not the users rows) until the transaction ends. Rows are locked in directory user id
// order, so two transactions locking overlapping sets queue on the first
// row they share instead of deadlocking. Call it inside Tx.
func (s *Store) LockMembershipsByDirectoryUsers(ctx context.Context, orgID string, directoryUserIDs []string) (members map[string]Membership, userEmails map[string]string, err error) {
	return s.membershipsByDirectoryUsers(ctx, orgID, directoryUserIDs, s.d.lock("NO KEY UPDATE OF m"))
}

func (s *Store) membershipsByDirectoryUsers(ctx context.Context, orgID string, ids []string, lock string) (map[string]Membership, map[string]string, error) {
	out, emails := make(map[string]Membership, len(ids)), make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, emails, nil
	}
	var rows []struct {
		Membership
		UserEmail string `gorm:"column:user_email"`
	}
	// The users row by a lookup per membership (its primary key), whatever
	// the statistics say; it is only read, not locked.
	from, arg := s.eachRow("org_memberships", "m", "directory_user_id", ids, "m.org_id = ?")
	if err := s.conn(ctx).Raw("SELECT m.*, (SELECT u.email FROM users u WHERE u.id = m.user_id) AS user_email"+
		" FROM "+from+" ORDER BY m.directory_user_id"+lock, arg, orgID).
		Scan(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("get memberships: %w", err)
	}
	for _, r := range rows {
		out[r.DirectoryUserID], emails[r.DirectoryUserID] = r.Membership, r.UserEmail
	}
	return out, emails, nil
}

// DirectoryUsersWithRoleMapping reads directory users, keyed by id, and
// their organization's role mapping, in one round trip. Ids that do not
// exist are absent from the map.
func (s *Store) DirectoryUsersWithRoleMapping(ctx context.Context, orgID string, ids []string) (map[string]DirectoryUser, JSONMap, error) {
	out := make(map[string]DirectoryUser, len(ids))
	if len(ids) == 0 {
		return out, nil, nil
	}
	var rows []struct {
		DirectoryUser
		RoleMapping JSONMap `gorm:"column:role_mapping"`
	}
	// By primary key alone, the organization checked after (see
	// InvitesForSending): a plan without statistics may otherwise read the
	// organization's users through (org_id, created_at, id).
	from, arg := s.eachRow("directory_users", "d", "id", ids, "")
	if err := s.conn(ctx).Raw(`SELECT d.*, o.role_mapping FROM `+from+` JOIN organizations o ON o.id = d.org_id
WHERE d.org_id = ?`, arg, orgID).Scan(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("get directory users: %w", err)
	}
	var mapping JSONMap
	for _, r := range rows {
		out[r.ID] = r.DirectoryUser
		mapping = r.RoleMapping
	}
	return out, mapping, nil
}

// MappedRoles is MappedRole for many directory users: the role the mapping
// gives each existing one, keyed by id. It returns nil when the mapping
// names no group (roles are then not the IdP's to set).
func (s *Store) MappedRoles(ctx context.Context, orgID string, mapping JSONMap, ids []string) (map[string]string, error) {
	sc := PlanScope{OrgID: orgID, RoleMapping: mapping}
	expr := mappedRole(sc, "d")
	if expr == "" || len(ids) == 0 {
		return nil, nil
	}
	args := sc.args()
	args["ids"] = ids
	var rows []struct {
		ID   string `gorm:"column:id"`
		Role string `gorm:"column:role"`
	}
	if err := s.conn(ctx).Raw("SELECT d.id, "+expr+" AS role FROM directory_users d WHERE d.org_id = @org AND d.id IN @ids", args).
		Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("mapped roles: %w", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.ID] = strings.TrimSpace(r.Role)
	}
	return out, nil
}

// MembershipsByEmails is MembershipByEmail for many e-mails: the
// organization's memberships of the users with these e-mails, keyed by
// Key(e-mail).
func (s *Store) MembershipsByEmails(ctx context.Context, orgID string, emails []string) (map[string]MemberOfPerson, error) {
	out := make(map[string]MemberOfPerson, len(emails))
	if len(emails) == 0 {
		return out, nil
	}
	keys := make([]string, len(emails))
	for i, e := range emails {
		keys[i] = Key(e)
	}
	var rows []struct {
		MemberOfPerson
		EmailKey string `gorm:"column:email_key"`
	}
	from, arg := s.eachRow("users", "u", "email_key", keys, "")
	if err := s.conn(ctx).Raw(`SELECT m.*, u.email_key, EXISTS (SELECT 1 FROM directory_users d WHERE d.org_id = m.org_id AND d.id = m.directory_user_id) AS directory_user_exists
FROM `+from+` `+s.d.joinEach("org_memberships", "m", "m.org_id = ? AND m.user_id = u.id"), arg, orgID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("get memberships by e-mail: %w", err)
	}
	for _, r := range rows {
		out[r.EmailKey] = r.MemberOfPerson
	}
	return out, nil
}

// UserEmail is the shared users row of a directory user's membership when
// it does not carry the directory's e-mail, and what the e-mail rule
// (userEmailVerdict) makes of it.
type UserEmail struct {
	DirectoryUserID string `gorm:"column:directory_user_id"`
	UserID          string `gorm:"column:user_id"`
	// Email is the users row's.
	Email string `gorm:"column:email"`
	// Verdict is UserEmailFollows, UserEmailShared or UserEmailTaken.
	Verdict string `gorm:"column:verdict"`
}

// UserEmails reads, keyed by directory user id, the users rows of the
// organization's memberships of these directory users that do not carry
// their directory user's (non-empty) e-mail, with the rule's verdict on
// it. Rows in step are absent. Callers pass the few directory users whose
// users row they saw out of step (MembershipsByDirectoryUsers). With lock (inside a transaction) those
// rows are held until the transaction ends, in id order, before the
// verdict is read: converges of one person in two organizations then
// decide one after the other, each seeing the other's membership e-mail.
func (s *Store) UserEmails(ctx context.Context, orgID string, directoryUserIDs []string, lock bool) (map[string]UserEmail, error) {
	out := map[string]UserEmail{}
	if len(directoryUserIDs) == 0 {
		return out, nil
	}
	const from = ` FROM org_memberships m JOIN users u ON u.id = m.user_id
JOIN directory_users d ON d.org_id = m.org_id AND d.id = m.directory_user_id
WHERE m.org_id = ? AND m.directory_user_id IN ? AND d.email <> '' AND u.email <> d.email`
	db := s.conn(ctx)
	if lock && s.d.rowLocks {
		var held []string
		if err := db.Raw("SELECT u.id"+from+" ORDER BY u.id"+s.d.lock("UPDATE OF u"), orgID, directoryUserIDs).
			Scan(&held).Error; err != nil {
			return nil, fmt.Errorf("lock users: %w", err)
		}
		if len(held) == 0 {
			return out, nil
		}
	}
	var rows []UserEmail
	if err := db.Raw("SELECT m.directory_user_id, u.id AS user_id, u.email, "+userEmailVerdict("u", "m", "d")+" AS verdict"+from,
		orgID, directoryUserIDs).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("get user e-mails: %w", err)
	}
	for _, r := range rows {
		out[r.DirectoryUserID] = r
	}
	return out, nil
}

// SetUserEmail gives a users row a new e-mail (and key). ErrConflict when
// another row has its key (a concurrent writer took it: read again).
func (s *Store) SetUserEmail(ctx context.Context, userID, email string) error {
	k := Key(email)
	if k == "" {
		return fmt.Errorf("set user e-mail: empty e-mail")
	}
	res := s.conn(ctx).Model(&User{}).Where("id = ?", userID).
		Updates(map[string]any{"email": email, "email_key": k, "updated_at": s.now()})
	if res.Error != nil {
		if isUniqueViolation(res.Error) {
			return fmt.Errorf("set user e-mail: %w", ErrConflict)
		}
		return fmt.Errorf("set user e-mail: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("set user e-mail: user %w", ErrNotFound)
	}
	return nil
}

// OpenInvites is HasOpenInvite for many memberships: the set of those with
// an invite that is neither accepted nor superseded.
func (s *Store) OpenInvites(ctx context.Context, orgID string, membershipIDs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(membershipIDs))
	if len(membershipIDs) == 0 {
		return out, nil
	}
	var ids []string
	if err := s.conn(ctx).Model(&Invite{}).Distinct("membership_id").
		Where("org_id = ? AND membership_id IN ? AND accepted_at IS NULL AND superseded_at IS NULL", orgID, membershipIDs).
		Pluck("membership_id", &ids).Error; err != nil {
		return nil, fmt.Errorf("check open invites: %w", err)
	}
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// AddAuditEvents appends many events to audit trails in one statement.
func (s *Store) AddAuditEvents(ctx context.Context, events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	now := s.now()
	for i := range events {
		events[i].ID = 0
		if events[i].CreatedAt.IsZero() {
			events[i].CreatedAt = now
		}
	}
	if err := s.conn(ctx).CreateInBatches(events, 500).Error; err != nil {
		return fmt.Errorf("add audit events: %w", err)
	}
	return nil
}

// LinkMembershipsToGroups is LinkMembershipToGroups for many memberships
// (keyed by their directory user id): it puts each into every existing
// local group whose directory group has its directory user as a member,
// and returns the links it added. The directory groups are
// share-locked first, in id order, as LinkMembershipToGroups does.
func (s *Store) LinkMembershipsToGroups(ctx context.Context, orgID string, membershipByDirectoryUser map[string]string) ([]GroupMember, error) {
	if len(membershipByDirectoryUser) == 0 {
		return nil, nil
	}
	users := make([]string, 0, len(membershipByDirectoryUser))
	memberships := make([]string, 0, len(membershipByDirectoryUser))
	for u, m := range membershipByDirectoryUser {
		users = append(users, u)
		memberships = append(memberships, m)
	}
	db := s.conn(ctx)
	var groups []string
	if err := db.Raw(`SELECT DISTINCT g.id FROM directory_groups g
JOIN directory_group_members d ON d.group_id = g.id
WHERE d.org_id = ? AND d.user_id IN ? ORDER BY g.id`, orgID, users).Scan(&groups).Error; err != nil {
		return nil, fmt.Errorf("link memberships to groups: %w", err)
	}
	if len(groups) == 0 {
		return nil, nil
	}
	if s.d.rowLocks {
		// DISTINCT cannot be combined with FOR SHARE: lock in a second
		// statement, in the same order.
		if err := db.Exec(`SELECT id FROM directory_groups WHERE org_id = ? AND id IN ? ORDER BY id`+s.d.lock("SHARE"), orgID, groups).Error; err != nil {
			return nil, fmt.Errorf("link memberships to groups: %w", err)
		}
	}
	// Re-reads directory membership after the lock: a removal committed
	// meanwhile is seen here.
	var added []GroupMember
	if err := db.Raw(`INSERT INTO local_group_members (org_id, group_id, membership_id, created_at)
SELECT l.org_id, l.id, m.id, ? FROM local_groups l
JOIN directory_group_members d ON d.org_id = l.org_id AND d.group_id = l.directory_group_id
JOIN org_memberships m ON m.org_id = d.org_id AND m.directory_user_id = d.user_id
WHERE l.org_id = ? AND m.id IN ? AND l.directory_group_id IN ?
ON CONFLICT DO NOTHING
RETURNING org_id, group_id, membership_id, created_at`, s.now(), orgID, memberships, groups).Scan(&added).Error; err != nil {
		return nil, fmt.Errorf("link memberships to groups: %w", err)
	}
	// In a stable order, as their events are numbered.
	slices.SortFunc(added, func(a, b GroupMember) int {
		return cmp.Or(cmp.Compare(a.GroupID, b.GroupID), cmp.Compare(a.MembershipID, b.MembershipID))
	})
	return added, nil
}

// EnsureUsers is EnsureUser for many e-mails: the users with these e-mails
// (case-insensitively), created where there are none, keyed by Key(e-mail).
func (s *Store) EnsureUsers(ctx context.Context, emails []string) (map[string]User, error) {
	out := make(map[string]User, len(emails))
	if len(emails) == 0 {
		return out, nil
	}
	now := s.now()
	rows := make([]User, 0, len(emails))
	keys := make([]string, 0, len(emails))
	for _, e := range emails {
		k := Key(e)
		if k == "" {
			return nil, fmt.Errorf("ensure users: empty e-mail")
		}
		if _, dup := out[k]; dup {
			continue
		}
		out[k] = User{}
		keys = append(keys, k)
		rows = append(rows, User{ID: NewID(), Email: e, EmailKey: k, CreatedAt: now, UpdatedAt: now})
	}
	db := s.conn(ctx)
	if err := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "email_key"}}, DoNothing: true}).
		CreateInBatches(&rows, 500).Error; err != nil {
		return nil, fmt.Errorf("ensure users: %w", err)
	}
	// Each key looked up on its own (eachRow): an IN list, planned without
	// statistics on a table that was small, scans every user.
	var got []User
	from, arg := s.eachRow("users", "u", "email_key", keys, "")
	if err := db.Raw("SELECT u.* FROM "+from, arg).Scan(&got).Error; err != nil {
		return nil, fmt.Errorf("ensure users: %w", err)
	}
	for _, u := range got {
		out[u.EmailKey] = u
	}
	for k, u := range out {
		if u.ID == "" {
			return nil, fmt.Errorf("ensure users: user %s: %w", k, ErrConflict)
		}
	}
	return out, nil
}

// CreateMemberships is CreateMembership for many memberships, in one
// statement: ErrConflict when any of them meets an existing membership of
// its user or directory user (a concurrent writer won: read again).
func (s *Store) CreateMemberships(ctx context.Context, ms []Membership) error {
	if len(ms) == 0 {
		return nil
	}
	now := s.now()
	for i := range ms {
		if ms[i].ID == "" {
			ms[i].ID = NewID()
		}
		if ms[i].Role == "" {
			ms[i].Role = lifecycle.RoleMember
		}
		ms[i].CreatedAt, ms[i].UpdatedAt = now, now
	}
	res := s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&ms, 500)
	if res.Error != nil {
		return fmt.Errorf("create memberships: %w", res.Error)
	}
	if res.RowsAffected != int64(len(ms)) {
		return fmt.Errorf("create memberships: %w", ErrConflict)
	}
	return nil
}

// IssueFirstInvites is IssueInvite for the first invite (send number 1) of
// memberships created in this transaction, in two statements for all of
// them: it inserts the invites, filling ID and CreatedAt, and counts the
// send on the memberships. ErrConflict when any of them had an invite
// already.
func (s *Store) IssueFirstInvites(ctx context.Context, orgID string, invites []Invite) error {
	if len(invites) == 0 {
		return nil
	}
	now := s.now()
	ids := make([]string, len(invites))
	for i := range invites {
		invites[i].ID, invites[i].OrgID, invites[i].SendNumber, invites[i].CreatedAt = NewID(), orgID, 1, now
		ids[i] = invites[i].MembershipID
	}
	db := s.conn(ctx)
	res := db.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(&invites, 500)
	if res.Error != nil {
		return fmt.Errorf("issue first invites: %w", res.Error)
	}
	if res.RowsAffected != int64(len(invites)) {
		return fmt.Errorf("issue first invites: %w", ErrConflict)
	}
	from, arg := s.eachRow("org_memberships", "m", "id", ids, "m.org_id = ?")
	if err := db.Model(&Membership{}).Where("id IN (SELECT m.id FROM "+from+") AND invite_sends < 1", arg, orgID).
		Updates(map[string]any{"invite_sends": 1, "last_invited_at": now}).Error; err != nil {
		return fmt.Errorf("issue first invites: count send: %w", err)
	}
	return nil
}
