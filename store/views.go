package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Views: local state and sync runs as the admin API shows them. The change
// feed's events carry the same renderings, so an application reads one
// shape from both.

// Members lists an organization's memberships in id order (ids are
// time-ordered), after the given id, at most limit; status filters when set.
// A Membership is rendered by its JSON tags.
func (s *Store) Members(ctx context.Context, orgID, status, after string, limit int) ([]Membership, error) {
	return s.SearchMembers(ctx, orgID, status, "", after, limit)
}

// SearchMembers is Members keeping only those whose e-mail contains
// email, ignoring case, when it is set.
func (s *Store) SearchMembers(ctx context.Context, orgID, status, email, after string, limit int) ([]Membership, error) {
	q := s.conn(ctx).Where("org_id = ?", orgID)
	if status != "" {
		q = q.Where("status = ?", status)
	}
	if email != "" {
		// LIKE's wildcards in the search are matched literally.
		esc := strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(strings.ToLower(email))
		q = q.Where(`LOWER(email) LIKE ? ESCAPE '\'`, "%"+esc+"%")
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

// GroupHead is a local group without its members.
type GroupHead struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	ExternalID string `json:"externalId"`
	Source     string `json:"source"`
}

// Head renders the group without its members.
func (g Group) Head() GroupHead {
	return GroupHead{ID: g.ID, Name: g.Name, ExternalID: g.ExternalID, Source: g.Source}
}

// GroupView is a local group as the admin API shows it.
type GroupView struct {
	GroupHead
	MemberCount int               `json:"memberCount"`
	Members     []GroupMemberView `json:"members"`
}

// LocalGroups lists an organization's local groups in id order after the
// given id, at most limit, with their members.
func (s *Store) LocalGroups(ctx context.Context, orgID, after string, limit int) ([]GroupView, error) {
	q := s.conn(ctx).Where("org_id = ?", orgID)
	if after != "" {
		q = q.Where("id > ?", after)
	}
	var groups []Group
	if err := q.Order("id").Limit(limit).Find(&groups).Error; err != nil {
		return nil, fmt.Errorf("list local groups: %w", err)
	}
	return s.viewGroups(ctx, orgID, groups)
}

// viewGroups renders groups, in their order, with their members.
func (s *Store) viewGroups(ctx context.Context, orgID string, groups []Group) ([]GroupView, error) {
	out := make([]GroupView, len(groups))
	if len(groups) == 0 {
		return out, nil
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
		return nil, fmt.Errorf("list local group members: %w", err)
	}
	members := map[string][]GroupMemberView{}
	for _, r := range rows {
		members[r.GroupID] = append(members[r.GroupID], r)
	}
	for i, g := range groups {
		ms := members[g.ID]
		if ms == nil {
			ms = []GroupMemberView{}
		}
		out[i] = GroupView{GroupHead: g.Head(), MemberCount: len(ms), Members: ms}
	}
	return out, nil
}

// SyncRunView is a sync run as the admin API shows it. Plan is the run's
// plan: the counts provision, update, deprovision, resendInvite and
// groupChanges, and what explains them.
type SyncRunView struct {
	ID                   string     `json:"id"`
	Status               string     `json:"status"`
	DryRun               bool       `json:"dryRun"`
	AllowMassDeprovision bool       `json:"allowMassDeprovision"`
	Trigger              string     `json:"trigger"`
	CreatedAt            time.Time  `json:"createdAt"`
	StartedAt            *time.Time `json:"startedAt"`
	FinishedAt           *time.Time `json:"finishedAt"`
	// ScheduledFor is the schedule slot of a scheduled run.
	ScheduledFor *time.Time      `json:"scheduledFor,omitempty"`
	PagesFetched int             `json:"pagesFetched"`
	Plan         json.RawMessage `json:"plan"`
	Error        string          `json:"error"`
	// Mode is how the run pulled: "full", "delta", or empty without a
	// connector; FullRequested says an operator asked for a full pull.
	Mode          string `json:"mode"`
	FullRequested bool   `json:"fullRequested"`
	CursorBefore  string `json:"cursorBefore"`
	CursorAfter   string `json:"cursorAfter"`
	IdPRequests   int64  `json:"idpRequests"`
	// ConfirmedRemovals and ConfirmedGroupDeletions bound a confirmation:
	// null when the request gave none.
	ConfirmedRemovals       *int   `json:"confirmedRemovals"`
	ConfirmedGroupDeletions *int   `json:"confirmedGroupDeletions"`
	ConfirmedLosses         string `json:"confirmedLosses"`
}

// View renders the run.
func (r SyncRun) View() SyncRunView {
	plan := json.RawMessage(r.Plan)
	if !json.Valid(plan) {
		plan = json.RawMessage("{}")
	}
	v := SyncRunView{ID: r.ID, Status: r.Status, DryRun: r.DryRun, AllowMassDeprovision: r.AllowMassDeprovision, Trigger: r.Trigger,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, PagesFetched: r.PagesFetched, Plan: plan, Error: r.Error,
		Mode: r.PullMode, FullRequested: r.FullRequested, CursorBefore: r.CursorBefore, CursorAfter: r.CursorAfter, IdPRequests: r.IdPRequests,
		ConfirmedRemovals: r.ConfirmedRemovals, ConfirmedGroupDeletions: r.ConfirmedGroupDeletions, ConfirmedLosses: r.ConfirmedLosses}
	if r.Slot > 0 {
		at := time.Unix(r.Slot, 0).UTC()
		v.ScheduledFor = &at
	}
	return v
}
