package reconciler

import (
	"context"
	"errors"
	"fmt"

	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/store"
)

// A connector whose IdP offers deltas (connectors.DeltaDirectory) is
// pulled in full once, and then by deltas from the cursor the last
// succeeded run left, until a full pull is due again (fullReason). A delta
// is written and applied like a full pull (see store.WritePulledDelta) and
// planned by the same statements, so the guard, the last-admin rule and
// converge are the same for both; only what the run reads from the IdP
// differs.

// pullState is what a run knows of its connector's delta cursor.
type pullState struct {
	conn  store.Connector
	delta connectors.DeltaDirectory // nil: the IdP offers no delta
	mode  string                    // store.PullFull or store.PullDelta
	// after is the cursor to save if the run succeeds; "" saves none.
	after string
}

// fullReason says why the run must pull in full, or "" when a delta will
// do.
func (e *execution) fullReason(ps *pullState) string {
	c := ps.conn
	switch {
	case ps.delta == nil:
		return "the connector has no delta"
	case e.run.FullRequested:
		return "an operator asked for a full pull"
	case c.DeltaCursor == "":
		return "no delta cursor yet"
	case c.CursorGeneration != c.Generation:
		return "the connector's settings changed since the cursor"
	}
	spec := e.org.FullReconcileSchedule
	if spec == "" {
		return ""
	}
	sched, err := config.ParseSchedule(spec)
	if err != nil {
		return fmt.Sprintf("the full reconcile schedule %q does not parse", spec)
	}
	if c.LastFullAt == nil || !sched.Next(*c.LastFullAt).After(e.r.Store.Now()) {
		return "a full pull is due (" + spec + ")"
	}
	return ""
}

// pullDirectory pulls dir by delta when it can, in full otherwise, and
// fills sc and e.plan.Pull.
func (e *execution) pullDirectory(ctx context.Context, dir connectors.Directory, source string, ps *pullState, sc *store.PlanScope) error {
	ps.delta, _ = connectors.AsDelta(dir)
	reason := e.fullReason(ps)
	if reason == "" {
		ps.mode = store.PullDelta
		err := e.pullDelta(ctx, ps, source, sc)
		if !errors.Is(err, connectors.ErrCursorExpired) {
			return err
		}
		reason = "the IdP refused the delta cursor"
	}
	ps.mode = store.PullFull
	e.log.InfoContext(ctx, "pulling in full", "reason", reason)
	if ps.delta != nil {
		// Taken first, so that the next delta replays what changes while
		// this pull runs.
		cursor, err := ps.delta.Cursor(ctx)
		if err != nil {
			e.log.WarnContext(ctx, "could not take a delta cursor; the next run pulls in full too", "err", err)
		}
		ps.after = cursor
	}
	stats, err := e.pull(ctx, dir, source)
	stats.Mode = store.PullFull
	e.plan.Pull = &stats
	if err != nil {
		return err
	}
	sc.Pulled = true
	if stats.Pages >= 8 {
		e.refreshStats(ctx)
	}
	return nil
}

// pullDelta reads the changes since the cursor and writes them, in one
// transaction, or nothing when there are none.
func (e *execution) pullDelta(ctx context.Context, ps *pullState, source string, sc *store.PlanScope) error {
	d, next, err := ps.delta.Changes(ctx, ps.conn.DeltaCursor)
	if err != nil {
		return fmt.Errorf("read changes: %w", err)
	}
	e.pulled = store.Pull{OrgID: e.org.ID, RunID: e.run.ID, Source: source, Snapshot: e.run.Snapshot, Delta: true}
	pd := toPulledDelta(d)
	e.countPages(d.Pages)
	stats := PullStats{Source: source, Mode: store.PullDelta, Pages: e.pages, Users: len(pd.Users), Groups: len(pd.Groups), GroupMembers: len(pd.Joins),
		DeletedUsers: len(pd.DeletedUsers), DeletedGroups: len(pd.DeletedGroups), Leaves: len(pd.Leaves), SkippedUsers: len(d.Users) - len(pd.Users)}
	e.plan.Pull = &stats
	if !d.Empty() {
		if err := e.r.Store.Tx(ctx, func(tx *store.Store) error { return tx.WritePulledDelta(ctx, e.pulled, pd) }); err != nil {
			return err
		}
	}
	// Saved even when nothing changed: a cursor that is a time (Okta's)
	// moves on every delta, and leaving it behind would widen each next
	// read until it passed the System Log's retention and forced a full pull.
	ps.after = next
	sc.Pulled, sc.Delta, sc.Touched = true, true, e.touched(pd)
	return nil
}

// maxTouched bounds the users a delta's plan is limited to: they are bound
// as parameters, and past a few thousand a scan of the organization costs
// no more.
const maxTouched = 1000

// touched are the external ids of the users a delta changed, to which its
// plan is limited (store.PlanScope.Touched); nil, the whole organization,
// when they are many, or when a group was renamed or deleted under a role
// mapping, which may change the role of users the delta did not touch.
func (e *execution) touched(pd store.PulledDelta) []string {
	if len(e.org.RoleMapping) > 0 && len(pd.Groups)+len(pd.DeletedGroups) > 0 {
		return nil
	}
	set := map[string]bool{}
	for _, u := range pd.Users {
		set[u.ExternalID] = true
	}
	for _, id := range pd.DeletedUsers {
		set[id] = true
	}
	for _, l := range append(pd.Joins, pd.Leaves...) {
		set[l.UserExternalID] = true
	}
	if len(set) > maxTouched {
		return nil
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	return out
}

func toPulledDelta(d connectors.Delta) store.PulledDelta {
	var pd store.PulledDelta
	for _, u := range d.Users {
		if u.ExternalID != "" {
			pd.Users = append(pd.Users, store.PulledUser{ExternalID: u.ExternalID, UserName: u.UserName, Email: u.Email,
				GivenName: u.GivenName, FamilyName: u.FamilyName, Active: u.Active, RawStatus: u.RawStatus})
		}
	}
	for _, g := range d.Groups {
		if g.ExternalID != "" {
			pd.Groups = append(pd.Groups, store.PulledGroup{ExternalID: g.ExternalID, Name: g.Name})
		}
	}
	pd.DeletedUsers, pd.DeletedGroups = d.DeletedUsers, d.DeletedGroups
	for _, m := range d.Joins {
		pd.Joins = append(pd.Joins, store.PulledLink(m))
	}
	for _, m := range d.Leaves {
		pd.Leaves = append(pd.Leaves, store.PulledLink(m))
	}
	return pd
}

// record is how the run pulled, for store.FinishSyncRunPull: the cursor
// advances only when a run that applied succeeds.
func (ps *pullState) record(run store.SyncRun, requests int64) store.RunPull {
	if ps.mode == "" {
		return store.RunPull{}
	}
	before := ps.conn.DeltaCursor
	if ps.conn.CursorGeneration != ps.conn.Generation {
		before = ""
	}
	return store.RunPull{Mode: ps.mode, CursorBefore: before, CursorAfter: ps.after, Requests: requests,
		Advance: !run.DryRun && ps.delta != nil, Generation: ps.conn.Generation}
}
