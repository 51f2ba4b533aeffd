package store_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// member creates a directory user and its membership in a new organization.
func member(t *testing.T, s *store.Store, email string) store.Membership {
	t.Helper()
	ctx := context.Background()
	o, err := s.CreateOrg(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	d := store.DirectoryUser{OrgID: o.ID, Source: "scim", UserName: email, Email: email, Active: true}
	if err := s.CreateDirectoryUser(ctx, &d); err != nil {
		t.Fatal(err)
	}
	u, err := s.EnsureUser(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	m := store.Membership{OrgID: o.ID, UserID: u.ID, DirectoryUserID: d.ID, Status: lifecycle.StatusPendingSetup, Email: email}
	if err := s.CreateMembership(ctx, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLocalStateIsScopedByOrganization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := member(t, s, "ada@example.com"), member(t, s, "ADA@example.com")
		if a.UserID != b.UserID {
			t.Error("one e-mail, two users")
		}
		if _, err := s.Membership(ctx, b.OrgID, a.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("membership of another organization: %v, want ErrNotFound", err)
		}
		if _, err := s.MembershipByDirectoryUser(ctx, b.OrgID, a.DirectoryUserID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("membership by another organization's directory user: %v, want ErrNotFound", err)
		}
		p, err := s.MembershipByEmail(ctx, a.OrgID, "Ada@Example.com")
		if err != nil || p.ID != a.ID || !p.DirectoryUserExists {
			t.Errorf("MembershipByEmail = %+v, %v", p, err)
		}
		dup := a
		dup.ID = ""
		if err := s.CreateMembership(ctx, &dup); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second membership of one user: %v, want ErrConflict", err)
		}
		if err := s.DeleteMembership(ctx, b.OrgID, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Membership(ctx, a.OrgID, a.ID); err != nil {
			t.Errorf("delete with another organization's id removed the membership: %v", err)
		}
	})
}

func TestIssueInviteRecordsADecisionOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := member(t, s, "ada@example.com")
		exp := s.Now().Add(time.Hour)
		for i, want := range []bool{true, false} {
			if _, ok, err := s.IssueInvite(ctx, m.OrgID, m.ID, 1, fmt.Sprint("hash-a", i), exp); err != nil || ok != want {
				t.Errorf("IssueInvite #1 attempt %d = %v, %v; want %v", i, ok, err, want)
			}
		}
		if _, ok, err := s.IssueInvite(ctx, m.OrgID, m.ID, 2, "hash-b", exp); err != nil || !ok {
			t.Fatalf("IssueInvite #2 = %v, %v", ok, err)
		}
		invs, err := s.Invites(ctx, m.OrgID, m.ID)
		if err != nil || len(invs) != 2 || invs[0].SupersededAt == nil || invs[1].SupersededAt != nil {
			t.Errorf("invites %+v, %v; want #1 superseded by #2", invs, err)
		}
		got, _ := s.Membership(ctx, m.OrgID, m.ID)
		if got.InviteSends != 2 || got.LastInvitedAt == nil {
			t.Errorf("membership counts %d sends, last %v", got.InviteSends, got.LastInvitedAt)
		}
	})
}

func TestInvitesForSending(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		exp := s.Now().Add(time.Hour)
		a, b := member(t, s, "ada@example.com"), member(t, s, "bob@example.com")
		invA, _, err := s.IssueInvite(ctx, a.OrgID, a.ID, 1, "hash-a", exp)
		if err != nil {
			t.Fatal(err)
		}
		invB, _, err := s.IssueInvite(ctx, b.OrgID, b.ID, 1, "hash-b", exp)
		if err != nil {
			t.Fatal(err)
		}
		org, _ := s.Org(ctx, a.OrgID)
		got, err := s.InvitesForSending(ctx, a.OrgID, []string{invA.ID, invB.ID, "nope"})
		if err != nil {
			t.Fatal(err)
		}
		// b's invite is another organization's: absent, like an unknown id.
		want := map[string]store.InviteToSend{invA.ID: {Invite: invA, MemberStatus: lifecycle.StatusPendingSetup,
			MemberEmail: "ada@example.com", OrgName: org.Name}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("InvitesForSending (-want +got):\n%s", diff)
		}
		if _, err := s.InviteForSending(ctx, a.OrgID, invB.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("InviteForSending of another organization's invite: %v, want ErrNotFound", err)
		}
	})
}

func TestClaimMailOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		msg := func() *store.MailMessage {
			return &store.MailMessage{OrgID: "o", IdempotencyKey: "k", Recipient: "a@example.com", Subject: "s", Status: store.MailSending}
		}
		for i, want := range []bool{true, false} {
			if ok, err := s.ClaimMail(ctx, msg()); err != nil || ok != want {
				t.Errorf("ClaimMail attempt %d = %v, %v; want %v", i, ok, err, want)
			}
		}
		if err := s.ReleaseMail(ctx, "o", "k"); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.ClaimMail(ctx, msg()); err != nil || !ok {
			t.Errorf("ClaimMail after release = %v, %v", ok, err)
		}
		if err := s.SetMailStatus(ctx, "o", "k", store.MailSent); err != nil {
			t.Fatal(err)
		}
		if err := s.ReleaseMail(ctx, "o", "k"); err != nil {
			t.Fatal(err)
		}
		if got, err := s.MailByKey(ctx, "o", "k"); err != nil || got.Status != store.MailSent {
			t.Errorf("a finished send was released: %+v, %v", got, err)
		}
	})
}

// A batch claim inserts each new key once, over as many statements as the
// backend takes rows in one, and reports only the keys it inserted.
func TestClaimMails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		msg := func(key string) store.MailMessage {
			return store.MailMessage{OrgID: "o", IdempotencyKey: key, Recipient: key + "@example.com", Subject: "s", Status: store.MailRecorded}
		}
		if ok, err := s.ClaimMail(ctx, ptr(msg("k1"))); err != nil || !ok {
			t.Fatalf("ClaimMail = %v, %v", ok, err)
		}
		n := s.BatchRows(8) + 5
		var ms []store.MailMessage
		want := map[string]bool{}
		for i := range n {
			k := fmt.Sprint("k", i)
			ms = append(ms, msg(k))
			want[k] = true
		}
		ms = append(ms, msg("k2")) // listed twice: inserted once
		got, err := s.ClaimMails(ctx, ms)
		if err != nil {
			t.Fatal(err)
		}
		delete(want, "k1") // claimed before
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ClaimMails (-want +got):\n%s", diff)
		}
		for _, k := range []string{"k0", "k1", "k2", fmt.Sprint("k", n-1)} {
			if m, err := s.MailByKey(ctx, "o", k); err != nil || m.Recipient != k+"@example.com" {
				t.Errorf("MailByKey(%s) = %+v, %v", k, m, err)
			}
		}
		again, err := s.ClaimMails(ctx, ms[:3])
		if err != nil || len(again) != 0 {
			t.Errorf("ClaimMails of claimed keys = %v, %v; want none", again, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// RecordInviteSent sets an open invite's token and marks it sent in one
// statement, and refuses an invite that is no longer open.
func TestRecordInviteSent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		m := member(t, s, "ada@example.com")
		exp := s.Now().Add(time.Hour)
		first, _, err := s.IssueInvite(ctx, m.OrgID, m.ID, 1, "hash-1", exp)
		if err != nil {
			t.Fatal(err)
		}
		later := exp.Add(time.Hour)
		if err := s.RecordInviteSent(ctx, m.OrgID, first.ID, "hash-sent", later); err != nil {
			t.Fatal(err)
		}
		got, err := s.Invite(ctx, m.OrgID, first.ID)
		if err != nil || got.TokenHash != "hash-sent" || !got.ExpiresAt.Equal(later) || got.SentAt == nil {
			t.Errorf("after RecordInviteSent: %+v, %v", got, err)
		}
		if _, _, err := s.IssueInvite(ctx, m.OrgID, m.ID, 2, "hash-2", exp); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordInviteSent(ctx, m.OrgID, first.ID, "hash-x", later); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RecordInviteSent of a superseded invite: %v, want ErrNotFound", err)
		}
	})
}

func TestClaimOutboxSkipsLockedRows(t *testing.T) {
	for _, b := range storetest.Backends() {
		if b.Name != "postgres" {
			continue // SQLite's write lock makes a second claim wait instead
		}
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, b, store.Options{})
			rows := make([]store.OutboxRow, 4)
			for i := range rows {
				rows[i] = store.OutboxRow{OrgID: "o", TaskType: "t", Payload: []byte("{}")}
			}
			if err := s.AddOutbox(ctx, rows...); err != nil {
				t.Fatal(err)
			}
			held := make(chan []store.OutboxRow)
			release := make(chan struct{})
			done := make(chan error)
			go func() {
				done <- s.Tx(ctx, func(tx *store.Store) error {
					got, err := tx.ClaimOutbox(ctx, 2)
					held <- got
					<-release
					return err
				})
			}()
			first := <-held
			var second []store.OutboxRow
			if err := s.Tx(ctx, func(tx *store.Store) (err error) {
				second, err = tx.ClaimOutbox(ctx, 10)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(first) != 2 || len(second) != 2 || first[1].ID >= second[0].ID {
				t.Errorf("claims %v and %v; want disjoint halves", ids(first), ids(second))
			}
		})
	}
}

func ids(rows []store.OutboxRow) []int64 {
	var out []int64
	for _, r := range rows {
		out = append(out, r.ID)
	}
	return out
}

func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"not found", store.ErrNotFound, false},
		{"plain", errors.New("boom"), false},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false},
		{"unique violation", fmt.Errorf("create: %w", &pgconn.PgError{Code: "23505"}), false},
		{"connection failure", fmt.Errorf("get token: %w", &pgconn.PgError{Code: "08006"}), true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"refused", fmt.Errorf("get token: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), true},
		{"bad conn", fmt.Errorf("exec: %w", driver.ErrBadConn), true},
		{"conn closed", fmt.Errorf("exec: %w", pgconn.ErrConnClosed), true},
		{"cut mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"protocol violation", &pgconn.PgError{Code: "08P01"}, false},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, false},
		{"caller cancelled", fmt.Errorf("get token: %w", context.Canceled), false},
		{"caller's deadline", fmt.Errorf("get token: %w", context.DeadlineExceeded), false},
		{"sqlite busy", sqliteBusy(t), true},
		{"sqlite text that says busy", errors.New("SQLITE_BUSY"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := store.IsUnavailable(tc.err); got != tc.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// sqliteBusy is the error of a write to a SQLite file another connection
// holds the write lock of, with no busy timeout to wait it out.
func sqliteBusy(t *testing.T) error {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	holder, writer := open(), open()
	if _, err := holder.Exec("CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")
	_, err = writer.Exec("INSERT INTO t VALUES (1)")
	if err == nil {
		t.Fatal("a write beside a held write lock succeeded")
	}
	return err
}
