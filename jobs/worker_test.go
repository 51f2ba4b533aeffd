package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/internal/metricstest"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/jobs/mail/mailtest"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

const publicURL = "https://app.test"

// pipeline is the whole path from outbox to local state: relay, asynq
// server with the handlers, converge, invites and mail.
type pipeline struct {
	org     *jobstest.Org
	relay   *jobs.Relay
	invites *invite.Service
	insp    *asynq.Inspector
	reg     *prometheus.Registry
}

// startPipeline runs the pipeline for org's store until the test ends,
// with concurrency workers (8 when 0) and sender for mail (nil: record).
func startPipeline(t testing.TB, org *jobstest.Org, sender mail.Sender, concurrency int) *pipeline {
	t.Helper()
	br := brokertest.Open(t)
	client := asynq.NewClient(br.Opt)
	t.Cleanup(func() { client.Close() })
	return startPipelineVia(t, org, sender, concurrency, br.Opt, client)
}

// startPipelineVia is startPipeline with the worker on Redis opt and the
// relay enqueueing through client.
func startPipelineVia(t testing.TB, org *jobstest.Org, sender mail.Sender, concurrency int, opt asynq.RedisConnOpt, client jobs.Enqueuer) *pipeline {
	t.Helper()
	s := org.Store
	if concurrency == 0 {
		concurrency = 8
	}
	reg := prometheus.NewRegistry()
	relay := jobs.NewRelay(s, client, jobstest.Discard, reg, jobs.RelayConfig{})
	inv := &invite.Service{Store: s, Mail: sender, Log: jobstest.Discard, Notify: relay.Notify,
		Config: invite.Config{PublicURL: publicURL, TTL: 7 * 24 * time.Hour, ResendAfter: 24 * time.Hour, MaxSends: 5}}
	conv := &converge.Converger{Store: s, Invites: inv, Notify: relay.Notify}

	cfg := jobs.ServerConfig(jobstest.Discard, concurrency, 5*time.Second)
	cfg.LogLevel = asynq.FatalLevel
	// Retry at once, so a test sees the second attempt without waiting.
	cfg.RetryDelayFunc = func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond }
	cfg.DelayedTaskCheckInterval = 50 * time.Millisecond
	srv := asynq.NewServer(opt, cfg)
	mux := asynq.NewServeMux()
	jobs.Register(mux, jobs.Handlers{Converger: conv, Invites: inv}, reg)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { relay.Run(ctx); close(done) }()
	insp := asynq.NewInspector(opt)
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Shutdown()
		insp.Close()
	})
	return &pipeline{org: org, relay: relay, invites: inv, insp: insp, reg: reg}
}

func (p *pipeline) count(t testing.TB, taskType, outcome string) float64 {
	t.Helper()
	return metricstest.Value(t, p.reg, "scimsync_jobs_total", map[string]string{"type": taskType, "outcome": outcome})
}

func smtpSender(t *testing.T, srv *mailtest.Server) mail.Sender {
	t.Helper()
	s, err := mail.NewSMTP(srv.URL(), "scimsync <no-reply@example.com>", mail.WithTLSConfig(srv.ClientTLS()), mail.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inviteLink returns the link of the nth accepted e-mail, checking its
// recipient.
func inviteLink(t *testing.T, srv *mailtest.Server, n int, to string) (link, token string) {
	t.Helper()
	msgs := srv.Messages()
	if len(msgs) < n {
		t.Fatalf("%d e-mails, want at least %d", len(msgs), n)
	}
	m := msgs[n-1]
	if diff := cmp.Diff([]string{to}, m.To); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	text, err := m.TextBody()
	if err != nil {
		t.Fatal(err)
	}
	token = jobstest.Token(t, text)
	link = invite.Link(publicURL, token)
	if !strings.Contains(text, link) {
		t.Errorf("e-mail lacks the link %s:\n%s", link, text)
	}
	if html, err := m.HTMLBody(); err != nil || !strings.Contains(html, token) {
		t.Errorf("HTML body lacks the token: %v", err)
	}
	return link, token
}

// TestLifecycle drives the whole path by writing directory state as SCIM
// does and watching local state, mail and the queues.
func TestLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		smtpd := mailtest.Start(t, mailtest.Options{StartTLS: true, User: "app", Password: "pw"})
		p := startPipeline(t, jobstest.NewOrg(t, s), smtpSender(t, smtpd), 0)
		org := p.org
		status := func(id string) string {
			m, ok := org.Member(id)
			if !ok {
				return "none"
			}
			return m.Status
		}

		u := org.AddUser("ada", "ada@example.com")
		g := org.AddGroup("Engineering", u.ID)
		p.relay.Notify()
		eventually(t, 10*time.Second, "a pending member and one invite e-mail", func() bool {
			return status(u.ID) == lifecycle.StatusPendingSetup && len(smtpd.Messages()) == 1
		})
		m := org.MustMember(u.ID)
		eventually(t, 10*time.Second, "the member in its group", func() bool { return len(org.GroupMembers(g.ID)) == 1 })
		if smtpd.Messages()[0].TLS != true || !smtpd.Messages()[0].Authenticated {
			t.Error("invite sent without STARTTLS and AUTH")
		}
		_, first := inviteLink(t, smtpd, 1, "ada@example.com")
		if acc, err := p.invites.Accept(ctx, first); err != nil || acc.Status != lifecycle.StatusActive {
			t.Fatalf("Accept = %+v, %v", acc, err)
		}
		if _, err := p.invites.Accept(ctx, first); !errors.Is(err, invite.ErrInvalid) {
			t.Errorf("second Accept = %v, want ErrInvalid", err)
		}

		org.SetActive(u.ID, false)
		p.relay.Notify()
		eventually(t, 10*time.Second, "deprovisioned", func() bool { return status(u.ID) == lifecycle.StatusDeprovisioned })
		if diff := cmp.Diff([]string{m.ID}, org.GroupMembers(g.ID)); diff != "" {
			t.Errorf("group links after deprovision (-want +got):\n%s", diff)
		}

		org.SetActive(u.ID, true)
		p.relay.Notify()
		eventually(t, 10*time.Second, "pending again with a second e-mail", func() bool {
			return status(u.ID) == lifecycle.StatusPendingSetup && len(smtpd.Messages()) == 2
		})
		_, second := inviteLink(t, smtpd, 2, "ada@example.com")
		if second == first {
			t.Fatal("re-activation reused the token")
		}
		if _, err := p.invites.Accept(ctx, first); !errors.Is(err, invite.ErrInvalid) {
			t.Errorf("old token after re-activation: %v, want ErrInvalid", err)
		}
		if _, err := p.invites.Accept(ctx, second); err != nil {
			t.Errorf("new token: %v", err)
		}

		org.DeleteUser(u.ID)
		p.relay.Notify()
		eventually(t, 10*time.Second, "membership removed", func() bool { return status(u.ID) == "none" })

		if n := len(smtpd.Messages()); n != 2 {
			t.Errorf("%d e-mails in all, want 2", n)
		}
		for _, q := range []string{task.QueueCritical, task.QueueDefault, task.QueueLow} {
			if archived, _ := p.insp.ListArchivedTasks(q); len(archived) > 0 {
				t.Errorf("archived tasks in %s: %+v", q, archived[0])
			}
		}
		if p.count(t, task.TypeConvergeUser, "created") != 1 || p.count(t, task.TypeSendInvite, "sent") != 2 {
			t.Errorf("metrics: converge created %v, invites sent %v", p.count(t, task.TypeConvergeUser, "created"), p.count(t, task.TypeSendInvite, "sent"))
		}
	})
}

func TestInviteMailFailures(t *testing.T) {
	tests := []struct {
		name     string
		failure  mailtest.Failure
		wantSent int
		wantLog  string
	}{
		{"4xx is retried", mailtest.Failure{Reply: &smtp.SMTPError{Code: 421, Message: "busy"}}, 1, store.MailSent},
		{"5xx is archived", mailtest.Failure{Reply: &smtp.SMTPError{Code: 550, Message: "no such mailbox"}}, 0, store.MailRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, s *store.Store) {
				smtpd := mailtest.Start(t, mailtest.Options{})
				smtpd.FailNext(tt.failure)
				p := startPipeline(t, jobstest.NewOrg(t, s), smtpSender(t, smtpd), 0)
				u := p.org.AddUser("ada", "ada@example.com")
				p.relay.Notify()
				var key string
				eventually(t, 10*time.Second, "the invite e-mail to be settled", func() bool {
					m, ok := p.org.Member(u.ID)
					if !ok {
						return false
					}
					invs := p.org.Invites(m.ID)
					if len(invs) == 0 {
						return false
					}
					key = invite.MailKey(invs[0])
					rec, err := s.MailByKey(context.Background(), p.org.ID, key)
					return err == nil && rec.Status == tt.wantLog
				})
				if got := len(smtpd.Messages()); got != tt.wantSent {
					t.Errorf("%d e-mails delivered, want %d", got, tt.wantSent)
				}
				if p.count(t, task.TypeSendInvites, "error")+p.count(t, task.TypeSendInvites, "failed") != 1 {
					t.Error("the failed attempt is not counted")
				}
				if tt.wantLog != store.MailRejected {
					return
				}
				eventually(t, 5*time.Second, "the task archived", func() bool {
					archived, _ := p.insp.ListArchivedTasks(task.QueueLow)
					return len(archived) == 1 && archived[0].Type == task.TypeSendInvites && archived[0].Retried == 0
				})
				audit := p.org.Audit()
				if audit[len(audit)-1] != "invite.send" {
					t.Errorf("audit %v, want invite.send last", audit)
				}
			})
		})
	}
}

// TestNothingLostWhileRedisIsDown writes directory changes while the
// relay cannot reach Redis; when it can again, every user is converged,
// in batches, with one invite each.
func TestNothingLostWhileRedisIsDown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		direct, proxied, px := redisThroughProxy(t)
		px.Down()
		p := startPipelineVia(t, jobstest.NewOrg(t, s), nil, 0, direct, proxied)
		var ids []string
		for i := range 30 {
			ids = append(ids, p.org.AddUser(fmt.Sprint("u", i), fmt.Sprintf("u%d@example.com", i)).ID)
			p.relay.Notify()
		}
		gone := ids[29]
		p.org.DeleteUser(gone)
		if got := backlog(t, s); got != 31 {
			t.Errorf("backlog while Redis is down = %d, want all 31 rows", got)
		}
		px.Up()
		eventually(t, 20*time.Second, "every user converged", func() bool {
			return backlog(t, s) == 0 && p.count(t, task.TypeConvergeUser, "created") >= 29
		})
		for _, id := range ids[:29] {
			m := p.org.MustMember(id)
			if n := len(p.org.Invites(m.ID)); n != 1 || m.Status != lifecycle.StatusPendingSetup {
				t.Errorf("user %s: status %s, %d invites; want pending with one", id, m.Status, n)
			}
		}
		eventually(t, 10*time.Second, "the invite e-mails recorded", func() bool { return p.count(t, task.TypeSendInvite, "recorded") == 29 })
		if _, ok := p.org.Member(gone); ok {
			t.Error("the deleted user got a membership")
		}
	})
}

// fakeConverger fails each listed directory user once.
type fakeConverger struct {
	converge.Converger
	mu       sync.Mutex
	failOnce map[string]bool
	calls    [][]string
}

func (f *fakeConverger) ApplyUsers(_ context.Context, orgID string, ids []string) ([]converge.UserPlan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, ids)
	var (
		ps   []converge.UserPlan
		errs []error
	)
	for _, id := range ids {
		if f.failOnce[id] {
			delete(f.failOnce, id)
			errs = append(errs, fmt.Errorf("converge user %s: database on fire", id))
			continue
		}
		ps = append(ps, converge.UserPlan{OrgID: orgID, DirectoryUserID: id, Action: lifecycle.Provision})
	}
	return ps, errors.Join(errs...)
}

func TestBatchWithAFailingUserIsRetried(t *testing.T) {
	reg := prometheus.NewRegistry()
	mux := asynq.NewServeMux()
	conv := &fakeConverger{failOnce: map[string]bool{"u2": true}}
	jobs.Register(mux, jobs.Handlers{Converger: conv}, reg)
	batch := asynq.NewTask(task.TypeConvergeUsers, []byte(`{"orgId":"o","ids":["u1","u2","u3"]}`))

	err := mux.ProcessTask(context.Background(), batch)
	if err == nil || errors.Is(err, asynq.SkipRetry) || !strings.Contains(err.Error(), "u2") {
		t.Fatalf("first run = %v; want a retryable error naming u2", err)
	}
	p := &pipeline{reg: reg}
	if got := p.count(t, task.TypeConvergeUser, "created"); got != 2 {
		t.Errorf("created after the failed run = %v, want the 2 that converged", got)
	}
	if err := mux.ProcessTask(context.Background(), batch); err != nil {
		t.Fatalf("retry = %v", err)
	}
	if got := p.count(t, task.TypeConvergeUser, "created"); got != 5 {
		t.Errorf("created after the retry = %v, want 5 (the retry converges the whole batch again)", got)
	}
}

func TestHandlersArchiveBadPayloads(t *testing.T) {
	reg := prometheus.NewRegistry()
	mux := asynq.NewServeMux()
	jobs.Register(mux, jobs.Handlers{}, reg)
	for _, tt := range []struct{ typ, payload string }{
		{task.TypeConvergeUser, `{`},
		{task.TypeConvergeGroup, `{"orgId":"o"}`},
		{task.TypeSendInvite, `{"inviteId":"i"}`},
		{task.TypeConvergeUsers, `[`},
		{task.TypeConvergeUsers, `{"orgId":"o"}`},
		{task.TypeConvergeGroups, `{"ids":["g"]}`},
		{task.TypeSendInvites, `{"orgId":"o"}`},
		{task.TypeReconcile, `{"runId":"r"}`},
		{task.TypeReconcile, `"o"`},
	} {
		err := mux.ProcessTask(context.Background(), asynq.NewTask(tt.typ, []byte(tt.payload)))
		if !errors.Is(err, asynq.SkipRetry) {
			t.Errorf("%s %s: %v, want SkipRetry", tt.typ, tt.payload, err)
		}
	}
}

type reconcileFunc func(context.Context, task.Reconcile) (string, error)

func (f reconcileFunc) RunTask(ctx context.Context, p task.Reconcile) (string, error) {
	return f(ctx, p)
}

// Reconcile tasks go through the handler wrapper: they are counted, and a
// reconciler's SkipRetry archives them as a failure.
func TestReconcileTasksAreCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	mux := asynq.NewServeMux()
	var got []task.Reconcile
	rec := reconcileFunc(func(_ context.Context, p task.Reconcile) (string, error) {
		got = append(got, p)
		switch p.OrgID {
		case "gone":
			return "", fmt.Errorf("reconcile: org not found: %w", asynq.SkipRetry)
		case "down":
			return "", errors.New("reconcile: database down")
		}
		return "ran", nil
	})
	jobs.Register(mux, jobs.Handlers{Reconciler: rec}, reg)
	ctx := context.Background()
	slot := time.Unix(1772409600, 0)
	row := task.ReconcileRow("o1", "r1")
	for _, tk := range []*asynq.Task{asynq.NewTask(row.TaskType, row.Payload), jobs.NewTask(task.ScheduledReconcileRow("o1", slot))} {
		if err := mux.ProcessTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	want := []task.Reconcile{{OrgID: "o1", RunID: "r1"}, {OrgID: "o1", ScheduledAt: slot.Unix()}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("reconciler got (-want +got):\n%s", d)
	}
	err := mux.ProcessTask(ctx, jobs.NewTask(task.ScheduledReconcileRow("gone", slot)))
	if !errors.Is(err, asynq.SkipRetry) || strings.Count(err.Error(), asynq.SkipRetry.Error()) != 1 {
		t.Errorf("org gone: %v, want SkipRetry once", err)
	}
	if err := mux.ProcessTask(ctx, jobs.NewTask(task.ScheduledReconcileRow("down", slot))); err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Errorf("database down: %v, want a retryable error", err)
	}
	p := &pipeline{reg: reg}
	for outcome, n := range map[string]float64{"ran": 2, "failed": 1, "error": 1} {
		if c := p.count(t, task.TypeReconcile, outcome); c != n {
			t.Errorf("scimsync_jobs_total{type=reconcile:org,outcome=%s} = %v, want %v", outcome, c, n)
		}
	}
}
