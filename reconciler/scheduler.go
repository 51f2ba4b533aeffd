package reconciler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/robfig/cron/v3"

	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// Enqueuer puts tasks into the job queue; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// OrgLister lists the organizations to schedule; *store.Store is one.
type OrgLister interface {
	Orgs(ctx context.Context) ([]store.Org, error)
}

// Scheduler enqueues each organization's scheduled reconciliations. It
// never runs one itself: workers do.
//
// Any number of schedulers may run at once. A run's task id names the
// organization and the slot (task.ScheduledReconcileID), and every scheduler computes
// the same slots, so the queue holds each run once; the ids are kept for a
// while after the task finishes (Retention) so that a scheduler ticking late
// cannot queue the slot again. Schedules are anchored to wall time: a cron
// spec as cron reads it, and "@every D" at multiples of D since the Unix
// epoch, offset per organization so that organizations spread out.
//
// Organizations and their schedules are reloaded every ReloadEvery, so a
// schedule changed through the admin API applies without a restart.
type Scheduler struct {
	Orgs  OrgLister
	Queue Enqueuer
	// Default is the spec of organizations without their own schedule.
	Default string
	// Clock tells the time and drives Run's tickers (default the real
	// clock).
	Clock clock.Clock
	Log   *slog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// ReloadEvery (30s) and TickEvery (1s) pace Run.
	ReloadEvery, TickEvery time.Duration
	// Retention is how long a scheduled run's task id outlives the task
	// (1h); it must exceed the spread between schedulers' ticks.
	Retention time.Duration
	// Timeout, if set, bounds a scheduled run's task in place of the
	// default of task.LimitsOf.
	Timeout time.Duration

	mu      sync.Mutex
	entries map[string]*entry
	loaded  bool
}

type entry struct {
	spec  string
	sched cron.Schedule
	next  time.Time
}

// now is in UTC: cron specs name UTC times, so that replicas in different
// zones compute the same slots (and the same task ids).
func (s *Scheduler) now() time.Time {
	return clock.OrReal(s.Clock).Now().UTC()
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Run reloads and ticks until ctx ends, then returns nil.
func (s *Scheduler) Run(ctx context.Context) error {
	clk := clock.OrReal(s.Clock)
	reload := clk.NewTicker(orDefault(s.ReloadEvery, 30*time.Second))
	defer reload.Stop()
	tick := clk.NewTicker(orDefault(s.TickEvery, time.Second))
	defer tick.Stop()
	if err := s.Reload(ctx); err != nil {
		s.log().WarnContext(ctx, "loading reconcile schedules failed; retrying", "err", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reload.C():
			if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
				s.log().WarnContext(ctx, "reloading reconcile schedules failed; keeping the last ones", "err", err)
			}
		case <-tick.C():
			s.Tick(ctx)
		}
	}
}

// Reload reads the organizations and their schedules. An organization new
// to this scheduler, or whose schedule changed, is due at its schedule's
// next slot; on the first load, a slot of the last ReloadEvery counts too,
// so that a restart does not skip it (the task id keeps it from running
// twice).
func (s *Scheduler) Reload(ctx context.Context) error {
	orgs, err := s.Orgs.Orgs(ctx)
	if err != nil {
		return fmt.Errorf("reload reconcile schedules: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	from := now
	if !s.loaded {
		from = now.Add(-orDefault(s.ReloadEvery, 30*time.Second))
	}
	if s.entries == nil {
		s.entries = map[string]*entry{}
	}
	seen := make(map[string]bool, len(orgs))
	for _, o := range orgs {
		seen[o.ID] = true
		spec := o.ReconcileSchedule
		if spec == "" {
			spec = s.Default
		}
		if e, ok := s.entries[o.ID]; ok && e.spec == spec {
			continue
		}
		sched, err := schedule(o.ID, spec)
		if err != nil {
			s.log().WarnContext(ctx, "organization has an invalid reconcile schedule; using the default", "org", o.ID, "schedule", spec, "err", err)
			if sched, err = schedule(o.ID, s.Default); err != nil {
				return fmt.Errorf("default reconcile schedule: %w", err)
			}
		}
		s.entries[o.ID] = &entry{spec: spec, sched: sched, next: sched.Next(from)}
	}
	for id := range s.entries {
		if !seen[id] {
			delete(s.entries, id)
		}
	}
	s.loaded = true
	return nil
}

// Tick enqueues the runs whose slot has come and returns how many it
// enqueued (a run another scheduler enqueued counts too). A slot that
// cannot be enqueued stays due and is tried at the next tick.
func (s *Scheduler) Tick(ctx context.Context) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for orgID, e := range s.entries {
		if now.Before(e.next) {
			continue
		}
		if err := s.enqueue(ctx, orgID, e.next); err != nil {
			s.Metrics.schedule("error")
			s.log().WarnContext(ctx, "enqueueing a scheduled reconciliation failed; retrying", "org", orgID, "slot", e.next, "err", err)
			continue
		}
		n++
		// Slots missed while the scheduler was away collapse into the one
		// just enqueued.
		e.next = e.sched.Next(now)
	}
	return n
}

func (s *Scheduler) enqueue(ctx context.Context, orgID string, slot time.Time) error {
	opts := []asynq.Option{asynq.Retention(orDefault(s.Retention, time.Hour))}
	if s.Timeout > 0 {
		opts = append(opts, asynq.Timeout(s.Timeout))
	}
	_, err := s.Queue.EnqueueContext(ctx, jobs.NewTask(task.ScheduledReconcileRow(orgID, slot)), opts...)
	switch {
	case errors.Is(err, asynq.ErrTaskIDConflict):
		s.Metrics.schedule("duplicate")
		return nil
	case err != nil:
		return err
	}
	s.Metrics.schedule("enqueued")
	s.log().DebugContext(ctx, "scheduled reconciliation enqueued", "org", orgID, "slot", slot)
	return nil
}

// schedule parses spec for an organization, anchoring "@every" to the
// Unix epoch with a per-organization offset.
func schedule(orgID, spec string) (cron.Schedule, error) {
	sched, err := config.ParseSchedule(spec)
	if err != nil {
		return nil, err
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		h := fnv.New64a()
		h.Write([]byte(orgID))
		period := every.Delay
		offset := time.Duration(h.Sum64()%uint64(period/time.Second)) * time.Second
		return anchored{period: period, offset: offset}, nil
	}
	return sched, nil
}

// anchored fires at offset + k·period since the Unix epoch.
type anchored struct{ period, offset time.Duration }

func (a anchored) Next(t time.Time) time.Time {
	since := t.UnixNano() - int64(a.offset)
	k := since / int64(a.period)
	if since < 0 && since%int64(a.period) != 0 {
		k-- // floor
	}
	return time.Unix(0, (k+1)*int64(a.period)+int64(a.offset)).In(t.Location())
}
