package converge

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

func TestDecideUser(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := func(active bool, email string) *store.DirectoryUser {
		return &store.DirectoryUser{ID: "du", OrgID: "o", Source: "scim", ExternalID: "x1", Email: email, GivenName: "Ada", FamilyName: "Lovelace", Active: active}
	}
	member := func(status string, sends int) *store.Membership {
		return &store.Membership{ID: "m", OrgID: "o", UserID: "u", DirectoryUserID: "du", Status: status, Email: "ada@example.com",
			FirstName: "Ada", LastName: "Lovelace", Source: "scim", ExternalID: "x1", InviteSends: sends}
	}
	with := func(m *store.Membership, f func(*store.Membership)) *store.Membership {
		c := *m
		f(&c)
		return &c
	}
	pending := member(lifecycle.StatusPendingSetup, 1)
	active := member(lifecycle.StatusActive, 1)
	deprov := with(member(lifecycle.StatusDeprovisioned, 2), func(m *store.Membership) { m.DeprovisionedAt = &now })

	tests := []struct {
		name string
		f    userFacts
		want UserPlan
	}{
		{"nothing on either side", userFacts{}, UserPlan{}},
		{"inactive directory user is not provisioned", userFacts{dir: dir(false, "ada@example.com")}, UserPlan{}},
		{
			"active directory user is provisioned pending setup with invite 1",
			userFacts{dir: dir(true, "ada@example.com")},
			UserPlan{Action: lifecycle.Provision, Invite: 1, After: &store.Membership{
				OrgID: "o", DirectoryUserID: "du", Status: lifecycle.StatusPendingSetup, Email: "ada@example.com",
				FirstName: "Ada", LastName: "Lovelace", Source: "scim", ExternalID: "x1"}},
		},
		{"no e-mail: skipped", userFacts{dir: dir(true, "")}, UserPlan{Action: lifecycle.Skip, Reason: ReasonNoEmail}},
		{"e-mail of only whitespace: skipped", userFacts{dir: dir(true, " \t ")}, UserPlan{Action: lifecycle.Skip, Reason: ReasonNoEmail}},
		{
			"e-mail of another live directory user's member: skipped",
			userFacts{dir: dir(true, "ada@example.com"), person: &store.MemberOfPerson{Membership: *active, DirectoryUserExists: true}},
			UserPlan{Action: lifecycle.Skip, Reason: ReasonEmailTaken},
		},
		{
			"member of a vanished directory user is replaced",
			userFacts{dir: dir(true, "ada@example.com"), person: &store.MemberOfPerson{Membership: *active}},
			UserPlan{Action: lifecycle.Provision, Invite: 1, Replace: active, After: &store.Membership{
				OrgID: "o", DirectoryUserID: "du", Status: lifecycle.StatusPendingSetup, Email: "ada@example.com",
				FirstName: "Ada", LastName: "Lovelace", Source: "scim", ExternalID: "x1"}},
		},
		{"in step: unchanged", userFacts{dir: dir(true, "ada@example.com"), member: pending, openInvite: true}, UserPlan{Before: pending}},
		{"active member stays active", userFacts{dir: dir(true, "ada@example.com"), member: active}, UserPlan{Before: active}},
		{
			"drift: e-mail and name updated",
			userFacts{dir: &store.DirectoryUser{ID: "du", Source: "scim", ExternalID: "x1", Email: "ada@new.example", GivenName: "Augusta", FamilyName: "Lovelace", Active: true}, member: active},
			UserPlan{Action: lifecycle.Update, Before: active, Changed: []string{"email", "firstName"},
				After: with(active, func(m *store.Membership) { m.Email, m.FirstName = "ada@new.example", "Augusta" })},
		},
		{
			"empty directory e-mail keeps the member's",
			userFacts{dir: dir(true, ""), member: active},
			UserPlan{Before: active},
		},
		{
			"directory e-mail of only whitespace keeps the member's",
			userFacts{dir: dir(true, "   "), member: active},
			UserPlan{Before: active},
		},
		{
			"inactive: deprovisioned",
			userFacts{dir: dir(false, "ada@example.com"), member: active},
			UserPlan{Action: lifecycle.Deprovision, Before: active, Changed: []string{"status"},
				After: with(active, func(m *store.Membership) { m.Status, m.DeprovisionedAt = lifecycle.StatusDeprovisioned, &now })},
		},
		{"deprovisioned and still inactive: unchanged", userFacts{dir: dir(false, "ada@example.com"), member: deprov}, UserPlan{Before: deprov}},
		{
			"re-activated: pending setup with the next invite",
			userFacts{dir: dir(true, "ada@example.com"), member: deprov},
			UserPlan{Action: lifecycle.Reprovision, Before: deprov, Changed: []string{"status"}, Invite: 3,
				After: with(deprov, func(m *store.Membership) { m.Status, m.DeprovisionedAt = lifecycle.StatusPendingSetup, nil })},
		},
		{
			"pending without an open invite (e-mail arrived late): invited",
			userFacts{dir: dir(true, "ada@example.com"), member: with(pending, func(m *store.Membership) { m.InviteSends = 0 })},
			UserPlan{Action: lifecycle.Invite, Invite: 1,
				Before: with(pending, func(m *store.Membership) { m.InviteSends = 0 }),
				After:  with(pending, func(m *store.Membership) { m.InviteSends = 0 })},
		},
		{"directory user gone: removed", userFacts{member: pending}, UserPlan{Action: lifecycle.Remove, Before: pending}},
		{
			"mapped role on provision",
			userFacts{dir: dir(true, "ada@example.com"), role: lifecycle.RoleAdmin},
			UserPlan{Action: lifecycle.Provision, Invite: 1, After: &store.Membership{
				OrgID: "o", DirectoryUserID: "du", Status: lifecycle.StatusPendingSetup, Role: lifecycle.RoleAdmin, Email: "ada@example.com",
				FirstName: "Ada", LastName: "Lovelace", Source: "scim", ExternalID: "x1"}},
		},
		{
			"mapped role drift",
			userFacts{dir: dir(true, "ada@example.com"), member: with(active, func(m *store.Membership) { m.Role = lifecycle.RoleAdmin }), role: lifecycle.RoleMember},
			UserPlan{Action: lifecycle.Update, Changed: []string{"role"},
				Before: with(active, func(m *store.Membership) { m.Role = lifecycle.RoleAdmin }),
				After:  with(active, func(m *store.Membership) { m.Role = lifecycle.RoleMember })},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.orgID, tt.f.directoryUserID = "o", "du"
			tt.want.OrgID, tt.want.DirectoryUserID = "o", "du"
			got := decideUser(tt.f, now)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideGroup(t *testing.T) {
	dir := &store.DirectoryGroup{ID: "dg", OrgID: "o", Source: "scim", ExternalID: "g1", DisplayName: "Engineering"}
	local := &store.Group{ID: "lg", OrgID: "o", DirectoryGroupID: "dg", Name: "Engineering", Source: "scim", ExternalID: "g1"}
	renamed := *local
	renamed.Name = "Eng"

	tests := []struct {
		name string
		f    groupFacts
		want GroupPlan
	}{
		{"nothing on either side", groupFacts{}, GroupPlan{}},
		{
			"new group with members",
			groupFacts{dir: dir, add: []string{"m1", "m2"}},
			GroupPlan{Action: lifecycle.GroupCreate, Add: []string{"m1", "m2"},
				After: &store.Group{OrgID: "o", DirectoryGroupID: "dg", Name: "Engineering", Source: "scim", ExternalID: "g1"}},
		},
		{"in step", groupFacts{dir: dir, local: local}, GroupPlan{Before: local}},
		{
			"renamed",
			groupFacts{dir: dir, local: &renamed},
			GroupPlan{Action: lifecycle.GroupUpdate, Before: &renamed, After: local, Changed: []string{"name"}},
		},
		{
			"members differ",
			groupFacts{dir: dir, local: local, add: []string{"m3"}, remove: []string{"m1"}},
			GroupPlan{Action: lifecycle.GroupMembers, Before: local, After: local, Add: []string{"m3"}, Remove: []string{"m1"}},
		},
		{"directory group gone", groupFacts{local: local}, GroupPlan{Action: lifecycle.GroupDelete, Before: local}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.f.orgID, tt.f.directoryGroupID = "o", "dg"
			tt.want.OrgID, tt.want.DirectoryGroupID = "o", "dg"
			if diff := cmp.Diff(tt.want, decideGroup(tt.f)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}
