package reconciler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/connectors"
	_ "github.com/scimsync/scimsync/connectors/okta" // the type these tests store
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// harness is one organization on a fresh store, its reconciler, and the
// real converge to play the worker's part. Everything reads one fake
// clock, which the connector's waits advance.
type harness struct {
	t     *testing.T
	ctx   context.Context
	clock *clock.Fake
	st    *store.Store
	org   store.Org
	svc   *admin.Service
	r     *reconciler.Reconciler
	conv  *converge.Converger
	idp   *oktafake.Server
}

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, b storetest.Backend) *harness {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(epoch, clock.SleepAdvances)
	st := storetest.Open(t, b, store.Options{Clock: clk})
	org, err := st.CreateOrg(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	box, err := secret.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	src := &source.Opener{Store: st, Box: box, Options: connectors.Options{Logger: log, Retry: connectors.RetryPolicy{
		MaxRetries: 1, MaxRateLimitWaits: 3, Clock: clk,
	}}}
	svc := &admin.Service{Store: st, Connectors: src}
	inv := &invite.Service{Store: st, Log: log, Config: invite.Config{PublicURL: "http://app.test", TTL: 7 * 24 * time.Hour, ResendAfter: 24 * time.Hour, MaxSends: 3}}
	r := &reconciler.Reconciler{
		Store: st, Directories: src, Invites: inv, Log: log, Metrics: reconciler.NewMetrics(prometheus.NewRegistry()), Clock: clk,
		Policy: reconciler.Policy{Guard: 0.1, InviteResendAfter: 24 * time.Hour, InviteMaxSends: 3},
	}
	conv := &converge.Converger{Store: st, Invites: inv}
	svc.Converger = conv
	return &harness{t: t, ctx: ctx, clock: clk, st: st, org: org, svc: svc, r: r, conv: conv}
}

// connectOkta gives the organization an Okta connector to a new fake.
func (h *harness) connectOkta(opts ...oktafake.Option) *oktafake.Server {
	h.t.Helper()
	h.idp = oktafake.New(h.t, append([]oktafake.Option{oktafake.WithClock(h.clock.Now)}, opts...)...)
	settings, _ := json.Marshal(map[string]string{"orgUrl": h.idp.URL()})
	creds, _ := json.Marshal(map[string]string{"apiToken": h.idp.Token()})
	if _, err := h.svc.PutConnector(h.ctx, h.org.ID, "okta", settings, creds); err != nil {
		h.t.Fatal(err)
	}
	return h.idp
}

// addOktaUsers adds n users named from prefix and returns them.
func (h *harness) addOktaUsers(prefix string, n int) []oktafake.User {
	out := make([]oktafake.User, n)
	for i := range n {
		out[i] = h.idp.AddUser(oktafake.User{Email: fmt.Sprintf("%s%03d@example.com", prefix, i), FirstName: "Given", LastName: fmt.Sprintf("%s%03d", prefix, i)})
	}
	return out
}

func (h *harness) reconcile(opts reconciler.Options) (store.SyncRun, reconciler.Plan) {
	h.t.Helper()
	if opts.Trigger == "" {
		opts.Trigger = reconciler.TriggerCLI
	}
	run, err := h.r.Reconcile(h.ctx, h.org.ID, opts)
	if err != nil {
		h.t.Fatalf("Reconcile: %v", err)
	}
	var p reconciler.Plan
	if err := json.Unmarshal([]byte(run.Plan), &p); err != nil {
		h.t.Fatalf("plan %q: %v", run.Plan, err)
	}
	return run, p
}

func (h *harness) mustStatus(run store.SyncRun, want string) {
	h.t.Helper()
	if run.Status != want {
		h.t.Fatalf("run status = %s (error %q), want %s", run.Status, run.Error, want)
	}
}

// items returns a run's items as "action detail" lines, sorted.
func (h *harness) items(run store.SyncRun) []string {
	h.t.Helper()
	var out []string
	err := h.st.EachSyncRunItem(h.ctx, h.org.ID, run.ID, func(items []store.SyncRunItem) error {
		for _, it := range items {
			out = append(out, it.Action+" "+it.Detail)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// itemsOf returns the details of a run's items with one action, sorted.
func (h *harness) itemsOf(run store.SyncRun, action string) []string {
	var out []string
	for _, it := range h.items(run) {
		if a, d, _ := strings.Cut(it, " "); a == action {
			out = append(out, d)
		}
	}
	return out
}

// takeOutbox returns the outbox rows written since the last call, marking
// them sent.
func (h *harness) takeOutbox() []store.OutboxRow {
	h.t.Helper()
	return storetest.TakeOutbox(h.t, h.st)
}

// replay puts rows back into the outbox, for converge to run.
func (h *harness) replay(rows []store.OutboxRow) {
	h.t.Helper()
	if err := h.st.AddOutbox(h.ctx, rows...); err != nil {
		h.t.Fatal(err)
	}
}

// outboxKinds counts the work of rows by "type/queue": a row of a batch
// task counts once for each entity it carries.
func outboxKinds(rows []store.OutboxRow) map[string]int {
	out := map[string]int{}
	for _, r := range rows {
		n := 1
		if r.TaskType == task.TypeConvergeUsers || r.TaskType == task.TypeConvergeGroups {
			var p task.ConvergeBatch
			json.Unmarshal(r.Payload, &p)
			n = len(p.IDs)
		}
		out[r.TaskType+"/"+r.Queue] += n
	}
	return out
}

// converge plays the worker: it runs the converge of every converge row in
// the outbox, until none is left. Other rows (invite e-mails) are taken but
// not run; it returns them.
func (h *harness) converge() (others []store.OutboxRow) {
	h.t.Helper()
	for {
		rows := h.takeOutbox()
		n := 0
		for _, r := range rows {
			// Every converge row as the batch it is or would be relayed in.
			var p task.ConvergeBatch
			batch := r.TaskType
			switch r.TaskType {
			case task.TypeConvergeUser, task.TypeConvergeGroup:
				org, id, err := task.EntityID(r.TaskType, r.Payload)
				if err != nil {
					h.t.Fatal(err)
				}
				p, batch = task.ConvergeBatch{OrgID: org, IDs: []string{id}}, task.BatchType(r.TaskType)
			case task.TypeConvergeUsers, task.TypeConvergeGroups:
				if err := json.Unmarshal(r.Payload, &p); err != nil {
					h.t.Fatal(err)
				}
			default:
				others = append(others, r)
				continue
			}
			var err error
			if batch == task.TypeConvergeUsers {
				_, err = h.conv.ApplyUsers(h.ctx, p.OrgID, p.IDs)
			} else {
				_, err = h.conv.ApplyGroups(h.ctx, p.OrgID, p.IDs)
			}
			if err != nil {
				h.t.Fatalf("converge %s: %v", r.Payload, err)
			}
			n++
		}
		if n == 0 {
			return others
		}
	}
}

// settle reconciles and converges, and checks that a second reconciliation
// finds nothing left to do: the plan mirrors converge.
func (h *harness) settle() {
	h.t.Helper()
	run, _ := h.reconcile(reconciler.Options{})
	h.mustStatus(run, store.RunSucceeded)
	h.converge()
	h.mustBeSettled()
}

func (h *harness) mustBeSettled() {
	h.t.Helper()
	run, p := h.reconcile(reconciler.Options{})
	h.mustStatus(run, store.RunSucceeded)
	var left []string
	for _, it := range h.items(run) {
		// Skips and keeps are standing notes, not changes.
		if a, _, _ := strings.Cut(it, " "); a != lifecycle.Skip.PlanItem() && a != lifecycle.Keep.PlanItem() {
			left = append(left, it)
		}
	}
	if len(left) > 0 {
		h.t.Fatalf("after converging, the next plan still has %d items: %q", len(left), left[:min(len(left), 10)])
	}
	if p.Applied == nil || p.Applied.OutboxRows != 0 {
		h.t.Fatalf("settled run applied %+v, want no outbox rows", p.Applied)
	}
	h.takeOutbox()
}

// dirUsers returns the organization's directory users by external id (or
// userName for rows without one).
func (h *harness) dirUsers() map[string]store.DirectoryUser {
	h.t.Helper()
	out := map[string]store.DirectoryUser{}
	if err := h.st.EachDirectoryUser(h.ctx, h.org.ID, func(u store.DirectoryUser) error {
		k := u.ExternalID
		if k == "" {
			k = u.UserName
		}
		out[k] = u
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// member returns the membership linked to a directory user, or nil.
func (h *harness) member(directoryUserID string) *store.Membership {
	h.t.Helper()
	m, err := h.st.MembershipByDirectoryUser(h.ctx, h.org.ID, directoryUserID)
	if err != nil {
		return nil
	}
	return &m
}

// seedMember creates a membership for a directory user directly, as an
// earlier converge would have.
func (h *harness) seedMember(d store.DirectoryUser, role, status string) store.Membership {
	h.t.Helper()
	u, err := h.st.EnsureUser(h.ctx, d.Email)
	if err != nil {
		h.t.Fatal(err)
	}
	m := store.Membership{OrgID: h.org.ID, UserID: u.ID, DirectoryUserID: d.ID, Status: status, Role: role, Email: d.Email,
		FirstName: d.GivenName, LastName: d.FamilyName, Source: d.Source, ExternalID: d.ExternalID}
	if err := h.st.CreateMembership(h.ctx, &m); err != nil {
		h.t.Fatal(err)
	}
	return m
}
