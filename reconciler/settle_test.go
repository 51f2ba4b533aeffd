package reconciler_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// The last admin's directory user goes (or goes inactive); converge and
// the plan keep it back until an operator settles it, by naming a new
// admin or by confirming the removal. Then the plan keeps nothing back and
// the member ends as the directory says, whether the IdP pushes (SCIM) or
// is pulled.
func TestKeptLastAdminIsSettled(t *testing.T) {
	cases := []struct {
		name     string
		pulled   bool
		inactive bool // else deleted
		handover bool // else the removal is confirmed
	}{
		{"scim deleted, handed over", false, false, true},
		{"scim deleted, removal confirmed", false, false, false},
		{"scim deactivated, removal confirmed", false, true, false},
		{"pulled deleted, handed over", true, false, true},
		{"pulled deleted, removal confirmed", true, false, false},
		{"pulled suspended, handed over", true, true, true},
		{"pulled suspended, removal confirmed", true, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			each(t, func(t *testing.T, b storetest.Backend) {
				h := newHarness(t, b)
				var ann, bob store.DirectoryUser
				var gone func()
				if tc.pulled {
					idp := h.connectOkta()
					users := h.addOktaUsers("u", 2)
					run, _ := h.reconcile(reconciler.Options{DryRun: true}) // pulls the directory rows
					h.mustStatus(run, store.RunSucceeded)
					dir := h.dirUsers()
					ann, bob = dir[users[0].ID], dir[users[1].ID]
					gone = func() { idp.DeleteUser(users[0].ID) }
					if tc.inactive {
						gone = func() { idp.SetStatus(users[0].ID, oktafake.StatusSuspended) }
					}
				} else {
					for name, d := range map[string]*store.DirectoryUser{"ann": &ann, "bob": &bob} {
						*d = store.DirectoryUser{OrgID: h.org.ID, Source: store.SourceSCIM, UserName: name, Email: name + "@example.com", Active: true}
						if err := h.st.CreateDirectoryUser(h.ctx, d); err != nil {
							t.Fatal(err)
						}
					}
					gone = func() {
						if tc.inactive {
							ann.Active = false
							if err := h.st.UpdateDirectoryUser(h.ctx, &ann, ann.Version); err != nil {
								t.Fatal(err)
							}
						} else if err := h.st.DeleteDirectoryUser(h.ctx, h.org.ID, ann.ID); err != nil {
							t.Fatal(err)
						}
						// The push's converge keeps the admin back.
						if p, err := h.conv.ApplyUser(h.ctx, h.org.ID, ann.ID); err != nil || p.Action != lifecycle.Keep {
							t.Fatalf("converge of the pushed change: %+v, %v", p, err)
						}
					}
				}
				admin := h.seedMember(ann, lifecycle.RoleAdmin, lifecycle.StatusActive)
				heir := h.seedMember(bob, lifecycle.RoleMember, lifecycle.StatusActive)
				h.mustBeSettled()

				gone()
				run, p := h.reconcile(reconciler.Options{})
				h.mustStatus(run, store.RunSucceeded)
				if p.Keep != 1 {
					t.Fatalf("plan before = %+v, want the admin kept", p)
				}
				h.converge()

				newAdmin := ""
				if tc.handover {
					newAdmin = heir.ID
				}
				got, err := h.svc.SettleAdmin(h.ctx, h.org.ID, admin.ID, newAdmin, !tc.handover)
				if err != nil {
					t.Fatal(err)
				}
				if got.AwaitsReconciliation != tc.pulled {
					t.Errorf("awaits reconciliation %t, want %t", got.AwaitsReconciliation, tc.pulled)
				}
				if !tc.pulled { // the stored directory says it: applied now
					want := map[bool]lifecycle.Decision{false: lifecycle.Remove, true: lifecycle.Deprovision}[tc.inactive]
					if got.Applied != want {
						t.Errorf("applied %q, want %q", got.Applied, want)
					}
				}
				if tc.handover && (got.NewAdmin == nil || got.NewAdmin.Role != lifecycle.RoleAdmin) {
					t.Errorf("new admin = %+v", got.NewAdmin)
				}

				run, p = h.reconcile(reconciler.Options{})
				h.mustStatus(run, store.RunSucceeded)
				if p.Keep != 0 || len(h.itemsOf(run, lifecycle.Keep.PlanItem())) != 0 {
					t.Fatalf("plan after = %+v, keep items %q", p, h.itemsOf(run, lifecycle.Keep.PlanItem()))
				}
				h.converge()
				m := h.member(ann.ID)
				switch {
				case tc.inactive && (m == nil || m.Status != lifecycle.StatusDeprovisioned):
					t.Errorf("the settled admin = %+v, want deprovisioned", m)
				case !tc.inactive && m != nil:
					t.Errorf("the settled admin = %+v, want removed", m)
				}
				wantAdmins := 0
				if tc.handover {
					wantAdmins = 1
				}
				admins, err := h.st.AdminMemberships(h.ctx, h.org.ID, false)
				if err != nil || len(admins) != wantAdmins || (tc.handover && admins[0].ID != heir.ID) {
					t.Errorf("admins = %+v, %v", admins, err)
				}
				h.mustBeSettled()

				var byAdmin []string
				evs, _ := h.st.AuditEvents(h.ctx, h.org.ID, 0, 100)
				for _, e := range evs {
					if e.Actor == converge.ActorAdmin && e.EntityType == "member" {
						byAdmin = append(byAdmin, e.Action)
					}
				}
				want := []string{"member.settle"}
				switch {
				case tc.handover:
					want = append(want, "member.promote")
				case tc.pulled:
					want = append(want, "member.update") // the admin role, at once
				}
				if !tc.pulled {
					want = append(want, got.Applied.AuditAction())
				}
				if diff := cmp.Diff(want, byAdmin, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
					t.Errorf("the operator's audit events (-want +got):\n%s", diff)
				}
			})
		})
	}
}
