package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm/clause"

	"github.com/scimsync/scimsync/lifecycle"
)

// Local state: users, memberships, local groups and their members, which
// converge keeps in step with the directory.
//
// Locking: SQLite transactions take the database's write lock when they
// begin (_txlock=immediate), so they never interleave and the Postgres row
// locks below have nothing to add there.

// EnsureUser returns the user with this e-mail (case-insensitively),
// creating it when there is none. Users are shared by all organizations.
func (s *Store) EnsureUser(ctx context.Context, email string) (User, error) {
	now := s.now()
	u := User{ID: NewID(), Email: email, EmailKey: Key(email), CreatedAt: now, UpdatedAt: now}
	if u.EmailKey == "" {
		return User{}, errors.New("ensure user: empty e-mail")
	}
	db := s.conn(ctx)
	res := db.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "email_key"}}, DoNothing: true}).Create(&u)
	if res.Error != nil {
		return User{}, fmt.Errorf("ensure user: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return u, nil
	}
	var got User
	if err := db.Where("email_key = ?", u.EmailKey).Take(&got).Error; err != nil {
		return User{}, fmt.Errorf("ensure user: %w", err)
	}
	return got, nil
}

// User returns a users row.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	var u User
	if err := s.conn(ctx).Where("id = ?", id).Take(&u).Error; err != nil {
		return User{}, notFound(err, "user")
	}
	return u, nil
}

// MembershipByDirectoryUser returns the organization's membership linked to
// a directory user.
func (s *Store) MembershipByDirectoryUser(ctx context.Context, orgID, directoryUserID string) (Membership, error) {
	return s.membershipWhere(ctx, "", "org_id = ? AND directory_user_id = ?", orgID, directoryUserID)
}

// LockMembership is Membership, holding the row until the transaction ends.
// Call it inside Tx.
func (s *Store) LockMembership(ctx context.Context, orgID, id string) (Membership, error) {
	return s.membershipWhere(ctx, s.d.lock("NO KEY UPDATE"), "org_id = ? AND id = ?", orgID, id)
}

// Membership returns one of the organization's memberships.
func (s *Store) Membership(ctx context.Context, orgID, id string) (Membership, error) {
	return s.membershipWhere(ctx, "", "org_id = ? AND id = ?", orgID, id)
}

func (s *Store) membershipWhere(ctx context.Context, lock, where string, args ...any) (Membership, error) {
	var m Membership
	err := s.conn(ctx).Raw("SELECT * FROM org_memberships WHERE "+where+lock, args...).Scan(&m).Error
	if err != nil {
		return Membership{}, fmt.Errorf("get membership: %w", err)
	}
	if m.ID == "" {
		return Membership{}, fmt.Errorf("membership %w", ErrNotFound)
	}
	return m, nil
}

// MemberOfPerson is the organization's membership of the person with an
// e-mail (matched on the shared users row), and whether the directory user
// it is linked to still exists.
type MemberOfPerson struct {
	Membership
	DirectoryUserExists bool `gorm:"column:directory_user_exists"`
}

// MembershipByEmail returns the organization's membership of the user with
// this e-mail, or ErrNotFound.
func (s *Store) MembershipByEmail(ctx context.Context, orgID, email string) (MemberOfPerson, error) {
	var out MemberOfPerson
	// Written as two unique-index lookups (users by e-mail key, then the
	// organization's membership of that user) so that the plan stays a
	// point lookup whatever the table statistics say.
	err := s.conn(ctx).Raw(`SELECT m.*, EXISTS (SELECT 1 FROM directory_users d WHERE d.org_id = m.org_id AND d.id = m.directory_user_id) AS directory_user_exists
FROM org_memberships m
WHERE m.org_id = ? AND m.user_id = (SELECT u.id FROM users u WHERE u.email_key = ?)`, orgID, Key(email)).Scan(&out).Error
	if err != nil {
		return MemberOfPerson{}, fmt.Errorf("get membership by e-mail: %w", err)
	}
	if out.ID == "" {
		return MemberOfPerson{}, fmt.Errorf("membership %w", ErrNotFound)
	}
	return out, nil
}

// CreateMembership inserts m, filling ID and timestamps. ErrConflict when
// the organization already has a membership for m's user or directory user
// (a concurrent writer won: read again). The transaction stays usable.
func (s *Store) CreateMembership(ctx context.Context, m *Membership) error {
	now := s.now()
	if m.ID == "" {
		m.ID = NewID()
	}
	if m.Role == "" {
		m.Role = lifecycle.RoleMember
	}
	m.CreatedAt, m.UpdatedAt = now, now
	res := s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(m)
	if res.Error != nil {
		return fmt.Errorf("create membership: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("create membership: %w", ErrConflict)
	}
	return nil
}

// UpdateMembership writes m's attributes, role, status and deprovision time.
// Invite counters and the user link are not touched here.
func (s *Store) UpdateMembership(ctx context.Context, m *Membership) error {
	m.UpdatedAt = s.now()
	res := s.conn(ctx).Model(&Membership{}).Where("org_id = ? AND id = ?", m.OrgID, m.ID).Updates(map[string]any{
		"email": m.Email, "first_name": m.FirstName, "last_name": m.LastName, "source": m.Source, "role": m.Role,
		"external_id": m.ExternalID, "status": m.Status, "deprovisioned_at": m.DeprovisionedAt,
		"updated_at": m.UpdatedAt,
	})
	if res.Error != nil {
		return fmt.Errorf("update membership: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("update membership: membership %w", ErrNotFound)
	}
	return nil
}

// DeleteMembership removes a membership with its local group memberships
// and invites. The shared users row stays.
func (s *Store) DeleteMembership(ctx context.Context, orgID, id string) error {
	db := s.conn(ctx)
	// Explicit rather than ON DELETE CASCADE, which SQLite honours only
	// with foreign keys on.
	for _, q := range []struct {
		model any
		where string
	}{
		{&GroupMember{}, "org_id = ? AND membership_id = ?"},
		{&Invite{}, "org_id = ? AND membership_id = ?"},
		{&Membership{}, "org_id = ? AND id = ?"},
	} {
		if err := db.Where(q.where, orgID, id).Delete(q.model).Error; err != nil {
			return fmt.Errorf("delete membership: %w", err)
		}
	}
	return nil
}

// MembershipGroupIDs lists the local groups a membership is in.
func (s *Store) MembershipGroupIDs(ctx context.Context, orgID, membershipID string) ([]string, error) {
	var out []string
	if err := s.conn(ctx).Model(&GroupMember{}).Where("org_id = ? AND membership_id = ?", orgID, membershipID).
		Order("group_id").Pluck("group_id", &out).Error; err != nil {
		return nil, fmt.Errorf("list groups of membership: %w", err)
	}
	return out, nil
}

// LockDirectoryGroup reads a directory group and holds it exclusively until
// the transaction ends, serialising converges of the group with each other
// and with LinkMembershipToGroups. Call it inside Tx.
func (s *Store) LockDirectoryGroup(ctx context.Context, orgID, id string) (DirectoryGroup, error) {
	var g DirectoryGroup
	err := s.conn(ctx).Raw("SELECT * FROM directory_groups WHERE org_id = ? AND id = ?"+s.d.lock("NO KEY UPDATE"), orgID, id).Scan(&g).Error
	if err != nil {
		return DirectoryGroup{}, fmt.Errorf("lock directory group: %w", err)
	}
	if g.ID == "" {
		return DirectoryGroup{}, fmt.Errorf("group %w", ErrNotFound)
	}
	return g, nil
}

// LocalGroupByDirectoryGroup returns the local group mirroring a directory
// group.
func (s *Store) LocalGroupByDirectoryGroup(ctx context.Context, orgID, directoryGroupID string) (Group, error) {
	var g Group
	if err := s.conn(ctx).Where("org_id = ? AND directory_group_id = ?", orgID, directoryGroupID).Take(&g).Error; err != nil {
		return Group{}, notFound(err, "local group")
	}
	return g, nil
}

// CreateLocalGroup inserts g, filling ID and timestamps. ErrConflict when
// the directory group already has a local group.
func (s *Store) CreateLocalGroup(ctx context.Context, g *Group) error {
	now := s.now()
	if g.ID == "" {
		g.ID = NewID()
	}
	g.CreatedAt, g.UpdatedAt = now, now
	res := s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(g)
	if res.Error != nil {
		return fmt.Errorf("create local group: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("create local group: %w", ErrConflict)
	}
	return nil
}

// UpdateLocalGroup writes g's name, source and external id.
func (s *Store) UpdateLocalGroup(ctx context.Context, g *Group) error {
	g.UpdatedAt = s.now()
	if err := s.conn(ctx).Model(&Group{}).Where("org_id = ? AND id = ?", g.OrgID, g.ID).Updates(map[string]any{
		"name": g.Name, "source": g.Source, "external_id": g.ExternalID, "updated_at": g.UpdatedAt,
	}).Error; err != nil {
		return fmt.Errorf("update local group: %w", err)
	}
	return nil
}

// DeleteLocalGroup removes a local group and its member links.
func (s *Store) DeleteLocalGroup(ctx context.Context, orgID, id string) error {
	db := s.conn(ctx)
	if err := db.Where("org_id = ? AND group_id = ?", orgID, id).Delete(&GroupMember{}).Error; err != nil {
		return fmt.Errorf("delete local group: %w", err)
	}
	if err := db.Where("org_id = ? AND id = ?", orgID, id).Delete(&Group{}).Error; err != nil {
		return fmt.Errorf("delete local group: %w", err)
	}
	return nil
}

// LocalGroupDiff compares a local group's members with its directory
// group's: add lists the memberships of directory members that are not
// linked yet, remove the linked memberships whose directory user is no
// longer a member. localGroupID "" (no local group yet) links nothing.
func (s *Store) LocalGroupDiff(ctx context.Context, orgID, localGroupID, directoryGroupID string) (add, remove []string, err error) {
	db := s.conn(ctx)
	if err := db.Raw(`SELECT m.id FROM directory_group_members d
JOIN org_memberships m ON m.org_id = d.org_id AND m.directory_user_id = d.user_id
WHERE d.org_id = ? AND d.group_id = ?
AND NOT EXISTS (SELECT 1 FROM local_group_members l WHERE l.group_id = ? AND l.membership_id = m.id)
ORDER BY m.id`, orgID, directoryGroupID, localGroupID).Scan(&add).Error; err != nil {
		return nil, nil, fmt.Errorf("diff local group: %w", err)
	}
	if localGroupID == "" {
		return add, nil, nil
	}
	if err := db.Raw(`SELECT l.membership_id FROM local_group_members l
JOIN org_memberships m ON m.id = l.membership_id
WHERE l.org_id = ? AND l.group_id = ?
AND NOT EXISTS (SELECT 1 FROM directory_group_members d WHERE d.group_id = ? AND d.user_id = m.directory_user_id)
ORDER BY l.membership_id`, orgID, localGroupID, directoryGroupID).Scan(&remove).Error; err != nil {
		return nil, nil, fmt.Errorf("diff local group: %w", err)
	}
	return add, remove, nil
}

// AddLocalGroupMembers links memberships into a local group; links that
// exist already are left alone.
func (s *Store) AddLocalGroupMembers(ctx context.Context, orgID, groupID string, membershipIDs []string) error {
	if len(membershipIDs) == 0 {
		return nil
	}
	now := s.now()
	rows := make([]GroupMember, len(membershipIDs))
	for i, id := range membershipIDs {
		rows[i] = GroupMember{OrgID: orgID, GroupID: groupID, MembershipID: id, CreatedAt: now}
	}
	if err := s.conn(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 500).Error; err != nil {
		return fmt.Errorf("add local group members: %w", err)
	}
	return nil
}

// RemoveLocalGroupMembers unlinks memberships from a local group.
func (s *Store) RemoveLocalGroupMembers(ctx context.Context, orgID, groupID string, membershipIDs []string) error {
	for start := 0; start < len(membershipIDs); start += 500 {
		end := min(start+500, len(membershipIDs))
		if err := s.conn(ctx).Where("org_id = ? AND group_id = ? AND membership_id IN ?", orgID, groupID, membershipIDs[start:end]).
			Delete(&GroupMember{}).Error; err != nil {
			return fmt.Errorf("remove local group members: %w", err)
		}
	}
	return nil
}

// LocalGroupMemberIDs lists the memberships linked into a local group.
func (s *Store) LocalGroupMemberIDs(ctx context.Context, orgID, groupID string) ([]string, error) {
	var out []string
	if err := s.conn(ctx).Model(&GroupMember{}).Where("org_id = ? AND group_id = ?", orgID, groupID).
		Order("membership_id").Pluck("membership_id", &out).Error; err != nil {
		return nil, fmt.Errorf("list local group members: %w", err)
	}
	return out, nil
}

// RelaxDurability lets the current transaction commit without waiting for
// its WAL to reach disk (Postgres synchronous_commit=off; nothing on
// SQLite). Use it only for work that is re-derived if lost: a database
// crash may drop such a commit from the last fraction of a second, but
// never one that a later durable commit depends on, since WAL is flushed
// in order. Call it inside Tx.
func (s *Store) RelaxDurability(ctx context.Context) error {
	if s.d.relaxDurability == "" {
		return nil
	}
	if err := s.conn(ctx).Exec(s.d.relaxDurability).Error; err != nil {
		return fmt.Errorf("relax durability: %w", err)
	}
	return nil
}

// IsTransient reports a failure that a fresh attempt of the whole
// transaction may not meet: a Postgres deadlock or serialization failure.
func IsTransient(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01")
}

// IsUnavailable reports that the database could not be reached or could
// not take the work: no connection (refused, cut, timed out connecting),
// Postgres shutting down, starting up or out of connection slots, or
// SQLite still locked by another writer after its busy timeout. What failed
// is worth trying again later; whether a write that met it took effect is
// not known (a cut connection may have lost only the answer to a commit).
// A cancelled or expired context is not: it is the caller's own deadline.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "08000", "08001", "08003", "08004", "08006", // connection exceptions
			"53300",                   // too many connections
			"57P01", "57P02", "57P03": // shutting down, crashed, starting up
			return true
		}
		return false
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if isSQLiteBusy(err) {
		return true
	}
	// database/sql hands back ErrBadConn when its connections failed before
	// the statement was sent, and a network error is a connection's.
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &netErr)
}

// isSQLiteBusy reports SQLite refusing because another connection holds
// the database: SQLITE_BUSY or SQLITE_LOCKED, extended codes included.
func isSQLiteBusy(err error) bool {
	var lite *sqlite.Error
	if !errors.As(err, &lite) {
		return false
	}
	code := lite.Code() & 0xff // the primary code of an extended one
	return code == sqliteBusy || code == sqliteLocked
}

// SQLite's primary result codes for a database another connection holds.
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)
