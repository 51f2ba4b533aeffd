package store

import (
	"context"
	"fmt"
)

// Members lists an organization's memberships in id order (ids are
// time-ordered), after the given id, at most limit; status filters when set.
func (s *Store) Members(ctx context.Context, orgID, status, after string, limit int) ([]Membership, error) {
	q := s.conn(ctx).Where("org_id = ?", orgID)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	if after != "" {
		q = q.Where("id > ?", after)
	}
	var out []Membership
	if err := q.Order("id").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return out, nil
}

// GroupMemberView is one member of a local group as the admin API shows it.
type GroupMemberView struct {
	GroupID string `gorm:"column:group_id" json:"-"`
	UserID  string `gorm:"column:user_id" json:"userId"`
	Email   string `gorm:"column:email" json:"email"`
}

// LocalGroups lists an organization's local groups in id order after the
// given id, at most limit, with their members.
func (s *Store) LocalGroups(ctx context.Context, orgID, after string, limit int) ([]Group, map[string][]GroupMemberView, error) {
	q := s.conn(ctx).Where("org_id = ?", orgID)
	if after != "" {
		q = q.Where("id > ?", after)
	}
	var groups []Group
	if err := q.Order("id").Limit(limit).Find(&groups).Error; err != nil {
		return nil, nil, fmt.Errorf("list local groups: %w", err)
	}
	members := map[string][]GroupMemberView{}
	if len(groups) == 0 {
		return groups, members, nil
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	var rows []GroupMemberView
	err := s.conn(ctx).Raw(`SELECT gm.group_id, m.user_id, m.email
FROM local_group_members gm JOIN org_memberships m ON m.id = gm.membership_id AND m.org_id = gm.org_id
WHERE gm.org_id = ? AND gm.group_id IN ? ORDER BY gm.group_id, m.email`, orgID, ids).Scan(&rows).Error
	if err != nil {
		return nil, nil, fmt.Errorf("list local group members: %w", err)
	}
	for _, r := range rows {
		members[r.GroupID] = append(members[r.GroupID], r)
	}
	return groups, members, nil
}
