package converge_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func newConverger(s *store.Store) *converge.Converger {
	inv := &invite.Service{Store: s, Log: jobstest.Discard, Config: invite.Config{PublicURL: "https://app.test", TTL: 7 * 24 * time.Hour, ResendAfter: 24 * time.Hour, MaxSends: 5}}
	return &converge.Converger{Store: s, Invites: inv}
}

func mustUser(t *testing.T, c *converge.Converger, org *jobstest.Org, id string, want lifecycle.Outcome) {
	t.Helper()
	got, err := c.ConvergeUser(context.Background(), org.ID, id)
	if err != nil {
		t.Fatalf("ConvergeUser: %v", err)
	}
	if got != want {
		t.Fatalf("ConvergeUser outcome = %q, want %q", got, want)
	}
}

func mustGroup(t *testing.T, c *converge.Converger, org *jobstest.Org, id string, want lifecycle.Outcome) {
	t.Helper()
	got, err := c.ConvergeGroup(context.Background(), org.ID, id)
	if err != nil {
		t.Fatalf("ConvergeGroup: %v", err)
	}
	if got != want {
		t.Fatalf("ConvergeGroup outcome = %q, want %q", got, want)
	}
}

// inviteView is an invite without its random and time fields.
type inviteView struct {
	SendNumber           int
	Accepted, Superseded bool
}

func invites(org *jobstest.Org, membershipID string) []inviteView {
	var out []inviteView
	for _, i := range org.Invites(membershipID) {
		out = append(out, inviteView{i.SendNumber, i.AcceptedAt != nil, i.SupersededAt != nil})
	}
	return out
}

func TestUserLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		u := org.AddUser("ada", "Ada@Example.com")
		g := org.AddGroup("Engineering", u.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Created)

		mustUser(t, c, org, u.ID, lifecycle.Created)
		m := org.MustMember(u.ID)
		want := store.Membership{Status: lifecycle.StatusPendingSetup, Email: "Ada@Example.com", FirstName: "Given ada", LastName: "Family", Source: "scim", InviteSends: 1}
		got := store.Membership{Status: m.Status, Email: m.Email, FirstName: m.FirstName, LastName: m.LastName, Source: m.Source, InviteSends: m.InviteSends}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("new membership (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]inviteView{{SendNumber: 1}}, invites(org, m.ID)); diff != "" {
			t.Errorf("invites (-want +got):\n%s", diff)
		}
		// The group converged first; the user converge linked the member.
		if diff := cmp.Diff([]string{m.ID}, org.GroupMembers(g.ID)); diff != "" {
			t.Errorf("group members (-want +got):\n%s", diff)
		}
		mustUser(t, c, org, u.ID, lifecycle.Unchanged)

		org.UpdateUser(u.ID, func(d *store.DirectoryUser) { d.Email, d.GivenName = "ada@new.example", "Augusta" })
		mustUser(t, c, org, u.ID, lifecycle.Updated)
		if m := org.MustMember(u.ID); m.Email != "ada@new.example" || m.FirstName != "Augusta" {
			t.Errorf("after drift: email %q first name %q", m.Email, m.FirstName)
		}

		org.SetActive(u.ID, false)
		mustUser(t, c, org, u.ID, lifecycle.Updated)
		m = org.MustMember(u.ID)
		if m.Status != lifecycle.StatusDeprovisioned || m.DeprovisionedAt == nil {
			t.Errorf("after deactivation: status %q, deprovisionedAt %v", m.Status, m.DeprovisionedAt)
		}
		if diff := cmp.Diff([]inviteView{{SendNumber: 1, Superseded: true}}, invites(org, m.ID)); diff != "" {
			t.Errorf("invites after deprovision (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{m.ID}, org.GroupMembers(g.ID)); diff != "" {
			t.Errorf("deprovisioned member must stay in its groups (-want +got):\n%s", diff)
		}
		mustGroup(t, c, org, g.ID, lifecycle.Unchanged)
		mustUser(t, c, org, u.ID, lifecycle.Unchanged)

		org.SetActive(u.ID, true)
		mustUser(t, c, org, u.ID, lifecycle.Updated)
		m = org.MustMember(u.ID)
		if m.Status != lifecycle.StatusPendingSetup || m.DeprovisionedAt != nil || m.InviteSends != 2 {
			t.Errorf("after re-activation: status %q, deprovisionedAt %v, sends %d", m.Status, m.DeprovisionedAt, m.InviteSends)
		}
		if diff := cmp.Diff([]inviteView{{SendNumber: 1, Superseded: true}, {SendNumber: 2}}, invites(org, m.ID)); diff != "" {
			t.Errorf("invites after re-activation (-want +got):\n%s", diff)
		}

		org.DeleteUser(u.ID)
		mustUser(t, c, org, u.ID, lifecycle.Removed)
		if _, ok := org.Member(u.ID); ok {
			t.Error("membership still there after the directory user was deleted")
		}
		if got := org.GroupMembers(g.ID); len(got) != 0 {
			t.Errorf("group members after removal = %v, want none", got)
		}
		if got, _ := s.Invites(ctx, org.ID, m.ID); len(got) != 0 {
			t.Errorf("invites after removal = %d, want none", len(got))
		}
		mustUser(t, c, org, u.ID, lifecycle.Unchanged)

		wantAudit := []string{"group.create", "member.provision", "member.update", "member.deprovision", "member.reprovision", "member.remove"}
		if diff := cmp.Diff(wantAudit, org.Audit()); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

// state is what converge controls, without ids and times that differ
// from run to run.
type state struct {
	Status      string
	InviteSends int
	Invites     []inviteView
	Groups      int
}

func snapshot(t *testing.T, s *store.Store, org *jobstest.Org, dirUserID string) state {
	t.Helper()
	m, ok := org.Member(dirUserID)
	if !ok {
		return state{}
	}
	groups, err := s.MembershipGroupIDs(context.Background(), org.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	return state{Status: m.Status, InviteSends: m.InviteSends, Invites: invites(org, m.ID), Groups: len(groups)}
}

func TestUserConvergeIsIdempotent(t *testing.T) {
	want := state{Status: lifecycle.StatusPendingSetup, InviteSends: 1, Invites: []inviteView{{SendNumber: 1}}, Groups: 1}
	run := map[string]func(t *testing.T, c *converge.Converger, org *jobstest.Org, userID, groupID string){
		"twice": func(t *testing.T, c *converge.Converger, org *jobstest.Org, userID, groupID string) {
			mustGroup(t, c, org, groupID, lifecycle.Created)
			mustUser(t, c, org, userID, lifecycle.Created)
			mustUser(t, c, org, userID, lifecycle.Unchanged)
			mustGroup(t, c, org, groupID, lifecycle.Unchanged)
		},
		"user then group": func(t *testing.T, c *converge.Converger, org *jobstest.Org, userID, groupID string) {
			mustUser(t, c, org, userID, lifecycle.Created)
			mustGroup(t, c, org, groupID, lifecycle.Created)
		},
		"group then user": func(t *testing.T, c *converge.Converger, org *jobstest.Org, userID, groupID string) {
			mustGroup(t, c, org, groupID, lifecycle.Created)
			mustUser(t, c, org, userID, lifecycle.Created)
		},
		"concurrently": func(t *testing.T, c *converge.Converger, org *jobstest.Org, userID, groupID string) {
			var wg sync.WaitGroup
			for i := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					if i%4 == 0 {
						_, err = c.ConvergeGroup(context.Background(), org.ID, groupID)
					} else {
						_, err = c.ConvergeUser(context.Background(), org.ID, userID)
					}
					if err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
		},
	}
	for name, fn := range run {
		t.Run(name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				c := newConverger(s)
				org := jobstest.NewOrg(t, s)
				u := org.AddUser("ada", "ada@example.com")
				g := org.AddGroup("Engineering", u.ID)
				fn(t, c, org, u.ID, g.ID)
				if diff := cmp.Diff(want, snapshot(t, s, org, u.ID)); diff != "" {
					t.Errorf("state (-want +got):\n%s", diff)
				}
				if len(org.Audit()) != 2 {
					t.Errorf("audit events = %v, want one provision and one group.create", org.Audit())
				}
			})
		})
	}
}

func TestUserSkips(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)

		noMail := org.AddUser("no-mail", "")
		mustUser(t, c, org, noMail.ID, lifecycle.Unchanged)
		if _, ok := org.Member(noMail.ID); ok {
			t.Error("a directory user without e-mail got a membership")
		}
		blank := org.AddUser("blank-mail", "   ")
		mustUser(t, c, org, blank.ID, lifecycle.Unchanged)
		if _, ok := org.Member(blank.ID); ok {
			t.Error("a directory user whose e-mail is only whitespace got a membership")
		}

		first := org.AddUser("ada", "ada@example.com")
		mustUser(t, c, org, first.ID, lifecycle.Created)
		second := org.AddUser("ada2", "ADA@example.com")
		p, err := c.ApplyUser(context.Background(), org.ID, second.ID)
		if err != nil || p.Action != lifecycle.Skip || p.Reason != converge.ReasonEmailTaken {
			t.Errorf("second user with the same e-mail: action %q reason %q err %v", p.Action, p.Reason, err)
		}

		// Once its e-mail arrives, a skipped user is provisioned.
		org.UpdateUser(noMail.ID, func(d *store.DirectoryUser) { d.Email = "late@example.com" })
		mustUser(t, c, org, noMail.ID, lifecycle.Created)

		want := []string{"member.skip", "member.skip", "member.provision", "member.skip", "member.provision"}
		if diff := cmp.Diff(want, org.Audit()); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

func TestUserRecreatedUnderNewID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		old := org.AddUser("ada", "ada@example.com")
		mustUser(t, c, org, old.ID, lifecycle.Created)
		org.DeleteUser(old.ID)
		recreated := org.AddUser("ada", "ada@example.com")

		// The new user's job runs before the old one's: it removes the
		// stale membership itself.
		mustUser(t, c, org, recreated.ID, lifecycle.Created)
		mustUser(t, c, org, old.ID, lifecycle.Unchanged)
		if _, ok := org.Member(old.ID); ok {
			t.Error("stale membership kept")
		}
		m := org.MustMember(recreated.ID)
		if diff := cmp.Diff([]inviteView{{SendNumber: 1}}, invites(org, m.ID)); diff != "" {
			t.Errorf("invites (-want +got):\n%s", diff)
		}
	})
}

func TestGroupLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		a, b, d := org.AddUser("a", "a@example.com"), org.AddUser("b", "b@example.com"), org.AddUser("d", "d@example.com")
		for _, u := range []store.DirectoryUser{a, b, d} {
			mustUser(t, c, org, u.ID, lifecycle.Created)
		}
		ma, mb, md := org.MustMember(a.ID), org.MustMember(b.ID), org.MustMember(d.ID)
		g := org.AddGroup("Engineering", a.ID, b.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Created)
		if diff := cmp.Diff(sorted(ma.ID, mb.ID), org.GroupMembers(g.ID)); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		lg, err := s.LocalGroupByDirectoryGroup(ctx, org.ID, g.ID)
		if err != nil || lg.Name != "Engineering" {
			t.Fatalf("local group %+v, %v", lg, err)
		}

		org.SetActive(b.ID, false)
		mustUser(t, c, org, b.ID, lifecycle.Updated)
		org.UpdateGroup(g.ID, "Eng", b.ID, d.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Updated)
		if diff := cmp.Diff(sorted(mb.ID, md.ID), org.GroupMembers(g.ID)); diff != "" {
			t.Errorf("members after update (-want +got):\n%s", diff)
		}
		if lg, _ := s.LocalGroupByDirectoryGroup(ctx, org.ID, g.ID); lg.Name != "Eng" {
			t.Errorf("name = %q, want Eng", lg.Name)
		}
		mustGroup(t, c, org, g.ID, lifecycle.Unchanged)

		org.DeleteGroup(g.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Removed)
		if _, err := s.LocalGroupByDirectoryGroup(ctx, org.ID, g.ID); err == nil {
			t.Error("local group kept after its directory group was deleted")
		}
		mustGroup(t, c, org, g.ID, lifecycle.Unchanged)
	})
}

func TestPlanChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		u := org.AddUser("ada", "ada@example.com")
		g := org.AddGroup("Engineering", u.ID)

		up, err := c.PlanUser(ctx, org.ID, u.ID)
		if err != nil || up.Action != lifecycle.Provision || up.Invite != 1 {
			t.Errorf("PlanUser = %+v, %v", up, err)
		}
		gp, err := c.PlanGroup(ctx, org.ID, g.ID)
		if err != nil || gp.Action != lifecycle.GroupCreate {
			t.Errorf("PlanGroup = %+v, %v", gp, err)
		}
		if _, ok := org.Member(u.ID); ok {
			t.Error("planning created a membership")
		}
		if got := org.Audit(); len(got) != 0 {
			t.Errorf("planning wrote audit events %v", got)
		}
		// The plan is what applying does.
		applied, err := c.ApplyUser(ctx, org.ID, u.ID)
		if err != nil || applied.Action != up.Action || applied.Outcome() != up.Outcome() {
			t.Errorf("ApplyUser = %+v, %v; planned %+v", applied, err, up)
		}
	})
}

func TestTenantsNeverMeet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := newConverger(s)
		acme, globex := jobstest.NewOrg(t, s), jobstest.NewOrg(t, s)
		u := acme.AddUser("ada", "ada@example.com")
		g := acme.AddGroup("Engineering", u.ID)
		// Another organization's ids reach nothing.
		mustUser(t, c, globex, u.ID, lifecycle.Unchanged)
		mustGroup(t, c, globex, g.ID, lifecycle.Unchanged)
		mustUser(t, c, acme, u.ID, lifecycle.Created)
		mustUser(t, c, globex, u.ID, lifecycle.Unchanged)
		if _, ok := globex.Member(u.ID); ok {
			t.Error("membership created in the wrong organization")
		}
		// The same person in two organizations shares one user.
		v := globex.AddUser("ada", "ada@example.com")
		mustUser(t, c, globex, v.ID, lifecycle.Created)
		if acme.MustMember(u.ID).UserID != globex.MustMember(v.ID).UserID {
			t.Error("one person, two users")
		}
	})
}

func sorted(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

func TestRoleMapping(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		mapAdmins(t, s, org)
		u := org.AddUser("ada", "ada@example.com")
		v := org.AddUser("bob", "bob@example.com")
		g := org.AddGroup("admins", u.ID, v.ID)
		mustUser(t, c, org, u.ID, lifecycle.Created)
		mustUser(t, c, org, v.ID, lifecycle.Created)
		if m := org.MustMember(u.ID); m.Role != lifecycle.RoleAdmin {
			t.Errorf("role %q, want admin", m.Role)
		}
		org.UpdateGroup(g.ID, "admins", v.ID)
		mustUser(t, c, org, u.ID, lifecycle.Updated)
		if m := org.MustMember(u.ID); m.Role != lifecycle.RoleMember {
			t.Errorf("role %q after leaving the admin group, want member", m.Role)
		}
		// bob is the last admin: leaving the group does not demote him.
		org.UpdateGroup(g.ID, "admins")
		mustUser(t, c, org, v.ID, lifecycle.Kept)
		if m := org.MustMember(v.ID); m.Role != lifecycle.RoleAdmin {
			t.Errorf("last admin's role %q, want admin", m.Role)
		}
	})
}

// mapAdmins has the organization map the IdP group "Admins" to the admin
// role.
func mapAdmins(t *testing.T, s *store.Store, org *jobstest.Org) {
	t.Helper()
	mapping := store.JSONMap{"Admins": lifecycle.RoleAdmin}
	if _, err := s.UpdateOrg(context.Background(), org.ID, store.OrgPatch{RoleMapping: &mapping}); err != nil {
		t.Fatal(err)
	}
}

// makeAdmin gives the membership of a directory user the admin role, as an
// operator would.
func makeAdmin(t *testing.T, s *store.Store, org *jobstest.Org, directoryUserID string) store.Membership {
	t.Helper()
	m := org.MustMember(directoryUserID)
	m.Role = lifecycle.RoleAdmin
	if err := s.UpdateMembership(context.Background(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Converge never takes away the organization's last admin, whatever the
// IdP says; the reconciler's plan keeps it too (see reconciler).
func TestLastAdminIsKept(t *testing.T) {
	cases := []struct {
		name   string
		change func(org *jobstest.Org, id string)
	}{
		{"deleted", func(org *jobstest.Org, id string) { org.DeleteUser(id) }},
		{"deactivated", func(org *jobstest.Org, id string) { org.SetActive(id, false) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				c := newConverger(s)
				org := jobstest.NewOrg(t, s)
				ann, bob := org.AddUser("ann", "ann@example.com"), org.AddUser("bob", "bob@example.com")
				mustUser(t, c, org, ann.ID, lifecycle.Created)
				mustUser(t, c, org, bob.ID, lifecycle.Created)
				a := makeAdmin(t, s, org, ann.ID)
				makeAdmin(t, s, org, bob.ID)

				// Both admins go in one batch: the older one stays.
				tc.change(org, ann.ID)
				tc.change(org, bob.ID)
				plans, err := c.ApplyUsers(ctx, org.ID, []string{ann.ID, bob.ID})
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]lifecycle.Outcome{}
				for _, p := range plans {
					got[p.DirectoryUserID] = p.Outcome()
				}
				lost := lifecycle.Removed
				if tc.name == "deactivated" {
					lost = lifecycle.Updated
				}
				if diff := cmp.Diff(map[string]lifecycle.Outcome{ann.ID: lifecycle.Kept, bob.ID: lost}, got); diff != "" {
					t.Errorf("outcomes (-want +got):\n%s", diff)
				}
				kept, err := s.AdminMemberships(ctx, org.ID, false)
				if err != nil || len(kept) != 1 || kept[0].ID != a.ID || kept[0].Status != a.Status {
					t.Fatalf("admins = %+v, %v; want %s as it was", kept, err, a.ID)
				}
				if p, _ := c.PlanUser(ctx, org.ID, ann.ID); p.Action != lifecycle.Keep || p.Reason != lifecycle.ReasonLastAdmin {
					t.Errorf("plan of the last admin = %+v", p)
				}
				if !slices.Contains(org.Audit(), "member.keep") {
					t.Errorf("audit %q has no %s", org.Audit(), lifecycle.Keep)
				}

				// Once another admin exists, the change goes through.
				cid := org.AddUser("cid", "cid@example.com").ID
				mustUser(t, c, org, cid, lifecycle.Created)
				makeAdmin(t, s, org, cid)
				mustUser(t, c, org, ann.ID, lost)
				if admins, _ := s.AdminMemberships(ctx, org.ID, false); len(admins) != 1 || admins[0].DirectoryUserID != cid {
					t.Errorf("admins after the change = %+v, want only cid", admins)
				}
			})
		})
	}
}

// Two converges that each take away one of the last two admins, at once,
// leave one of them.
func TestConcurrentAdminRemovalsKeepOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		for round := range 5 {
			org := jobstest.NewOrg(t, s)
			ids := make([]string, 2)
			for i := range ids {
				ids[i] = org.AddUser(fmt.Sprintf("a%d", i), fmt.Sprintf("a%d@example.com", i)).ID
				mustUser(t, c, org, ids[i], lifecycle.Created)
				makeAdmin(t, s, org, ids[i])
				org.DeleteUser(ids[i])
			}
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := c.ConvergeUser(ctx, org.ID, id); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if admins, err := s.AdminMemberships(ctx, org.ID, false); err != nil || len(admins) != 1 {
				t.Fatalf("round %d: %d admins, %v; want one", round, len(admins), err)
			}
		}
	})
}

// The only admin's directory user is gone, and what comes in its place
// would replace its stale membership with one that is no admin: the admin
// is kept, whatever the batch holds.
func TestLastAdminIsNotReplaced(t *testing.T) {
	cases := []struct {
		name string
		// batch adds directory users with the admin's e-mail and returns
		// the ids to converge in one batch with old, the admin's.
		batch func(org *jobstest.Org, old string) []string
	}{
		// Recreated under a new id: the removal and the replacement each
		// take the admin away, in one batch.
		{"recreated", func(org *jobstest.Org, old string) []string {
			return []string{old, org.AddUser("bob", "bob@example.com").ID}
		}},
		// Two replacers (they converge alone, one after the other).
		{"replaced twice", func(org *jobstest.Org, _ string) []string {
			return []string{org.AddUser("bob1", "bob@example.com").ID, org.AddUser("bob2", "BOB@example.com").ID}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				c := newConverger(s)
				org := jobstest.NewOrg(t, s)
				old := org.AddUser("bob", "bob@example.com")
				mustUser(t, c, org, old.ID, lifecycle.Created)
				makeAdmin(t, s, org, old.ID)
				org.DeleteUser(old.ID)
				if _, err := c.ApplyUsers(ctx, org.ID, tc.batch(org, old.ID)); err != nil {
					t.Fatal(err)
				}
				if admins, err := s.AdminMemberships(ctx, org.ID, false); err != nil || len(admins) != 1 {
					t.Fatalf("admins = %+v, %v; want the one kept", admins, err)
				}
			})
		})
	}
}

// The IdP's admin group moves from ann to cid. Converged in one batch, ann
// is demoted since cid becomes admin. Converged one by one with ann first,
// ann is kept back (the only admin), and cid's promotion queues ann's
// converge again, which then demotes ann.
func TestAdminHandover(t *testing.T) {
	for _, together := range []bool{true, false} {
		t.Run(map[bool]string{true: "one batch", false: "one by one"}[together], func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				c := newConverger(s)
				org := jobstest.NewOrg(t, s)
				mapAdmins(t, s, org)
				ann, cid := org.AddUser("ann", "ann@example.com"), org.AddUser("cid", "cid@example.com")
				g := org.AddGroup("admins", ann.ID)
				mustUser(t, c, org, ann.ID, lifecycle.Created)
				mustUser(t, c, org, cid.ID, lifecycle.Created)
				takeConverges(t, s) // the invites' rows, and nothing else
				org.UpdateGroup(g.ID, "admins", cid.ID)
				if together {
					if _, err := c.ApplyUsers(ctx, org.ID, []string{ann.ID, cid.ID}); err != nil {
						t.Fatal(err)
					}
					if again := takeConverges(t, s); len(again) != 0 {
						t.Errorf("queued converges of %v, want none", again)
					}
				} else {
					mustUser(t, c, org, ann.ID, lifecycle.Kept)
					mustUser(t, c, org, cid.ID, lifecycle.Updated)
					again := takeConverges(t, s)
					if diff := cmp.Diff([]string{ann.ID}, again); diff != "" {
						t.Fatalf("queued converges (-want +got):\n%s", diff)
					}
					mustUser(t, c, org, ann.ID, lifecycle.Updated)
				}
				if m := org.MustMember(ann.ID); m.Role != lifecycle.RoleMember {
					t.Errorf("ann's role %q, want member", m.Role)
				}
				if m := org.MustMember(cid.ID); m.Role != lifecycle.RoleAdmin {
					t.Errorf("cid's role %q, want admin", m.Role)
				}
			})
		})
	}
}

// takeConverges takes every outbox row and returns the directory users of
// the single-user converges among them.
func takeConverges(t *testing.T, s *store.Store) []string {
	t.Helper()
	var out []string
	for _, r := range storetest.TakeOutbox(t, s) {
		if r.TaskType == task.TypeConvergeUser {
			_, id, err := task.EntityID(r.TaskType, r.Payload)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, id)
		}
	}
	return out
}
