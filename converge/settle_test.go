package converge_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// The new admin must be one that converge will leave an admin: its own
// directory record decides, as for any converge.
func TestSettleNamesAnAdminTheDirectoryKeeps(t *testing.T) {
	cases := []struct {
		name string
		// heir changes the directory of bob, the member to name; "" when
		// bob may be named.
		heir func(org *jobstest.Org, bob, group string)
		want string
	}{
		{"in the admin group", func(org *jobstest.Org, bob, g string) { org.UpdateGroup(g, "admins", bob) }, ""},
		{"outside the admin group", func(*jobstest.Org, string, string) {}, "the organization's role mapping makes it a member"},
		{"deactivated", func(org *jobstest.Org, bob, g string) {
			org.UpdateGroup(g, "admins", bob)
			org.SetActive(bob, false)
		}, "its directory user is inactive"},
		{"deleted", func(org *jobstest.Org, bob, g string) {
			org.UpdateGroup(g, "admins", bob)
			org.DeleteUser(bob)
		}, "its directory user is gone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				ctx := context.Background()
				c := newConverger(s)
				org := jobstest.NewOrg(t, s)
				mapAdmins(t, s, org)
				ann, bob := org.AddUser("ann", "ann@example.com"), org.AddUser("bob", "bob@example.com")
				g := org.AddGroup("admins", ann.ID)
				mustUser(t, c, org, ann.ID, lifecycle.Created)
				mustUser(t, c, org, bob.ID, lifecycle.Created)
				org.DeleteUser(ann.ID)
				mustUser(t, c, org, ann.ID, lifecycle.Kept)
				tc.heir(org, bob.ID, g.ID) // not converged yet

				got, err := c.SettleAdmin(ctx, org.ID, org.MustMember(ann.ID).ID, converge.Settlement{NewAdminMemberID: org.MustMember(bob.ID).ID})
				if tc.want != "" {
					if !errors.Is(err, converge.ErrCannotSettle) || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("settle = %v, want it refused: %s", err, tc.want)
					}
					return
				}
				if err != nil || got.Member != nil || got.Applied != lifecycle.Remove || got.NewAdmin.Role != lifecycle.RoleAdmin {
					t.Fatalf("settle = %+v, %v", got, err)
				}
				mustUser(t, c, org, bob.ID, lifecycle.Unchanged)
			})
		})
	}
}

// A settlement that hands over to bob, while bob's directory user is
// deleted and converged at the same time, never leaves the organization
// without an admin: either the settlement sees bob going (or gone) and is
// refused, or bob's converge finds him the last admin and keeps him.
func TestSettleRacingAConvergeKeepsAnAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		for round := range 6 {
			org := jobstest.NewOrg(t, s)
			ann, bob := org.AddUser("ann", "ann@example.com"), org.AddUser("bob", "bob@example.com")
			mustUser(t, c, org, ann.ID, lifecycle.Created)
			mustUser(t, c, org, bob.ID, lifecycle.Created)
			admin := makeAdmin(t, s, org, ann.ID)
			heir := org.MustMember(bob.ID)
			org.DeleteUser(ann.ID)
			mustUser(t, c, org, ann.ID, lifecycle.Kept)

			var wg sync.WaitGroup
			var settleErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, settleErr = c.SettleAdmin(ctx, org.ID, admin.ID, converge.Settlement{NewAdminMemberID: heir.ID})
			}()
			go func() {
				defer wg.Done()
				if round%2 == 0 {
					org.DeleteUser(bob.ID)
				} else {
					org.SetActive(bob.ID, false)
				}
				if _, err := c.ConvergeUser(ctx, org.ID, bob.ID); err != nil {
					t.Error(err)
				}
			}()
			wg.Wait()
			if settleErr != nil && !errors.Is(settleErr, converge.ErrCannotSettle) && !errors.Is(settleErr, store.ErrNotFound) {
				t.Fatalf("round %d: settle: %v", round, settleErr)
			}
			for _, id := range []string{ann.ID, bob.ID} { // what the reconciler would repair
				if _, err := c.ConvergeUser(ctx, org.ID, id); err != nil {
					t.Fatal(err)
				}
			}
			if admins, err := s.AdminMemberships(ctx, org.ID, false); err != nil || len(admins) != 1 {
				t.Fatalf("round %d (settle: %v): admins %+v, %v; want one", round, settleErr, admins, err)
			}
		}
	})
}
