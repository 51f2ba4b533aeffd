package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func newUser(org, name, ext string) *store.DirectoryUser {
	return &store.DirectoryUser{OrgID: org, Source: "scim", UserName: name, ExternalID: ext, Email: name, Active: true}
}

func TestDirectoryUserUniqueness(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		b, _ := s.CreateOrg(ctx, "B")
		if err := s.CreateDirectoryUser(ctx, newUser(a.ID, "Ann@x.com", "ext-1")); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name  string
			user  *store.DirectoryUser
			field string
		}{
			{"same userName, other case", newUser(a.ID, "ann@X.COM", "ext-2"), "userName"},
			{"same externalId", newUser(a.ID, "bob@x.com", "ext-1"), "externalId"},
			{"same userName in another org", newUser(b.ID, "Ann@x.com", "ext-1"), ""},
			{"empty externalIds never collide", newUser(a.ID, "cy@x.com", ""), ""},
			{"second empty externalId", newUser(a.ID, "di@x.com", ""), ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.CreateDirectoryUser(ctx, tt.user)
				var ce *store.ConflictError
				switch {
				case tt.field == "" && err != nil:
					t.Fatalf("unexpected error: %v", err)
				case tt.field != "" && (!errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, store.ErrConflict)):
					t.Fatalf("err = %v, want a conflict on %s", err, tt.field)
				}
			})
		}
	})
}

func TestDirectoryUserVersionsAndScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		b, _ := s.CreateOrg(ctx, "B")
		u := newUser(a.ID, "ann@x.com", "")
		if err := s.CreateDirectoryUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DirectoryUser(ctx, b.ID, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("read through another org: %v, want ErrNotFound", err)
		}
		other := *u
		other.OrgID = b.ID
		if err := s.UpdateDirectoryUser(ctx, &other, 1); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update through another org: %v, want ErrNotFound", err)
		}
		if err := s.DeleteDirectoryUser(ctx, b.ID, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete through another org: %v, want ErrNotFound", err)
		}
		u.Active, u.Email = false, "Ann.Lee@X.com"
		if err := s.UpdateDirectoryUser(ctx, u, 1); err != nil || u.Version != 2 {
			t.Fatalf("update = %v, version %d", err, u.Version)
		}
		if err := s.UpdateDirectoryUser(ctx, u, 1); !errors.Is(err, store.ErrStale) {
			t.Errorf("update with an old version: %v, want ErrStale", err)
		}
		got, _ := s.DirectoryUser(ctx, a.ID, u.ID)
		if got.Active || got.EmailKey != "ann.lee@x.com" || got.Version != 2 {
			t.Errorf("after update: %+v", got)
		}
		found, _ := s.DirectoryUsersBy(ctx, a.ID, store.ByEmail, "ANN.LEE@x.com")
		if len(found) != 1 {
			t.Errorf("by e-mail, case-insensitively: %d users", len(found))
		}
		if found, _ := s.DirectoryUsersBy(ctx, b.ID, store.ByUserName, "ann@x.com"); len(found) != 0 {
			t.Errorf("another org finds %d users", len(found))
		}
	})
}

func TestDirectoryPagingIsStable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		var want []string
		for i := range 1203 {
			u := newUser(a.ID, fmt.Sprintf("u%04d@x.com", i), "")
			if err := s.CreateDirectoryUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			want = append(want, u.ID)
		}
		var paged []string
		for off := 0; ; off += 100 {
			page, total, err := s.DirectoryUserPage(ctx, a.ID, off, 100)
			if err != nil || total != 1203 {
				t.Fatalf("page at %d: total %d, %v", off, total, err)
			}
			if len(page) == 0 {
				break
			}
			for _, u := range page {
				paged = append(paged, u.ID)
			}
		}
		var each []string
		if err := s.EachDirectoryUser(ctx, a.ID, func(u store.DirectoryUser) error { each = append(each, u.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(paged, each); diff != "" {
			t.Errorf("Each and paging disagree (-page +each):\n%s", diff)
		}
		if len(each) != len(want) {
			t.Errorf("Each saw %d users, want %d", len(each), len(want))
		}
		stop := errors.New("stop")
		n := 0
		err := s.EachDirectoryUser(ctx, a.ID, func(store.DirectoryUser) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("a callback error must stop the scan: %v after %d", err, n)
		}
	})
}

func TestDirectoryGroupMembers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		b, _ := s.CreateOrg(ctx, "B")
		u1, u2, foreign := newUser(a.ID, "one@x.com", ""), newUser(a.ID, "two@x.com", ""), newUser(b.ID, "three@x.com", "")
		for _, u := range []*store.DirectoryUser{u1, u2, foreign} {
			if err := s.CreateDirectoryUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		g := &store.DirectoryGroup{OrgID: a.ID, Source: "scim", DisplayName: "Eng"}
		if err := s.CreateDirectoryGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		dup := &store.DirectoryGroup{OrgID: a.ID, Source: "scim", DisplayName: "ENG"}
		var ce *store.ConflictError
		if err := s.CreateDirectoryGroup(ctx, dup); !errors.As(err, &ce) || ce.Field != "displayName" {
			t.Errorf("duplicate displayName: %v", err)
		}
		ignored, err := s.SetDirectoryGroupMembers(ctx, a.ID, g.ID, []string{u1.ID, u1.ID, foreign.ID, "nope"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{foreign.ID, "nope"}, ignored); diff != "" {
			t.Errorf("ignored (-want +got):\n%s", diff)
		}
		if _, err := s.SetDirectoryGroupMembers(ctx, a.ID, g.ID, []string{u2.ID, u1.ID}); err != nil {
			t.Fatal(err)
		}
		members, _ := s.DirectoryGroupMembers(ctx, a.ID, g.ID)
		var got []string
		for _, m := range members {
			got = append(got, m.UserName)
		}
		if diff := cmp.Diff([]string{"one@x.com", "two@x.com"}, got); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if refs, _ := s.DirectoryGroupMembers(ctx, b.ID, g.ID); len(refs) != 0 {
			t.Errorf("another org sees %d members", len(refs))
		}
		before, _ := s.DirectoryGroup(ctx, a.ID, g.ID)
		if err := s.DeleteDirectoryUser(ctx, a.ID, u1.ID); err != nil {
			t.Fatal(err)
		}
		if after, _ := s.DirectoryGroup(ctx, a.ID, g.ID); after.Version != before.Version+1 {
			t.Errorf("group version %d after a member was deleted, want %d", after.Version, before.Version+1)
		}
		groups, _ := s.DirectoryGroupsOfUsers(ctx, a.ID, u1.ID, u2.ID)
		if len(groups) != 1 || groups[0].UserID != u2.ID || groups[0].DisplayName != "Eng" {
			t.Errorf("groups after deleting a member: %+v", groups)
		}
		if err := s.DeleteDirectoryGroup(ctx, a.ID, g.ID); err != nil {
			t.Fatal(err)
		}
		if groups, _ := s.DirectoryGroupsOfUsers(ctx, a.ID, u2.ID); len(groups) != 0 {
			t.Errorf("member rows survive their group: %+v", groups)
		}
	})
}

// TestAddOutboxManyRows writes more rows than one Postgres statement can
// carry parameters for.
func TestAddOutboxManyRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		rows := make([]store.OutboxRow, 9000)
		for i := range rows {
			rows[i] = store.OutboxRow{OrgID: a.ID, TaskType: "t", TaskID: fmt.Sprintf("t-%d", i), Payload: []byte("{}")}
		}
		if err := s.Tx(ctx, func(tx *store.Store) error { return tx.AddOutbox(ctx, rows...) }); err != nil {
			t.Fatal(err)
		}
		n, _, err := s.OutboxBacklog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 9000 {
			t.Errorf("pending outbox rows = %d, want 9000", n)
		}
	})
}
