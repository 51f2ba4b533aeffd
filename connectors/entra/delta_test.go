package entra_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/entra/entrafake"
)

func sortDelta(d *connectors.Delta) {
	slices.SortFunc(d.Users, func(a, b connectors.User) int { return strings.Compare(a.ExternalID, b.ExternalID) })
	slices.Sort(d.DeletedUsers)
	slices.Sort(d.DeletedGroups)
}

// Every kind of change between two cursors is in the delta, net of what
// happened in between, for a token and one request per delta query.
func TestChanges(t *testing.T) {
	srv := entrafake.New(t)
	keep := srv.AddUser(entrafake.User{UserPrincipalName: "keep@example.com"})
	gone := srv.AddUser(entrafake.User{UserPrincipalName: "gone@example.com"})
	quits := srv.AddUser(entrafake.User{UserPrincipalName: "quits@example.com"})
	leaves := srv.AddUser(entrafake.User{UserPrincipalName: "leaves@example.com"})
	eng := srv.AddGroup("eng")
	old := srv.AddGroup("old")
	srv.AddMember(eng.ID, leaves.ID)
	d := connectortest.Open(t, config(srv))
	cursor, err := d.Cursor(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	added := srv.AddUser(entrafake.User{UserPrincipalName: "new@example.com", GivenName: "New"})
	srv.UpdateUser(keep.ID, func(u *entrafake.User) { u.Surname = "Renamed" })
	srv.UpdateUser(quits.ID, func(u *entrafake.User) { u.Disabled = true })
	srv.DeleteUser(gone.ID)
	srv.AddMember(eng.ID, added.ID)
	srv.RemoveMember(eng.ID, leaves.ID)
	srv.AddMember(old.ID, keep.ID)
	srv.RemoveMember(old.ID, keep.ID)
	srv.DeleteGroup(old.ID)
	srv.AddMemberObject(eng.ID, "device-1", entrafake.TypeDevice)

	ctx, n := connectors.CountRequests(context.Background())
	got, next, err := d.Changes(ctx, cursor)
	if err != nil {
		t.Fatal(err)
	}
	sortDelta(&got)
	want := connectors.Delta{
		Users: []connectors.User{
			{ExternalID: keep.ID, UserName: "keep@example.com", FamilyName: "Renamed", Active: true, RawStatus: "enabled"},
			{ExternalID: quits.ID, UserName: "quits@example.com", RawStatus: "disabled"},
			{ExternalID: added.ID, UserName: "new@example.com", GivenName: "New", Active: true, RawStatus: "enabled"},
		},
		DeletedUsers:  []string{gone.ID},
		Groups:        []connectors.Group{{ExternalID: eng.ID, Name: "eng"}},
		DeletedGroups: []string{old.ID},
		Joins:         []connectors.Membership{{GroupExternalID: eng.ID, UserExternalID: added.ID}},
		Leaves:        []connectors.Membership{{GroupExternalID: eng.ID, UserExternalID: leaves.ID}},
		Pages:         2, // one of users, one of groups
	}
	sortDelta(&want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delta (-want +got):\n%s", diff)
	}
	if got := n.Load(); got != 2 { // the token was fetched by Cursor
		t.Errorf("requests = %d, want 2", got)
	}
	later, _, err := d.Changes(context.Background(), next)
	if err != nil {
		t.Fatal(err)
	}
	if !later.Empty() || later.Pages != 0 {
		t.Errorf("delta with no change = %+v, want empty", later)
	}
}

// A token Graph no longer holds state for is ErrCursorExpired.
func TestChangesOfAnExpiredToken(t *testing.T) {
	srv := entrafake.New(t)
	d := connectortest.Open(t, config(srv))
	cursor, err := d.Cursor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv.AddUser(entrafake.User{UserPrincipalName: "a@example.com"})
	srv.ExpireDeltaTokens()
	if _, _, err := d.Changes(context.Background(), cursor); !errors.Is(err, connectors.ErrCursorExpired) {
		t.Fatalf("err = %v, want ErrCursorExpired", err)
	}
	if _, _, err := d.Changes(context.Background(), `{"users":"http://elsewhere.test/v1.0/users/delta","groups":"x"}`); !errors.Is(err, connectors.ErrCursorExpired) {
		t.Fatalf("a cursor off the Graph host: err = %v, want ErrCursorExpired", err)
	}
}
