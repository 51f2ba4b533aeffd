package reconciler_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// connector reads the organization's connector row.
func (h *harness) connector() store.Connector {
	h.t.Helper()
	c, err := h.st.Connector(h.ctx, h.org.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) mustMode(run store.SyncRun, want string) {
	h.t.Helper()
	if run.PullMode != want {
		h.t.Fatalf("run pulled %q, want %q (error %q)", run.PullMode, want, run.Error)
	}
}

// settledDelta is an Okta organization of users settled by a full run and
// a delta run, with the clock past the delta's overlap.
func settledDelta(t *testing.T, b storetest.Backend, n int) (*harness, []oktafake.User, oktafake.Group) {
	h := newHarness(t, b)
	idp := h.connectOkta()
	users := h.addOktaUsers("u", n)
	eng := idp.AddGroup("Engineering")
	for _, u := range users[:min(n, 10)] {
		idp.AddMember(eng.ID, u.ID)
	}
	run, _ := h.reconcile(reconciler.Options{})
	h.mustMode(run, store.PullFull)
	h.converge()
	h.clock.Advance(time.Hour)
	run, _ = h.reconcile(reconciler.Options{})
	h.mustStatus(run, store.RunSucceeded)
	h.mustMode(run, store.PullDelta)
	h.takeOutbox()
	h.clock.Advance(time.Hour)
	return h, users, eng
}

// mustFullPlanNothing runs a full pull and checks that it plans nothing:
// the deltas before it missed nothing.
func (h *harness) mustFullPlanNothing() {
	h.t.Helper()
	run, _ := h.reconcile(reconciler.Options{Full: true})
	h.mustStatus(run, store.RunSucceeded)
	h.mustMode(run, store.PullFull)
	var left []string
	for _, it := range h.items(run) {
		if a := it[:len(lifecycle.Skip.PlanItem())]; a != lifecycle.Skip.PlanItem() && a != lifecycle.Keep.PlanItem() {
			left = append(left, it)
		}
	}
	if len(left) > 0 {
		h.t.Fatalf("a full run after deltas plans %q", left)
	}
}

// A delta run finds every kind of change, in a few requests, and applies it
// as a full run would.
func TestDeltaFindsEveryChange(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, users, eng := settledDelta(t, b, 60)
		before := h.connector().DeltaCursor
		wantRemove, wantDeprovision, wantUpdate := mutate(h, users, eng)
		h.idp.AddUser(oktafake.User{Email: "new@example.com", FirstName: "New", LastName: "Hire"})

		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		for _, c := range []struct {
			action string
			want   []string
		}{
			{lifecycle.Remove.PlanItem(), wantRemove}, {lifecycle.Deprovision.PlanItem(), wantDeprovision}, {lifecycle.Update.PlanItem(), wantUpdate},
			{lifecycle.GroupUpdate.PlanItem(), []string{"Platform: rename from Engineering, members +1 -2"}},
			{lifecycle.Provision.PlanItem(), []string{"new@example.com"}},
		} {
			if diff := cmp.Diff(c.want, h.itemsOf(run, c.action)); diff != "" {
				t.Errorf("%s items (-want +got):\n%s", c.action, diff)
			}
		}
		if run.CursorBefore != before || run.CursorAfter == "" || run.CursorAfter == before {
			t.Errorf("cursors %q → %q, want from %q to a new one", run.CursorBefore, run.CursorAfter, before)
		}
		if got := h.connector().DeltaCursor; got != run.CursorAfter {
			t.Errorf("connector cursor = %q, want the run's %q", got, run.CursorAfter)
		}
		if run.IdPRequests < 3 || run.IdPRequests > 5 {
			t.Errorf("delta run sent %d requests, want 3 to 5", run.IdPRequests)
		}
		if p.Pull == nil || p.Pull.Mode != store.PullDelta || p.Pull.DeletedUsers != 1 || p.Pull.Leaves != 1 {
			t.Errorf("pull = %+v", p.Pull)
		}
		if _, ok := h.dirUsers()[users[0].ID]; ok {
			t.Error("the deleted user's directory row is still there")
		}
		h.converge()
		h.mustFullPlanNothing()
	})
}

// The first run of a connector, a run after its settings changed, a run an
// operator asks to be full, a run whose cursor Okta can no longer serve and
// a run the full schedule makes due pull in full.
func TestFullPullWhen(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, _, _ := settledDelta(t, b, 5)
		none := ""
		if _, err := h.svc.UpdateOrg(h.ctx, h.org.ID, store.OrgPatch{FullReconcileSchedule: &none}); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name   string
			before func()
			opts   reconciler.Options
			want   string
		}{
			{"delta", func() {}, reconciler.Options{}, store.PullDelta},
			{"asked", func() {}, reconciler.Options{Full: true}, store.PullFull},
			{"settings changed", func() {
				if _, err := h.svc.PutConnector(h.ctx, h.org.ID, "okta", []byte(`{"orgUrl":"`+h.idp.URL()+`"}`),
					[]byte(`{"apiToken":"`+h.idp.Token()+`"}`)); err != nil {
					t.Fatal(err)
				}
			}, reconciler.Options{}, store.PullFull},
			{"delta again", func() {}, reconciler.Options{}, store.PullDelta},
			{"cursor refused", func() { h.clock.Advance(91 * 24 * time.Hour) }, reconciler.Options{}, store.PullFull},
			{"schedule due", func() {
				daily := "@daily"
				if _, err := h.svc.UpdateOrg(h.ctx, h.org.ID, store.OrgPatch{FullReconcileSchedule: &daily}); err != nil {
					t.Fatal(err)
				}
				h.clock.Advance(25 * time.Hour)
			}, reconciler.Options{}, store.PullFull},
			{"not due", func() { h.clock.Advance(time.Hour) }, reconciler.Options{}, store.PullDelta},
		}
		for _, s := range steps {
			s.before()
			run, _ := h.reconcile(s.opts)
			h.mustStatus(run, store.RunSucceeded)
			if run.PullMode != s.want {
				t.Fatalf("%s: run pulled %q, want %q", s.name, run.PullMode, s.want)
			}
			if c := h.connector(); c.DeltaCursor != run.CursorAfter || c.CursorGeneration != c.Generation {
				t.Fatalf("%s: connector cursor %q (generation %d of %d), want the run's %q", s.name, c.DeltaCursor, c.CursorGeneration, c.Generation, run.CursorAfter)
			}
		}
	})
}

// A delta run that fails keeps the cursor, and the next one reads from it.
func TestFailedDeltaKeepsTheCursor(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, users, _ := settledDelta(t, b, 5)
		cursor := h.connector().DeltaCursor
		h.idp.DeleteUser(users[1].ID)
		h.idp.FailNext(oktafake.RouteLogs, 500, 2) // past the one retry
		run, _ := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunFailed)
		if got := h.connector().DeltaCursor; got != cursor {
			t.Fatalf("cursor after a failed run = %q, want %q kept", got, cursor)
		}
		if _, ok := h.dirUsers()[users[1].ID]; !ok {
			t.Fatal("a failed delta run deleted a directory user")
		}
		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		if run.CursorBefore != cursor || p.Remove != 1 {
			t.Fatalf("next run from %q with plan %+v, want from %q removing 1", run.CursorBefore, p, cursor)
		}
	})
}

// The deprovision guard holds a delta as it holds a full pull: a blocked
// delta changes nothing and keeps the cursor.
func TestDeltaKeepsTheGuard(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, users, _ := settledDelta(t, b, 20)
		cursor := h.connector().DeltaCursor
		for _, u := range users {
			h.idp.DeleteUser(u.ID)
		}
		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunBlocked)
		h.mustMode(run, store.PullDelta)
		if p.Remove != 20 || !p.Guard.Tripped {
			t.Fatalf("plan = %+v", p)
		}
		if n := len(h.dirUsers()); n != 20 {
			t.Fatalf("a blocked delta swept the directory: %d users left", n)
		}
		if rows := h.takeOutbox(); len(rows) != 0 {
			t.Fatalf("a blocked delta wrote %d outbox rows", len(rows))
		}
		if got := h.connector().DeltaCursor; got != cursor {
			t.Fatalf("cursor after a blocked run = %q, want %q kept", got, cursor)
		}
		run, p = h.reconcile(reconciler.Options{AllowMassDeprovision: true})
		h.mustStatus(run, store.RunSucceeded)
		if p.Applied == nil || p.Applied.UsersSwept != 20 {
			t.Fatalf("confirmed delta applied %+v", p.Applied)
		}
	})
}

// Random changes, a delta run and its converges leave nothing for a full
// run to do.
func TestDeltaThenFullPlansNothing(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, users, eng := settledDelta(t, b, 40)
		rng := rand.New(rand.NewPCG(1, 2))
		alive := map[string]bool{}
		for _, u := range users {
			alive[u.ID] = true
		}
		groups := []string{eng.ID, h.idp.AddGroup("Sales").ID}
		for i := range 60 {
			u := users[rng.IntN(len(users))].ID
			if !alive[u] {
				continue
			}
			switch rng.IntN(7) {
			case 0:
				h.idp.UpdateUser(u, func(x *oktafake.User) { x.LastName = fmt.Sprintf("L%d", i) })
			case 1:
				h.idp.SetStatus(u, oktafake.StatusSuspended)
			case 2:
				h.idp.SetStatus(u, oktafake.StatusActive)
			case 3:
				h.idp.AddMember(groups[rng.IntN(2)], u)
			case 4:
				h.idp.RemoveMember(groups[rng.IntN(2)], u)
			case 5:
				if i%4 == 0 { // few enough to stay under the guard
					h.idp.DeleteUser(u)
					alive[u] = false
				}
			case 6:
				h.idp.AddUser(oktafake.User{Email: fmt.Sprintf("n%d@example.com", i)})
			}
			h.clock.Advance(time.Second)
		}
		h.idp.RenameGroup(eng.ID, "Platform")
		run, _ := h.reconcile(reconciler.Options{AllowMassDeprovision: true})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		h.converge()
		h.mustFullPlanNothing()
	})
}

// A delta run of no change writes nothing but its run.
func TestNoChangeDeltaWritesNothing(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, _, _ := settledDelta(t, b, 20)
		state := func() any {
			var groups []store.DirectoryGroup
			if err := h.st.EachDirectoryGroup(h.ctx, h.org.ID, func(g store.DirectoryGroup) error { groups = append(groups, g); return nil }); err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(groups))
			for i, g := range groups {
				ids[i] = g.ID
			}
			links, err := h.st.DirectoryGroupMembers(h.ctx, h.org.ID, ids...)
			if err != nil {
				t.Fatal(err)
			}
			users := h.dirUsers()
			members := map[string]*store.Membership{}
			for k, u := range users {
				members[k] = h.member(u.ID)
			}
			return []any{users, groups, links, members}
		}
		before := state()
		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		if diff := cmp.Diff(before, state()); diff != "" {
			t.Errorf("a delta of no change changed state (-before +after):\n%s", diff)
		}
		if len(h.items(run)) != 0 || p.Applied == nil || *p.Applied != (reconciler.Applied{}) {
			t.Errorf("a delta of no change planned %q and applied %+v", h.items(run), p.Applied)
		}
		if rows := storetest.PendingOutbox(t, h.st); len(rows) != 0 {
			t.Errorf("a delta of no change wrote %d outbox rows", len(rows))
		}
	})
}

// A group renamed under a role mapping changes the role of members the
// delta did not touch: that delta is planned over the whole organization.
func TestDeltaRenameUnderRoleMapping(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, users, eng := settledDelta(t, b, 12)
		mapping := store.JSONMap{"engineering": lifecycle.RoleAdmin}
		if _, err := h.st.UpdateOrg(h.ctx, h.org.ID, store.OrgPatch{RoleMapping: &mapping}); err != nil {
			t.Fatal(err)
		}
		run, _ := h.reconcile(reconciler.Options{Full: true})
		h.mustStatus(run, store.RunSucceeded)
		h.converge()
		h.clock.Advance(time.Hour)
		// users[10] and users[11] are members, not in the group, and stay so.
		h.idp.RenameGroup(eng.ID, "Platform")
		h.idp.UpdateUser(users[11].ID, func(u *oktafake.User) { u.LastName = "Renamed" })
		run, _ = h.reconcile(reconciler.Options{AllowMassDeprovision: true})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		// The last admin keeps its role; the nine others lose theirs.
		if got := len(h.itemsOf(run, lifecycle.Update.PlanItem())); got != 10 {
			t.Fatalf("updates = %q, want nine demotions and a rename", h.itemsOf(run, lifecycle.Update.PlanItem()))
		}
		h.converge()
		h.mustFullPlanNothing()
	})
}

// A run queued through the admin API with {"full": true} pulls in full.
func TestQueuedFullRun(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h, _, _ := settledDelta(t, b, 5)
		for _, full := range []bool{true, false} {
			queued, err := h.svc.RequestReconcile(h.ctx, h.org.ID, admin.ReconcileRequest{Full: full})
			if err != nil {
				t.Fatal(err)
			}
			h.takeOutbox()
			run, _ := h.reconcile(reconciler.Options{RunID: queued.ID})
			h.mustStatus(run, store.RunSucceeded)
			want := store.PullDelta
			if full {
				want = store.PullFull
			}
			if run.PullMode != want || run.FullRequested != full {
				t.Errorf("queued run with full %t pulled %q (fullRequested %t)", full, run.PullMode, run.FullRequested)
			}
			if v := run.View(); v.Mode != want || v.IdPRequests != run.IdPRequests || v.IdPRequests == 0 {
				t.Errorf("run view = %+v", v)
			}
		}
	})
}

// A delta run counts the pages it read as a full run does, one for each
// page of changes the IdP answered with, so PagesFetched is not 0 on an
// Okta run that read changes.
func TestDeltaCountsPages(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta(oktafake.WithMaxLimit(20))
		users := h.addOktaUsers("u", 50)
		eng := idp.AddGroup("Engineering")
		run, p := h.reconcile(reconciler.Options{})
		h.mustMode(run, store.PullFull)
		// 3 pages of users, 1 of groups; Engineering lists no members.
		if run.PagesFetched != 4 || p.Pull.Pages != 4 {
			t.Errorf("full run: %d pages fetched, plan %d, want 4", run.PagesFetched, p.Pull.Pages)
		}
		h.converge()
		h.clock.Advance(time.Hour)
		run, _ = h.reconcile(reconciler.Options{}) // reads the full run's own changes again
		h.mustMode(run, store.PullDelta)
		h.converge()
		h.clock.Advance(time.Hour)

		for _, u := range users[:30] {
			idp.UpdateUser(u.ID, func(u *oktafake.User) { u.FirstName = "Renamed" })
		}
		idp.AddMember(eng.ID, users[0].ID)
		// Past the overlap, so that the next delta no longer reads them.
		h.clock.Advance(10 * time.Minute)
		run, p = h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		h.mustMode(run, store.PullDelta)
		// 2 pages of changed users, none of groups, 1 of the System Log.
		if run.PagesFetched != 3 || p.Pull.Pages != 3 {
			t.Errorf("delta run: %d pages fetched, plan %d, want 3", run.PagesFetched, p.Pull.Pages)
		}

		h.converge()
		h.clock.Advance(time.Hour)
		run, p = h.reconcile(reconciler.Options{})
		h.mustMode(run, store.PullDelta)
		if run.PagesFetched != 0 || p.Pull.Pages != 0 {
			t.Errorf("delta run without changes: %d pages fetched, plan %d, want 0", run.PagesFetched, p.Pull.Pages)
		}
	})
}
