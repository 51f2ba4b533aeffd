package converge_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// emailWorld is two organizations, each with its own directory, and the
// people in them: a person in both has one shared users row.
type emailWorld struct {
	t    *testing.T
	s    *store.Store
	c    *converge.Converger
	orgs [2]*jobstest.Org
	// dir maps "name@org" to the person's directory user in organization
	// org; users maps a name to the person's users row.
	dir   map[string]string
	users map[string]string
}

func newEmailWorld(t *testing.T, s *store.Store) *emailWorld {
	return &emailWorld{t: t, s: s, c: newConverger(s), orgs: [2]*jobstest.Org{jobstest.NewOrg(t, s), jobstest.NewOrg(t, s)},
		dir: map[string]string{}, users: map[string]string{}}
}

// add pushes a directory user to organization org and converges.
func (w *emailWorld) add(org int, name, email string) {
	w.t.Helper()
	id := w.orgs[org].AddUser(name, email).ID
	w.dir[name+"@"+strconv.Itoa(org)] = id
	w.converge(org)
	w.users[name] = w.orgs[org].MustMember(id).UserID
}

// change gives the person's directory user in org another e-mail, and
// converges.
func (w *emailWorld) change(org int, name, email string) {
	w.t.Helper()
	w.orgs[org].UpdateUser(w.dir[name+"@"+strconv.Itoa(org)], func(d *store.DirectoryUser) { d.Email = email })
	w.converge(org)
}

// remove deletes the person's directory user in org, and converges.
func (w *emailWorld) remove(org int, name string) {
	w.t.Helper()
	w.orgs[org].DeleteUser(w.dir[name+"@"+strconv.Itoa(org)])
	w.converge(org)
}

// converge converges every directory user the organization ever had, after
// checking that the reconciler's plan says what converge will do with the
// users rows, and then that the plan is empty.
func (w *emailWorld) converge(org int) {
	w.t.Helper()
	ctx := context.Background()
	o := w.orgs[org]
	var ids []string
	for k, id := range w.dir {
		if strings.HasSuffix(k, "@"+strconv.Itoa(org)) {
			ids = append(ids, id)
		}
	}
	items := planItems(w.t, w.s, o.ID)
	for _, id := range ids {
		p, err := w.c.PlanUser(ctx, o.ID, id)
		if err != nil {
			w.t.Fatal(err)
		}
		want, got := "", ""
		if p.UserEmail != "" {
			want = "user email → " + p.UserEmail
		}
		if i := strings.Index(items[id], "user email → "); i >= 0 {
			got = items[id][i:]
		}
		if got != want {
			w.t.Fatalf("plan item %q, but converge takes user e-mail %q", items[id], p.UserEmail)
		}
	}
	if _, err := w.c.ApplyUsers(ctx, o.ID, ids); err != nil {
		w.t.Fatal(err)
	}
	if items := planItems(w.t, w.s, o.ID); len(items) != 0 {
		w.t.Fatalf("after converging, the plan still has %q", items)
	}
}

// planItems is the reconciler's plan of an organization's members (as
// without a connector), "action detail" by directory user.
func planItems(t *testing.T, s *store.Store, orgID string) map[string]string {
	t.Helper()
	ctx := context.Background()
	run := store.SyncRun{OrgID: orgID}
	if err := s.CreateSyncRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	if err := s.PlanUsers(ctx, store.PlanScope{OrgID: orgID, RunID: run.ID}); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if err := s.EachSyncRunItem(ctx, orgID, run.ID, func(items []store.SyncRunItem) error {
		for _, it := range items {
			out[it.EntityID] = it.Action + " " + it.Detail
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// state reads members ("name@org": e-mail, "" for none) and users rows
// (name: e-mail) of everyone in the world.
func (w *emailWorld) state() (members, users map[string]string) {
	w.t.Helper()
	members, users = map[string]string{}, map[string]string{}
	for k, id := range w.dir {
		org, _ := strconv.Atoi(k[strings.LastIndex(k, "@")+1:])
		m, _ := w.orgs[org].Member(id)
		members[k] = m.Email
	}
	for name, id := range w.users {
		u, err := w.s.User(context.Background(), id)
		if err != nil {
			w.t.Fatal(err)
		}
		if u.EmailKey != store.Key(u.Email) {
			w.t.Errorf("%s's users row: e-mail %q, key %q", name, u.Email, u.EmailKey)
		}
		users[name] = u.Email
	}
	return members, users
}

// An e-mail change in an IdP reaches the member, and the person's shared
// users row when no other organization still knows the person by the old
// address and no other person has the new one.
func TestEmailChangeReachesTheUser(t *testing.T) {
	const old, new = "ann@example.com", "ann@new.example"
	cases := []struct {
		name    string
		steps   func(w *emailWorld)
		members map[string]string
		users   map[string]string
		// kept, when set, is what the first organization's last audit
		// event says about the users row keeping its e-mail.
		kept string
	}{
		{"one organization", func(w *emailWorld) {
			w.add(0, "ann", old)
			w.change(0, "ann", new)
		}, map[string]string{"ann@0": new}, map[string]string{"ann": new}, ""},

		{"a new spelling", func(w *emailWorld) {
			w.add(0, "ann", old)
			w.change(0, "ann", "Ann@Example.com")
		}, map[string]string{"ann@0": "Ann@Example.com"}, map[string]string{"ann": "Ann@Example.com"}, ""},

		{"another organization still says the old one", func(w *emailWorld) {
			w.add(0, "ann", old)
			w.add(1, "ann", old)
			w.change(0, "ann", new)
		}, map[string]string{"ann@0": new, "ann@1": old}, map[string]string{"ann": old},
			"the user keeps ann@example.com: the person's other organizations still know them by it"},

		{"every organization says the new one", func(w *emailWorld) {
			w.add(0, "ann", old)
			w.add(1, "ann", old)
			w.change(0, "ann", new)
			w.change(1, "ann", new)
		}, map[string]string{"ann@0": new, "ann@1": new}, map[string]string{"ann": new}, ""},

		{"the other organization lets the person go", func(w *emailWorld) {
			w.add(0, "ann", old)
			w.add(1, "ann", old)
			w.change(0, "ann", new)
			w.remove(1, "ann")
			w.converge(0) // the reconciler's repair
		}, map[string]string{"ann@0": new, "ann@1": ""}, map[string]string{"ann": new}, ""},

		{"the new e-mail is another person's", func(w *emailWorld) {
			w.add(0, "ann", old)
			w.add(1, "bob", new)
			w.change(0, "ann", new)
		}, map[string]string{"ann@0": new, "bob@1": new}, map[string]string{"ann": old, "bob": new},
			"the user keeps ann@example.com: another user has the new e-mail"},

		{"the other person lets the e-mail go", func(w *emailWorld) {
			w.add(0, "ann", old)
			w.add(1, "bob", new)
			w.change(0, "ann", new)
			w.change(1, "bob", "bob@example.com")
			w.converge(0) // the reconciler's repair
		}, map[string]string{"ann@0": new, "bob@1": "bob@example.com"}, map[string]string{"ann": new, "bob": "bob@example.com"}, ""},

		{"a new member of a person spelled otherwise", func(w *emailWorld) {
			w.add(1, "ann", old)
			w.remove(1, "ann")
			w.add(0, "ann", "Ann@Example.com")
		}, map[string]string{"ann@0": "Ann@Example.com", "ann@1": ""}, map[string]string{"ann": "Ann@Example.com"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				w := newEmailWorld(t, s)
				tc.steps(w)
				members, users := w.state()
				if diff := cmp.Diff(tc.members, members); diff != "" {
					t.Errorf("member e-mails (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.users, users); diff != "" {
					t.Errorf("users rows (-want +got):\n%s", diff)
				}
				if tc.kept == "" {
					return
				}
				evs, err := s.AuditEvents(context.Background(), w.orgs[0].ID, 0, 1)
				if err != nil || len(evs) != 1 {
					t.Fatalf("audit events: %v, %v", evs, err)
				}
				if !strings.Contains(evs[0].Detail, tc.kept) {
					t.Errorf("last audit event %q, want it to say %q", evs[0].Detail, tc.kept)
				}
			})
		})
	}
}

// Both of a person's organizations change the e-mail, and their converges
// run at once: each waits for the other's decision on the shared users
// row, so the row follows without waiting for a reconciliation.
func TestEmailChangeInTwoOrganizationsAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		for round := range 8 {
			w := newEmailWorld(t, s)
			old, new := fmt.Sprintf("ann%d@example.com", round), fmt.Sprintf("ann%d@new.example", round)
			w.add(0, "ann", old)
			w.add(1, "ann", old)
			for org := range w.orgs {
				w.orgs[org].UpdateUser(w.dir["ann@"+strconv.Itoa(org)], func(d *store.DirectoryUser) { d.Email = new })
			}
			var wg sync.WaitGroup
			for org := range w.orgs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := w.c.ConvergeUser(ctx, w.orgs[org].ID, w.dir["ann@"+strconv.Itoa(org)]); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if _, users := w.state(); users["ann"] != new {
				t.Fatalf("round %d: users row %q, want the new e-mail", round, users["ann"])
			}
		}
	})
}
