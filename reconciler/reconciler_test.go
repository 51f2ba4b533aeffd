package reconciler_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func each(t *testing.T, fn func(t *testing.T, b storetest.Backend)) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

func TestFirstRunProvisionsAcrossPages(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta(oktafake.WithMaxLimit(100))
		users := h.addOktaUsers("u", 450)
		eng := idp.AddGroup("Engineering")
		for _, u := range users[:150] {
			idp.AddMember(eng.ID, u.ID)
		}
		idp.AddGroup("Empty")

		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if p.Provision != 450 || p.GroupChanges != 2 || p.Update+p.Deprovision+p.Remove+p.ResendInvite+p.Skip != 0 {
			t.Fatalf("plan = %+v, want 450 provisions and 2 group changes", p)
		}
		// 5 pages of users, 1 of groups, 2 of Engineering's members (Empty
		// lists none).
		if run.PagesFetched != 8 || p.Pull.Users != 450 || p.Pull.Groups != 2 || p.Pull.GroupMembers != 150 {
			t.Errorf("pages = %d, pull = %+v", run.PagesFetched, p.Pull)
		}
		if got := h.itemsOf(run, lifecycle.GroupCreate.PlanItem()); !slices.Equal(got, []string{"Empty: create", "Engineering: create"}) {
			t.Errorf("group items = %q", got)
		}
		rows := h.takeOutbox()
		want := map[string]int{task.TypeConvergeUsers + "/" + task.QueueDefault: 450, task.TypeConvergeGroups + "/" + task.QueueDefault: 2}
		if diff := cmp.Diff(want, outboxKinds(rows)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
		for _, u := range h.dirUsers() {
			if !u.Active || u.Source != "okta" || u.Snapshot != run.Snapshot {
				t.Fatalf("directory user after apply: %+v", u)
			}
		}

		// Replay the rows through converge; then nothing is left to plan.
		h.replay(rows)
		h.converge()
		h.mustBeSettled()
		eg, _ := h.st.DirectoryGroupsBy(h.ctx, h.org.ID, store.ByDisplayName, "Engineering")
		local, err := h.st.LocalGroupByDirectoryGroup(h.ctx, h.org.ID, eg[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if ids, _ := h.st.LocalGroupMemberIDs(h.ctx, h.org.ID, local.ID); len(ids) != 150 {
			t.Errorf("local Engineering has %d members, want 150", len(ids))
		}
	})
}

// mutate makes every kind of change the next run must find, on a settled
// organization of 60 users, and returns the plan it expects.
func mutate(h *harness, users []oktafake.User, eng oktafake.Group) (wantRemove, wantDeprovision, wantUpdate []string) {
	idp := h.idp
	idp.DeleteUser(users[0].ID)                              // absent
	idp.SetStatus(users[1].ID, oktafake.StatusDeprovisioned) // deactivated: inactive, still in Engineering
	idp.SetStatus(users[2].ID, oktafake.StatusSuspended)     // inactive
	idp.UpdateUser(users[3].ID, func(u *oktafake.User) { u.LastName = "Renamed" })
	idp.UpdateUser(users[4].ID, func(u *oktafake.User) { u.Email = "new4@example.com" })
	idp.RemoveMember(eng.ID, users[5].ID)
	idp.AddMember(eng.ID, users[20].ID)
	idp.RenameGroup(eng.ID, "Platform")
	return []string{"u000@example.com: pending_setup member whose directory user is gone"},
		[]string{
			"u001@example.com: pending_setup → deprovisioned (IdP status DEPROVISIONED)",
			"u002@example.com: pending_setup → deprovisioned (IdP status SUSPENDED)",
		},
		[]string{"u003@example.com: lastName", "u004@example.com: email → new4@example.com, user email → new4@example.com"}
}

func TestNextRunFindsEveryChange(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 60)
		eng := idp.AddGroup("Engineering")
		for _, u := range users[:10] {
			idp.AddMember(eng.ID, u.ID)
		}
		h.settle()
		wantRemove, wantDeprovision, wantUpdate := mutate(h, users, eng)

		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		for _, c := range []struct {
			action string
			want   []string
		}{
			{lifecycle.Remove.PlanItem(), wantRemove}, {lifecycle.Deprovision.PlanItem(), wantDeprovision}, {lifecycle.Update.PlanItem(), wantUpdate},
			{lifecycle.GroupUpdate.PlanItem(), []string{"Platform: rename from Engineering, members +1 -2"}},
			{lifecycle.Provision.PlanItem(), nil},
		} {
			if diff := cmp.Diff(c.want, h.itemsOf(run, c.action)); diff != "" {
				t.Errorf("%s items (-want +got):\n%s", c.action, diff)
			}
		}
		if p.Remove != 1 || p.Deprovision != 2 || p.Update != 2 || p.GroupChanges != 1 {
			t.Errorf("plan = %+v", p)
		}
		rows := h.takeOutbox()
		want := map[string]int{
			task.TypeConvergeUsers + "/" + task.QueueCritical: 3, task.TypeConvergeUsers + "/" + task.QueueDefault: 2,
			task.TypeConvergeGroups + "/" + task.QueueDefault: 1,
		}
		if diff := cmp.Diff(want, outboxKinds(rows)); diff != "" {
			t.Errorf("outbox (-want +got):\n%s", diff)
		}
		dir := h.dirUsers()
		if _, ok := dir[users[0].ID]; ok {
			t.Error("the deleted user's directory row was not swept")
		}
		if dir[users[2].ID].Active {
			t.Error("the suspended user is still active in the directory")
		}
		h.replay(rows)
		h.converge()
		if m := h.member(dir[users[2].ID].ID); m == nil || m.Status != lifecycle.StatusDeprovisioned {
			t.Errorf("suspended user's member = %+v, want deprovisioned", m)
		}
		// The e-mail change reaches the member and the person's users row.
		m := h.member(dir[users[4].ID].ID)
		if m == nil || m.Email != "new4@example.com" {
			t.Fatalf("member of the renamed e-mail = %+v", m)
		}
		if u, err := h.st.User(h.ctx, m.UserID); err != nil || u.Email != "new4@example.com" || u.EmailKey != "new4@example.com" {
			t.Errorf("users row = %+v, %v; want new4@example.com", u, err)
		}
		h.mustBeSettled()
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 60)
		eng := idp.AddGroup("Engineering")
		for _, u := range users[:10] {
			idp.AddMember(eng.ID, u.ID)
		}
		h.settle()
		wantRemove, wantDeprovision, wantUpdate := mutate(h, users, eng)
		before := h.dirUsers()

		dry, p := h.reconcile(reconciler.Options{DryRun: true})
		h.mustStatus(dry, store.RunSucceeded)
		if !dry.DryRun || p.Applied != nil {
			t.Fatalf("dry run = %+v, applied %+v", dry, p.Applied)
		}
		if rows := h.takeOutbox(); len(rows) != 0 {
			t.Fatalf("a dry run wrote %d outbox rows", len(rows))
		}
		after := h.dirUsers()
		if len(after) != len(before) {
			t.Errorf("directory users %d → %d: a dry run swept", len(before), len(after))
		}
		for id, u := range before {
			if after[id].Active != u.Active {
				t.Errorf("user %s: active %t → %t in a dry run", u.Email, u.Active, after[id].Active)
			}
			if m := h.member(u.ID); m == nil || m.Status != lifecycle.StatusPendingSetup {
				t.Errorf("member of %s changed in a dry run: %+v", u.Email, m)
			}
		}

		// The real run plans exactly the same.
		real, _ := h.reconcile(reconciler.Options{})
		h.mustStatus(real, store.RunSucceeded)
		if diff := cmp.Diff(h.items(dry), h.items(real)); diff != "" {
			t.Errorf("dry run and real run plans differ (-dry +real):\n%s", diff)
		}
		if got := h.itemsOf(dry, lifecycle.Remove.PlanItem()); !slices.Equal(got, wantRemove) {
			t.Errorf("removals = %q", got)
		}
		if got := h.itemsOf(dry, lifecycle.Deprovision.PlanItem()); !slices.Equal(got, wantDeprovision) {
			t.Errorf("deprovisions = %q", got)
		}
		if got := h.itemsOf(dry, lifecycle.Update.PlanItem()); !slices.Equal(got, wantUpdate) {
			t.Errorf("updates = %q", got)
		}
	})
}

func TestFailedPullChangesNothing(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta(oktafake.WithMaxLimit(100))
		users := h.addOktaUsers("u", 300)
		h.settle()
		// Changes on page 1 and beyond, then page 2 fails past the retries.
		idp.SetStatus(users[10].ID, oktafake.StatusSuspended)
		idp.UpdateUser(users[11].ID, func(u *oktafake.User) { u.LastName = "Renamed" })
		idp.DeleteUser(users[250].ID)
		idp.FailPage(oktafake.RouteUsers, 2, http.StatusInternalServerError, 2) // 2 attempts: MaxRetries 1
		before := h.dirUsers()

		run, p := h.reconcile(reconciler.Options{Full: true}) // the full listing's page 2
		h.mustStatus(run, store.RunFailed)
		if !strings.Contains(run.Error, "500") || !strings.Contains(run.Error, "nothing was changed") {
			t.Errorf("error = %q", run.Error)
		}
		if p.Provision+p.Deprovision+p.Remove != 0 {
			t.Errorf("a failed run has a plan: %+v", p)
		}
		if rows := h.takeOutbox(); len(rows) != 0 {
			t.Fatalf("a failed run wrote %d outbox rows", len(rows))
		}
		after := h.dirUsers()
		if len(after) != len(before) {
			t.Fatalf("directory users %d → %d after a failed run", len(before), len(after))
		}
		if !after[users[10].ID].Active {
			t.Error("a failed run deactivated a directory user")
		}
		// Seen attributes may be refreshed; that takes no one's access away.
		if got := after[users[11].ID].FamilyName; got != "Renamed" {
			t.Errorf("family name = %q; the page that was seen should be written", got)
		}
		for _, u := range after {
			if m := h.member(u.ID); m == nil || m.Status != lifecycle.StatusPendingSetup {
				t.Fatalf("member of %s changed after a failed run: %+v", u.Email, m)
			}
		}

		// Once the IdP recovers, the next run applies it all.
		run, p = h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if p.Deprovision != 1 || p.Remove != 1 || p.Update != 1 {
			t.Errorf("plan after recovery = %+v", p)
		}
	})
}

func TestEmptyIdPIsBlockedUntilConfirmed(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 20)
		h.settle()
		for _, u := range users {
			idp.DeleteUser(u.ID)
		}

		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunBlocked)
		if p.Remove != 20 || !p.Guard.Tripped || p.Guard.Confirmed || !strings.Contains(run.Error, "20 of 20 members") {
			t.Fatalf("plan = %+v, error %q", p, run.Error)
		}
		// share is what the plan takes, limit what the guard allows.
		if p.Guard.Share != 1 || p.Guard.Limit != 0.1 {
			t.Errorf("guard share %v, limit %v, want 1 and 0.1", p.Guard.Share, p.Guard.Limit)
		}
		if got := len(h.itemsOf(run, lifecycle.Remove.PlanItem())); got != 20 {
			t.Errorf("blocked plan shows %d removals, want 20", got)
		}
		if rows := h.takeOutbox(); len(rows) != 0 {
			t.Fatalf("a blocked run wrote %d outbox rows", len(rows))
		}
		if n := len(h.dirUsers()); n != 20 {
			t.Fatalf("a blocked run swept the directory: %d users left", n)
		}

		// A dry run shows the verdict without being blocked.
		dry, p := h.reconcile(reconciler.Options{DryRun: true})
		h.mustStatus(dry, store.RunSucceeded)
		if !p.Guard.Tripped {
			t.Errorf("dry run guard = %+v", p.Guard)
		}

		// A confirmation of a smaller plan than the one found blocks again.
		reviewed := 19
		run, p = h.reconcile(reconciler.Options{AllowMassDeprovision: true, ConfirmedRemovals: &reviewed})
		h.mustStatus(run, store.RunBlocked)
		if p.Guard.Confirmed || !strings.Contains(run.Error, "removes 20 members, more than the 19 confirmed") {
			t.Fatalf("over-confirmed run: guard %+v, error %q", p.Guard, run.Error)
		}
		if rows := h.takeOutbox(); len(rows) != 0 || len(h.dirUsers()) != 20 {
			t.Fatalf("a run beyond its confirmation changed something: %d outbox rows", len(rows))
		}
		noGroups := 0
		reviewed = 20
		run, p = h.reconcile(reconciler.Options{AllowMassDeprovision: true, ConfirmedRemovals: &reviewed, ConfirmedGroupDeletions: &noGroups})
		h.mustStatus(run, store.RunSucceeded)
		if !p.Guard.Confirmed || p.Applied.UsersSwept != 20 {
			t.Fatalf("confirmed run: guard %+v, applied %+v", p.Guard, p.Applied)
		}
		rows := h.takeOutbox()
		if got := outboxKinds(rows); got[task.TypeConvergeUsers+"/"+task.QueueCritical] != 20 {
			t.Fatalf("outbox = %v", got)
		}
		h.replay(rows)
		h.converge()
		if n, _ := h.st.CountMembers(h.ctx, h.org.ID); n != 0 {
			t.Errorf("%d members left", n)
		}
	})
}

// TestConfirmationCoversTheReviewedLosses: a confirmation that names the
// reviewed plan's losses does not cover a plan taking away as many others.
func TestConfirmationCoversTheReviewedLosses(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 20)
		h.settle()
		for _, u := range users[:10] {
			idp.SetStatus(u.ID, "DEPROVISIONED")
		}
		run, reviewed := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunBlocked)
		if reviewed.Deprovision != 10 || len(reviewed.Guard.Losses) != 64 {
			t.Fatalf("blocked plan = %+v", reviewed)
		}
		if _, again := h.reconcile(reconciler.Options{DryRun: true}); again.Guard.Losses != reviewed.Guard.Losses {
			t.Fatalf("the same losses digest differently: %s, then %s", reviewed.Guard.Losses, again.Guard.Losses)
		}

		// As many lose access, but one of them another person.
		idp.SetStatus(users[0].ID, "ACTIVE")
		idp.SetStatus(users[10].ID, "DEPROVISIONED")
		ten := 10
		run, p := h.reconcile(reconciler.Options{AllowMassDeprovision: true, ConfirmedRemovals: &ten, ConfirmedLosses: reviewed.Guard.Losses})
		h.mustStatus(run, store.RunBlocked)
		if p.Deprovision != 10 || p.Guard.Confirmed || !strings.Contains(run.Error, "other members or groups than the ones confirmed") {
			t.Fatalf("a confirmation of other losses: plan %+v, error %q", p, run.Error)
		}
		if rows := h.takeOutbox(); len(rows) != 0 {
			t.Fatalf("a run beyond its confirmation wrote %d outbox rows", len(rows))
		}

		run, p = h.reconcile(reconciler.Options{AllowMassDeprovision: true, ConfirmedRemovals: &ten, ConfirmedLosses: p.Guard.Losses})
		h.mustStatus(run, store.RunSucceeded)
		if !p.Guard.Confirmed || p.Deprovision != 10 {
			t.Fatalf("confirmed run: %+v", p.Guard)
		}
	})
}

func TestGuardAllowsSmallRemovals(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 8)
		h.settle()
		for _, u := range users[:5] { // 62%, but not more than 5
			idp.DeleteUser(u.ID)
		}
		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if p.Remove != 5 || p.Guard.Tripped {
			t.Fatalf("plan = %+v", p)
		}
		if p.Guard.Share != 5.0/8 || p.Guard.Limit != 0.1 {
			t.Errorf("guard share %v, limit %v, want %v and 0.1", p.Guard.Share, p.Guard.Limit, 5.0/8)
		}
	})
}

func TestRateLimitsAreWaitedOut(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta(oktafake.WithMaxLimit(50))
		h.addOktaUsers("u", 120)
		idp.FailPage(oktafake.RouteUsers, 2, http.StatusTooManyRequests, 2)
		idp.FailPage(oktafake.RouteGroups, 1, http.StatusTooManyRequests, 1)
		slept0, _ := h.clock.Slept()

		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if p.Provision != 120 {
			t.Errorf("plan = %+v", p)
		}
		if slept, n := h.clock.Slept(); n < 3 || slept-slept0 < 3*time.Second {
			t.Errorf("slept %v in %d waits; want the 429s waited out", slept-slept0, n)
		}
	})
}

func TestRateLimitedBeyondBudgetFails(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta(oktafake.WithMaxLimit(50))
		users := h.addOktaUsers("u", 120)
		h.settle()
		idp.DeleteUser(users[110].ID)
		idp.FailPage(oktafake.RouteUsers, 3, http.StatusTooManyRequests, 10)
		run, _ := h.reconcile(reconciler.Options{Full: true}) // the full listing's page 3
		h.mustStatus(run, store.RunFailed)
		if !strings.Contains(run.Error, "429") {
			t.Errorf("error = %q", run.Error)
		}
		if rows := h.takeOutbox(); len(rows) != 0 {
			t.Fatalf("wrote %d outbox rows", len(rows))
		}
		if _, ok := h.dirUsers()[users[110].ID]; !ok {
			t.Error("swept after a rate-limited pull")
		}
	})
}

func TestSCIMOnlyOrgRepairsLostJobs(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		ctx := h.ctx
		// What SCIM pushes wrote, with every converge job lost.
		var dir []store.DirectoryUser
		for i, spec := range []struct {
			name, email string
			active      bool
		}{
			{"ann", "ann@example.com", true}, {"bob", "bob@example.com", true}, {"cid", "cid@example.com", false},
			{"dee", "", true}, {"eve", "eve@example.com", true},
		} {
			u := store.DirectoryUser{OrgID: h.org.ID, Source: store.SourceSCIM, ExternalID: "ext-" + spec.name, UserName: spec.name,
				Email: spec.email, GivenName: strings.ToUpper(spec.name[:1]) + spec.name[1:], FamilyName: "Doe", Active: spec.active}
			if err := h.st.CreateDirectoryUser(ctx, &u); err != nil {
				t.Fatal(i, err)
			}
			dir = append(dir, u)
		}
		g := store.DirectoryGroup{OrgID: h.org.ID, Source: store.SourceSCIM, DisplayName: "Sales"}
		if err := h.st.CreateDirectoryGroup(ctx, &g); err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.SetDirectoryGroupMembers(ctx, h.org.ID, g.ID, []string{dir[0].ID, dir[1].ID, dir[2].ID}); err != nil {
			t.Fatal(err)
		}
		// A member whose SCIM DELETE was never converged.
		gone := store.DirectoryUser{OrgID: h.org.ID, Source: store.SourceSCIM, UserName: "zed", Email: "zed@example.com", Active: true}
		if err := h.st.CreateDirectoryUser(ctx, &gone); err != nil {
			t.Fatal(err)
		}
		h.seedMember(gone, lifecycle.RoleMember, lifecycle.StatusActive)
		if err := h.st.DeleteDirectoryUser(ctx, h.org.ID, gone.ID); err != nil {
			t.Fatal(err)
		}

		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		want := []string{
			"groupCreate Sales: create",
			"provision ann@example.com", "provision bob@example.com", "provision eve@example.com",
			"remove zed@example.com: active member whose directory user is gone",
			"skip dee: no e-mail address, so no member can be created or invited",
		}
		if diff := cmp.Diff(want, h.items(run)); diff != "" {
			t.Fatalf("plan (-want +got):\n%s", diff)
		}
		if p.Pull != nil || p.Applied.OutboxRows != 3 {
			t.Errorf("pull %+v, applied %+v", p.Pull, p.Applied)
		}
		h.converge()

		// Local state is exactly the directory's.
		for _, u := range dir {
			m := h.member(u.ID)
			switch {
			case u.Active && u.Email != "":
				if m == nil || m.Status != lifecycle.StatusPendingSetup || m.Email != u.Email || m.FirstName != u.GivenName || m.Source != store.SourceSCIM {
					t.Errorf("member of %s = %+v", u.UserName, m)
				}
			case m != nil:
				t.Errorf("%s has a member: %+v", u.UserName, m)
			}
		}
		if n, _ := h.st.CountMembers(ctx, h.org.ID); n != 3 {
			t.Errorf("%d members, want 3", n)
		}
		local, err := h.st.LocalGroupByDirectoryGroup(ctx, h.org.ID, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := h.st.LocalGroupMemberIDs(ctx, h.org.ID, local.ID)
		wantIDs := []string{h.member(dir[0].ID).ID, h.member(dir[1].ID).ID}
		slices.Sort(wantIDs)
		if !slices.Equal(ids, wantIDs) {
			t.Errorf("local Sales members = %v, want %v", ids, wantIDs)
		}
		h.mustBeSettled()
	})
}

func TestLastAdminIsNeverRemovedAutomatically(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 3)
		run, _ := h.reconcile(reconciler.Options{DryRun: true}) // pulls the directory rows
		h.mustStatus(run, store.RunSucceeded)
		dir := h.dirUsers()
		// Earlier converges made these members; the first is the only admin.
		admin := h.seedMember(dir[users[0].ID], lifecycle.RoleAdmin, lifecycle.StatusActive)
		for _, u := range users[1:] {
			h.seedMember(dir[u.ID], lifecycle.RoleMember, lifecycle.StatusActive)
		}
		h.mustBeSettled()

		idp.DeleteUser(users[0].ID)
		idp.SetStatus(users[1].ID, oktafake.StatusSuspended)
		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if p.Remove != 0 || p.Deprovision != 1 || p.Keep != 1 {
			t.Fatalf("plan = %+v", p)
		}
		if got := h.itemsOf(run, lifecycle.Keep.PlanItem()); len(got) != 1 || !strings.Contains(got[0], "last admin") {
			t.Errorf("keep items = %q", got)
		}
		rows := h.takeOutbox()
		if len(rows) != 1 || !strings.Contains(string(rows[0].Payload), dir[users[1].ID].ID) {
			t.Fatalf("outbox = %d rows; want only the suspended member's converge", len(rows))
		}
		// The admin's directory row stays, so no converge can remove it.
		if _, ok := h.dirUsers()[users[0].ID]; !ok {
			t.Error("the last admin's directory row was swept")
		}
		if m := h.member(admin.DirectoryUserID); m == nil || m.Status != lifecycle.StatusActive {
			t.Errorf("admin = %+v", m)
		}
		run, _ = h.reconcile(reconciler.Options{})
		if got := h.itemsOf(run, lifecycle.Keep.PlanItem()); len(got) != 1 {
			t.Errorf("the next run keeps %q", got)
		}
	})
}

func TestRoleMappingShowsInThePlan(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 4)
		admins := idp.AddGroup("Admins")
		idp.AddMember(admins.ID, users[0].ID)
		idp.AddMember(admins.ID, users[1].ID)
		run, _ := h.reconcile(reconciler.Options{DryRun: true})
		h.mustStatus(run, store.RunSucceeded)
		dir := h.dirUsers()
		h.seedMember(dir[users[0].ID], lifecycle.RoleAdmin, lifecycle.StatusActive)  // stays admin
		h.seedMember(dir[users[1].ID], lifecycle.RoleMember, lifecycle.StatusActive) // promoted
		h.seedMember(dir[users[2].ID], lifecycle.RoleAdmin, lifecycle.StatusActive)  // demoted
		h.seedMember(dir[users[3].ID], lifecycle.RoleMember, lifecycle.StatusActive) // stays member
		mapping := store.JSONMap{"admins": lifecycle.RoleAdmin}
		if _, err := h.st.UpdateOrg(h.ctx, h.org.ID, store.OrgPatch{RoleMapping: &mapping}); err != nil {
			t.Fatal(err)
		}
		h.org.RoleMapping = mapping

		run, _ = h.reconcile(reconciler.Options{DryRun: true})
		want := []string{"u001@example.com: role member → admin", "u002@example.com: role admin → member"}
		if diff := cmp.Diff(want, h.itemsOf(run, lifecycle.Update.PlanItem())); diff != "" {
			t.Errorf("updates (-want +got):\n%s", diff)
		}
		for _, c := range []struct {
			user, want string
		}{{dir[users[0].ID].ID, lifecycle.RoleAdmin}, {dir[users[2].ID].ID, lifecycle.RoleMember}} {
			role, managed, err := h.st.MappedRole(h.ctx, h.org.ID, mapping, c.user)
			if err != nil || !managed || role != c.want {
				t.Errorf("MappedRole = %q, %t, %v; want %q", role, managed, err, c.want)
			}
		}

		// Taking the last admin out of the group does not demote it.
		idp.RemoveMember(admins.ID, users[0].ID)
		idp.RemoveMember(admins.ID, users[1].ID)
		run, p := h.reconcile(reconciler.Options{DryRun: true})
		if p.Keep != 1 || !slices.Equal(h.itemsOf(run, lifecycle.Update.PlanItem()), []string{"u002@example.com: role admin → member"}) {
			t.Errorf("plan %+v, updates %q, keep %q", p, h.itemsOf(run, lifecycle.Update.PlanItem()), h.itemsOf(run, lifecycle.Keep.PlanItem()))
		}
	})
}

func TestInvitesDueAreResent(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		h.connectOkta()
		h.addOktaUsers("u", 3)
		h.settle()
		h.clock.Advance(25 * time.Hour)

		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if p.ResendInvite != 3 || p.Applied.InvitesResent != 3 {
			t.Fatalf("plan = %+v, applied %+v", p, p.Applied)
		}
		if got := h.itemsOf(run, lifecycle.ResendInvite.PlanItem()); len(got) != 3 || !strings.HasSuffix(got[0], "invite #2") {
			t.Errorf("items = %q", got)
		}
		if got := outboxKinds(h.takeOutbox()); got[task.TypeSendInvite+"/"+task.QueueLow] != 3 {
			t.Errorf("outbox = %v", got)
		}
		// Not again before ResendAfter.
		run, p = h.reconcile(reconciler.Options{})
		if p.ResendInvite != 0 {
			t.Errorf("re-sent again at once: %+v", p)
		}
	})
}

func TestOneRunAtATime(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		held := store.SyncRun{OrgID: h.org.ID, Trigger: reconciler.TriggerSchedule}
		if err := h.st.StartSyncRun(h.ctx, &held, epoch.Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.r.Reconcile(h.ctx, h.org.ID, reconciler.Options{}); !errors.Is(err, store.ErrRunBusy) {
			t.Fatalf("second run: err = %v, want ErrRunBusy", err)
		}
		// A scheduled task meeting it is dropped, not retried: the running
		// run does its work.
		if o, err := h.r.RunTask(h.ctx, task.Reconcile{OrgID: h.org.ID, ScheduledAt: epoch.Unix()}); err != nil || o != "skipped" {
			t.Errorf("scheduled task during a run: %q, %v; want skipped", o, err)
		}
		// A queued one is retried later.
		queued := store.SyncRun{OrgID: h.org.ID, Trigger: reconciler.TriggerAPI}
		if err := h.st.CreateSyncRun(h.ctx, &queued); err != nil {
			t.Fatal(err)
		}
		if _, err := h.r.RunTask(h.ctx, task.Reconcile{OrgID: h.org.ID, RunID: queued.ID}); !errors.Is(err, store.ErrRunBusy) || errors.Is(err, asynq.SkipRetry) {
			t.Errorf("queued task during a run: %v, want a retryable ErrRunBusy", err)
		}
		// Silent past StaleAfter, the first run is taken for abandoned; it
		// can then never apply.
		h.clock.Advance(16 * time.Minute)
		run, _ := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		old, _ := h.st.SyncRun(h.ctx, h.org.ID, held.ID)
		if old.Status != store.RunFailed || !strings.Contains(old.Error, "abandoned") {
			t.Errorf("abandoned run = %s %q", old.Status, old.Error)
		}
		err := h.st.Tx(h.ctx, func(tx *store.Store) error { return tx.HoldSyncRun(h.ctx, h.org.ID, held.ID) })
		if !errors.Is(err, store.ErrRunNotRunning) {
			t.Errorf("abandoned run could apply: %v", err)
		}
	})
}

// A scheduled slot runs once however often its task is delivered: a Redis
// that lost its task ids lets a scheduler queue the slot again.
func TestScheduledSlotRunsOnce(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		h.connectOkta()
		h.addOktaUsers("u", 2)
		slot := epoch.Add(time.Hour)
		for i := range 3 {
			want := "ran"
			if i > 0 {
				want = "duplicate"
			}
			if o, err := h.r.RunTask(h.ctx, task.Reconcile{OrgID: h.org.ID, ScheduledAt: slot.Unix()}); err != nil || o != want {
				t.Fatalf("delivery %d: %q, %v; want %s", i, o, err, want)
			}
		}
		runs, err := h.st.SyncRuns(h.ctx, h.org.ID, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || runs[0].Slot != slot.Unix() || runs[0].Status != store.RunSucceeded || runs[0].Trigger != reconciler.TriggerSchedule {
			t.Fatalf("runs = %+v, want one succeeded run of slot %d", runs, slot.Unix())
		}
		if v := admin.ViewSyncRun(runs[0]); v.ScheduledFor == nil || !v.ScheduledFor.Equal(slot) {
			t.Errorf("the API shows scheduledFor %v, want %v", v.ScheduledFor, slot)
		}
		if _, err := h.r.Reconcile(h.ctx, h.org.ID, reconciler.Options{Trigger: reconciler.TriggerSchedule, Slot: slot}); !errors.Is(err, store.ErrSlotRan) {
			t.Errorf("the slot again: err = %v, want ErrSlotRan", err)
		}
		// The next slot, and runs of no slot, still run.
		if _, err := h.r.RunTask(h.ctx, task.Reconcile{OrgID: h.org.ID, ScheduledAt: slot.Add(time.Hour).Unix()}); err != nil {
			t.Fatal(err)
		}
		run, _ := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if runs, _ := h.st.SyncRuns(h.ctx, h.org.ID, "", 10); len(runs) != 3 {
			t.Errorf("%d runs, want 3", len(runs))
		}
	})
}

func TestRunTaskCarriesOutQueuedRun(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		h.connectOkta()
		h.addOktaUsers("u", 2)
		run := store.SyncRun{OrgID: h.org.ID, Trigger: reconciler.TriggerAPI, DryRun: true}
		if err := h.st.CreateSyncRun(h.ctx, &run); err != nil {
			t.Fatal(err)
		}
		row := task.ReconcileRow(h.org.ID, run.ID)
		if row.TaskType != task.TypeReconcile || row.TaskID != "reconcile-run-"+run.ID {
			t.Fatalf("row = %+v", row)
		}
		var p task.Reconcile
		if err := json.Unmarshal(row.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if o, err := h.r.RunTask(h.ctx, p); err != nil || o != "ran" {
			t.Fatalf("run: %q, %v", o, err)
		}
		got, _ := h.st.SyncRun(h.ctx, h.org.ID, run.ID)
		if got.Status != store.RunSucceeded || !got.DryRun || got.Trigger != reconciler.TriggerAPI {
			t.Fatalf("run = %+v", got)
		}
		// A second delivery finds it done.
		if o, err := h.r.RunTask(h.ctx, p); err != nil || o != "duplicate" {
			t.Errorf("redelivery: %q, %v; want duplicate", o, err)
		}
	})
}

func TestGoneGroupIsDeleted(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		ctx := h.ctx
		u := store.DirectoryUser{OrgID: h.org.ID, Source: store.SourceSCIM, UserName: "ann", Email: "ann@example.com", Active: true}
		if err := h.st.CreateDirectoryUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		old := store.DirectoryGroup{OrgID: h.org.ID, Source: store.SourceSCIM, DisplayName: "Old"}
		if err := h.st.CreateDirectoryGroup(ctx, &old); err != nil {
			t.Fatal(err)
		}
		h.st.SetDirectoryGroupMembers(ctx, h.org.ID, old.ID, []string{u.ID})
		h.settle()
		// SCIM deletes the group; its converge job is lost.
		if err := h.st.DeleteDirectoryGroup(ctx, h.org.ID, old.ID); err != nil {
			t.Fatal(err)
		}
		run, p := h.reconcile(reconciler.Options{})
		if got := h.itemsOf(run, lifecycle.GroupDelete.PlanItem()); !slices.Equal(got, []string{"Old: delete, its directory group is gone"}) || p.GroupChanges != 1 {
			t.Fatalf("group deletions = %q, plan %+v", got, p)
		}
		h.converge()
		if _, err := h.st.LocalGroupByDirectoryGroup(ctx, h.org.ID, old.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("local group still there: %v", err)
		}
		h.mustBeSettled()
	})
}

// The outbox rows a run writes in the database are the batch rows the task
// package builds for its items: items of one task type and queue together,
// at most task.MaxBatch to a row, in the order of the items.
func TestOutboxRowsAreTheTaskRows(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		users := h.addOktaUsers("u", 30)
		eng := idp.AddGroup("Engineering")
		for _, u := range users[:10] {
			idp.AddMember(eng.ID, u.ID)
		}
		h.settle()
		mutate(h, users, eng)
		h.addOktaUsers("new", task.MaxBatch+5) // provisions for more than one row

		run, _ := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		type kind struct{ typ, queue string }
		var (
			order []kind
			ids   = map[kind][]string{}
		)
		err := h.st.EachSyncRunItem(h.ctx, h.org.ID, run.ID, func(items []store.SyncRunItem) error {
			for _, it := range items {
				var k kind
				switch it.Action {
				case lifecycle.GroupCreate.PlanItem(), lifecycle.GroupUpdate.PlanItem(), lifecycle.GroupDelete.PlanItem():
					k = kind{task.TypeConvergeGroups, task.QueueDefault}
				case lifecycle.Provision.PlanItem(), lifecycle.Update.PlanItem():
					k = kind{task.TypeConvergeUsers, task.QueueDefault}
				case lifecycle.Deprovision.PlanItem(), lifecycle.Remove.PlanItem():
					k = kind{task.TypeConvergeUsers, task.QueueCritical}
				default:
					continue
				}
				if len(ids[k])%task.MaxBatch == 0 {
					order = append(order, k)
				}
				ids[k] = append(ids[k], it.EntityID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []store.OutboxRow
		taken := map[kind]int{}
		for _, k := range order {
			chunk := ids[k][taken[k]:min(taken[k]+task.MaxBatch, len(ids[k]))]
			taken[k] += len(chunk)
			slices.Sort(chunk)
			if k.typ == task.TypeConvergeGroups {
				want = append(want, task.ConvergeGroupsRow(h.org.ID, chunk))
			} else {
				want = append(want, task.ConvergeUsersRow(h.org.ID, chunk, k.queue == task.QueueCritical))
			}
		}
		got := h.takeOutbox()
		for i := range got {
			if got[i].CreatedAt.IsZero() || got[i].Attempts != 0 || got[i].LastError != "" {
				t.Errorf("row %d = %+v", i, got[i])
			}
			got[i].ID, got[i].CreatedAt, got[i].SentAt = 0, time.Time{}, nil
			// The order of ids within a row is the database's.
			var p task.ConvergeBatch
			if err := json.Unmarshal(got[i].Payload, &p); err != nil {
				t.Fatalf("row %d payload %s: %v", i, got[i].Payload, err)
			}
			slices.Sort(p.IDs)
			got[i].Payload, _ = json.Marshal(p)
		}
		if len(order) < 4 || len(ids[kind{task.TypeConvergeUsers, task.QueueDefault}]) <= task.MaxBatch {
			t.Fatalf("the run planned %v; the test needs every kind and a full row", order)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("outbox rows (-task package +written):\n%s", diff)
		}
	})
}

// A person in two organizations has one users row. It follows an e-mail
// change once both organizations' directories say the new address; the
// plan of each organization is empty after every converge on the way.
func TestEmailChangeOfAPersonInTwoOrganizations(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta()
		ann := idp.AddUser(oktafake.User{Email: "ann@example.com", FirstName: "Ann", LastName: "Lee"})
		h.settle()
		other, err := h.st.CreateOrg(h.ctx, "Other")
		if err != nil {
			t.Fatal(err)
		}
		d := store.DirectoryUser{OrgID: other.ID, Source: store.SourceSCIM, UserName: "ann", Email: "ann@example.com", Active: true}
		if err := h.st.CreateDirectoryUser(h.ctx, &d); err != nil {
			t.Fatal(err)
		}
		convergeOther := func() {
			t.Helper()
			if _, err := h.conv.ApplyUsers(h.ctx, other.ID, []string{d.ID}); err != nil {
				t.Fatal(err)
			}
			run, err := h.r.Reconcile(h.ctx, other.ID, reconciler.Options{Trigger: reconciler.TriggerCLI, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			var left []store.SyncRunItem
			if err := h.st.EachSyncRunItem(h.ctx, other.ID, run.ID, func(items []store.SyncRunItem) error {
				left = append(left, items...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Fatalf("the other organization's plan after converging: %+v", left)
			}
		}
		convergeOther()
		m := h.member(h.dirUsers()[ann.ID].ID)
		if theirs, err := h.st.MembershipByDirectoryUser(h.ctx, other.ID, d.ID); err != nil || theirs.UserID != m.UserID {
			t.Fatalf("the other organization's member = %+v, %v; want the users row %s", theirs, err, m.UserID)
		}
		userEmail := func() string {
			t.Helper()
			u, err := h.st.User(h.ctx, m.UserID)
			if err != nil {
				t.Fatal(err)
			}
			return u.Email
		}

		// Okta changes the e-mail; the other organization still says the old one.
		idp.UpdateUser(ann.ID, func(u *oktafake.User) { u.Email = "ann@new.example" })
		run, _ := h.reconcile(reconciler.Options{DryRun: true})
		if got := h.itemsOf(run, lifecycle.Update.PlanItem()); !slices.Equal(got, []string{"ann@example.com: email → ann@new.example"}) {
			t.Errorf("updates = %q", got)
		}
		h.settle()
		if got := h.member(m.DirectoryUserID).Email; got != "ann@new.example" {
			t.Errorf("member e-mail %q", got)
		}
		if got := userEmail(); got != "ann@example.com" {
			t.Errorf("users row %q, want the old e-mail while the other organization says it", got)
		}

		// The other organization's directory follows: so does the users row.
		d.Email = "ann@new.example"
		if err := h.st.UpdateDirectoryUser(h.ctx, &d, d.Version); err != nil {
			t.Fatal(err)
		}
		convergeOther()
		if got := userEmail(); got != "ann@new.example" {
			t.Errorf("users row %q, want the new e-mail", got)
		}
		h.mustBeSettled()
	})
}
