package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// recordOf is the audit event and outbox row a test writes with user id.
func recordOf(org, id string) store.Record {
	return store.Record{
		Audit:  store.AuditEvent{OrgID: org, Actor: "scim:token:t1", Action: "user.create", EntityType: "directory_user", EntityID: id},
		Outbox: store.OutboxRow{OrgID: org, TaskType: "converge:user", TaskID: "task-" + id, Payload: []byte(`{"id":"` + id + `"}`)},
	}
}

// pendingOutbox reads the unsent outbox rows.
func pendingOutbox(t *testing.T, s *store.Store) []store.OutboxRow {
	t.Helper()
	return storetest.PendingOutbox(t, s)
}

func TestCreateDirectoryUserRecorded(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		u := newUser(a.ID, "Ann@X.com", "ext-1")
		u.ID, u.GivenName, u.FamilyName, u.DisplayName, u.RawStatus = store.NewID(), "Ann", "Lee", "Ann Lee", "active"
		u.Attributes = `{"userName":"Ann@X.com"}`
		if err := s.CreateDirectoryUserRecorded(ctx, u, recordOf(a.ID, u.ID)); err != nil {
			t.Fatal(err)
		}
		if u.Version != 1 || u.UserNameKey != "ann@x.com" || u.EmailKey != "ann@x.com" || u.CreatedAt.IsZero() || !u.UpdatedAt.Equal(u.CreatedAt) {
			t.Errorf("filled fields: %+v", u)
		}
		got, err := s.DirectoryUser(ctx, a.ID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(*u, got); diff != "" {
			t.Errorf("read back (-written +read):\n%s", diff)
		}
		events, _ := s.AuditEvents(ctx, a.ID, 0, 10)
		wantEvent := recordOf(a.ID, u.ID).Audit
		if len(events) != 1 {
			t.Fatalf("audit events = %+v, want one", events)
		}
		if diff := cmp.Diff(wantEvent, events[0], cmpopts.IgnoreFields(store.AuditEvent{}, "ID", "CreatedAt")); diff != "" || events[0].CreatedAt.Before(u.CreatedAt) {
			t.Errorf("audit event (-want +got):\n%s\ncreated %v, user created %v", diff, events[0].CreatedAt, u.CreatedAt)
		}
		rows := pendingOutbox(t, s)
		wantRow := recordOf(a.ID, u.ID).Outbox
		wantRow.Queue = "default"
		if len(rows) != 1 {
			t.Fatalf("outbox = %+v, want one row", rows)
		}
		if diff := cmp.Diff(wantRow, rows[0], cmpopts.IgnoreFields(store.OutboxRow{}, "ID", "CreatedAt")); diff != "" || rows[0].CreatedAt.Before(u.CreatedAt) {
			t.Errorf("outbox row (-want +got):\n%s", diff)
		}

		// A conflict writes nothing: no user, no event, no outbox row.
		tests := []struct {
			name, userName, externalID, field string
		}{
			{"userName, other case", "ANN@x.com", "ext-2", "userName"},
			{"externalId", "bob@x.com", "ext-1", "externalId"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dup := newUser(a.ID, tt.userName, tt.externalID)
				dup.ID = store.NewID()
				err := s.CreateDirectoryUserRecorded(ctx, dup, recordOf(a.ID, dup.ID))
				var ce *store.ConflictError
				if !errors.As(err, &ce) || ce.Field != tt.field {
					t.Fatalf("err = %v, want a conflict on %s", err, tt.field)
				}
				wantOnlyFirst(t, s, a.ID, dup.ID)
			})
		}

		// Inside a transaction it joins it: a rollback takes all three back.
		rolled := newUser(a.ID, "cy@x.com", "")
		rolled.ID = store.NewID()
		errAbort := errors.New("abort")
		err = s.Tx(ctx, func(tx *store.Store) error {
			if err := tx.CreateDirectoryUserRecorded(ctx, rolled, recordOf(a.ID, rolled.ID)); err != nil {
				return err
			}
			if _, err := tx.DirectoryUser(ctx, a.ID, rolled.ID); err != nil {
				t.Errorf("the transaction does not see its own user: %v", err)
			}
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			t.Fatalf("Tx = %v", err)
		}
		wantOnlyFirst(t, s, a.ID, rolled.ID)
	})
}

// wantOnlyFirst checks that a failed write of user id left nothing: no
// user, and the first write's audit event and outbox row alone.
func wantOnlyFirst(t *testing.T, s *store.Store, org, id string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.DirectoryUser(ctx, org, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("user of a failed write stored: %v", err)
	}
	if events, _ := s.AuditEvents(ctx, org, 0, 10); len(events) != 1 {
		t.Errorf("%d audit events, want the first write's alone", len(events))
	}
	if rows := pendingOutbox(t, s); len(rows) != 1 {
		t.Errorf("%d outbox rows, want the first write's alone", len(rows))
	}
}

func TestDirectoryUsersWithGroupsBy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, _ := s.CreateOrg(ctx, "A")
		b, _ := s.CreateOrg(ctx, "B")
		ann, bob, lone, foreign := newUser(a.ID, "Ann@x.com", "ext-a"), newUser(a.ID, "bob@x.com", "ext-b"),
			newUser(a.ID, "lone@x.com", ""), newUser(b.ID, "ann@x.com", "ext-a")
		bob.Email = "shared@x.com"
		lone.Email = "SHARED@x.com"
		for _, u := range []*store.DirectoryUser{ann, bob, lone, foreign} {
			if err := s.CreateDirectoryUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		var groups []*store.DirectoryGroup
		for _, name := range []string{"Eng", "Ops", "All"} {
			g := &store.DirectoryGroup{OrgID: a.ID, Source: "scim", DisplayName: name}
			if err := s.CreateDirectoryGroup(ctx, g); err != nil {
				t.Fatal(err)
			}
			groups = append(groups, g)
		}
		fg := &store.DirectoryGroup{OrgID: b.ID, Source: "scim", DisplayName: "Eng"}
		if err := s.CreateDirectoryGroup(ctx, fg); err != nil {
			t.Fatal(err)
		}
		members := map[*store.DirectoryGroup][]string{groups[0]: {ann.ID}, groups[1]: {ann.ID, bob.ID}, groups[2]: {bob.ID, ann.ID}, fg: {foreign.ID}}
		for g, ids := range members {
			if _, err := s.SetDirectoryGroupMembers(ctx, g.OrgID, g.ID, ids); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name      string
			org       string
			field     store.UserField
			value     string
			wantUsers int
		}{
			{"userName, other case", a.ID, store.ByUserName, "ANN@X.COM", 1},
			{"externalId", a.ID, store.ByExternalID, "ext-b", 1},
			{"e-mail shared by two", a.ID, store.ByEmail, "shared@x.com", 2},
			{"id", a.ID, store.ByID, ann.ID, 1},
			{"user without groups", a.ID, store.ByUserName, "lone@x.com", 1},
			{"no match", a.ID, store.ByUserName, "nobody@x.com", 0},
			{"another org's id", b.ID, store.ByID, ann.ID, 0},
			{"same userName in the other org", b.ID, store.ByUserName, "ann@x.com", 1},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				users, refs, err := s.DirectoryUsersWithGroupsBy(ctx, tt.org, tt.field, tt.value)
				if err != nil {
					t.Fatal(err)
				}
				if len(users) != tt.wantUsers {
					t.Fatalf("%d users, want %d", len(users), tt.wantUsers)
				}
				// The same as the two separate reads.
				wantUsers, err := s.DirectoryUsersBy(ctx, tt.org, tt.field, tt.value)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantUsers, users, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("users (-separate +joined):\n%s", diff)
				}
				ids := make([]string, len(users))
				for i, u := range users {
					ids[i] = u.ID
				}
				wantRefs, err := s.DirectoryGroupsOfUsers(ctx, tt.org, ids...)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(wantRefs, refs, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("groups (-separate +joined):\n%s", diff)
				}
			})
		}
		_, refs, _ := s.DirectoryUsersWithGroupsBy(ctx, a.ID, store.ByUserName, "ann@x.com")
		var names []string
		for _, r := range refs {
			names = append(names, r.DisplayName)
		}
		if diff := cmp.Diff([]string{"Eng", "Ops", "All"}, names); diff != "" {
			t.Errorf("ann's groups, in creation order (-want +got):\n%s", diff)
		}
		if _, _, err := s.DirectoryUsersWithGroupsBy(ctx, a.ID, store.UserField("attributes"), "x"); err == nil {
			t.Error("an unknown field is accepted")
		}
	})
}
