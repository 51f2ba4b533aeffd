package invite_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/store"
)

// fakeSender fails with its queued errors, then accepts.
type fakeSender struct {
	mu   sync.Mutex
	errs []error
	sent []mail.Message
}

func (f *fakeSender) Send(_ context.Context, m mail.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return err
	}
	f.sent = append(f.sent, m)
	return nil
}

func TestSend(t *testing.T) {
	transient := errors.New("smtp: connect: connection refused")
	tests := []struct {
		name       string
		errs       []error
		want       []invite.SendOutcome // per attempt; "" for an error
		wantStatus string
		wantSent   int
		wantErr    error
	}{
		{"accepted", nil, []invite.SendOutcome{invite.Sent, invite.Duplicate}, store.MailSent, 1, nil},
		{"transient failure is retried with a new token", []error{transient}, []invite.SendOutcome{"", invite.Sent}, store.MailSent, 1, nil},
		{"rejected is final", []error{fmt.Errorf("smtp: %w: 550", mail.ErrRejected)}, []invite.SendOutcome{"", invite.Duplicate}, store.MailRejected, 0, mail.ErrRejected},
		{"uncertain is final", []error{fmt.Errorf("smtp: %w", mail.ErrUncertain)}, []invite.SendOutcome{"", invite.Duplicate}, store.MailUncertain, 0, mail.ErrUncertain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeSender{errs: tt.errs}
			eachEnv(t, func() mail.Sender { fs.sent = nil; fs.errs = tt.errs; return fs }, func(t *testing.T, e *env) {
				ctx := context.Background()
				m, inv := e.provision(t, "ada")
				var got []invite.SendOutcome
				var firstErr error
				for range tt.want {
					out, err := e.inv.Send(ctx, e.org.ID, inv.ID)
					if err != nil && firstErr == nil {
						firstErr = err
					}
					got = append(got, out)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("outcomes (-want +got):\n%s", diff)
				}
				if tt.wantErr != nil && !errors.Is(firstErr, tt.wantErr) {
					t.Errorf("error %v, want %v", firstErr, tt.wantErr)
				}
				rec, err := e.store.MailByKey(ctx, e.org.ID, invite.MailKey(inv))
				if err != nil || rec.Status != tt.wantStatus || rec.Recipient != "ada@example.com" {
					t.Errorf("mail log %+v, %v; want status %q", rec, err, tt.wantStatus)
				}
				if rec.TextBody != "" || rec.HTMLBody != "" {
					t.Error("mail log keeps the body (and its token) of an e-mail sent over SMTP")
				}
				if len(fs.sent) != tt.wantSent {
					t.Fatalf("sent %d e-mails, want %d", len(fs.sent), tt.wantSent)
				}
				if tt.wantSent == 1 {
					msg := fs.sent[0]
					tok := jobstest.Token(t, msg.Text)
					if !strings.Contains(msg.Text, invite.Link("https://app.test", tok)) || !strings.Contains(msg.HTML, tok) || msg.To != m.Email {
						t.Errorf("message %+v", msg)
					}
					if _, err := e.inv.Accept(ctx, tok); err != nil {
						t.Errorf("the token in the e-mail does not work: %v", err)
					}
				}
				if tt.wantStatus == store.MailRejected {
					audit := e.org.Audit()
					if audit[len(audit)-1] != "invite.send" {
						t.Errorf("audit %v, want invite.send last", audit)
					}
				}
			})
		})
	}
}

func TestSendObsolete(t *testing.T) {
	eachEnv(t, func() mail.Sender { return &fakeSender{} }, func(t *testing.T, e *env) {
		ctx := context.Background()
		m, first := e.provision(t, "ada")
		mustIssue(t, e, m.ID, 2)
		if out, err := e.inv.Send(ctx, e.org.ID, first.ID); err != nil || out != invite.Obsolete {
			t.Errorf("Send of a superseded invite = %q, %v", out, err)
		}
		e.org.DeleteUser(m.DirectoryUserID)
		if _, err := e.conv.ConvergeUser(ctx, e.org.ID, m.DirectoryUserID); err != nil {
			t.Fatal(err)
		}
		if out, err := e.inv.Send(ctx, e.org.ID, first.ID); err != nil || out != invite.Obsolete {
			t.Errorf("Send for a removed member = %q, %v", out, err)
		}
	})
}

func TestRecordedMailHidesTokenFromLogs(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		var logs syncbuf.Buffer // the summary may be written later, by a timer
		e.inv.Log = jobstest.TextLogger(&logs)
		_, inv := e.provision(t, "ada")
		tok := e.send(t, inv)
		if strings.Contains(logs.String(), tok) || strings.Contains(logs.String(), "token=") {
			t.Errorf("log shows the token:\n%s", logs.String())
		}
		if !strings.Contains(logs.String(), "not sent") {
			t.Errorf("log does not say the e-mail was not sent:\n%s", logs.String())
		}
	})
}

// Each invite's outcome is a DEBUG line; INFO gets a summary every few
// seconds instead, so a first pull of 100k members is not 100k INFO lines.
func TestInviteOutcomesAreDebugLines(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		var logs syncbuf.Buffer
		e.inv.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		for _, name := range []string{"ada", "grace", "alan"} {
			_, inv := e.provision(t, name)
			e.send(t, inv)
		}
		if logs.String() != "" {
			t.Errorf("three sends logged at INFO:\n%s", logs.String())
		}
	})
}

// Without a mail server, a batch records each invite's e-mail once, in
// one transaction, and its tokens work; a batch relayed again records
// nothing more.
func TestSendAllRecords(t *testing.T) {
	eachEnv(t, nil, func(t *testing.T, e *env) {
		ctx := context.Background()
		_, ada := e.provision(t, "ada")
		_, grace := e.provision(t, "grace")
		alan, superseded := e.provision(t, "alan")
		mustIssue(t, e, alan.ID, 2)
		ids := []string{ada.ID, grace.ID, ada.ID, superseded.ID}
		got, err := e.inv.SendAll(ctx, e.org.ID, ids)
		want := []invite.SendOutcome{invite.Recorded, invite.Recorded, invite.Duplicate, invite.Obsolete}
		if diff := cmp.Diff(want, got); err != nil || diff != "" {
			t.Fatalf("SendAll: %v (-want +got):\n%s", err, diff)
		}
		got, err = e.inv.SendAll(ctx, e.org.ID, ids)
		want = []invite.SendOutcome{invite.Duplicate, invite.Duplicate, invite.Duplicate, invite.Obsolete}
		if diff := cmp.Diff(want, got); err != nil || diff != "" {
			t.Fatalf("SendAll again: %v (-want +got):\n%s", err, diff)
		}
		evs, err := e.store.AuditEvents(ctx, e.org.ID, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var sends []string
		for _, ev := range evs {
			if ev.Action == "invite.send" {
				sends = append(sends, ev.EntityID+" "+ev.Outcome+" "+ev.Detail)
			}
		}
		wantSends := []string{grace.MembershipID + " recorded invite #1", ada.MembershipID + " recorded invite #1"} // newest first
		if diff := cmp.Diff(wantSends, sends); diff != "" {
			t.Errorf("audit events of the sends (-want +got):\n%s", diff)
		}
		for _, inv := range []store.Invite{ada, grace} {
			if got := e.latest(t, inv.MembershipID); got.SentAt == nil {
				t.Errorf("invite of %s not marked sent", inv.MembershipID)
			}
			rec, err := e.store.MailByKey(ctx, e.org.ID, invite.MailKey(inv))
			if err != nil || rec.Status != store.MailRecorded {
				t.Fatalf("mail log %+v, %v", rec, err)
			}
			if _, err := e.inv.Accept(ctx, jobstest.Token(t, rec.TextBody)); err != nil {
				t.Errorf("the recorded token of %s does not work: %v", rec.Recipient, err)
			}
		}
	})
}

// With a mail server each invite is sent on its own: a failure leaves the
// others sent, and a retry of the batch sends only the failed one, while a
// failure no retry can change is retried only along with one that can.
func TestSendAllRetriesOnlyTheFailed(t *testing.T) {
	transient := errors.New("smtp: connect: connection refused")
	rejected := fmt.Errorf("smtp: %w: 550", mail.ErrRejected)
	tests := []struct {
		name      string
		errs      []error // of the first attempt's sends, in order
		want      []invite.SendOutcome
		wantErr   error // errors.Is the first attempt's error
		terminal  bool  // whether that error wraps mail.ErrRejected
		wantRetry []invite.SendOutcome
		wantSent  int // e-mails sent in the end
	}{
		{"transient", []error{transient}, []invite.SendOutcome{invite.Sent, invite.Sent}, transient, false,
			[]invite.SendOutcome{invite.Sent, invite.Duplicate, invite.Duplicate}, 3},
		{"rejected", []error{rejected}, []invite.SendOutcome{invite.Sent, invite.Sent}, mail.ErrRejected, true,
			[]invite.SendOutcome{invite.Duplicate, invite.Duplicate, invite.Duplicate}, 2},
		{"rejected and transient", []error{rejected, transient}, []invite.SendOutcome{invite.Sent}, transient, false,
			[]invite.SendOutcome{invite.Duplicate, invite.Sent, invite.Duplicate}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeSender{}
			eachEnv(t, func() mail.Sender { fs.sent, fs.errs = nil, tt.errs; return fs }, func(t *testing.T, e *env) {
				ctx := context.Background()
				var ids []string
				for _, name := range []string{"ada", "grace", "alan"} {
					_, inv := e.provision(t, name)
					ids = append(ids, inv.ID)
				}
				got, err := e.inv.SendAll(ctx, e.org.ID, ids)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("first attempt (-want +got):\n%s", diff)
				}
				if !errors.Is(err, tt.wantErr) || errors.Is(err, mail.ErrRejected) != tt.terminal {
					t.Errorf("first attempt's error %v, want one that wraps %v (terminal %t)", err, tt.wantErr, tt.terminal)
				}
				got, err = e.inv.SendAll(ctx, e.org.ID, ids)
				if diff := cmp.Diff(tt.wantRetry, got); err != nil || diff != "" {
					t.Errorf("retry: %v (-want +got):\n%s", err, diff)
				}
				to := map[string]int{}
				for _, m := range fs.sent {
					to[m.To]++
				}
				if len(fs.sent) != tt.wantSent || len(to) != tt.wantSent {
					t.Errorf("sent %d e-mails to %v, want %d, each to another member", len(fs.sent), to, tt.wantSent)
				}
			})
		})
	}
}
