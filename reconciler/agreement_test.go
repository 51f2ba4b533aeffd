package reconciler_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// The provisioning and last-admin rules have two implementations: converge
// decides one directory user at a time (Converger.PlanUser, the decision
// ApplyUsers applies), and the reconciler plans a whole organization in SQL
// (store.PlanUsers and its last-admin keep). TestDecisionAgreement pins both
// to one table of cases, run on every backend: a case is written once, as
// facts, and both sides must reach its outcome.

// nothing is the outcome of a case where neither side acts.
const nothing = ""

// outcomeOfAction maps converge's decisions onto the plan's item actions:
// the vocabulary the two sides are compared in.
var outcomeOfAction = map[lifecycle.Decision]string{
	lifecycle.None:        nothing,
	lifecycle.Provision:   lifecycle.Provision.PlanItem(),
	lifecycle.Reprovision: lifecycle.Provision.PlanItem(),
	lifecycle.Update:      lifecycle.Update.PlanItem(),
	lifecycle.Invite:      lifecycle.Update.PlanItem(),
	lifecycle.Deprovision: lifecycle.Deprovision.PlanItem(),
	lifecycle.Remove:      lifecycle.Remove.PlanItem(),
	lifecycle.Skip:        lifecycle.Skip.PlanItem(),
	lifecycle.Keep:        lifecycle.Keep.PlanItem(),
}

// userItems are the plan's item actions for a directory user.
var userItems = []string{lifecycle.Provision.PlanItem(), lifecycle.Update.PlanItem(), lifecycle.Deprovision.PlanItem(), lifecycle.Remove.PlanItem(), lifecycle.Skip.PlanItem(), lifecycle.Keep.PlanItem()}

// dirFacts is the directory user the case decides on.
type dirFacts struct {
	email  string
	active bool
	// given is its first name, "Ada" when empty.
	given string
	// groups are the directory groups it is in (see agreementCase.mapping).
	groups []string
	// pulled: written by a connector's pull, not by SCIM.
	pulled bool
}

// memberFacts is its membership.
type memberFacts struct {
	status, role string
	// email is the member's e-mail, "ada@example.com" when empty.
	email string
	// openInvite: it has an unaccepted, unsuperseded invite.
	openInvite bool
	// userEmail is the e-mail of the person's shared users row when it is
	// not the member's; elsewhere, another organization's membership of the
	// person, with that e-mail; taken, another users row with the
	// directory's e-mail.
	userEmail        string
	elsewhere, taken bool
}

// personFacts is another membership of the organization whose person has
// the directory user's e-mail.
type personFacts struct {
	// live: its directory user exists (else it is gone).
	live  bool
	admin bool
}

type agreementCase struct {
	name string
	// dir is nil when there is no directory user (it is gone).
	dir    *dirFacts
	member *memberFacts
	person *personFacts
	// mapping is the organization's role mapping.
	mapping store.JSONMap
	// otherAdmin: the organization has another admin, who stays one.
	otherAdmin bool
	// want is the plan's item action for the directory user, nothing for
	// none.
	want string
}

func agreementCases() []agreementCase {
	const ada = "ada@example.com"
	active := func(email string) *dirFacts { return &dirFacts{email: email, active: true} }
	inactive := func(email string) *dirFacts { return &dirFacts{email: email} }
	member := func(status string) *memberFacts { return &memberFacts{status: status, role: lifecycle.RoleMember} }
	admin := func(status string) *memberFacts { return &memberFacts{status: status, role: lifecycle.RoleAdmin} }
	admins := store.JSONMap{"Admins": lifecycle.RoleAdmin}
	return []agreementCase{
		// Provisioning (converge's TestDecideUser, case by case).
		{name: "nothing on either side", want: nothing},
		{name: "inactive directory user is not provisioned", dir: inactive(ada), want: nothing},
		{name: "active directory user is provisioned", dir: active(ada), want: lifecycle.Provision.PlanItem()},
		{name: "pulled active directory user is provisioned", dir: &dirFacts{email: ada, active: true, pulled: true}, want: lifecycle.Provision.PlanItem()},
		{name: "no e-mail: skipped", dir: active(""), want: lifecycle.Skip.PlanItem()},
		{name: "e-mail of only whitespace: skipped", dir: active("   "), want: lifecycle.Skip.PlanItem()},
		{name: "pulled e-mail of only whitespace: skipped", dir: &dirFacts{email: " \t ", active: true, pulled: true}, want: lifecycle.Skip.PlanItem()},
		{name: "e-mail of another live directory user's member: skipped", dir: active(ada), person: &personFacts{live: true}, want: lifecycle.Skip.PlanItem()},
		{name: "member of a vanished directory user is replaced", dir: active(ada), person: &personFacts{}, want: lifecycle.Provision.PlanItem()},
		{name: "in step: nothing", dir: active(ada), member: &memberFacts{status: lifecycle.StatusPendingSetup, role: lifecycle.RoleMember, openInvite: true}, want: nothing},
		{name: "active member stays active", dir: active(ada), member: member(lifecycle.StatusActive), want: nothing},
		{name: "drift: e-mail and name updated", dir: &dirFacts{email: "ada@new.example", active: true, given: "Augusta"}, member: member(lifecycle.StatusActive), want: lifecycle.Update.PlanItem()},
		{name: "e-mail changes case: updated", dir: active("ADA@example.com"), member: member(lifecycle.StatusActive), want: lifecycle.Update.PlanItem()},
		{name: "pulled inactive: deprovisioned", dir: &dirFacts{email: ada, pulled: true}, member: member(lifecycle.StatusActive), want: lifecycle.Deprovision.PlanItem()},
		{name: "no directory e-mail keeps the member's", dir: active(""), member: member(lifecycle.StatusActive), want: nothing},
		{name: "directory e-mail of only whitespace keeps the member's", dir: active("  "), member: member(lifecycle.StatusActive), want: nothing},
		{name: "inactive: deprovisioned", dir: inactive(ada), member: member(lifecycle.StatusActive), want: lifecycle.Deprovision.PlanItem()},
		{name: "inactive pending member: deprovisioned", dir: inactive(ada), member: &memberFacts{status: lifecycle.StatusPendingSetup, role: lifecycle.RoleMember, openInvite: true}, want: lifecycle.Deprovision.PlanItem()},
		{name: "deprovisioned and still inactive: nothing", dir: inactive(ada), member: member(lifecycle.StatusDeprovisioned), want: nothing},
		{name: "re-activated: provisioned again", dir: active(ada), member: member(lifecycle.StatusDeprovisioned), want: lifecycle.Provision.PlanItem()},
		{name: "pending without an open invite: invited", dir: active(ada), member: member(lifecycle.StatusPendingSetup), want: lifecycle.Update.PlanItem()},
		{name: "directory user gone: removed", member: member(lifecycle.StatusActive), want: lifecycle.Remove.PlanItem()},
		{name: "mapped role on provision", dir: &dirFacts{email: ada, active: true, groups: []string{"Admins"}}, mapping: admins, want: lifecycle.Provision.PlanItem()},
		{name: "mapped role drift: demoted", dir: active(ada), member: admin(lifecycle.StatusActive), mapping: admins, otherAdmin: true, want: lifecycle.Update.PlanItem()},
		{name: "mapped role drift: promoted", dir: &dirFacts{email: ada, active: true, groups: []string{"Admins"}}, member: member(lifecycle.StatusActive), mapping: admins, want: lifecycle.Update.PlanItem()},
		{name: "mapped role in step", dir: &dirFacts{email: ada, active: true, groups: []string{"Admins"}}, member: admin(lifecycle.StatusActive), mapping: admins, want: nothing},
		{name: "users row takes the directory's e-mail", dir: active(ada), member: &memberFacts{status: lifecycle.StatusActive, role: lifecycle.RoleMember, userEmail: "ada@old.example"}, want: lifecycle.Update.PlanItem()},
		{name: "users row shared with another organization keeps its e-mail", dir: active(ada), member: &memberFacts{status: lifecycle.StatusActive, role: lifecycle.RoleMember, userEmail: "ada@old.example", elsewhere: true}, want: nothing},
		{name: "users row keeps its e-mail that another users row has", dir: active(ada), member: &memberFacts{status: lifecycle.StatusActive, role: lifecycle.RoleMember, userEmail: "ada@old.example", taken: true}, want: nothing},

		// The last admin.
		{name: "last admin deactivated: kept", dir: inactive(ada), member: admin(lifecycle.StatusActive), want: lifecycle.Keep.PlanItem()},
		{name: "last admin's directory user gone: kept", member: admin(lifecycle.StatusActive), want: lifecycle.Keep.PlanItem()},
		{name: "last admin demoted by the mapping: kept", dir: active(ada), member: admin(lifecycle.StatusActive), mapping: admins, want: lifecycle.Keep.PlanItem()},
		{name: "last pending admin deactivated: kept", dir: inactive(ada), member: &memberFacts{status: lifecycle.StatusPendingSetup, role: lifecycle.RoleAdmin, openInvite: true}, want: lifecycle.Keep.PlanItem()},
		{name: "admin deactivated beside another admin: deprovisioned", dir: inactive(ada), member: admin(lifecycle.StatusActive), otherAdmin: true, want: lifecycle.Deprovision.PlanItem()},
		{name: "admin's directory user gone beside another admin: removed", member: admin(lifecycle.StatusActive), otherAdmin: true, want: lifecycle.Remove.PlanItem()},
		{name: "last admin's drift is no loss: updated", dir: &dirFacts{email: ada, active: true, given: "Augusta"}, member: admin(lifecycle.StatusActive), want: lifecycle.Update.PlanItem()},
		{name: "deprovisioned admin is no admin: nothing", dir: inactive(ada), member: admin(lifecycle.StatusDeprovisioned), want: nothing},
		{name: "deprovisioned last admin re-activated", dir: active(ada), member: admin(lifecycle.StatusDeprovisioned), want: lifecycle.Provision.PlanItem()},
		{name: "member replacing the last admin's stale membership", dir: active(ada), person: &personFacts{admin: true}, want: lifecycle.Keep.PlanItem()},
	}
}

// TestDecisionAgreement runs every case through converge's decision and the
// reconciler's plan, on every backend, each case in an organization of its
// own.
func TestDecisionAgreement(t *testing.T) {
	cases := agreementCases()
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.want] = true
	}
	for _, want := range append([]string{nothing}, userItems...) {
		if !covered[want] {
			t.Errorf("no case has outcome %q: add one", want)
		}
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		c := &converge.Converger{Store: s, Invites: &invite.Service{Store: s, Log: slog.New(slog.DiscardHandler),
			Config: invite.Config{PublicURL: "https://app.test", TTL: 7 * 24 * time.Hour, ResendAfter: 24 * time.Hour, MaxSends: 5}}}
		r := &reconciler.Reconciler{Store: s, Directories: noConnector{}}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				orgID, duID := seedCase(t, s, tc)
				p, err := c.PlanUser(ctx, orgID, duID)
				if err != nil {
					t.Fatalf("PlanUser: %v", err)
				}
				goGot, ok := outcomeOfAction[p.Action]
				if !ok {
					t.Fatalf("converge decided %q, which the table does not map", p.Action)
				}
				sqlGot := planOutcome(t, r, orgID, duID)
				if diff := cmp.Diff(
					map[string]string{"converge": tc.want, "plan": tc.want},
					map[string]string{"converge": goGot, "plan": sqlGot}); diff != "" {
					t.Errorf("outcome (-want +got):\n%s(converge: %s %s)", diff, p.Action, p.Reason)
				}
			})
		}
	})
}

// noConnector says every organization is SCIM only: the plan takes the
// directory as it is, as converge reads it.
type noConnector struct{}

func (noConnector) Directory(context.Context, string) (connectors.Directory, string, error) {
	return nil, "", fmt.Errorf("connector: %w", store.ErrNotFound)
}

// planOutcome runs the reconciler's plan (a dry run) and returns its item
// for the directory user, nothing for none.
func planOutcome(t *testing.T, r *reconciler.Reconciler, orgID, duID string) string {
	t.Helper()
	ctx := context.Background()
	run, err := r.Reconcile(ctx, orgID, reconciler.Options{DryRun: true, Trigger: reconciler.TriggerCLI})
	if err != nil || run.Status != store.RunSucceeded {
		t.Fatalf("Reconcile: %+v, %v", run, err)
	}
	var got []string
	err = r.Store.EachSyncRunItem(ctx, orgID, run.ID, func(items []store.SyncRunItem) error {
		for _, it := range items {
			if it.EntityType == store.EntityDirectoryUser && it.EntityID == duID {
				got = append(got, it.Action)
			}
		}
		return nil
	}, userItems...)
	if err != nil {
		t.Fatal(err)
	}
	switch len(got) {
	case 0:
		return nothing
	case 1:
		return got[0]
	}
	t.Fatalf("the plan has %d items for the directory user: %v", len(got), got)
	return ""
}

// seedCase writes a case's facts into a new organization and returns it
// and the id of the directory user decided on (one that does not exist
// when the case has none).
func seedCase(t *testing.T, s *store.Store, tc agreementCase) (orgID, duID string) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	org, err := s.CreateOrg(ctx, "Acme")
	must(err)
	// Users rows are shared by all organizations: each case's addresses
	// are its own.
	mail := func(e string) string { return strings.Replace(e, "@", "@"+org.ID+".", 1) }
	if tc.mapping != nil {
		_, err := s.UpdateOrg(ctx, org.ID, store.OrgPatch{RoleMapping: &tc.mapping})
		must(err)
	}
	// Groups by name, with their members' directory user ids.
	groups := map[string][]string{}
	addMember := func(ctx context.Context, m store.Membership, userEmail string) store.Membership {
		t.Helper()
		u, err := s.EnsureUser(ctx, userEmail)
		must(err)
		m.OrgID, m.UserID = org.ID, u.ID
		if m.Status == lifecycle.StatusDeprovisioned {
			now := s.Now()
			m.DeprovisionedAt = &now
		}
		must(s.CreateMembership(ctx, &m))
		return m
	}
	if tc.otherAdmin {
		root := store.DirectoryUser{OrgID: org.ID, Source: store.SourceSCIM, UserName: "root", Email: mail("root@example.com"), GivenName: "Root", Active: true}
		must(s.CreateDirectoryUser(ctx, &root))
		addMember(ctx, store.Membership{DirectoryUserID: root.ID, Status: lifecycle.StatusActive, Role: lifecycle.RoleAdmin,
			Email: root.Email, FirstName: root.GivenName, Source: root.Source}, root.Email)
		for name, role := range tc.mapping {
			if role == lifecycle.RoleAdmin {
				groups[name] = append(groups[name], root.ID)
			}
		}
	}

	d := store.DirectoryUser{OrgID: org.ID, Source: store.SourceSCIM, UserName: "ada", ExternalID: "x1", GivenName: "Ada", FamilyName: "Lovelace"}
	duID = store.NewID()
	if f := tc.dir; f != nil {
		d.Email, d.Active = mail(f.email), f.active
		if f.given != "" {
			d.GivenName = f.given
		}
		if f.pulled {
			d = pullUser(t, s, org.ID, d)
		} else {
			must(s.CreateDirectoryUser(ctx, &d))
		}
		duID = d.ID
		for _, g := range f.groups {
			groups[g] = append(groups[g], d.ID)
		}
	}
	for name, members := range groups {
		g := store.DirectoryGroup{OrgID: org.ID, Source: store.SourceSCIM, DisplayName: name}
		must(s.CreateDirectoryGroup(ctx, &g))
		_, err := s.SetDirectoryGroupMembers(ctx, org.ID, g.ID, members)
		must(err)
	}

	if f := tc.member; f != nil {
		// In step with the directory user as the case first wrote it.
		m := store.Membership{DirectoryUserID: duID, Status: f.status, Role: f.role, Email: f.email,
			FirstName: "Ada", LastName: "Lovelace", Source: d.Source, ExternalID: "x1"}
		if m.Email == "" {
			m.Email = "ada@example.com"
		}
		m.Email = mail(m.Email)
		userEmail := m.Email
		if f.userEmail != "" {
			userEmail = mail(f.userEmail)
		}
		if f.taken {
			_, err := s.EnsureUser(ctx, d.Email)
			must(err)
		}
		if f.openInvite {
			m.InviteSends = 1
		}
		m = addMember(ctx, m, userEmail)
		if f.openInvite {
			_, _, err := s.IssueInvite(ctx, org.ID, m.ID, 1, "hash-"+m.ID, s.Now().Add(24*time.Hour))
			must(err)
		}
		if f.elsewhere {
			other, err := s.CreateOrg(ctx, "Elsewhere")
			must(err)
			e := store.Membership{OrgID: other.ID, UserID: m.UserID, DirectoryUserID: store.NewID(), Status: lifecycle.StatusActive,
				Role: lifecycle.RoleMember, Email: userEmail}
			must(s.CreateMembership(ctx, &e))
		}
	}

	if f := tc.person; f != nil {
		owner := store.NewID()
		if f.live {
			o := store.DirectoryUser{OrgID: org.ID, Source: store.SourceSCIM, UserName: "ada.other", Email: mail("ada.other@example.com"), Active: true}
			must(s.CreateDirectoryUser(ctx, &o))
			owner = o.ID
		}
		role := lifecycle.RoleMember
		if f.admin {
			role = lifecycle.RoleAdmin
		}
		addMember(ctx, store.Membership{DirectoryUserID: owner, Status: lifecycle.StatusActive, Role: role, Email: d.Email}, d.Email)
	}
	return org.ID, duID
}

// pullUser writes d as a connector's pull would, and returns the row.
func pullUser(t *testing.T, s *store.Store, orgID string, d store.DirectoryUser) store.DirectoryUser {
	t.Helper()
	ctx := context.Background()
	p := store.Pull{OrgID: orgID, RunID: "seed-" + orgID, Source: "okta"}
	err := s.Tx(ctx, func(tx *store.Store) error {
		return tx.WritePulledUsers(ctx, p, []store.PulledUser{{ExternalID: d.ExternalID, UserName: d.UserName, Email: d.Email,
			GivenName: d.GivenName, FamilyName: d.FamilyName, Active: d.Active}})
	})
	if err == nil {
		err = s.ForgetPull(ctx, p.RunID)
	}
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.DirectoryUsersBy(ctx, orgID, store.ByExternalID, d.ExternalID)
	if err != nil || len(got) != 1 {
		t.Fatalf("pulled user: %v, %v", got, err)
	}
	return got[0]
}
