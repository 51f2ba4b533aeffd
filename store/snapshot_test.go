package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// pull writes pages as one pull with generation gen and applies it.
func pull(t *testing.T, s *store.Store, orgID string, gen int64, keep []string, pages ...[]store.PulledUser) store.SweepCounts {
	t.Helper()
	ctx := context.Background()
	p := store.Pull{OrgID: orgID, RunID: fmt.Sprint("run-", gen), Source: "okta", Snapshot: gen}
	for _, page := range pages {
		if err := s.Tx(ctx, func(tx *store.Store) error { return tx.WritePulledUsers(ctx, p, page) }); err != nil {
			t.Fatalf("write gen %d: %v", gen, err)
		}
	}
	var c store.SweepCounts
	err := s.Tx(ctx, func(tx *store.Store) error {
		var err error
		c, err = tx.ApplyPull(ctx, p, keep)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetPull(ctx, p.RunID); err != nil {
		t.Fatal(err)
	}
	return c
}

func byExternalID(t *testing.T, s *store.Store, orgID, ext string) store.DirectoryUser {
	t.Helper()
	us, err := s.DirectoryUsersBy(context.Background(), orgID, store.ByExternalID, ext)
	if err != nil || len(us) != 1 {
		t.Fatalf("user %s: %v, %v", ext, us, err)
	}
	return us[0]
}

func TestPullHandsLoginsOver(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, _ := s.CreateOrg(ctx, "Acme")
		a := store.PulledUser{ExternalID: "A", UserName: "x@example.com", Email: "x@example.com", Active: true}
		b := store.PulledUser{ExternalID: "B", UserName: "y@example.com", Email: "y@example.com", Active: true}
		c := store.PulledUser{ExternalID: "C", UserName: "z@example.com", Email: "z@example.com", Active: true}
		pull(t, s, o.ID, 1, nil, []store.PulledUser{a, b, c})

		// A and B swap logins across pages; C is deleted and D takes its login.
		a.UserName, b.UserName = b.UserName, a.UserName
		d := store.PulledUser{ExternalID: "D", UserName: "z@example.com", Email: "z@example.com", Active: true}
		got := pull(t, s, o.ID, 2, nil, []store.PulledUser{a, d}, []store.PulledUser{b})
		if got.UsersDeleted != 1 {
			t.Errorf("swept %d users, want C", got.UsersDeleted)
		}
		for ext, login := range map[string]string{"A": "y@example.com", "B": "x@example.com", "D": "z@example.com"} {
			u := byExternalID(t, s, o.ID, ext)
			if u.UserName != login || u.UserNameKey != login || !u.Active {
				t.Errorf("%s = %s (key %q, active %t), want %s", ext, u.UserName, u.UserNameKey, u.Active, login)
			}
		}
		if u, _ := s.DirectoryUsersBy(ctx, o.ID, store.ByUserName, "z@example.com"); len(u) != 1 || u[0].ExternalID != "D" {
			t.Errorf("lookup by login finds %+v", u)
		}
	})
}

func TestPullLeavesSCIMRowsAlone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, _ := s.CreateOrg(ctx, "Acme")
		scim := store.DirectoryUser{OrgID: o.ID, Source: store.SourceSCIM, ExternalID: "E", UserName: "s@example.com", Email: "s@example.com", GivenName: "Scim", Active: true}
		if err := s.CreateDirectoryUser(ctx, &scim); err != nil {
			t.Fatal(err)
		}
		pull(t, s, o.ID, 1, nil, []store.PulledUser{
			{ExternalID: "E", UserName: "other@example.com", GivenName: "Pulled", Active: false}, // the SCIM row's external id
			{ExternalID: "F", UserName: "s@example.com", Email: "f@example.com", Active: true},   // the SCIM row's login
		})
		got, err := s.DirectoryUser(ctx, o.ID, scim.ID)
		if err != nil {
			t.Fatal("a pull swept a SCIM row:", err)
		}
		if got.GivenName != "Scim" || !got.Active || got.Version != scim.Version || got.UserNameKey != "s@example.com" {
			t.Errorf("a pull changed a SCIM row: %+v", got)
		}
		f := byExternalID(t, s, o.ID, "F")
		if f.UserName != "s@example.com" || f.UserNameKey == "s@example.com" {
			t.Errorf("pulled row = %+v; its login key must not take the SCIM row's", f)
		}
	})
}

// A pull stores what SCIM would: logins, e-mails and group names trimmed,
// so that an e-mail of only whitespace is none; a row an earlier pull
// stored untrimmed is written again.
func TestPullTrimsAsSCIMDoes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, _ := s.CreateOrg(ctx, "Acme")
		old := store.DirectoryUser{OrgID: o.ID, Source: "okta", ExternalID: "B", UserName: "b@example.com", Email: "   ", Active: true}
		if err := s.CreateDirectoryUser(ctx, &old); err != nil {
			t.Fatal(err)
		}
		pull(t, s, o.ID, 1, nil, []store.PulledUser{
			{ExternalID: "A", UserName: " Ada@Example.com\t", Email: "  Ada@Example.com ", Active: true},
			{ExternalID: "B", UserName: "b@example.com", Email: "   ", Active: true},
		})
		type view struct{ UserName, Email, EmailKey string }
		for ext, want := range map[string]view{
			"A": {"Ada@Example.com", "Ada@Example.com", "ada@example.com"},
			"B": {"b@example.com", "", ""},
		} {
			u := byExternalID(t, s, o.ID, ext)
			if got := (view{u.UserName, u.Email, u.EmailKey}); got != want {
				t.Errorf("user %s = %+v, want %+v", ext, got, want)
			}
		}

		p := store.Pull{OrgID: o.ID, RunID: "run-groups", Source: "okta", Snapshot: 2}
		if err := s.Tx(ctx, func(tx *store.Store) error {
			return tx.WritePulledGroups(ctx, p, []store.PulledGroup{{ExternalID: "G", Name: " Engineering  "}})
		}); err != nil {
			t.Fatal(err)
		}
		gs, err := s.DirectoryGroupsBy(ctx, o.ID, store.ByExternalID, "G")
		if err != nil || len(gs) != 1 || gs[0].DisplayName != "Engineering" {
			t.Errorf("pulled group = %+v, %v; want the name trimmed", gs, err)
		}
	})
}

func TestPullHoldsDeactivationUntilApplied(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, _ := s.CreateOrg(ctx, "Acme")
		users := []store.PulledUser{
			{ExternalID: "A", UserName: "a", Active: true}, {ExternalID: "B", UserName: "b", Active: true},
			{ExternalID: "K", UserName: "k", Active: true},
		}
		pull(t, s, o.ID, 1, nil, users)
		k := byExternalID(t, s, o.ID, "K")
		v := byExternalID(t, s, o.ID, "A").Version

		users[0].Active, users[0].GivenName = false, "Renamed"
		p2 := store.Pull{OrgID: o.ID, RunID: "run-2", Source: "okta", Snapshot: 2}
		if err := s.Tx(ctx, func(tx *store.Store) error { return tx.WritePulledUsers(ctx, p2, users[:1]) }); err != nil {
			t.Fatal(err)
		}
		a := byExternalID(t, s, o.ID, "A")
		if !a.Active || a.GivenName != "Renamed" || a.Version != v+1 {
			t.Fatalf("before apply: %+v; want the name written and the deactivation held back", a)
		}
		// K is kept: neither swept nor changed although this pull missed it.
		c := pull(t, s, o.ID, 2, []string{k.ID})
		if c.Deactivated != 1 || c.UsersDeleted != 1 {
			t.Errorf("counts = %+v, want A deactivated and B swept", c)
		}
		if a := byExternalID(t, s, o.ID, "A"); a.Active {
			t.Error("not deactivated on apply")
		}
		byExternalID(t, s, o.ID, "K")
	})
}

// Rows a pull writes count as seen by their snapshot, not by a mark: a row
// written by an earlier pull that was never applied counts only if this
// pull lists it.
func TestPullSeesWhatItWroteBySnapshot(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, _ := s.CreateOrg(ctx, "Acme")
		a := store.PulledUser{ExternalID: "A", UserName: "a", Email: "a@example.com", Active: true}
		b := store.PulledUser{ExternalID: "B", UserName: "b", Email: "b@example.com", Active: true}
		if c := pull(t, s, o.ID, 1, nil, []store.PulledUser{a, b}); c != (store.SweepCounts{}) {
			t.Errorf("first pull of new users swept %+v", c)
		}

		// Pull 2 writes C, then fails: it is never applied.
		p2 := store.Pull{OrgID: o.ID, RunID: "run-2", Source: "okta", Snapshot: 2}
		c := store.PulledUser{ExternalID: "C", UserName: "c", Email: "c@example.com", Active: true}
		if err := s.Tx(ctx, func(tx *store.Store) error { return tx.WritePulledUsers(ctx, p2, []store.PulledUser{c}) }); err != nil {
			t.Fatal(err)
		}
		if err := s.ForgetPull(ctx, p2.RunID); err != nil {
			t.Fatal(err)
		}

		// Pull 3 lists A unchanged, B renamed, and neither C nor anything new.
		b.GivenName = "Bee"
		got := pull(t, s, o.ID, 3, nil, []store.PulledUser{a, b})
		if got.UsersDeleted != 1 {
			t.Errorf("pull 3 swept %d users, want C alone", got.UsersDeleted)
		}
		if u := byExternalID(t, s, o.ID, "A"); u.Snapshot != 1 {
			t.Errorf("unchanged A was written again: snapshot %d", u.Snapshot)
		}
		if u := byExternalID(t, s, o.ID, "B"); u.Snapshot != 3 || u.GivenName != "Bee" {
			t.Errorf("B = %+v, want written by pull 3", u)
		}
		if us, _ := s.DirectoryUsersBy(ctx, o.ID, store.ByExternalID, "C"); len(us) != 0 {
			t.Errorf("C, written by a pull never applied and missed by the next, was kept: %+v", us)
		}
	})
}

// RefreshStats names its tables' columns; a name a migration changed would
// fail here rather than leave the planner quietly stale.
func TestRefreshStats(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if err := s.RefreshStats(ctx); err != nil {
			t.Fatalf("all tables: %v", err)
		}
		if err := s.RefreshStats(ctx, "sync_run_items", "pull_seen"); err != nil {
			t.Fatalf("named tables: %v", err)
		}
	})
}
