package store

import (
	"context"
	"fmt"
)

// A delta pull writes what changed rather than everything: changed and new
// users and groups as a full pull writes them, new group links at once, and
// what is gone (deleted users and groups, left links) as marks in
// pull_seen, applied only when the run applies, as a full pull's sweep is.
// Its plan counts every pulled row but those marked gone (PlanScope.Delta).
// A delta of no change writes nothing.

// What pull_seen marks for a delta: gone rather than seen.
const (
	goneUser  = "U" // key: the user's external id
	goneGroup = "G" // key: the group's external id
	goneLink  = "M" // key: group id ":" user id
)

// PulledLink is a group link by external ids.
type PulledLink struct{ GroupExternalID, UserExternalID string }

// PulledDelta is what changed in the IdP since a cursor.
type PulledDelta struct {
	Users         []PulledUser
	DeletedUsers  []string
	Groups        []PulledGroup
	DeletedGroups []string
	Joins, Leaves []PulledLink
}

// WritePulledDelta records a delta pull (p.Delta set): users and groups
// are written as a full pull writes them (a deactivation only into
// pulled_active), joins added, and deletions and leaves marked for
// ApplyDelta. Call it inside Tx.
func (s *Store) WritePulledDelta(ctx context.Context, p Pull, d PulledDelta) error {
	if !p.Delta {
		return fmt.Errorf("write pulled delta: the pull is no delta")
	}
	if len(d.Users) > 0 {
		if err := s.WritePulledUsers(ctx, p, d.Users); err != nil {
			return err
		}
	}
	if len(d.Groups) > 0 {
		if err := s.WritePulledGroups(ctx, p, d.Groups); err != nil {
			return err
		}
	}
	db := s.conn(ctx)
	link := ` FROM directory_groups g JOIN directory_users u ON u.org_id = g.org_id
WHERE g.org_id = ? AND g.external_id = ? AND g.external_id <> '' AND g.source <> ? AND u.external_id = ? AND u.external_id <> ''`
	for _, j := range d.Joins {
		if err := db.Exec("INSERT INTO directory_group_members (org_id, group_id, user_id, snapshot) SELECT g.org_id, g.id, u.id, CAST(? AS BIGINT)"+
			link+" ON CONFLICT DO NOTHING", p.Snapshot, p.OrgID, j.GroupExternalID, SourceSCIM, j.UserExternalID).Error; err != nil {
			return fmt.Errorf("write pulled delta: join: %w", err)
		}
	}
	for _, l := range d.Leaves {
		if err := db.Exec("INSERT INTO pull_seen (run_id, kind, key) SELECT CAST(? AS TEXT), CAST(? AS TEXT), g.id || ':' || u.id"+link+
			" ON CONFLICT DO NOTHING", p.RunID, goneLink, p.OrgID, l.GroupExternalID, SourceSCIM, l.UserExternalID).Error; err != nil {
			return fmt.Errorf("write pulled delta: leave: %w", err)
		}
	}
	if err := s.markSeen(ctx, p, goneUser, d.DeletedUsers); err != nil {
		return fmt.Errorf("write pulled delta: deleted users: %w", err)
	}
	if err := s.markSeen(ctx, p, goneGroup, d.DeletedGroups); err != nil {
		return fmt.Errorf("write pulled delta: deleted groups: %w", err)
	}
	return nil
}

// ApplyDelta makes a delta pull the organization's directory: pulled
// users the IdP deactivated are deactivated, and the users, groups and
// links the delta says are gone deleted. Users in keep (and their links)
// are left as they are; with touched not nil (see PlanScope.Touched), users
// other than those are too. Call it inside Tx, with the work the plan
// implies.
func (s *Store) ApplyDelta(ctx context.Context, p Pull, keep, touched []string) (SweepCounts, error) {
	var c SweepCounts
	if len(keep) == 0 {
		keep = []string{""}
	}
	scope, scopeLinks := "", ""
	if touched != nil {
		if len(touched) == 0 {
			touched = []string{""}
		}
		scope = " AND external_id <> '' AND external_id IN @touched"
		scopeLinks = " AND user_id IN (SELECT t.id FROM directory_users t WHERE t.org_id = @org AND t.external_id <> '' AND t.external_id IN @touched)"
	}
	gone := func(kind, key string) string {
		return "EXISTS (SELECT 1 FROM pull_seen s WHERE s.run_id = @run AND s.kind = '" + kind + "' AND s.key = " + key + ")"
	}
	pulled := "org_id = @org AND source <> '" + SourceSCIM + "'"
	args := map[string]any{"org": p.OrgID, "run": p.RunID, "keep": keep, "now": s.now(), "touched": touched}
	steps := []struct {
		n   *int64
		sql string
	}{
		{&c.Deactivated, "UPDATE directory_users SET active = FALSE, version = version + 1, updated_at = @now WHERE " + pulled +
			" AND active AND NOT pulled_active AND id NOT IN @keep " + scope},
		{&c.LinksDeleted, "DELETE FROM directory_group_members WHERE org_id = @org AND group_id IN (SELECT g.id FROM directory_groups g WHERE g." +
			pulled + " AND " + gone(goneGroup, "g.external_id") + ")"},
		{&c.LinksDeleted, "DELETE FROM directory_group_members WHERE org_id = @org AND user_id NOT IN @keep " + scopeLinks + " AND (" +
			gone(goneLink, "directory_group_members.group_id || ':' || directory_group_members.user_id") +
			" OR user_id IN (SELECT u.id FROM directory_users u WHERE u." + pulled + " AND " + gone(goneUser, "u.external_id") + "))"},
		{&c.UsersDeleted, "DELETE FROM directory_users WHERE " + pulled + " AND id NOT IN @keep " + scope + " AND " + gone(goneUser, "directory_users.external_id")},
		{&c.GroupsDeleted, "DELETE FROM directory_groups WHERE " + pulled + " AND " + gone(goneGroup, "directory_groups.external_id")},
	}
	for _, st := range steps {
		res := s.conn(ctx).Exec(st.sql, args)
		if res.Error != nil {
			return c, fmt.Errorf("apply delta: %w", res.Error)
		}
		*st.n += res.RowsAffected
	}
	return c, nil
}
