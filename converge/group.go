package converge

import (
	"context"
	"errors"
	"fmt"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// GroupPlan is what converging one directory group does.
type GroupPlan struct {
	OrgID            string
	DirectoryGroupID string
	// Action is the decision; the plan's Outcome follows from it.
	Action lifecycle.Decision
	// Before is the local group as found, After as converge leaves it; nil
	// for none.
	Before, After *store.Group
	// Changed lists the group fields that change.
	Changed []string
	// Add and Remove are the memberships to link into and unlink from the
	// group. Deprovisioned members stay linked while the directory keeps
	// them in the group.
	Add, Remove []string
}

type groupFacts struct {
	orgID, directoryGroupID string
	dir                     *store.DirectoryGroup
	local                   *store.Group
	add, remove             []string
}

// ConvergeGroup makes the organization's local group match one directory
// group (which may no longer exist): its name and its member set.
func (c *Converger) ConvergeGroup(ctx context.Context, orgID, directoryGroupID string) (lifecycle.Outcome, error) {
	p, err := c.ApplyGroup(ctx, orgID, directoryGroupID)
	return p.Outcome(), err
}

// Outcome is what applying the plan changes.
func (p GroupPlan) Outcome() lifecycle.Outcome { return p.Action.Outcome() }

// PlanGroup says what ConvergeGroup would do now, changing nothing.
func (c *Converger) PlanGroup(ctx context.Context, orgID, directoryGroupID string) (GroupPlan, error) {
	f, err := loadGroup(ctx, c.Store, orgID, directoryGroupID, false)
	if err != nil {
		return GroupPlan{}, wrap("plan group converge", err)
	}
	return decideGroup(f), nil
}

// ApplyGroup is ConvergeGroup returning the plan it applied.
func (c *Converger) ApplyGroup(ctx context.Context, orgID, directoryGroupID string) (GroupPlan, error) {
	var p GroupPlan
	err := c.inTx(ctx, func(tx *store.Store) error {
		f, err := loadGroup(ctx, tx, orgID, directoryGroupID, true)
		if err != nil {
			return err
		}
		p = decideGroup(f)
		var t bulk
		if err := applyGroup(ctx, tx, &t, p); err != nil {
			return err
		}
		return t.flush(ctx, tx)
	})
	if err != nil {
		return GroupPlan{OrgID: orgID, DirectoryGroupID: directoryGroupID}, wrap("converge group", err)
	}
	return p, nil
}

// ApplyGroups converges many directory groups of one organization, each in
// a transaction of its own (a group's converge locks its directory group
// and diffs its whole member set, so groups gain little from sharing one),
// and returns the plans it applied, one per distinct id that converged.
// The error joins the failures, each naming its directory group; one
// group's failure does not stop the others.
func (c *Converger) ApplyGroups(ctx context.Context, orgID string, directoryGroupIDs []string) ([]GroupPlan, error) {
	var (
		ps   []GroupPlan
		errs []error
	)
	for _, id := range distinct(directoryGroupIDs) {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("converge group %s: %w", id, ctx.Err()))
			continue
		}
		p, err := c.ApplyGroup(ctx, orgID, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("directory group %s: %w", id, err))
			continue
		}
		ps = append(ps, p)
	}
	return ps, errors.Join(errs...)
}

// loadGroup reads the facts. With lock, the directory group row is held
// exclusively first: converges of one group then run one after the other,
// and a user converge linking a new member into the group (which
// share-locks the same row) runs wholly before or after.
func loadGroup(ctx context.Context, s *store.Store, orgID, directoryGroupID string, lock bool) (groupFacts, error) {
	f := groupFacts{orgID: orgID, directoryGroupID: directoryGroupID}
	var err error
	if lock {
		f.dir, err = notFoundAsNil(s.LockDirectoryGroup(ctx, orgID, directoryGroupID))
	} else {
		f.dir, err = notFoundAsNil(s.DirectoryGroup(ctx, orgID, directoryGroupID))
	}
	if err != nil {
		return f, err
	}
	if f.local, err = notFoundAsNil(s.LocalGroupByDirectoryGroup(ctx, orgID, directoryGroupID)); err != nil {
		return f, err
	}
	if f.dir == nil {
		return f, nil
	}
	localID := ""
	if f.local != nil {
		localID = f.local.ID
	}
	f.add, f.remove, err = s.LocalGroupDiff(ctx, orgID, localID, directoryGroupID)
	return f, err
}

func decideGroup(f groupFacts) GroupPlan {
	p := GroupPlan{OrgID: f.orgID, DirectoryGroupID: f.directoryGroupID, Before: f.local}
	switch {
	case f.dir == nil && f.local == nil:
		return p
	case f.dir == nil:
		p.Action = lifecycle.GroupDelete
		return p
	case f.local == nil:
		g := &store.Group{OrgID: f.orgID, DirectoryGroupID: f.dir.ID}
		copyGroup(g, f.dir)
		p.Action, p.After, p.Add = lifecycle.GroupCreate, g, f.add
		return p
	}
	after := *f.local
	p.Changed = copyGroup(&after, f.dir)
	p.Add, p.Remove = f.add, f.remove
	switch {
	case len(p.Changed) > 0:
		p.Action = lifecycle.GroupUpdate
	case len(p.Add)+len(p.Remove) > 0:
		p.Action = lifecycle.GroupMembers
	default:
		return p
	}
	p.After = &after
	return p
}

func copyGroup(g *store.Group, d *store.DirectoryGroup) []string {
	var changed []string
	set := func(name string, dst *string, v string) {
		if *dst != v {
			*dst = v
			changed = append(changed, name)
		}
	}
	set("name", &g.Name, d.DisplayName)
	set("externalId", &g.ExternalID, d.ExternalID)
	set("source", &g.Source, d.Source)
	return changed
}

func applyGroup(ctx context.Context, tx *store.Store, t *bulk, p GroupPlan) error {
	switch p.Action {
	case lifecycle.None:
		return nil
	case lifecycle.GroupDelete:
		last, err := tx.LocalGroupView(ctx, p.OrgID, p.Before.ID)
		if err != nil {
			return err
		}
		if err := tx.DeleteLocalGroup(ctx, p.OrgID, p.Before.ID); err != nil {
			return err
		}
		t.add(p.OrgID, p.Action, "group", p.Before.ID, "directory group "+p.DirectoryGroupID+" is gone")
		t.change(p.OrgID, store.Change{Type: lifecycle.EventGroupDeleted, EntityType: store.EntityGroup, EntityID: p.Before.ID, Data: last})
		return nil
	}
	g := *p.After
	switch {
	case p.Action == lifecycle.GroupCreate:
		if err := tx.CreateLocalGroup(ctx, &g); err != nil {
			return err
		}
	case len(p.Changed) > 0:
		if err := tx.UpdateLocalGroup(ctx, &g); err != nil {
			return err
		}
	}
	if err := tx.AddLocalGroupMembers(ctx, p.OrgID, g.ID, p.Add); err != nil {
		return err
	}
	if err := tx.RemoveLocalGroupMembers(ctx, p.OrgID, g.ID, p.Remove); err != nil {
		return err
	}
	t.add(p.OrgID, p.Action, "group", g.ID,
		"directory group "+p.DirectoryGroupID, changedDetail(p.Changed), membersDetail(len(p.Add), len(p.Remove)))
	if typ := p.Action.EventType(); typ != "" {
		t.change(p.OrgID, store.Change{Type: typ, EntityType: store.EntityGroup, EntityID: g.ID})
	}
	for _, id := range p.Add {
		t.change(p.OrgID, store.Change{Type: lifecycle.EventGroupMemberAdded, EntityType: store.EntityGroup, EntityID: g.ID, MemberID: id})
	}
	for _, id := range p.Remove {
		t.change(p.OrgID, store.Change{Type: lifecycle.EventGroupMemberRemoved, EntityType: store.EntityGroup, EntityID: g.ID, MemberID: id})
	}
	return nil
}

func membersDetail(added, removed int) string {
	if added+removed == 0 {
		return ""
	}
	return fmt.Sprintf("members +%d -%d", added, removed)
}
