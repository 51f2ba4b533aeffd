package okta_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/okta"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
)

func sortDelta(d *connectors.Delta) {
	slices.SortFunc(d.Users, func(a, b connectors.User) int { return strings.Compare(a.ExternalID, b.ExternalID) })
	slices.Sort(d.DeletedUsers)
	slices.Sort(d.DeletedGroups)
}

// Every kind of change between two cursors is in the delta, net of what
// happened in between, and costs three requests.
func TestChanges(t *testing.T) {
	clk := newClock()
	srv := oktafake.New(t, oktafake.WithClock(clk.Now), oktafake.WithMaxLimit(2))
	keep := srv.AddUser(oktafake.User{Email: "keep@example.com"})
	gone := srv.AddUser(oktafake.User{Email: "gone@example.com"})
	quits := srv.AddUser(oktafake.User{Email: "quits@example.com"})
	leaves := srv.AddUser(oktafake.User{Email: "leaves@example.com"})
	eng := srv.AddGroup("eng")
	old := srv.AddGroup("old")
	srv.AddMember(eng.ID, leaves.ID)
	srv.AddMember(eng.ID, gone.ID)
	d := connectortest.Open(t, okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())})
	ctx := context.Background()
	clk.Advance(time.Hour) // what came before the cursor is outside its overlap
	cursor, err := d.Cursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)

	added := srv.AddUser(oktafake.User{Email: "new@example.com", FirstName: "New"})
	srv.UpdateUser(keep.ID, func(u *oktafake.User) { u.LastName = "Renamed" })
	srv.SetStatus(quits.ID, oktafake.StatusDeprovisioned)
	srv.DeleteUser(gone.ID)
	srv.AddMember(eng.ID, added.ID)
	srv.RemoveMember(eng.ID, leaves.ID)
	srv.AddMember(old.ID, keep.ID)
	srv.RemoveMember(old.ID, keep.ID) // joined and left: a leave
	srv.DeleteGroup(old.ID)
	ops := srv.AddGroup("ops")
	clk.Advance(10 * time.Minute) // the next cursor's overlap leaves these out

	ctx, n := connectors.CountRequests(ctx)
	got, next, err := d.Changes(ctx, cursor)
	if err != nil {
		t.Fatal(err)
	}
	sortDelta(&got)
	want := connectors.Delta{
		Users: []connectors.User{
			{ExternalID: keep.ID, UserName: "keep@example.com", Email: "keep@example.com", FamilyName: "Renamed", Active: true, RawStatus: "ACTIVE"},
			{ExternalID: quits.ID, UserName: "quits@example.com", Email: "quits@example.com", RawStatus: "DEPROVISIONED"},
			{ExternalID: added.ID, UserName: "new@example.com", Email: "new@example.com", GivenName: "New", Active: true, RawStatus: "ACTIVE"},
		},
		DeletedUsers:  []string{gone.ID},
		Groups:        []connectors.Group{{ExternalID: ops.ID, Name: "ops"}},
		DeletedGroups: []string{old.ID},
		Joins:         []connectors.Membership{{GroupExternalID: eng.ID, UserExternalID: added.ID}},
		Leaves:        []connectors.Membership{{GroupExternalID: eng.ID, UserExternalID: leaves.ID}},
		Pages:         4,
	}
	sortDelta(&want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delta (-want +got):\n%s", diff)
	}
	// Users take two pages of two; groups and the System Log one each:
	// four pages, each one request.
	if got := n.Load(); got != 4 {
		t.Errorf("requests = %d, want 4", got)
	}
	if next <= cursor {
		t.Errorf("next cursor %q does not follow %q", next, cursor)
	}

	// With nothing changed since, the delta is empty.
	later, _, err := d.Changes(context.Background(), next)
	if err != nil {
		t.Fatal(err)
	}
	if !later.Empty() {
		t.Errorf("delta with no change = %+v, want empty", later)
	}
}

func TestChangesRefusesAMalformedCursor(t *testing.T) {
	srv := oktafake.New(t)
	d := connectortest.Open(t, okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())})
	_, _, err := d.Changes(context.Background(), "yesterday")
	if !errors.Is(err, connectors.ErrCursorExpired) {
		t.Fatalf("err = %v, want ErrCursorExpired", err)
	}
}

// A failed page fails the whole delta: no part of one is handed over.
func TestChangesFailsWhole(t *testing.T) {
	srv := oktafake.New(t)
	d := connectortest.Open(t, okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())})
	cursor, err := d.Cursor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(oktafake.RouteLogs, 400, 1)
	if _, _, err := d.Changes(context.Background(), cursor); err == nil {
		t.Fatal("Changes succeeded over a failed System Log read")
	}
}

// A connector scoped to groups offers no delta: Okta's delta is not scoped
// the same way, so such a connector is pulled in full. Redaction keeps the
// delta of an unscoped one.
func TestScopedConnectorOffersNoDelta(t *testing.T) {
	srv := oktafake.New(t)
	creds := []byte(`{"apiToken":"` + srv.Token() + `"}`)
	for _, c := range []struct {
		settings string
		want     bool
	}{
		{`{"orgUrl":"` + srv.URL() + `"}`, true},
		{`{"orgUrl":"` + srv.URL() + `","groups":["eng"]}`, false},
	} {
		d, err := connectors.Open(context.Background(), okta.Type, []byte(c.settings), creds, connectortest.Options(newClock()))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := connectors.AsDelta(d); ok != c.want {
			t.Errorf("settings %s: AsDelta = %t, want %t", c.settings, ok, c.want)
		}
	}
}
