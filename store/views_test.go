package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func TestSearchMembersByEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		o, err := s.CreateOrg(ctx, "Acme")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []string{"Ann_Lee@example.com", "annXlee@example.com", "bob%1@example.com", "bob@example.org"} {
			d := store.DirectoryUser{OrgID: o.ID, Source: "scim", UserName: e, Email: e, Active: true}
			if err := s.CreateDirectoryUser(ctx, &d); err != nil {
				t.Fatal(err)
			}
			u, err := s.EnsureUser(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			m := store.Membership{OrgID: o.ID, UserID: u.ID, DirectoryUserID: d.ID, Status: lifecycle.StatusPendingSetup, Email: e}
			if err := s.CreateMembership(ctx, &m); err != nil {
				t.Fatal(err)
			}
		}
		member(t, s, "ann_lee@example.net") // another organization's
		tests := []struct {
			search, status string
			want           []string
		}{
			{"", "", []string{"Ann_Lee@example.com", "annXlee@example.com", "bob%1@example.com", "bob@example.org"}},
			{"ANN_", "", []string{"Ann_Lee@example.com"}}, // _ is literal
			{"%", "", []string{"bob%1@example.com"}},      // % is literal
			{"example.org", "", []string{"bob@example.org"}},
			{"ann", lifecycle.StatusActive, nil},
		}
		for _, tt := range tests {
			ms, err := s.SearchMembers(ctx, o.ID, tt.status, tt.search, "", 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range ms {
				got = append(got, m.Email)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("search %q status %q (-want +got):\n%s", tt.search, tt.status, diff)
			}
		}
	})
}
