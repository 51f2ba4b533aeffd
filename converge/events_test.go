package converge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// feed reads an organization's change feed from where it last stopped.
type feed struct {
	t     *testing.T
	s     *store.Store
	orgID string
	after int64
}

// next returns the events since the last call as "type entity", checking
// that their sequences follow on with no gap.
func (f *feed) next() []string {
	f.t.Helper()
	evs := f.events()
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type + " " + e.EntityID
	}
	return out
}

func (f *feed) events() []store.Event {
	f.t.Helper()
	ctx := context.Background()
	cur, err := f.s.EventCursor(ctx, f.orgID)
	if err != nil {
		f.t.Fatal(err)
	}
	evs, err := f.s.Events(ctx, f.orgID, f.after, cur.Latest, 1000, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range evs {
		if e.Sequence != f.after+1 {
			f.t.Fatalf("event %s has sequence %d after %d: a gap", e.Type, e.Sequence, f.after)
		}
		f.after = e.Sequence
	}
	return evs
}

// expect checks the events since the last call.
func (f *feed) expect(step string, want ...string) []store.Event {
	f.t.Helper()
	evs := f.events()
	got := make([]string, len(evs))
	for i, e := range evs {
		got[i] = e.Type + " " + e.EntityID
	}
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		f.t.Errorf("%s: events (-want +got):\n%s", step, diff)
	}
	return evs
}

func memberData(t *testing.T, e store.Event) store.Membership {
	t.Helper()
	var m store.Membership
	if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
		t.Fatalf("%s data: %v", e.Type, err)
	}
	return m
}

// Every path that changes local state writes its event in the same
// transaction, with the entity as the admin API shows it; a converge that
// changes nothing (a replay) writes none.
func TestEventsOfEachChange(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		inv := c.Invites.(*invite.Service)
		org := jobstest.NewOrg(t, s)
		f := &feed{t: t, s: s, orgID: org.ID}

		a := org.AddUser("ada", "ada@example.com")
		mustUser(t, c, org, a.ID, lifecycle.Created)
		ma := org.MustMember(a.ID)
		evs := f.expect("provision", "member.provisioned "+ma.ID)
		if got := memberData(t, evs[0]); got.Status != lifecycle.StatusPendingSetup || got.InviteSends != 1 || got.Email != "ada@example.com" {
			t.Errorf("provisioned member = %+v, want pending setup, invited once", got)
		}
		mustUser(t, c, org, a.ID, lifecycle.Unchanged)
		f.expect("replay")

		// The member as GET /members shows it is the event's data, byte for byte.
		shown, err := s.Members(ctx, org.ID, "", "", 10)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(shown[0])
		if string(want) != evs[0].Data {
			t.Errorf("event data %s, GET /members shows %s", evs[0].Data, want)
		}

		inv0 := org.Invites(ma.ID)[0]
		if _, err := inv.Send(ctx, org.ID, inv0.ID); err != nil {
			t.Fatal(err)
		}
		rec, err := s.MailByKey(ctx, org.ID, invite.MailKey(inv0))
		if err != nil {
			t.Fatal(err)
		}
		f.expect("invite sent") // the e-mail changes no member
		if _, err := inv.Accept(ctx, jobstest.Token(t, rec.TextBody)); err != nil {
			t.Fatal(err)
		}
		if evs := f.expect("accept", "member.activated "+ma.ID); len(evs) == 1 && memberData(t, evs[0]).Status != lifecycle.StatusActive {
			t.Errorf("activated member's status = %q", memberData(t, evs[0]).Status)
		}

		org.UpdateUser(a.ID, func(d *store.DirectoryUser) { d.GivenName = "Augusta" })
		mustUser(t, c, org, a.ID, lifecycle.Updated)
		if evs := f.expect("rename", "member.updated "+ma.ID); len(evs) == 1 && memberData(t, evs[0]).FirstName != "Augusta" {
			t.Errorf("updated member's first name = %q", memberData(t, evs[0]).FirstName)
		}

		org.SetActive(a.ID, false)
		mustUser(t, c, org, a.ID, lifecycle.Updated)
		f.expect("deactivate", "member.deprovisioned "+ma.ID)
		mustUser(t, c, org, a.ID, lifecycle.Unchanged)
		f.expect("replay of deactivate")
		org.SetActive(a.ID, true)
		mustUser(t, c, org, a.ID, lifecycle.Updated)
		f.expect("reactivate", "member.reactivated "+ma.ID)

		// Groups: created with its members, renamed, members changed, deleted.
		b := org.AddUser("bob", "bob@example.com")
		mustUser(t, c, org, b.ID, lifecycle.Created)
		mb := org.MustMember(b.ID)
		f.expect("provision bob", "member.provisioned "+mb.ID)
		g := org.AddGroup("Engineering", a.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Created)
		lg, err := s.LocalGroupByDirectoryGroup(ctx, org.ID, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		evs = f.expect("group create", "group.created "+lg.ID, "group.member_added "+lg.ID)
		if len(evs) == 2 {
			var v store.GroupView
			var added store.GroupMemberChange
			json.Unmarshal([]byte(evs[0].Data), &v)
			json.Unmarshal([]byte(evs[1].Data), &added)
			if v.Name != "Engineering" || v.MemberCount != 1 || v.Members[0].UserID != ma.UserID {
				t.Errorf("created group = %+v", v)
			}
			if added.Group.ID != lg.ID || added.Member.ID != ma.ID {
				t.Errorf("member added = %+v", added)
			}
		}
		mustGroup(t, c, org, g.ID, lifecycle.Unchanged)
		f.expect("group replay")
		org.UpdateGroup(g.ID, "Eng", a.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Updated)
		f.expect("group rename", "group.updated "+lg.ID)
		org.UpdateGroup(g.ID, "Eng", b.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Updated)
		f.expect("group members", "group.member_added "+lg.ID, "group.member_removed "+lg.ID)

		// A member provisioned into an existing group is linked by its own converge.
		d := org.AddUser("dora", "dora@example.com")
		org.UpdateGroup(g.ID, "Eng", b.ID, d.ID)
		mustUser(t, c, org, d.ID, lifecycle.Created)
		md := org.MustMember(d.ID)
		evs = f.expect("provision into a group", "member.provisioned "+md.ID, "group.member_added "+lg.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Unchanged)
		f.expect("group already in step")

		org.DeleteGroup(g.ID)
		mustGroup(t, c, org, g.ID, lifecycle.Removed)
		if evs := f.expect("group delete", "group.deleted "+lg.ID); len(evs) == 1 {
			var v store.GroupView
			json.Unmarshal([]byte(evs[0].Data), &v)
			if v.Name != "Eng" || v.MemberCount != 2 {
				t.Errorf("deleted group as it was last = %+v, want Eng with 2 members", v)
			}
		}

		// Role mapping: joining the admin group makes an admin.
		mapAdmins(t, s, org)
		org.AddGroup("Admins", b.ID)
		mustUser(t, c, org, b.ID, lifecycle.Updated)
		if evs := f.expect("role mapped", "member.updated "+mb.ID); len(evs) == 1 && memberData(t, evs[0]).Role != lifecycle.RoleAdmin {
			t.Errorf("role = %q, want admin", memberData(t, evs[0]).Role)
		}

		org.DeleteUser(a.ID)
		mustUser(t, c, org, a.ID, lifecycle.Removed)
		if evs := f.expect("delete", "member.removed "+ma.ID); len(evs) == 1 && memberData(t, evs[0]).FirstName != "Augusta" {
			t.Errorf("removed member as it was last = %+v", memberData(t, evs[0]))
		}
		mustUser(t, c, org, a.ID, lifecycle.Unchanged)
		f.expect("replay of delete")

		assertAuditedChangesHaveEvents(t, s, org.ID)
	})
}

// assertAuditedChangesHaveEvents fails when an audited change of a member
// or group that has an event type has no event of its entity: a path that
// changes local state without an event.
func assertAuditedChangesHaveEvents(t *testing.T, s *store.Store, orgID string) {
	t.Helper()
	ctx := context.Background()
	cur, err := s.EventCursor(ctx, orgID)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, orgID, 0, cur.Latest, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, e := range evs {
		have[e.Type+" "+e.EntityID] = true
	}
	audits, err := s.AuditEvents(ctx, orgID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	byAction := map[string]string{"member.activate": lifecycle.EventMemberActivated}
	for d := lifecycle.None; d <= lifecycle.GroupDelete; d++ {
		if d.EventType() != "" && d != lifecycle.Invite && d != lifecycle.Promote {
			byAction[d.AuditAction()] = d.EventType()
		}
	}
	checked := 0
	for _, a := range audits {
		typ, ok := byAction[a.Action]
		if !ok {
			continue
		}
		checked++
		if !have[typ+" "+a.EntityID] {
			t.Errorf("audit %s of %s %s has no %s event", a.Action, a.EntityType, a.EntityID, typ)
		}
	}
	if checked == 0 {
		t.Error("no audited change to check")
	}
}

// Converges of one organization running at once commit in sequence order:
// a reader paging with after while they run never skips an event, and the
// sequences have no gap.
func TestConcurrentConvergesCommitInSequenceOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		const writers, batches, perBatch = 2, 5, 10
		ids := make([][]string, writers)
		for w := range writers {
			for i := range batches * perBatch {
				ids[w] = append(ids[w], org.AddUser(fmt.Sprintf("u%d-%d", w, i), fmt.Sprintf("u%d-%d@example.com", w, i)).ID)
			}
		}
		var wg sync.WaitGroup
		done := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < len(ids[w]); i += perBatch {
					if _, err := c.ApplyUsers(ctx, org.ID, ids[w][i:i+perBatch]); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		go func() { wg.Wait(); close(done) }()

		// The reader pages as an application would, by the cursor alone.
		seen := map[int64]bool{}
		var after int64
		read := func() int {
			cur, err := s.EventCursor(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := s.Events(ctx, org.ID, after, cur.Latest, 7, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.Sequence <= after {
					t.Fatalf("sequence %d after cursor %d", e.Sequence, after)
				}
				seen[e.Sequence] = true
				after = e.Sequence
			}
			if len(evs) < 7 {
				after = max(after, cur.Latest)
			}
			return len(evs)
		}
	loop:
		for {
			select {
			case <-done:
				break loop
			default:
				read()
			}
		}
		// The writers may have finished pages ahead of the reader: it
		// reads on until a page comes back short, as an application
		// catching up would.
		for read() == 7 {
		}
		total := int64(writers * batches * perBatch)
		if after != total || int64(len(seen)) != total {
			t.Errorf("reader ended at %d having seen %d events; want all %d, none skipped", after, len(seen), total)
		}
		all := (&feed{t: t, s: s, orgID: org.ID}).next() // checks there is no gap
		if len(all) != int(total) {
			t.Errorf("%d events, want %d", len(all), total)
		}
	})
}

// An operator's settlement of a kept last admin writes the events of what
// it changes: the new admin's role, and the kept admin's removal; a
// refused one writes none.
func TestSettleEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newConverger(s)
		org := jobstest.NewOrg(t, s)
		mapAdmins(t, s, org)
		ann, bob := org.AddUser("ann", "ann@example.com"), org.AddUser("bob", "bob@example.com")
		g := org.AddGroup("admins", ann.ID)
		mustUser(t, c, org, ann.ID, lifecycle.Created)
		mustUser(t, c, org, bob.ID, lifecycle.Created)
		ma, mb := org.MustMember(ann.ID), org.MustMember(bob.ID)
		f := &feed{t: t, s: s, orgID: org.ID}
		f.next()
		org.DeleteUser(ann.ID)
		mustUser(t, c, org, ann.ID, lifecycle.Kept)
		f.expect("kept") // kept back: nothing changed

		if _, err := c.SettleAdmin(ctx, org.ID, ma.ID, converge.Settlement{NewAdminMemberID: mb.ID}); err == nil {
			t.Fatal("bob outside the admin group was accepted as the new admin")
		}
		f.expect("refused settlement")

		org.UpdateGroup(g.ID, "admins", bob.ID)
		if _, err := c.SettleAdmin(ctx, org.ID, ma.ID, converge.Settlement{NewAdminMemberID: mb.ID}); err != nil {
			t.Fatal(err)
		}
		evs := f.expect("settlement", "member.updated "+mb.ID, "member.removed "+ma.ID)
		if len(evs) == 2 && memberData(t, evs[0]).Role != lifecycle.RoleAdmin {
			t.Errorf("new admin's role = %q", memberData(t, evs[0]).Role)
		}
		mustUser(t, c, org, bob.ID, lifecycle.Unchanged)
		f.expect("bob in step")
		assertAuditedChangesHaveEvents(t, s, org.ID)
	})
}
