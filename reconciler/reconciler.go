package reconciler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
)

// Triggers: what started a run.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
	TriggerCLI      = "cli"
)

// GuardMinimum is how many deprovisions and removals a plan may always
// make, whatever the guard's share.
const GuardMinimum = 5

// Directories opens an organization's connector (source.Opener is one). It
// returns an error matching store.ErrNotFound when the organization has
// none, and the connector type, which pulled rows carry as their source.
type Directories interface {
	Directory(ctx context.Context, orgID string) (connectors.Directory, string, error)
}

// InviteResender issues the invites due again (invite.Service is one).
type InviteResender interface {
	SendDue(ctx context.Context, orgID string, now time.Time) ([]invite.Due, error)
}

// Policy bounds what a run may do.
type Policy struct {
	// Guard is the share of an organization's members that one run may
	// deprovision or remove (the same share of its local groups it may
	// delete) without an operator's confirmation; above it, and above
	// GuardMinimum, the run is blocked. The zero value blocks any run that
	// removes more than GuardMinimum.
	Guard float64
	// InviteResendAfter and InviteMaxSends say when an unaccepted invite is
	// due again; with InviteMaxSends 0 none is.
	InviteResendAfter time.Duration
	InviteMaxSends    int
	// StaleAfter is how long a running run may go unmarked before another
	// run takes it for abandoned (default 2m). A live run marks itself every
	// HeartbeatEvery, so only a run whose process died goes silent.
	StaleAfter time.Duration
	// HeartbeatEvery is how often a live run marks itself alive (default a
	// quarter of StaleAfter).
	HeartbeatEvery time.Duration
	// MaxDuration bounds one run (default 6h); a run that takes longer fails.
	MaxDuration time.Duration
}

// PolicyFromConfig takes the policy from the process configuration.
func PolicyFromConfig(c config.Config) Policy {
	return Policy{Guard: c.DeprovisionGuard, InviteResendAfter: c.InviteResendAfter, InviteMaxSends: c.InviteMaxSends,
		StaleAfter: c.ReconcileStaleAfter}
}

func (p Policy) staleAfter() time.Duration {
	if p.StaleAfter <= 0 {
		return 2 * time.Minute
	}
	return p.StaleAfter
}

func (p Policy) heartbeatEvery() time.Duration {
	if p.HeartbeatEvery <= 0 {
		return p.staleAfter() / 4
	}
	return p.HeartbeatEvery
}

func (p Policy) maxDuration() time.Duration {
	if p.MaxDuration <= 0 {
		return 6 * time.Hour
	}
	return p.MaxDuration
}

// Reconciler runs reconciliations. Its fields are set before first use.
type Reconciler struct {
	Store       *store.Store
	Directories Directories
	// Invites re-sends due invites; nil plans re-sends but issues none.
	Invites InviteResender
	Policy  Policy
	Log     *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Notify, when set, is called after a run committed outbox rows, so
	// the relay need not wait for its next poll.
	Notify func()
	// Clock drives the heartbeat and times runs and their phases (default
	// the real clock).
	Clock clock.Clock
}

// Options say how to run one reconciliation.
type Options struct {
	// DryRun plans and records the plan, and changes nothing else.
	DryRun bool
	// AllowMassDeprovision confirms a plan above the deprovision guard.
	AllowMassDeprovision bool
	// ConfirmedRemovals and ConfirmedGroupDeletions, when set, bound the
	// confirmation: a plan with more is blocked again.
	ConfirmedRemovals, ConfirmedGroupDeletions *int
	// ConfirmedLosses, when set, is the Guard.Losses of the plan reviewed:
	// a plan that takes away others is blocked again.
	ConfirmedLosses string
	// Trigger is recorded on the run.
	Trigger string
	// RunID names a queued run (created by the admin API) to carry out; its
	// own DryRun, AllowMassDeprovision and bounds apply. Empty starts a new
	// run.
	RunID string
	// Progress, when set, is called after each page a pull writes.
	Progress func(Progress)
	// Slot is the schedule slot of a scheduled run (zero for others): a
	// slot that has a run already is not run again (store.ErrSlotRan).
	Slot time.Time
	// Full asks for a full pull where a delta would do.
	Full bool
}

// Progress is how far a run's pull has come.
type Progress struct {
	Phase                  string // "users", "groups" or "members"
	Pages                  int
	Users, Groups, Members int
}

// Plan is a run's plan and outcome as recorded on the run. The first five
// counts are the API's contract; the rest explain them.
type Plan struct {
	Provision    int `json:"provision"`
	Update       int `json:"update"`
	Deprovision  int `json:"deprovision"`
	ResendInvite int `json:"resendInvite"`
	GroupChanges int `json:"groupChanges"`
	// Remove counts members whose directory user is gone.
	Remove int `json:"remove"`
	// Skip counts directory users converge cannot provision; Keep the
	// changes left out on purpose (the last admin).
	Skip int `json:"skip"`
	Keep int `json:"keep"`
	// Members is how many directory-managed memberships the organization
	// had when the run planned.
	Members int        `json:"members"`
	Guard   Guard      `json:"guard"`
	Pull    *PullStats `json:"pull,omitempty"`
	Applied *Applied   `json:"applied,omitempty"`
	Timings Timings    `json:"timings"`
}

// Guard is the deprovision guard's verdict on a plan.
type Guard struct {
	// Share is the part of the members the plan deprovisions or removes
	// (0 to 1); Limit is the configured share above which the guard trips.
	Share float64 `json:"share"`
	Limit float64 `json:"limit"`
	// Removals are the planned deprovisions and removals; GroupDeletions
	// the planned deletions of local groups.
	Removals       int  `json:"removals"`
	GroupDeletions int  `json:"groupDeletions"`
	Tripped        bool `json:"tripped"`
	// Confirmed: an operator allowed the plan although the guard tripped.
	Confirmed bool   `json:"confirmed"`
	Reason    string `json:"reason,omitempty"`
	// Losses digests who and what a tripped plan takes away (its
	// deprovisions, removals and group deletions), so that a confirmation
	// can name the plan it was given for.
	Losses string `json:"losses,omitempty"`
}

// PullStats describe a run's pull.
type PullStats struct {
	Source string `json:"source"`
	// Mode is store.PullFull or store.PullDelta.
	Mode         string `json:"mode"`
	Pages        int    `json:"pages"`
	Users        int    `json:"users"`
	Groups       int    `json:"groups"`
	GroupMembers int    `json:"groupMembers"`
	// SkippedUsers had no external id, so they cannot be tracked.
	SkippedUsers int `json:"skippedUsers,omitempty"`
	// A delta's deletions and leaves; its joins are GroupMembers.
	DeletedUsers  int `json:"deletedUsers,omitempty"`
	DeletedGroups int `json:"deletedGroups,omitempty"`
	Leaves        int `json:"leaves,omitempty"`
}

// Applied is what applying the plan did.
type Applied struct {
	OutboxRows    int   `json:"outboxRows"`
	InvitesResent int   `json:"invitesResent"`
	Deactivated   int64 `json:"deactivated"`
	UsersSwept    int64 `json:"usersSwept"`
	GroupsSwept   int64 `json:"groupsSwept"`
}

// Timings are how long each phase of a run took, in milliseconds.
type Timings struct {
	PullMS  int64 `json:"pullMs"`
	PlanMS  int64 `json:"planMs"`
	ApplyMS int64 `json:"applyMs"`
}

// Reconcile runs one reconciliation of an organization:
//
//  1. With a connector, it pulls a full snapshot of the IdP into the
//     directory tables (see store.WritePulledUsers). Without one, the
//     directory SCIM wrote is taken as it is.
//  2. It plans in the database: every difference between the directory (as
//     it will be once the run applies) and local state becomes an item of
//     the run, and the counts its plan.
//  3. Unless the run is a dry run, failed or blocked, it applies in one
//     transaction: the pull's deactivations and deletions reach the
//     directory, and a converge job per planned entity goes to the outbox.
//     Then due invites are re-sent.
//
// A pull that fails in any way, a plan the guard blocks and a dry run leave
// local state, the outbox and every directory row that could take access
// away untouched. The org's last admin is never deprovisioned, removed or
// demoted by a run.
//
// It returns the run as recorded. A run that failed or was blocked is no
// error: its Status and Error say what happened. The error reports a run
// that could not be carried out or recorded: an unknown organization,
// another run in progress (store.ErrRunBusy), a queued run already taken
// (store.ErrRunNotQueued), a slot already run (store.ErrSlotRan), or the
// database failing.
func (r *Reconciler) Reconcile(ctx context.Context, orgID string, opts Options) (store.SyncRun, error) {
	org, err := r.Store.Org(ctx, orgID)
	if err != nil {
		return store.SyncRun{}, fmt.Errorf("reconcile: %w", err)
	}
	run := store.SyncRun{ID: opts.RunID, OrgID: org.ID, Trigger: opts.Trigger, DryRun: opts.DryRun, AllowMassDeprovision: opts.AllowMassDeprovision,
		FullRequested: opts.Full, ConfirmedRemovals: opts.ConfirmedRemovals, ConfirmedGroupDeletions: opts.ConfirmedGroupDeletions,
		ConfirmedLosses: opts.ConfirmedLosses}
	if !opts.Slot.IsZero() {
		run.Slot = opts.Slot.Unix()
	}
	if err := r.Store.StartSyncRun(ctx, &run, r.Store.Now().Add(-r.Policy.staleAfter())); err != nil {
		return store.SyncRun{}, fmt.Errorf("reconcile org %s: %w", org.ID, err)
	}
	log := r.log().With("org", org.ID, "run", run.ID)
	log.InfoContext(ctx, "reconciliation started", "trigger", run.Trigger, "dry_run", run.DryRun)
	began := r.clk().Now()

	rctx, cancel := context.WithTimeout(ctx, r.Policy.maxDuration())
	defer cancel()
	e := &execution{r: r, org: org, run: run, log: log, progress: opts.Progress}
	stopHeartbeat := r.heartbeat(rctx, log, org.ID, run.ID)
	rctx, requests := connectors.CountRequests(rctx)
	status, runErr := e.execute(rctx)
	stopHeartbeat()

	errText := ""
	if runErr != nil {
		errText = runErr.Error()
	}
	plan, err := json.Marshal(e.plan)
	if err != nil {
		return run, fmt.Errorf("reconcile: encode plan: %w", err)
	}
	// Record the outcome even when ctx has ended: the run happened.
	fctx := context.WithoutCancel(ctx)
	if e.pulled.RunID != "" {
		if err := r.Store.ForgetPull(fctx, run.ID); err != nil {
			log.WarnContext(ctx, "dropping the pull's marks failed; the next run drops them", "err", err)
		}
	}
	if err := r.Store.FinishSyncRunPull(fctx, org.ID, run.ID, status, string(plan), errText, e.pages, e.ps.record(run, requests.Load())); err != nil {
		return run, fmt.Errorf("reconcile org %s: %w", org.ID, err)
	}
	r.Metrics.run(run.Trigger, status, r.clk().Now().Sub(began).Seconds())
	final, err := r.Store.SyncRun(fctx, org.ID, run.ID)
	if err != nil {
		return run, fmt.Errorf("reconcile: %w", err)
	}
	level := slog.LevelInfo
	if status != store.RunSucceeded {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "reconciliation finished", "status", status, "err", errText, "mode", e.ps.mode, "idp_requests", requests.Load(), "took", r.clk().Now().Sub(began).Round(time.Millisecond),
		"provision", e.plan.Provision, "update", e.plan.Update, "deprovision", e.plan.Deprovision, "remove", e.plan.Remove,
		"resend_invite", e.plan.ResendInvite, "group_changes", e.plan.GroupChanges)
	return final, nil
}

// heartbeat marks the run alive every HeartbeatEvery until stopped, so
// that a run busy in one long step (a slow IdP page, a large plan
// statement) is never taken for abandoned, while one whose process died is
// within StaleAfter.
func (r *Reconciler) heartbeat(ctx context.Context, log *slog.Logger, orgID, runID string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	// Made here rather than in the goroutine, so that it runs by the time
	// the run's first step starts.
	tick := r.clk().NewTicker(r.Policy.heartbeatEvery())
	go func() {
		defer close(done)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C():
				if err := r.Store.TouchSyncRun(ctx, orgID, runID); err != nil && ctx.Err() == nil {
					log.WarnContext(ctx, "marking the run alive failed", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (r *Reconciler) clk() clock.Clock { return clock.OrReal(r.Clock) }

func (r *Reconciler) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// execution is one run in progress.
type execution struct {
	r        *Reconciler
	org      store.Org
	run      store.SyncRun
	log      *slog.Logger
	progress func(Progress)
	plan     Plan
	pages    int
	// pulled is the run's pull, once it started.
	pulled store.Pull
	ps     pullState
}

// execute carries the run out and returns its final status; the error,
// when not nil, is the reason recorded on the run.
func (e *execution) execute(ctx context.Context) (string, error) {
	st := e.r.Store
	sc := store.PlanScope{OrgID: e.org.ID, RunID: e.run.ID, Snapshot: e.run.Snapshot, RoleMapping: e.org.RoleMapping}
	e.plan.Guard.Limit = e.r.Policy.Guard

	start := e.r.clk().Now()
	// The connector's row is read before it is opened: a change of its
	// settings in between leaves the cursor this run takes unsaved.
	conn, err := st.Connector(ctx, e.org.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.RunFailed, fmt.Errorf("read the connector: %w", err)
	}
	e.ps.conn = conn
	dir, source, err := e.r.Directories.Directory(ctx, e.org.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// SCIM only: the directory is what SCIM wrote.
	case err != nil:
		return store.RunFailed, fmt.Errorf("open the connector: %w", err)
	default:
		err := e.pullDirectory(ctx, dir, source, &e.ps, &sc)
		e.plan.Timings.PullMS = e.r.clk().Now().Sub(start).Milliseconds()
		if err != nil {
			return store.RunFailed, fmt.Errorf("pull from %s (%s): %w; nothing was changed", source, e.ps.mode, err)
		}
	}

	start = e.r.clk().Now()
	if err := e.planChanges(ctx, &sc); err != nil {
		return store.RunFailed, fmt.Errorf("plan: %w; nothing was changed", err)
	}
	e.plan.Timings.PlanMS = e.r.clk().Now().Sub(start).Milliseconds()
	g := &e.plan.Guard
	beyond := beyondConfirmed(*g, e.run)
	switch {
	case !g.Tripped:
	case e.run.AllowMassDeprovision && beyond == "":
		g.Confirmed = true
		e.log.WarnContext(ctx, "deprovision guard tripped; applying as confirmed", "reason", g.Reason)
	case e.run.DryRun:
		// The plan is the answer; the guard's verdict is in it.
	case e.run.AllowMassDeprovision:
		return store.RunBlocked, fmt.Errorf("%s; nothing was changed. Review the plan again, then confirm it", beyond)
	default:
		return store.RunBlocked, fmt.Errorf("%s; nothing was changed. Check the plan, then confirm with allowMassDeprovision", g.Reason)
	}
	if e.run.DryRun {
		return store.RunSucceeded, nil
	}

	start = e.r.clk().Now()
	applied, err := e.apply(ctx, sc)
	e.plan.Timings.ApplyMS = e.r.clk().Now().Sub(start).Milliseconds()
	if err != nil {
		return store.RunFailed, fmt.Errorf("apply: %w; nothing was changed", err)
	}
	e.plan.Applied = &applied
	if e.plan.ResendInvite > 0 && e.r.Invites != nil {
		sent, err := e.r.Invites.SendDue(ctx, e.org.ID, st.Now())
		applied.InvitesResent = len(sent)
		if err != nil {
			// The converges are queued; the next run re-sends what is still due.
			return store.RunSucceeded, fmt.Errorf("re-sending invites stopped after %d: %w", len(sent), err)
		}
	}
	return store.RunSucceeded, nil
}

// planChanges writes the plan's items and fills e.plan, the last admin
// kept out of it.
func (e *execution) planChanges(ctx context.Context, sc *store.PlanScope) error {
	st := e.r.Store
	members, err := st.CountMembers(ctx, e.org.ID)
	if err != nil {
		return err
	}
	e.plan.Members = members
	if err := st.PlanUsers(ctx, *sc); err != nil {
		return err
	}
	if sc.Keep, err = e.keepLastAdmin(ctx, *sc); err != nil {
		return err
	}
	if err := st.PlanGroups(ctx, *sc); err != nil {
		return err
	}
	if err := e.planResends(ctx); err != nil {
		return err
	}
	counts, err := st.CountSyncRunItems(ctx, e.org.ID, e.run.ID)
	if err != nil {
		return err
	}
	e.r.Metrics.plan(counts)
	if total(counts) >= 5000 {
		e.refreshStats(ctx, "sync_run_items") // reading the plan back goes by index
	}
	p := &e.plan
	p.Provision, p.Update, p.Deprovision, p.Remove = counts[lifecycle.Provision.PlanItem()], counts[lifecycle.Update.PlanItem()], counts[lifecycle.Deprovision.PlanItem()], counts[lifecycle.Remove.PlanItem()]
	p.ResendInvite, p.Skip, p.Keep = counts[lifecycle.ResendInvite.PlanItem()], counts[lifecycle.Skip.PlanItem()], counts[lifecycle.Keep.PlanItem()]
	p.GroupChanges = counts[lifecycle.GroupCreate.PlanItem()] + counts[lifecycle.GroupUpdate.PlanItem()] + counts[lifecycle.GroupDelete.PlanItem()]

	groups, err := st.CountLocalGroups(ctx, e.org.ID)
	if err != nil {
		return err
	}
	g := &p.Guard
	g.Removals, g.GroupDeletions = p.Deprovision+p.Remove, counts[lifecycle.GroupDelete.PlanItem()]
	g.Share = shareOf(g.Removals, members)
	switch {
	case exceeds(g.Removals, members, g.Limit):
		g.Tripped = true
		g.Reason = fmt.Sprintf("the plan deprovisions or removes %d of %d members (%.0f%%), more than the deprovision guard allows (%s and more than %d)",
			g.Removals, members, percent(g.Removals, members), sharePercent(g.Limit), GuardMinimum)
	case exceeds(g.GroupDeletions, groups, g.Limit):
		g.Tripped = true
		g.Reason = fmt.Sprintf("the plan deletes %d of %d groups (%.0f%%), more than the deprovision guard allows (%s and more than %d)",
			g.GroupDeletions, groups, percent(g.GroupDeletions, groups), sharePercent(g.Limit), GuardMinimum)
	}
	if g.Tripped {
		if g.Losses, err = lossesDigest(ctx, st, e.org.ID, e.run.ID); err != nil {
			return err
		}
	}
	return nil
}

// lossActions are the plan items a confirmation covers.
var lossActions = []string{lifecycle.Deprovision.PlanItem(), lifecycle.Remove.PlanItem(), lifecycle.GroupDelete.PlanItem()}

// IsLossesDigest reports whether s has the form of a Guard's Losses: a
// SHA-256 in lowercase hex.
func IsLossesDigest(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && s == strings.ToLower(s)
}

// lossesDigest is a SHA-256 over a run's loss items, each "action
// entity", sorted: two runs that take away the same members and groups
// have the same digest, whatever order they planned them in.
func lossesDigest(ctx context.Context, st *store.Store, orgID, runID string) (string, error) {
	var lines []string
	err := st.EachSyncRunItem(ctx, orgID, runID, func(items []store.SyncRunItem) error {
		for _, it := range items {
			lines = append(lines, it.Action+" "+it.EntityType+" "+it.EntityID)
		}
		return nil
	}, lossActions...)
	if err != nil {
		return "", fmt.Errorf("digest the plan's losses: %w", err)
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l+"\n")
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// beyondConfirmed says how a tripped guard's plan exceeds what the run's
// confirmation reviewed, "" when it does not: a confirmation covers the
// plan the operator read, not one that grew since.
func beyondConfirmed(g Guard, run store.SyncRun) string {
	switch {
	case run.ConfirmedRemovals != nil && g.Removals > *run.ConfirmedRemovals:
		return fmt.Sprintf("the plan now deprovisions or removes %d members, more than the %d confirmed", g.Removals, *run.ConfirmedRemovals)
	case run.ConfirmedGroupDeletions != nil && g.GroupDeletions > *run.ConfirmedGroupDeletions:
		return fmt.Sprintf("the plan now deletes %d groups, more than the %d confirmed", g.GroupDeletions, *run.ConfirmedGroupDeletions)
	case run.ConfirmedLosses != "" && g.Losses != run.ConfirmedLosses:
		return "the plan now takes away other members or groups than the ones confirmed"
	}
	return ""
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// exceeds is the guard's rule: more than GuardMinimum and more than share
// of total.
func exceeds(n, total int, share float64) bool {
	return n > GuardMinimum && float64(n) > share*float64(total)
}

func percent(n, total int) float64 {
	if total == 0 {
		return 100
	}
	return 100 * float64(n) / float64(total)
}

// shareOf is n of total as a part of 1; nothing of nothing is 0.
func shareOf(n, total int) float64 {
	if n == 0 {
		return 0
	}
	return percent(n, total) / 100
}

func sharePercent(share float64) string { return fmt.Sprintf("%g%%", share*100) }

// keepLastAdmin takes the plan's change away from the organization's last
// admin when the plan would leave it without one, and returns the directory
// user to leave alone.
func (e *execution) keepLastAdmin(ctx context.Context, sc store.PlanScope) ([]string, error) {
	st := e.r.Store
	admins, err := st.PlanAdminFates(ctx, sc)
	if err != nil || len(admins) == 0 {
		return nil, err
	}
	for _, a := range admins {
		if !a.Losing {
			return nil, nil
		}
	}
	kept := admins[0] // the oldest
	if err := st.DeleteSyncRunItems(ctx, e.org.ID, e.run.ID, kept.DirectoryUserID,
		lifecycle.Deprovision.PlanItem(), lifecycle.Remove.PlanItem(), lifecycle.Update.PlanItem()); err != nil {
		return nil, err
	}
	items := []store.SyncRunItem{{RunID: e.run.ID, OrgID: e.org.ID, Action: lifecycle.Keep.PlanItem(),
		EntityType: store.EntityDirectoryUser, EntityID: kept.DirectoryUserID, Detail: kept.Email + ": " + lifecycle.ReasonLastAdmin}}
	// A new directory user with the kept admin's e-mail would take its
	// membership over, which converge keeps back as well (as a keep of the
	// new user): the plan says the same.
	replacers, err := st.PlanReplacers(ctx, sc, kept)
	if err != nil {
		return nil, err
	}
	for _, id := range replacers {
		if err := st.DeleteSyncRunItems(ctx, e.org.ID, e.run.ID, id, lifecycle.Provision.PlanItem()); err != nil {
			return nil, err
		}
		items = append(items, store.SyncRunItem{RunID: e.run.ID, OrgID: e.org.ID, Action: lifecycle.Keep.PlanItem(),
			EntityType: store.EntityDirectoryUser, EntityID: id, Detail: kept.Email + ": " + lifecycle.ReasonLastAdmin})
	}
	if err := st.AddSyncRunItems(ctx, items); err != nil {
		return nil, err
	}
	e.log.WarnContext(ctx, "kept the last admin out of the plan", "member", kept.MembershipID)
	return []string{kept.DirectoryUserID}, nil
}

// planResends lists the invites due again, with the jobs' own check.
func (e *execution) planResends(ctx context.Context) error {
	p := e.r.Policy
	if p.InviteMaxSends <= 0 {
		return nil
	}
	st := e.r.Store
	before := st.Now().Add(-p.InviteResendAfter)
	const batch = 500
	after := ""
	for {
		due, err := st.InvitesDue(ctx, e.org.ID, before, p.InviteMaxSends, after, batch)
		if err != nil {
			return err
		}
		items := make([]store.SyncRunItem, len(due))
		for i, m := range due {
			items[i] = store.SyncRunItem{RunID: e.run.ID, OrgID: e.org.ID, Action: lifecycle.ResendInvite.PlanItem(), EntityType: store.EntityMember,
				EntityID: m.ID, Detail: fmt.Sprintf("%s: invite #%d", m.Email, m.InviteSends+1)}
		}
		if err := st.AddSyncRunItems(ctx, items); err != nil {
			return err
		}
		if len(due) < batch {
			return nil
		}
		after = due[len(due)-1].ID
	}
}

// convergeActions are the items applied by a converge job.
var convergeActions = []string{
	lifecycle.Provision.PlanItem(), lifecycle.Update.PlanItem(), lifecycle.Deprovision.PlanItem(), lifecycle.Remove.PlanItem(),
	lifecycle.GroupCreate.PlanItem(), lifecycle.GroupUpdate.PlanItem(), lifecycle.GroupDelete.PlanItem(),
}

// apply commits the plan in one transaction: the pull's deactivations and
// deletions, and a converge job per planned entity in the outbox. The
// transaction first checks that the run still runs, so a run declared
// abandoned can never apply.
func (e *execution) apply(ctx context.Context, sc store.PlanScope) (Applied, error) {
	var a Applied
	err := e.r.Store.Tx(ctx, func(tx *store.Store) error {
		a = Applied{}
		if err := tx.HoldSyncRun(ctx, e.org.ID, e.run.ID); err != nil {
			return err
		}
		if sc.Pulled {
			var c store.SweepCounts
			var err error
			if sc.Delta {
				c, err = tx.ApplyDelta(ctx, e.pulled, sc.Keep, sc.Touched)
			} else {
				c, err = tx.ApplyPull(ctx, e.pulled, sc.Keep)
			}
			if err != nil {
				return err
			}
			a.Deactivated, a.UsersSwept, a.GroupsSwept = c.Deactivated, c.UsersDeleted, c.GroupsDeleted
		}
		n, err := tx.AddSyncRunItemsOutbox(ctx, e.org.ID, e.run.ID, convergeTasks(e.org.ID))
		a.OutboxRows = int(n)
		return err
	})
	if err != nil {
		return Applied{}, err
	}
	if a.OutboxRows > 0 && e.r.Notify != nil {
		e.r.Notify()
	}
	return a, nil
}

// convergeTasks are the outbox rows of the converges that apply plan
// items, by action: batch converge tasks, built by the task package as for
// any other writer, so that a plan of 100k provisions is a thousand rows
// for the relay rather than 100k. Removing access goes on the critical
// queue.
func convergeTasks(orgID string) []store.ItemTask {
	marker := []string{store.ItemEntityMarker}
	out := make([]store.ItemTask, 0, len(convergeActions))
	for _, action := range convergeActions {
		var row store.OutboxRow
		switch action {
		case lifecycle.GroupCreate.PlanItem(), lifecycle.GroupUpdate.PlanItem(), lifecycle.GroupDelete.PlanItem():
			row = task.ConvergeGroupsRow(orgID, marker)
		default:
			urgent := action == lifecycle.Deprovision.PlanItem() || action == lifecycle.Remove.PlanItem()
			row = task.ConvergeUsersRow(orgID, marker, urgent)
		}
		out = append(out, store.ItemTask{Action: action, Row: row, PerRow: task.MaxBatch})
	}
	return out
}
