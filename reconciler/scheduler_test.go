package reconciler_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

type schedEnv struct {
	st    *store.Store
	clock *clock.Fake
	insp  *asynq.Inspector
	opt   asynq.RedisConnOpt
}

func newSchedEnv(t *testing.T) *schedEnv {
	st := storetest.Open(t, storetest.Backends()[0], store.Options{})
	br := brokertest.Open(t)
	insp := asynq.NewInspector(br.Opt)
	t.Cleanup(func() { insp.Close() })
	return &schedEnv{st: st, clock: clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), insp: insp, opt: br.Opt}
}

func (e *schedEnv) scheduler(t *testing.T) *reconciler.Scheduler {
	client := asynq.NewClient(e.opt)
	t.Cleanup(func() { client.Close() })
	// A tiny ReloadEvery leaves out the first load's catch-up of a slot
	// just past, which would depend on the organizations' offsets.
	return &reconciler.Scheduler{Orgs: e.st, Queue: client, Default: "@every 1h", Clock: e.clock, ReloadEvery: time.Nanosecond}
}

// queued lists the ids of the reconcile tasks waiting in the queue.
func (e *schedEnv) queued(t *testing.T) []string {
	t.Helper()
	tasks, err := e.insp.ListPendingTasks(task.QueueDefault, asynq.PageSize(1000))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range tasks {
		if tk.Type != task.TypeReconcile {
			t.Errorf("task type %q", tk.Type)
		}
		ids = append(ids, tk.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestSchedulersEnqueueEachRunOnce(t *testing.T) {
	e := newSchedEnv(t)
	ctx := context.Background()
	var orgs []store.Org
	for _, name := range []string{"a", "b", "c"} {
		o, err := e.st.CreateOrg(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, o)
	}
	s1, s2 := e.scheduler(t), e.scheduler(t)
	for _, s := range []*reconciler.Scheduler{s1, s2} {
		if err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tickBoth := func() {
		var wg sync.WaitGroup
		for _, s := range []*reconciler.Scheduler{s1, s2} {
			wg.Go(func() { s.Tick(ctx) })
		}
		wg.Wait()
	}
	start := e.clock.Now()
	tickBoth()
	if got := e.queued(t); len(got) != 0 {
		t.Fatalf("enqueued before any slot: %v", got)
	}
	// Two hours in ten-minute ticks: each organization's hourly run comes
	// twice, and each is queued once however many schedulers tick.
	for i := 1; i <= 12; i++ {
		e.clock.AdvanceTo(start.Add(time.Duration(i) * 10 * time.Minute))
		tickBoth()
	}
	got := e.queued(t)
	if len(got) != 2*len(orgs) {
		t.Fatalf("queued %d tasks, want %d: %v", len(got), 2*len(orgs), got)
	}
	tasks, _ := e.insp.ListPendingTasks(task.QueueDefault)
	perOrg := map[string][]int64{}
	for _, tk := range tasks {
		var p task.Reconcile
		if err := json.Unmarshal(tk.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if tk.ID != task.ScheduledReconcileID(p.OrgID, time.Unix(p.ScheduledAt, 0)) {
			t.Errorf("task id %q for %+v", tk.ID, p)
		}
		perOrg[p.OrgID] = append(perOrg[p.OrgID], p.ScheduledAt)
	}
	for _, o := range orgs {
		slots := perOrg[o.ID]
		slices.Sort(slots)
		if len(slots) != 2 || slots[1]-slots[0] != 3600 {
			t.Errorf("org %s slots %v, want two an hour apart", o.Name, slots)
		}
	}
}

func TestScheduleChangeAppliesOnReload(t *testing.T) {
	e := newSchedEnv(t)
	ctx := context.Background()
	o, err := e.st.CreateOrg(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	s := e.scheduler(t)
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	spec := "*/5 * * * *"
	if _, err := e.st.UpdateOrg(ctx, o.ID, store.OrgPatch{ReconcileSchedule: &spec}); err != nil {
		t.Fatal(err)
	}
	// Hourly until reloaded.
	e.clock.AdvanceTo(time.Date(2026, 3, 2, 9, 1, 0, 0, time.UTC))
	s.Tick(ctx)
	if err := s.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.AdvanceTo(time.Date(2026, 3, 2, 9, 5, 1, 0, time.UTC))
	s.Tick(ctx)
	want := task.ScheduledReconcileID(o.ID, time.Date(2026, 3, 2, 9, 5, 0, 0, time.UTC))
	if got := e.queued(t); !slices.Contains(got, want) {
		t.Fatalf("queued %v, want %s", got, want)
	}
	e.clock.AdvanceTo(time.Date(2026, 3, 2, 9, 10, 0, 0, time.UTC))
	s.Tick(ctx)
	if got := e.queued(t); len(got) < 2 {
		t.Errorf("the 9:10 run was not queued: %v", got)
	}
}

// TestSchedulesAreUTC runs two schedulers whose clocks tell the same instant
// in different zones: a cron spec names UTC times, so both enqueue the same
// slot, once.
func TestSchedulesAreUTC(t *testing.T) {
	e := newSchedEnv(t)
	ctx := context.Background()
	o, err := e.st.CreateOrg(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	spec := "0 9 * * *"
	if _, err := e.st.UpdateOrg(ctx, o.ID, store.OrgPatch{ReconcileSchedule: &spec}); err != nil {
		t.Fatal(err)
	}
	east, west := time.FixedZone("east", 9*3600), time.FixedZone("west", -5*3600)
	s1, s2 := e.scheduler(t), e.scheduler(t)
	at := time.Date(2026, 3, 2, 8, 59, 0, 0, time.UTC)
	c1, c2 := clock.NewFake(at.In(east)), clock.NewFake(at.In(west))
	s1.Clock, s2.Clock = c1, c2
	for _, s := range []*reconciler.Scheduler{s1, s2} {
		if err := s.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c1.Advance(90 * time.Second)
	c2.Advance(90 * time.Second)
	s1.Tick(ctx)
	s2.Tick(ctx)
	want := []string{task.ScheduledReconcileID(o.ID, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))}
	if got := e.queued(t); !slices.Equal(got, want) {
		t.Errorf("queued %v, want %v", got, want)
	}
}

// Run reloads and ticks on its clock's tickers: advancing the clock past a
// slot gets the slot's run queued, with no real waiting.
func TestRunTicksOnTheClock(t *testing.T) {
	e := newSchedEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	o, err := e.st.CreateOrg(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	spec := "*/5 * * * *"
	if _, err := e.st.UpdateOrg(ctx, o.ID, store.OrgPatch{ReconcileSchedule: &spec}); err != nil {
		t.Fatal(err)
	}
	// Whenever Run's first load reads the clock before 9:05:30, the next
	// slot is 9:05.
	e.clock.AdvanceTo(time.Date(2026, 3, 2, 9, 4, 58, 0, time.UTC))
	s := e.scheduler(t)
	s.ReloadEvery, s.TickEvery = 30*time.Second, time.Second
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	blockUntil(t, e.clock, 2) // the reload and tick tickers
	if got := e.queued(t); len(got) != 0 {
		t.Fatalf("queued before the slot: %v", got)
	}
	for range 12 {
		e.clock.Advance(time.Second)
	}
	want := task.ScheduledReconcileID(o.ID, time.Date(2026, 3, 2, 9, 5, 0, 0, time.UTC))
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(e.queued(t), want) {
		if time.Now().After(deadline) {
			t.Fatalf("queued %v, want %s", e.queued(t), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockUntil waits until n timers and tickers are pending on c, failing the
// test after 10 s of real time rather than hanging it.
func blockUntil(t *testing.T, c *clock.Fake, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() { c.BlockUntil(n); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%d timers and tickers pending on the clock, want %d", c.Pending(), n)
	}
}
