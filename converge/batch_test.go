package converge_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// mixedOrg builds directory users that each need a different converge:
// new, in step, drifted, deactivated, deleted, without e-mail, never
// existed, recreated under a new id (its stale membership to replace), and
// a pending member whose invite was superseded. It returns their ids by
// name.
func mixedOrg(t *testing.T, c *converge.Converger, org *jobstest.Org) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, name := range []string{"inStep", "drifted", "deactivated", "deleted", "recreated", "reinvite"} {
		u := org.AddUser(name, name+"@example.com")
		mustUser(t, c, org, u.ID, lifecycle.Created)
		ids[name] = u.ID
	}
	ids["new"] = org.AddUser("new", "new@example.com").ID
	ids["noMail"] = org.AddUser("noMail", "").ID
	ids["neverExisted"] = store.NewID()
	org.UpdateUser(ids["drifted"], func(d *store.DirectoryUser) { d.GivenName = "Drifted" })
	org.SetActive(ids["deactivated"], false)
	org.DeleteUser(ids["deleted"])
	org.DeleteUser(ids["recreated"])
	ids["recreatedNew"] = org.AddUser("recreated", "recreated@example.com").ID
	if err := org.Store.SupersedeInvites(context.Background(), org.ID, org.MustMember(ids["reinvite"]).ID); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestBatchDecidesAsSingleConverges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		one, batch := jobstest.NewOrg(t, s), jobstest.NewOrg(t, s)
		oneIDs, batchIDs := mixedOrg(t, c, one), mixedOrg(t, c, batch)
		before := len(batch.Audit())

		var ids []string
		for _, id := range batchIDs {
			ids = append(ids, id, id) // every user twice
		}
		plans, err := c.ApplyUsers(ctx, batch.ID, ids)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]lifecycle.Outcome{}
		for _, p := range plans {
			if _, dup := got[p.DirectoryUserID]; dup {
				t.Errorf("directory user %s converged twice in one batch", p.DirectoryUserID)
			}
			got[p.DirectoryUserID] = p.Outcome()
		}
		// One by one in the batch's order (by id; ids follow creation, so
		// a deleted user comes before its recreation).
		byID := map[string]string{}
		for name, id := range oneIDs {
			byID[id] = name
		}
		want := map[string]lifecycle.Outcome{}
		for _, id := range sorted(slices.Collect(maps.Keys(byID))...) {
			o, err := c.ConvergeUser(ctx, one.ID, id)
			if err != nil {
				t.Fatal(err)
			}
			want[batchIDs[byID[id]]] = o
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("batch outcomes (-single +batch):\n%s", diff)
		}
		wantOutcomes := map[string]lifecycle.Outcome{
			"new": lifecycle.Created, "inStep": lifecycle.Unchanged, "drifted": lifecycle.Updated,
			"deactivated": lifecycle.Updated, "deleted": lifecycle.Removed, "noMail": lifecycle.Unchanged,
			"neverExisted": lifecycle.Unchanged, "recreated": lifecycle.Removed, "recreatedNew": lifecycle.Created,
			"reinvite": lifecycle.Updated,
		}
		for name, o := range wantOutcomes {
			if got[batchIDs[name]] != o {
				t.Errorf("%s: outcome %q, want %q", name, got[batchIDs[name]], o)
			}
		}
		for name := range oneIDs {
			if diff := cmp.Diff(snapshot(t, s, one, oneIDs[name]), snapshot(t, s, batch, batchIDs[name])); diff != "" {
				t.Errorf("%s: state (-single +batch):\n%s", name, diff)
			}
		}
		// One audit event per change, as the single converges wrote.
		wantAudit := one.Audit()[before:]
		gotAudit := batch.Audit()[before:]
		if diff := cmp.Diff(sorted(wantAudit...), sorted(gotAudit...)); diff != "" {
			t.Errorf("audit of the batch (-single +batch):\n%s", diff)
		}

		// Again: nothing left to do.
		plans, err = c.ApplyUsers(ctx, batch.ID, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range plans {
			if p.Outcome() != lifecycle.Unchanged {
				t.Errorf("second batch: %s %s", p.DirectoryUserID, p.Outcome())
			}
		}
	})
}

// TestBatchOfOnePerson converges, in one batch, directory users that
// provision the same person: only one may get the member, and a user
// replacing a stale membership of another in the batch must see it gone.
func TestBatchOfOnePerson(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		first := org.AddUser("ada", "ada@example.com")
		second := org.AddUser("ada2", "ADA@example.com")
		old := org.AddUser("bob", "bob@example.com")
		mustUser(t, c, org, old.ID, lifecycle.Created)
		org.DeleteUser(old.ID)
		recreated := org.AddUser("bob", "bob@example.com")

		plans, err := c.ApplyUsers(ctx, org.ID, []string{first.ID, second.ID, old.ID, recreated.ID})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, p := range plans {
			actions = append(actions, p.Action.AuditAction())
		}
		want := []string{"member.provision", "member.skip", "member.remove", "member.provision"}
		if diff := cmp.Diff(sorted(want...), sorted(actions...)); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
		_, firstOK := org.Member(first.ID)
		_, secondOK := org.Member(second.ID)
		if firstOK == secondOK {
			t.Errorf("memberships for one person: first %v, second %v; want exactly one", firstOK, secondOK)
		}
		if _, ok := org.Member(old.ID); ok {
			t.Error("stale membership kept")
		}
		m := org.MustMember(recreated.ID)
		if diff := cmp.Diff([]inviteView{{SendNumber: 1}}, invites(org, m.ID)); diff != "" {
			t.Errorf("invites of the recreated user (-want +got):\n%s", diff)
		}
	})
}

func TestConcurrentOverlappingBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		var ids []string
		for i := range 40 {
			ids = append(ids, org.AddUser(fmt.Sprint("u", i), fmt.Sprintf("u%d@example.com", i)).ID)
		}
		g := org.AddGroup("Engineering", ids[:20]...)

		var wg sync.WaitGroup
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Overlapping windows, each in an order of its own.
				batch := append([]string(nil), ids[w*5:min(w*5+20, len(ids))]...)
				rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
				if _, err := c.ApplyUsers(ctx, org.ID, batch); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := c.ConvergeGroup(ctx, org.ID, g.ID); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := c.ConvergeUser(ctx, org.ID, ids[7]); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()

		// Whatever ran first, the state is the one state, with one invite
		// and one provision event per member.
		mustGroup(t, c, org, g.ID, lifecycle.Unchanged)
		for i, id := range ids {
			want := state{Status: lifecycle.StatusPendingSetup, InviteSends: 1, Invites: []inviteView{{SendNumber: 1}}}
			if i < 20 {
				want.Groups = 1
			}
			if diff := cmp.Diff(want, snapshot(t, s, org, id)); diff != "" {
				t.Errorf("user %d state (-want +got):\n%s", i, diff)
			}
		}
		provisions := 0
		for _, a := range org.Audit() {
			if a == "member.provision" {
				provisions++
			}
		}
		if provisions != len(ids) {
			t.Errorf("%d provision events, want %d", provisions, len(ids))
		}
	})
}

// failingInviter fails to issue invites to one e-mail address.
type failingInviter struct {
	converge.Inviter
	email string
}

var errMailboxOnFire = errors.New("mailbox on fire")

func (f *failingInviter) Decide(ctx context.Context, tx *store.Store, orgID, membershipID string, sendNumber int) (store.OutboxRow, bool, error) {
	m, err := tx.Membership(ctx, orgID, membershipID)
	if err != nil {
		return store.OutboxRow{}, false, err
	}
	if m.Email == f.email {
		return store.OutboxRow{}, false, errMailboxOnFire
	}
	return f.Inviter.Decide(ctx, tx, orgID, membershipID, sendNumber)
}

func (f *failingInviter) DecideFirst(ctx context.Context, tx *store.Store, orgID string, membershipIDs []string) ([]store.OutboxRow, error) {
	var rows []store.OutboxRow
	for _, id := range membershipIDs {
		row, _, err := f.Decide(ctx, tx, orgID, id, 1)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func TestBatchWithAFailingUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		fail := &failingInviter{Inviter: c.Invites, email: "bad@example.com"}
		c.Invites = fail
		org := jobstest.NewOrg(t, s)
		good1 := org.AddUser("good1", "good1@example.com")
		bad := org.AddUser("bad", "bad@example.com")
		good2 := org.AddUser("good2", "good2@example.com")
		ids := []string{good1.ID, bad.ID, good2.ID}

		plans, err := c.ApplyUsers(ctx, org.ID, ids)
		if !errors.Is(err, errMailboxOnFire) || !strings.Contains(err.Error(), bad.ID) {
			t.Fatalf("ApplyUsers error = %v; want the failure, naming %s", err, bad.ID)
		}
		got := map[string]lifecycle.Outcome{}
		for _, p := range plans {
			got[p.DirectoryUserID] = p.Outcome()
		}
		if diff := cmp.Diff(map[string]lifecycle.Outcome{good1.ID: lifecycle.Created, good2.ID: lifecycle.Created}, got); diff != "" {
			t.Errorf("converged despite one failure (-want +got):\n%s", diff)
		}
		if _, ok := org.Member(bad.ID); ok {
			t.Error("the failed user's converge was partly committed")
		}

		// The retry of the whole batch finishes the failed user and finds
		// the others done.
		fail.email = ""
		plans, err = c.ApplyUsers(ctx, org.ID, ids)
		if err != nil {
			t.Fatal(err)
		}
		got = map[string]lifecycle.Outcome{}
		for _, p := range plans {
			got[p.DirectoryUserID] = p.Outcome()
		}
		want := map[string]lifecycle.Outcome{good1.ID: lifecycle.Unchanged, bad.ID: lifecycle.Created, good2.ID: lifecycle.Unchanged}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("retry (-want +got):\n%s", diff)
		}
		for _, id := range ids {
			if diff := cmp.Diff([]inviteView{{SendNumber: 1}}, invites(org, org.MustMember(id).ID)); diff != "" {
				t.Errorf("invites of %s (-want +got):\n%s", id, diff)
			}
		}
	})
}

func TestGroupBatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		u := org.AddUser("ada", "ada@example.com")
		mustUser(t, c, org, u.ID, lifecycle.Created)
		inStep := org.AddGroup("In step", u.ID)
		mustGroup(t, c, org, inStep.ID, lifecycle.Created)
		gone := org.AddGroup("Gone")
		mustGroup(t, c, org, gone.ID, lifecycle.Created)
		org.DeleteGroup(gone.ID)
		fresh := org.AddGroup("Fresh", u.ID)

		plans, err := c.ApplyGroups(ctx, org.ID, []string{inStep.ID, gone.ID, fresh.ID, fresh.ID})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]lifecycle.Outcome{}
		for _, p := range plans {
			got[p.DirectoryGroupID] = p.Outcome()
		}
		want := map[string]lifecycle.Outcome{inStep.ID: lifecycle.Unchanged, gone.ID: lifecycle.Removed, fresh.ID: lifecycle.Created}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{org.MustMember(u.ID).ID}, org.GroupMembers(fresh.ID)); diff != "" {
			t.Errorf("members of the new group (-want +got):\n%s", diff)
		}
	})
}
