package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// ErrStale is returned when a write expected a version the row no longer
// has (an If-Match mismatch, or a concurrent writer won).
var ErrStale = errors.New("version mismatch")

// ConflictError names the attribute whose uniqueness a write would break.
type ConflictError struct {
	Field string // "userName", "externalId" or "displayName"
}

func (e *ConflictError) Error() string { return e.Field + " is already taken in this organization" }

// Is makes errors.Is(err, ErrConflict) true for a ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// uniqueConflict turns a unique violation on a directory index into a
// ConflictError naming the attribute, or returns nil.
func uniqueConflict(err error) error {
	if !isUniqueViolation(err) {
		return nil
	}
	name := err.Error()
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		name = pg.ConstraintName
	}
	switch {
	case strings.Contains(name, "user_name"):
		return &ConflictError{Field: "userName"}
	case strings.Contains(name, "external_id"):
		return &ConflictError{Field: "externalId"}
	case strings.Contains(name, "display_name"):
		return &ConflictError{Field: "displayName"}
	}
	return ErrConflict
}

// Key folds a value for case-insensitive matching and uniqueness.
func Key(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// CreateDirectoryUser inserts u, filling ID (when empty), keys, version and
// timestamps. A taken userName or externalId is a *ConflictError.
func (s *Store) CreateDirectoryUser(ctx context.Context, u *DirectoryUser) error {
	s.fillNewUser(u)
	if err := s.conn(ctx).Create(u).Error; err != nil {
		if c := uniqueConflict(err); c != nil {
			return fmt.Errorf("create directory user: %w", c)
		}
		return fmt.Errorf("create directory user: %w", err)
	}
	return nil
}

// fillNewUser sets what the store owns of a user about to be inserted:
// ID (when empty), keys, version and timestamps.
func (s *Store) fillNewUser(u *DirectoryUser) {
	if u.ID == "" {
		u.ID = NewID()
	}
	now := s.now()
	u.UserNameKey, u.EmailKey = Key(u.UserName), Key(u.Email)
	u.Version, u.CreatedAt, u.UpdatedAt = 1, now, now
	if u.Attributes == "" {
		u.Attributes = "{}"
	}
}

// DirectoryUser reads one of an organization's directory users.
func (s *Store) DirectoryUser(ctx context.Context, orgID, id string) (DirectoryUser, error) {
	var u DirectoryUser
	if err := s.conn(ctx).Where("org_id = ? AND id = ?", orgID, id).Take(&u).Error; err != nil {
		return DirectoryUser{}, notFound(err, "user")
	}
	return u, nil
}

// UpdateDirectoryUser replaces u's row if it still has version expect, and
// bumps the version. ErrStale when it does not; ErrNotFound when the row is
// gone.
func (s *Store) UpdateDirectoryUser(ctx context.Context, u *DirectoryUser, expect int64) error {
	u.UserNameKey, u.EmailKey = Key(u.UserName), Key(u.Email)
	u.UpdatedAt = s.now()
	res := s.conn(ctx).Model(&DirectoryUser{}).
		Where("org_id = ? AND id = ? AND version = ?", u.OrgID, u.ID, expect).
		Updates(map[string]any{
			"external_id": u.ExternalID, "user_name": u.UserName, "user_name_key": u.UserNameKey,
			"email": u.Email, "email_key": u.EmailKey, "given_name": u.GivenName, "family_name": u.FamilyName,
			"display_name": u.DisplayName, "active": u.Active, "raw_status": u.RawStatus,
			"attributes": u.Attributes, "version": expect + 1, "updated_at": u.UpdatedAt,
		})
	if res.Error != nil {
		if c := uniqueConflict(res.Error); c != nil {
			return fmt.Errorf("update directory user: %w", c)
		}
		return fmt.Errorf("update directory user: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.DirectoryUser(ctx, u.OrgID, u.ID); err != nil {
			return err
		}
		return fmt.Errorf("update directory user: %w", ErrStale)
	}
	u.Version = expect + 1
	return nil
}

// DeleteDirectoryUser removes a directory user and its group memberships.
func (s *Store) DeleteDirectoryUser(ctx context.Context, orgID, id string) error {
	db := s.conn(ctx)
	// The groups the user leaves change too: their versions (SCIM ETags)
	// move with their member lists.
	if err := db.Exec(`UPDATE directory_groups SET version = version + 1, updated_at = ?
WHERE org_id = ? AND id IN (SELECT group_id FROM directory_group_members WHERE org_id = ? AND user_id = ?)`,
		s.now(), orgID, orgID, id).Error; err != nil {
		return fmt.Errorf("delete directory user: %w", err)
	}
	// Explicit, because SQLite enforces ON DELETE CASCADE only with
	// foreign keys on, and the delete must not depend on a pragma.
	if err := db.Where("org_id = ? AND user_id = ?", orgID, id).Delete(&DirectoryGroupMember{}).Error; err != nil {
		return fmt.Errorf("delete directory user: %w", err)
	}
	res := db.Where("org_id = ? AND id = ?", orgID, id).Delete(&DirectoryUser{})
	if res.Error != nil {
		return fmt.Errorf("delete directory user: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("user %w", ErrNotFound)
	}
	return nil
}

// UserField is an indexed attribute directory users can be looked up by.
type UserField string

const (
	ByUserName   UserField = "user_name_key"
	ByExternalID UserField = "external_id"
	ByEmail      UserField = "email_key"
	ByID         UserField = "id"
)

// DirectoryUsersBy returns the organization's users whose field equals
// value (userName and e-mail case-insensitively), in list order.
func (s *Store) DirectoryUsersBy(ctx context.Context, orgID string, field UserField, value string) ([]DirectoryUser, error) {
	value, err := lookupValue(field, value)
	if err != nil {
		return nil, err
	}
	var out []DirectoryUser
	if err := s.conn(ctx).Where("org_id = ? AND "+string(field)+" = ?", orgID, value).
		Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("find directory users: %w", err)
	}
	return out, nil
}

// lookupValue is what a lookup by field compares the column with: the
// case-folded key for userName and e-mail, the value itself otherwise.
func lookupValue(field UserField, value string) (string, error) {
	switch field {
	case ByUserName, ByEmail:
		return Key(value), nil
	case ByExternalID, ByID:
		return value, nil
	}
	return "", fmt.Errorf("find directory users: unknown field %q", field)
}

// DirectoryUserPage returns users offset..offset+limit in a stable order
// (creation time, then id), and the organization's total.
func (s *Store) DirectoryUserPage(ctx context.Context, orgID string, offset, limit int) ([]DirectoryUser, int64, error) {
	var total int64
	db := s.conn(ctx)
	if err := db.Model(&DirectoryUser{}).Where("org_id = ?", orgID).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count directory users: %w", err)
	}
	var out []DirectoryUser
	if limit > 0 && int64(offset) < total {
		if err := db.Where("org_id = ?", orgID).Order("created_at, id").Offset(offset).Limit(limit).Find(&out).Error; err != nil {
			return nil, 0, fmt.Errorf("list directory users: %w", err)
		}
	}
	return out, total, nil
}

// EachDirectoryUser calls fn for every user of the organization in list
// order, reading in batches so memory stays flat.
func (s *Store) EachDirectoryUser(ctx context.Context, orgID string, fn func(DirectoryUser) error) error {
	return eachBatch(ctx, s.conn(ctx).Where("org_id = ?", orgID), 500, fn)
}

// eachBatch pages through q in (created_at, id) order by keyset.
func eachBatch[T interface {
	DirectoryUser | DirectoryGroup
}](ctx context.Context, q *gorm.DB, size int, fn func(T) error) error {
	var last *T
	for {
		var batch []T
		qq := q.Session(&gorm.Session{})
		if last != nil {
			c, id := keyOf(*last)
			qq = qq.Where("(created_at > ?) OR (created_at = ? AND id > ?)", c, c, id)
		}
		if err := qq.Order("created_at, id").Limit(size).Find(&batch).Error; err != nil {
			return fmt.Errorf("scan directory: %w", err)
		}
		for _, x := range batch {
			if err := fn(x); err != nil {
				return err
			}
		}
		if len(batch) < size {
			return nil
		}
		last = &batch[len(batch)-1]
	}
}

func keyOf[T DirectoryUser | DirectoryGroup](x T) (any, string) {
	switch v := any(x).(type) {
	case DirectoryUser:
		return v.CreatedAt, v.ID
	case DirectoryGroup:
		return v.CreatedAt, v.ID
	}
	panic("unreachable")
}

// CreateDirectoryGroup inserts g. A taken displayName or externalId is a
// *ConflictError.
func (s *Store) CreateDirectoryGroup(ctx context.Context, g *DirectoryGroup) error {
	if g.ID == "" {
		g.ID = NewID()
	}
	now := s.now()
	g.DisplayNameKey = Key(g.DisplayName)
	g.Version, g.CreatedAt, g.UpdatedAt = 1, now, now
	if g.Attributes == "" {
		g.Attributes = "{}"
	}
	if err := s.conn(ctx).Create(g).Error; err != nil {
		if c := uniqueConflict(err); c != nil {
			return fmt.Errorf("create directory group: %w", c)
		}
		return fmt.Errorf("create directory group: %w", err)
	}
	return nil
}

// DirectoryGroup reads one of an organization's directory groups.
func (s *Store) DirectoryGroup(ctx context.Context, orgID, id string) (DirectoryGroup, error) {
	var g DirectoryGroup
	if err := s.conn(ctx).Where("org_id = ? AND id = ?", orgID, id).Take(&g).Error; err != nil {
		return DirectoryGroup{}, notFound(err, "group")
	}
	return g, nil
}

// UpdateDirectoryGroup replaces g's row if it still has version expect.
func (s *Store) UpdateDirectoryGroup(ctx context.Context, g *DirectoryGroup, expect int64) error {
	g.DisplayNameKey = Key(g.DisplayName)
	g.UpdatedAt = s.now()
	res := s.conn(ctx).Model(&DirectoryGroup{}).
		Where("org_id = ? AND id = ? AND version = ?", g.OrgID, g.ID, expect).
		Updates(map[string]any{
			"external_id": g.ExternalID, "display_name": g.DisplayName, "display_name_key": g.DisplayNameKey,
			"attributes": g.Attributes, "version": expect + 1, "updated_at": g.UpdatedAt,
		})
	if res.Error != nil {
		if c := uniqueConflict(res.Error); c != nil {
			return fmt.Errorf("update directory group: %w", c)
		}
		return fmt.Errorf("update directory group: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		if _, err := s.DirectoryGroup(ctx, g.OrgID, g.ID); err != nil {
			return err
		}
		return fmt.Errorf("update directory group: %w", ErrStale)
	}
	g.Version = expect + 1
	return nil
}

// DeleteDirectoryGroup removes a directory group and its member rows.
func (s *Store) DeleteDirectoryGroup(ctx context.Context, orgID, id string) error {
	db := s.conn(ctx)
	if err := db.Where("org_id = ? AND group_id = ?", orgID, id).Delete(&DirectoryGroupMember{}).Error; err != nil {
		return fmt.Errorf("delete directory group: %w", err)
	}
	res := db.Where("org_id = ? AND id = ?", orgID, id).Delete(&DirectoryGroup{})
	if res.Error != nil {
		return fmt.Errorf("delete directory group: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("group %w", ErrNotFound)
	}
	return nil
}

// DirectoryGroupsBy returns groups whose displayName (case-insensitively),
// externalId or id equals value.
func (s *Store) DirectoryGroupsBy(ctx context.Context, orgID string, field UserField, value string) ([]DirectoryGroup, error) {
	col := map[UserField]string{ByUserName: "display_name_key", ByExternalID: "external_id", ByID: "id"}[field]
	if col == "" {
		return nil, fmt.Errorf("find directory groups: unknown field %q", field)
	}
	if field == ByUserName {
		value = Key(value)
	}
	var out []DirectoryGroup
	if err := s.conn(ctx).Where("org_id = ? AND "+col+" = ?", orgID, value).Order("created_at, id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("find directory groups: %w", err)
	}
	return out, nil
}

// ByDisplayName looks groups up by displayName in DirectoryGroupsBy.
const ByDisplayName = ByUserName

// DirectoryGroupPage returns groups offset..offset+limit in a stable order,
// and the organization's total.
func (s *Store) DirectoryGroupPage(ctx context.Context, orgID string, offset, limit int) ([]DirectoryGroup, int64, error) {
	var total int64
	db := s.conn(ctx)
	if err := db.Model(&DirectoryGroup{}).Where("org_id = ?", orgID).Count(&total).Error; err != nil {
		return nil, 0, fmt.Errorf("count directory groups: %w", err)
	}
	var out []DirectoryGroup
	if limit > 0 && int64(offset) < total {
		if err := db.Where("org_id = ?", orgID).Order("created_at, id").Offset(offset).Limit(limit).Find(&out).Error; err != nil {
			return nil, 0, fmt.Errorf("list directory groups: %w", err)
		}
	}
	return out, total, nil
}

// EachDirectoryGroup calls fn for every group of the organization.
func (s *Store) EachDirectoryGroup(ctx context.Context, orgID string, fn func(DirectoryGroup) error) error {
	return eachBatch(ctx, s.conn(ctx).Where("org_id = ?", orgID), 500, fn)
}

// MemberRef is a group member as SCIM shows it.
type MemberRef struct {
	UserID   string `gorm:"column:user_id"`
	UserName string `gorm:"column:user_name"`
	GroupID  string `gorm:"column:group_id"`
}

// DirectoryGroupMembers lists the members of groups (by group id), ordered.
func (s *Store) DirectoryGroupMembers(ctx context.Context, orgID string, groupIDs ...string) ([]MemberRef, error) {
	if len(groupIDs) == 0 {
		return nil, nil
	}
	var out []MemberRef
	err := s.conn(ctx).Raw(`SELECT m.group_id, m.user_id, u.user_name
FROM directory_group_members m JOIN directory_users u ON u.id = m.user_id AND u.org_id = m.org_id
WHERE m.org_id = ? AND m.group_id IN ? ORDER BY m.group_id, u.created_at, u.id`, orgID, groupIDs).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list directory group members: %w", err)
	}
	return out, nil
}

// GroupRef is a group a user belongs to.
type GroupRef struct {
	GroupID     string `gorm:"column:group_id"`
	DisplayName string `gorm:"column:display_name"`
	UserID      string `gorm:"column:user_id"`
}

// DirectoryGroupsOfUsers lists the groups of users (by user id).
func (s *Store) DirectoryGroupsOfUsers(ctx context.Context, orgID string, userIDs ...string) ([]GroupRef, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	var out []GroupRef
	err := s.conn(ctx).Raw(`SELECT m.user_id, m.group_id, g.display_name
FROM directory_group_members m JOIN directory_groups g ON g.id = m.group_id AND g.org_id = m.org_id
WHERE m.org_id = ? AND m.user_id IN ? ORDER BY m.user_id, g.created_at, g.id`, orgID, userIDs).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list groups of directory users: %w", err)
	}
	return out, nil
}

// SetDirectoryGroupMembers makes the group's member set exactly userIDs.
// Ids that are not users of the organization are ignored and returned, so
// a caller can log them; another organization's ids are never linked.
func (s *Store) SetDirectoryGroupMembers(ctx context.Context, orgID, groupID string, userIDs []string) (ignored []string, err error) {
	db := s.conn(ctx)
	valid, ignored, err := s.existingUsers(ctx, orgID, userIDs)
	if err != nil {
		return nil, err
	}
	var current []string
	if err := db.Model(&DirectoryGroupMember{}).Where("org_id = ? AND group_id = ?", orgID, groupID).Pluck("user_id", &current).Error; err != nil {
		return nil, fmt.Errorf("set directory group members: %w", err)
	}
	want := make(map[string]bool, len(valid))
	for _, id := range valid {
		want[id] = true
	}
	have := make(map[string]bool, len(current))
	var remove []string
	for _, id := range current {
		have[id] = true
		if !want[id] {
			remove = append(remove, id)
		}
	}
	var add []DirectoryGroupMember
	for _, id := range valid {
		if !have[id] {
			add = append(add, DirectoryGroupMember{OrgID: orgID, GroupID: groupID, UserID: id})
			have[id] = true
		}
	}
	if len(remove) > 0 {
		if err := db.Where("org_id = ? AND group_id = ? AND user_id IN ?", orgID, groupID, remove).Delete(&DirectoryGroupMember{}).Error; err != nil {
			return nil, fmt.Errorf("set directory group members: %w", err)
		}
	}
	if len(add) > 0 {
		if err := db.CreateInBatches(add, 500).Error; err != nil {
			return nil, fmt.Errorf("set directory group members: %w", err)
		}
	}
	return ignored, nil
}

// existingUsers splits ids into the organization's users and the rest,
// dropping duplicates.
func (s *Store) existingUsers(ctx context.Context, orgID string, ids []string) (valid, ignored []string, err error) {
	seen := map[string]bool{}
	var uniq []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	found := map[string]bool{}
	for start := 0; start < len(uniq); start += 500 {
		end := min(start+500, len(uniq))
		var got []string
		if err := s.conn(ctx).Model(&DirectoryUser{}).Where("org_id = ? AND id IN ?", orgID, uniq[start:end]).Pluck("id", &got).Error; err != nil {
			return nil, nil, fmt.Errorf("check member ids: %w", err)
		}
		for _, id := range got {
			found[id] = true
		}
	}
	for _, id := range uniq {
		if found[id] {
			valid = append(valid, id)
		} else {
			ignored = append(ignored, id)
		}
	}
	return valid, ignored, nil
}

// AddOutbox records work to be relayed into the job queue. Call it in the
// same transaction as the change that implies the work.
func (s *Store) AddOutbox(ctx context.Context, rows ...OutboxRow) error {
	now := s.now()
	for i := range rows {
		rows[i].ID = 0
		rows[i].CreatedAt = now
		if rows[i].Queue == "" {
			rows[i].Queue = "default"
		}
	}
	if len(rows) == 0 {
		return nil
	}
	// Batches keep each INSERT under Postgres's 65,535-parameter limit.
	if err := s.conn(ctx).CreateInBatches(&rows, 1000).Error; err != nil {
		return fmt.Errorf("add outbox: %w", err)
	}
	return nil
}
