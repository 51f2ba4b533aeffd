package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// The change feed: every change of local state appends an event in the
// transaction that makes it, numbered per organization.

// Event is one change of an organization's local state.
type Event struct {
	OrgID      string    `gorm:"column:org_id;primaryKey"`
	Sequence   int64     `gorm:"column:sequence;primaryKey"`
	ID         string    `gorm:"column:id"`
	Type       string    `gorm:"column:type"`
	EntityType string    `gorm:"column:entity_type"`
	EntityID   string    `gorm:"column:entity_id"`
	Data       string    `gorm:"column:data"`
	CreatedAt  time.Time `gorm:"column:created_at"`
}

func (Event) TableName() string { return "events" }

// EventView is an event as the admin API (and a webhook) shows it.
type EventView struct {
	ID        string          `json:"id"`
	Type      string          `json:"type"`
	OrgID     string          `json:"orgId"`
	Sequence  int64           `json:"sequence"`
	CreatedAt time.Time       `json:"createdAt"`
	Data      json.RawMessage `json:"data"`
}

// View renders the event.
func (e Event) View() EventView {
	return EventView{ID: e.ID, Type: e.Type, OrgID: e.OrgID, Sequence: e.Sequence, CreatedAt: e.CreatedAt, Data: json.RawMessage(e.Data)}
}

// Change is an event to append. Data is the entity as the admin API shows
// it; when nil, AppendEvents renders it from the rows as they are in the
// transaction: a member (EntityType "member") as GET /members shows it, a
// group ("group") as GET /groups does, and, when MemberID is set, the
// group and that member ({"group": GroupHead, "member": member}) for a
// change of the group's members. A removed entity has no row left: its
// Data is given, as it was last.
type Change struct {
	Type, EntityType, EntityID string
	MemberID                   string
	Data                       any
}

// Entity types of events (EntityMember is the plan's too).
const (
	EntityGroup   = "group"
	EntitySyncRun = "sync_run"
)

// GroupMemberChange is the data of a change of a group's members.
type GroupMemberChange struct {
	Group  GroupHead  `json:"group"`
	Member Membership `json:"member"`
}

// AppendEvents renders and appends an organization's changes, numbered in
// order after its latest event. Call it inside Tx, as the transaction's
// last write: the organization's counter row stays locked until commit,
// so its writers commit in sequence order, and taking it last keeps that
// wait short and out of every other lock's way.
func (s *Store) AppendEvents(ctx context.Context, orgID string, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	data, err := s.renderChanges(ctx, orgID, changes)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	n := int64(len(changes))
	// One statement for the lot, without gorm's reflection: converge
	// batches append a hundred events at a time on the hot path. Where the
	// dialect allows, the counter's bump is in the same statement, so the
	// row lock it takes is held only while the transaction commits.
	ids, ords, types, etypes, eids := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, c := range changes {
		ids[i], ords[i] = NewID(), strconv.Itoa(i+1)
		types[i], etypes[i], eids[i] = c.Type, c.EntityType, c.EntityID
	}
	// bump adds n to the organization's counter and returns the new last
	// sequence, its parameters bound to q.
	bump := func(q *query) string {
		count := q.typed(n, "bigint")
		return `INSERT INTO event_counters (org_id, last_sequence) VALUES (` + q.arg(orgID) + `, ` + count + `)
ON CONFLICT (org_id) DO UPDATE SET last_sequence = event_counters.last_sequence + excluded.last_sequence
RETURNING last_sequence`
	}
	q := &query{d: s.d}
	var base string // the sequence before the first event
	if s.d.writingWith {
		q.b.WriteString("WITH c AS (" + bump(q) + ")\n")
		base = "(SELECT last_sequence FROM c) - " + q.typed(n, "bigint")
	} else {
		bq := &query{d: s.d}
		var last int64
		if err := s.conn(ctx).Statement.ConnPool.QueryRowContext(ctx, bump(bq), bq.args...).Scan(&last); err != nil {
			return fmt.Errorf("append events: bump sequence: %w", err)
		}
		base = q.typed(last-n, "bigint")
	}
	rows, err := s.d.rows(q, []column{{name: "id", pgType: "text", text: ids}, {name: "ord", pgType: "text", text: ords},
		{name: "type", pgType: "text", text: types}, {name: "etype", pgType: "text", text: etypes},
		{name: "eid", pgType: "text", text: eids}, {name: "data", pgType: "text", text: data}})
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	q.b.WriteString(`INSERT INTO events (org_id, sequence, id, type, entity_type, entity_id, data, created_at)
SELECT ` + q.arg(orgID) + `, ` + base + ` + CAST(r.ord AS BIGINT), r.id, r.type, r.etype, r.eid, r.data, ` + q.typed(s.now(), "timestamptz") + `
FROM (` + rows + `) r`)
	got, err := q.exec(ctx, s)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	if got != n {
		return fmt.Errorf("append events: wrote %d of %d", got, n)
	}
	return nil
}

// renderChanges returns each change's data as JSON, reading the rows of
// those without Data in a few set-based queries.
func (s *Store) renderChanges(ctx context.Context, orgID string, changes []Change) ([]string, error) {
	var memberIDs, groupIDs, headIDs []string
	for _, c := range changes {
		switch {
		case c.Data != nil:
		case c.EntityType == EntityMember:
			memberIDs = append(memberIDs, c.EntityID)
		case c.EntityType == EntityGroup && c.MemberID != "":
			memberIDs = append(memberIDs, c.MemberID)
			headIDs = append(headIDs, c.EntityID)
		case c.EntityType == EntityGroup:
			groupIDs = append(groupIDs, c.EntityID)
		default:
			return nil, fmt.Errorf("no rendering of %s %s", c.EntityType, c.EntityID)
		}
	}
	members, err := s.membershipsByID(ctx, orgID, memberIDs)
	if err != nil {
		return nil, err
	}
	groups, err := s.groupViewsByID(ctx, orgID, groupIDs)
	if err != nil {
		return nil, err
	}
	heads, err := s.groupHeadsByID(ctx, orgID, headIDs)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(changes))
	for i, c := range changes {
		v := c.Data
		var ok bool
		switch {
		case v != nil:
			ok = true
		case c.EntityType == EntityMember:
			v, ok = members[c.EntityID]
		case c.MemberID != "":
			var m Membership
			var g GroupHead
			if m, ok = members[c.MemberID]; ok {
				g, ok = heads[c.EntityID]
			}
			v = GroupMemberChange{Group: g, Member: m}
		default:
			v, ok = groups[c.EntityID]
		}
		if !ok {
			return nil, fmt.Errorf("render %s event of %s %s: %w", c.Type, c.EntityType, c.EntityID, ErrNotFound)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("render %s event: %w", c.Type, err)
		}
		out[i] = string(b)
	}
	return out, nil
}

func (s *Store) membershipsByID(ctx context.Context, orgID string, ids []string) (map[string]Membership, error) {
	out := make(map[string]Membership, len(ids))
	for start := 0; start < len(ids); start += 500 {
		var rows []Membership
		from, arg := s.eachRow("org_memberships", "m", "id", ids[start:min(start+500, len(ids))], "m.org_id = ?")
		if err := s.conn(ctx).Raw("SELECT m.* FROM "+from, arg, orgID).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("get memberships: %w", err)
		}
		for _, m := range rows {
			out[m.ID] = m
		}
	}
	return out, nil
}

func (s *Store) groupHeadsByID(ctx context.Context, orgID string, ids []string) (map[string]GroupHead, error) {
	out := map[string]GroupHead{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Group
	if err := s.conn(ctx).Where("org_id = ? AND id IN ?", orgID, distinctStrings(ids)).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("get local groups: %w", err)
	}
	for _, g := range rows {
		out[g.ID] = g.Head()
	}
	return out, nil
}

func (s *Store) groupViewsByID(ctx context.Context, orgID string, ids []string) (map[string]GroupView, error) {
	out := map[string]GroupView{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Group
	if err := s.conn(ctx).Where("org_id = ? AND id IN ?", orgID, distinctStrings(ids)).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("get local groups: %w", err)
	}
	views, err := s.viewGroups(ctx, orgID, rows)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		out[v.GroupHead.ID] = v
	}
	return out, nil
}

// LocalGroupView renders one local group as GET /groups shows it.
func (s *Store) LocalGroupView(ctx context.Context, orgID, id string) (GroupView, error) {
	vs, err := s.groupViewsByID(ctx, orgID, []string{id})
	return oneOf(vs, err, id, "local group")
}

// oneOf is the entry id of what a batch read returned, ErrNotFound (of
// what) when the batch did not have it.
func oneOf[T any](m map[string]T, err error, id, what string) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	v, ok := m[id]
	if !ok {
		return zero, fmt.Errorf("%s %w", what, ErrNotFound)
	}
	return v, nil
}

func distinctStrings(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Events lists an organization's events with sequence above after and at
// most through, in sequence order, at most limit; types, when given, keeps
// those types. Every event up to a Latest that EventCursor read has
// committed, so through = Latest makes the answer final: a later read of
// the same range finds the same events.
func (s *Store) Events(ctx context.Context, orgID string, after, through int64, limit int, types []string) ([]Event, error) {
	q := s.conn(ctx).Where("org_id = ? AND sequence > ? AND sequence <= ?", orgID, after, through)
	if len(types) > 0 {
		q = q.Where("type IN ?", types)
	}
	var out []Event
	if err := q.Order("sequence").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return out, nil
}

// EventCursor is where an organization's change feed stands: its latest
// sequence, and the highest one the retention purge deleted (a reader
// whose cursor is below it has missed events).
type EventCursor struct {
	Latest        int64 `gorm:"column:last_sequence"`
	PurgedThrough int64 `gorm:"column:purged_through"`
}

// EventCursor reads an organization's; zero before its first event.
func (s *Store) EventCursor(ctx context.Context, orgID string) (EventCursor, error) {
	var c EventCursor
	err := s.conn(ctx).Raw("SELECT last_sequence, purged_through FROM event_counters WHERE org_id = ?", orgID).Scan(&c).Error
	if err != nil {
		return EventCursor{}, fmt.Errorf("event cursor: %w", err)
	}
	return c, nil
}

// PurgeEvents deletes, per organization, the oldest events created
// before createdBefore, up to limit of each, and records the highest
// sequence it deleted; it returns how many it deleted. It deletes a prefix
// of each organization's sequence, stopping at its first newer event, so
// everything up to the recorded sequence is gone and nothing after it.
func (s *Store) PurgeEvents(ctx context.Context, createdBefore time.Time, limit int) (int64, error) {
	var orgs []string
	if err := s.conn(ctx).Raw("SELECT org_id FROM event_counters WHERE last_sequence > purged_through ORDER BY org_id").
		Scan(&orgs).Error; err != nil {
		return 0, fmt.Errorf("purge events: %w", err)
	}
	var total int64
	for _, org := range orgs {
		var oldest []struct {
			Sequence  int64     `gorm:"column:sequence"`
			CreatedAt time.Time `gorm:"column:created_at"`
		}
		if err := s.conn(ctx).Raw("SELECT sequence, created_at FROM events WHERE org_id = ? ORDER BY sequence LIMIT ?", org, limit).
			Scan(&oldest).Error; err != nil {
			return total, fmt.Errorf("purge events: %w", err)
		}
		k := 0
		for k < len(oldest) && oldest[k].CreatedAt.Before(createdBefore) {
			k++
		}
		if k == 0 {
			continue
		}
		through := oldest[k-1].Sequence
		var n int64
		err := s.Tx(ctx, func(tx *Store) error {
			db := tx.conn(ctx)
			if err := db.Exec("UPDATE event_counters SET purged_through = ? WHERE org_id = ? AND purged_through < ?", through, org, through).Error; err != nil {
				return err
			}
			res := db.Exec("DELETE FROM events WHERE org_id = ? AND sequence <= ?", org, through)
			n = res.RowsAffected
			return res.Error
		})
		if err != nil {
			return total, fmt.Errorf("purge events of %s: %w", org, err)
		}
		total += n
	}
	return total, nil
}
