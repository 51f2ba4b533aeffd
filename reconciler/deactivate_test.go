package reconciler_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// memberView is what deactivation and re-activation must keep or change
// of a member, without times and tokens.
type memberView struct {
	ID, Status  string
	InviteSends int
	Invites     []inviteView
	Groups      []string
}

type inviteView struct {
	SendNumber           int
	Accepted, Superseded bool
}

func (h *harness) memberView(directoryUserID string) *memberView {
	h.t.Helper()
	m := h.member(directoryUserID)
	if m == nil {
		return nil
	}
	v := &memberView{ID: m.ID, Status: m.Status, InviteSends: m.InviteSends}
	invites, err := h.st.Invites(h.ctx, h.org.ID, m.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, i := range invites {
		v.Invites = append(v.Invites, inviteView{i.SendNumber, i.AcceptedAt != nil, i.SupersededAt != nil})
	}
	if v.Groups, err = h.st.MembershipGroupIDs(h.ctx, h.org.ID, m.ID); err != nil {
		h.t.Fatal(err)
	}
	return v
}

// A user deactivated in Okta means what a SCIM push of active: false
// means: the member is deprovisioned and keeps its group links, and
// re-activation restores it as pending_setup with a new invite. Only a user
// deleted in Okta is removed.
func TestIdPDeactivationDeprovisionsAndReactivationRestores(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta(oktafake.WithMaxLimit(4)) // both listings page
		users := h.addOktaUsers("u", 10)
		eng := idp.AddGroup("Engineering")
		for _, u := range users[:3] {
			idp.AddMember(eng.ID, u.ID)
		}
		h.settle()
		dir := h.dirUsers()
		deactivated, deleted := dir[users[0].ID], dir[users[1].ID]
		before := h.memberView(deactivated.ID)
		if before == nil || before.Status != lifecycle.StatusPendingSetup || len(before.Groups) != 1 {
			t.Fatalf("member before = %+v", before)
		}

		idp.SetStatus(users[0].ID, oktafake.StatusDeprovisioned)
		idp.DeleteUser(users[1].ID)
		run, p := h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		want := map[string][]string{
			lifecycle.Deprovision.PlanItem(): {"u000@example.com: pending_setup → deprovisioned (IdP status DEPROVISIONED)"},
			lifecycle.Remove.PlanItem():      {"u001@example.com: pending_setup member whose directory user is gone"},
			lifecycle.GroupUpdate.PlanItem(): {"Engineering: members +0 -1"},
		}
		for action, w := range want {
			if diff := cmp.Diff(w, h.itemsOf(run, action)); diff != "" {
				t.Errorf("%s items (-want +got):\n%s", action, diff)
			}
		}
		if p.Deprovision != 1 || p.Remove != 1 || p.Provision != 0 {
			t.Errorf("plan = %+v", p)
		}
		if d := h.dirUsers()[users[0].ID]; d.Active || d.RawStatus != oktafake.StatusDeprovisioned {
			t.Errorf("deactivated user's directory row = %+v", d)
		}
		if mail := outboxKinds(h.converge()); len(mail) != 0 {
			t.Errorf("converging the deactivation queued %v", mail)
		}
		deprovisioned := *before
		deprovisioned.Status = lifecycle.StatusDeprovisioned
		deprovisioned.Invites = []inviteView{{SendNumber: 1, Superseded: true}}
		if diff := cmp.Diff(&deprovisioned, h.memberView(deactivated.ID)); diff != "" {
			t.Errorf("deactivated member (-want +got):\n%s", diff)
		}
		if m := h.member(deleted.ID); m != nil {
			t.Errorf("deleted user's member = %+v, want removed", m)
		}
		h.mustBeSettled()

		idp.SetStatus(users[0].ID, oktafake.StatusActive)
		run, p = h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if diff := cmp.Diff([]string{"u000@example.com: re-activate the deprovisioned member"}, h.itemsOf(run, lifecycle.Provision.PlanItem())); diff != "" {
			t.Errorf("provision items (-want +got):\n%s", diff)
		}
		if p.Provision != 1 || p.Deprovision+p.Remove != 0 {
			t.Errorf("plan = %+v", p)
		}
		if mail := outboxKinds(h.converge()); mail[task.TypeSendInvite+"/"+task.QueueLow] != 1 || len(mail) != 1 {
			t.Errorf("converging the re-activation queued %v, want one invite e-mail", mail)
		}
		restored := *before
		restored.InviteSends = 2
		restored.Invites = []inviteView{{SendNumber: 1, Superseded: true}, {SendNumber: 2}}
		if diff := cmp.Diff(&restored, h.memberView(deactivated.ID)); diff != "" {
			t.Errorf("re-activated member (-want +got):\n%s", diff)
		}
		h.mustBeSettled()
	})
}

// Without the deactivated users' listing, a pull would take every
// deactivated user for deleted: when that listing fails, the run fails and
// changes nothing, as when the default listing fails.
func TestFailedDeactivatedListingChangesNothing(t *testing.T) {
	each(t, func(t *testing.T, b storetest.Backend) {
		h := newHarness(t, b)
		idp := h.connectOkta(oktafake.WithMaxLimit(10))
		users := h.addOktaUsers("u", 20)
		h.settle()
		for _, u := range users[:3] {
			idp.SetStatus(u.ID, oktafake.StatusDeprovisioned)
		}
		// 17 users in the default listing take pages 1 and 2; page 3 is the
		// deactivated users', failing past the retries (MaxRetries 1).
		idp.FailPage(oktafake.RouteUsers, 3, http.StatusInternalServerError, 2)

		run, p := h.reconcile(reconciler.Options{Full: true}) // a delta has no deactivated users' listing
		h.mustStatus(run, store.RunFailed)
		if !strings.Contains(run.Error, "deactivated") || p.Deprovision+p.Remove != 0 {
			t.Errorf("error %q, plan %+v", run.Error, p)
		}
		if rows := h.takeOutbox(); len(rows) != 0 {
			t.Fatalf("a failed run wrote %d outbox rows", len(rows))
		}
		dir := h.dirUsers()
		if len(dir) != 20 {
			t.Fatalf("%d directory users after a failed run, want 20", len(dir))
		}
		for _, d := range dir {
			if m := h.member(d.ID); !d.Active || m == nil || m.Status != lifecycle.StatusPendingSetup {
				t.Errorf("%s after a failed run: active %t, member %+v", d.Email, d.Active, m)
			}
		}

		run, p = h.reconcile(reconciler.Options{})
		h.mustStatus(run, store.RunSucceeded)
		if p.Deprovision != 3 || p.Remove != 0 {
			t.Errorf("plan once the listing recovers = %+v", p)
		}
	})
}

// The deprovision guard counts the deprovisions a pull's deactivations
// plan together with the removals its deletions plan.
func TestMassDeactivationInIdPIsBlocked(t *testing.T) {
	tests := []struct {
		name                 string
		deactivate, delete   int // of 20 members
		wantBlocked          bool
		wantDeprov, wantGone int
	}{
		{"deactivations", 15, 0, true, 15, 0},
		{"deactivations and deletions together", 4, 3, true, 4, 3},
		{"few deactivations", reconciler.GuardMinimum, 0, false, reconciler.GuardMinimum, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			each(t, func(t *testing.T, b storetest.Backend) {
				h := newHarness(t, b)
				idp := h.connectOkta()
				users := h.addOktaUsers("u", 20)
				h.settle()
				for _, u := range users[:tt.deactivate] {
					idp.SetStatus(u.ID, oktafake.StatusDeprovisioned)
				}
				for _, u := range users[tt.deactivate : tt.deactivate+tt.delete] {
					idp.DeleteUser(u.ID)
				}

				run, p := h.reconcile(reconciler.Options{})
				if p.Deprovision != tt.wantDeprov || p.Remove != tt.wantGone || p.Guard.Tripped != tt.wantBlocked {
					t.Fatalf("plan = %+v", p)
				}
				if !tt.wantBlocked {
					h.mustStatus(run, store.RunSucceeded)
					return
				}
				h.mustStatus(run, store.RunBlocked)
				if n := tt.wantDeprov + tt.wantGone; !strings.Contains(run.Error, fmt.Sprintf("%d of 20 members", n)) {
					t.Errorf("error = %q", run.Error)
				}
				if rows := h.takeOutbox(); len(rows) != 0 {
					t.Fatalf("a blocked run wrote %d outbox rows", len(rows))
				}
				for _, d := range h.dirUsers() {
					if !d.Active {
						t.Errorf("a blocked run deactivated %s in the directory", d.Email)
					}
				}

				run, p = h.reconcile(reconciler.Options{AllowMassDeprovision: true})
				h.mustStatus(run, store.RunSucceeded)
				if !p.Guard.Confirmed {
					t.Fatalf("confirmed run: guard %+v", p.Guard)
				}
				h.converge()
				count := map[string]int{}
				for _, d := range h.dirUsers() {
					if m := h.member(d.ID); m != nil {
						count[m.Status]++
					}
				}
				want := map[string]int{lifecycle.StatusPendingSetup: 20 - tt.deactivate - tt.delete, lifecycle.StatusDeprovisioned: tt.deactivate}
				if diff := cmp.Diff(want, count); diff != "" {
					t.Errorf("members by status (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// pagedDirectory is an IdP that lists fixed pages of users and no groups.
type pagedDirectory struct{ pages [][]connectors.User }

func (d *pagedDirectory) Directory(context.Context, string) (connectors.Directory, string, error) {
	return d, "okta", nil
}

func (d *pagedDirectory) ListUsers(ctx context.Context, fn func([]connectors.User) error) error {
	for _, p := range d.pages {
		if err := fn(slices.Clone(p)); err != nil {
			return err
		}
	}
	return nil
}

func (d *pagedDirectory) ListGroups(context.Context, func([]connectors.Group) error) error {
	return nil
}
func (d *pagedDirectory) ListGroupMembers(context.Context, string, func([]string) error) error {
	return nil
}
func (d *pagedDirectory) TestConnection(context.Context) error { return nil }

// A connector lists each user once, but a pull that meets a user twice (an
// IdP paging by offset while users are added, say) still completes, and
// the later sighting wins: it is the more recent.
func TestUserListedTwiceInOnePull(t *testing.T) {
	user := func(name string, active bool) connectors.User {
		status := oktafake.StatusActive
		if !active {
			status = oktafake.StatusDeprovisioned
		}
		return connectors.User{ExternalID: "ext-" + name, UserName: name + "@example.com", Email: name + "@example.com",
			GivenName: "Given", FamilyName: name, Active: active, RawStatus: status}
	}
	a, b, c, aOff := user("a", true), user("b", true), user("c", true), user("a", false)
	tests := []struct {
		name  string
		pages [][]connectors.User
	}{
		{"on one page", [][]connectors.User{{a, b, aOff}, {c}}},
		{"on a later page", [][]connectors.User{{a, b}, {c}, {aOff}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			each(t, func(t *testing.T, bk storetest.Backend) {
				h := newHarness(t, bk)
				dir := &pagedDirectory{pages: [][]connectors.User{{a, b, c}}}
				h.r.Directories = dir
				h.settle()

				dir.pages = tt.pages
				run, p := h.reconcile(reconciler.Options{})
				h.mustStatus(run, store.RunSucceeded)
				want := []string{"deprovision a@example.com: pending_setup → deprovisioned (IdP status DEPROVISIONED)"}
				if diff := cmp.Diff(want, h.items(run)); diff != "" {
					t.Errorf("plan (-want +got):\n%s", diff)
				}
				if p.Deprovision != 1 || p.Remove+p.Provision+p.Update != 0 {
					t.Errorf("plan = %+v", p)
				}
				if d := h.dirUsers()[a.ExternalID]; d.Active || d.RawStatus != oktafake.StatusDeprovisioned {
					t.Errorf("directory row of a = %+v, want the later, inactive sighting", d)
				}
				h.converge()
				if m := h.member(h.dirUsers()[a.ExternalID].ID); m == nil || m.Status != lifecycle.StatusDeprovisioned {
					t.Errorf("member of a = %+v", m)
				}
				h.mustBeSettled()
			})
		})
	}
}
