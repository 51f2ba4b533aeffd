// Package jobstest writes directory state the way the SCIM layer does (the
// change and its outbox row in one transaction) and reads local state back,
// for the tests of converge and the jobs packages.
package jobstest

import (
	"context"
	"io"
	"log/slog"
	"regexp"
	"testing"

	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// Discard is a logger that drops everything.
var Discard = TextLogger(io.Discard)

// TextLogger logs everything, debug included, to w.
func TextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Org is one organization of a store.
type Org struct {
	t     testing.TB
	Store *store.Store
	ID    string
}

// NewOrg creates an organization in s.
func NewOrg(t testing.TB, s *store.Store) *Org {
	t.Helper()
	o, err := s.CreateOrg(context.Background(), "Acme")
	if err != nil {
		t.Fatal(err)
	}
	return &Org{t: t, Store: s, ID: o.ID}
}

func (o *Org) write(fn func(ctx context.Context, tx *store.Store) error) {
	o.t.Helper()
	if err := o.Store.Tx(context.Background(), func(tx *store.Store) error { return fn(context.Background(), tx) }); err != nil {
		o.t.Fatal(err)
	}
}

// AddUser creates an active directory user.
func (o *Org) AddUser(userName, email string) store.DirectoryUser {
	o.t.Helper()
	u := store.DirectoryUser{OrgID: o.ID, Source: "scim", UserName: userName, Email: email, GivenName: "Given " + userName, FamilyName: "Family", Active: true}
	o.write(func(ctx context.Context, tx *store.Store) error {
		if err := tx.CreateDirectoryUser(ctx, &u); err != nil {
			return err
		}
		return tx.AddOutbox(ctx, task.ConvergeUserRow(o.ID, u.ID, false))
	})
	return u
}

// UpdateUser changes a directory user with fn.
func (o *Org) UpdateUser(id string, fn func(*store.DirectoryUser)) {
	o.t.Helper()
	o.write(func(ctx context.Context, tx *store.Store) error {
		u, err := tx.DirectoryUser(ctx, o.ID, id)
		if err != nil {
			return err
		}
		fn(&u)
		if err := tx.UpdateDirectoryUser(ctx, &u, u.Version); err != nil {
			return err
		}
		return tx.AddOutbox(ctx, task.ConvergeUserRow(o.ID, u.ID, !u.Active))
	})
}

// SetActive activates or deactivates a directory user.
func (o *Org) SetActive(id string, active bool) {
	o.t.Helper()
	o.UpdateUser(id, func(u *store.DirectoryUser) { u.Active = active })
}

// DeleteUser deletes a directory user.
func (o *Org) DeleteUser(id string) {
	o.t.Helper()
	o.write(func(ctx context.Context, tx *store.Store) error {
		if err := tx.DeleteDirectoryUser(ctx, o.ID, id); err != nil {
			return err
		}
		return tx.AddOutbox(ctx, task.ConvergeUserRow(o.ID, id, true))
	})
}

// AddGroup creates a directory group with members.
func (o *Org) AddGroup(name string, memberIDs ...string) store.DirectoryGroup {
	o.t.Helper()
	g := store.DirectoryGroup{OrgID: o.ID, Source: "scim", DisplayName: name}
	o.write(func(ctx context.Context, tx *store.Store) error {
		if err := tx.CreateDirectoryGroup(ctx, &g); err != nil {
			return err
		}
		if _, err := tx.SetDirectoryGroupMembers(ctx, o.ID, g.ID, memberIDs); err != nil {
			return err
		}
		return tx.AddOutbox(ctx, task.ConvergeGroupRow(o.ID, g.ID))
	})
	return g
}

// UpdateGroup renames a directory group and sets its members.
func (o *Org) UpdateGroup(id, name string, memberIDs ...string) {
	o.t.Helper()
	o.write(func(ctx context.Context, tx *store.Store) error {
		g, err := tx.DirectoryGroup(ctx, o.ID, id)
		if err != nil {
			return err
		}
		g.DisplayName = name
		if err := tx.UpdateDirectoryGroup(ctx, &g, g.Version); err != nil {
			return err
		}
		if _, err := tx.SetDirectoryGroupMembers(ctx, o.ID, id, memberIDs); err != nil {
			return err
		}
		return tx.AddOutbox(ctx, task.ConvergeGroupRow(o.ID, id))
	})
}

// DeleteGroup deletes a directory group.
func (o *Org) DeleteGroup(id string) {
	o.t.Helper()
	o.write(func(ctx context.Context, tx *store.Store) error {
		if err := tx.DeleteDirectoryGroup(ctx, o.ID, id); err != nil {
			return err
		}
		return tx.AddOutbox(ctx, task.ConvergeGroupRow(o.ID, id))
	})
}

// Member returns the membership of a directory user, if any.
func (o *Org) Member(directoryUserID string) (store.Membership, bool) {
	o.t.Helper()
	m, err := o.Store.MembershipByDirectoryUser(context.Background(), o.ID, directoryUserID)
	if err != nil {
		return store.Membership{}, false
	}
	return m, true
}

// MustMember is Member, failing the test when there is none.
func (o *Org) MustMember(directoryUserID string) store.Membership {
	o.t.Helper()
	m, ok := o.Member(directoryUserID)
	if !ok {
		o.t.Fatalf("no membership for directory user %s", directoryUserID)
	}
	return m
}

// Invites lists a membership's invites.
func (o *Org) Invites(membershipID string) []store.Invite {
	o.t.Helper()
	inv, err := o.Store.Invites(context.Background(), o.ID, membershipID)
	if err != nil {
		o.t.Fatal(err)
	}
	return inv
}

// GroupMembers lists the memberships in the local group of a directory
// group (nil when there is no local group).
func (o *Org) GroupMembers(directoryGroupID string) []string {
	o.t.Helper()
	g, err := o.Store.LocalGroupByDirectoryGroup(context.Background(), o.ID, directoryGroupID)
	if err != nil {
		return nil
	}
	ids, err := o.Store.LocalGroupMemberIDs(context.Background(), o.ID, g.ID)
	if err != nil {
		o.t.Fatal(err)
	}
	return ids
}

// Audit lists the organization's audit actions, oldest first.
func (o *Org) Audit() []string {
	o.t.Helper()
	evs, err := o.Store.AuditEvents(context.Background(), o.ID, 0, 1000)
	if err != nil {
		o.t.Fatal(err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[len(evs)-1-i] = e.Action
	}
	return out
}

var tokenRE = regexp.MustCompile(`ssi_[A-Za-z0-9_-]{43}`)

// Token finds the invite token in an e-mail body.
func Token(t testing.TB, body string) string {
	t.Helper()
	tok := tokenRE.FindString(body)
	if tok == "" {
		t.Fatalf("no invite token in:\n%s", body)
	}
	return tok
}
