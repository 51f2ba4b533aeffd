package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

func addRows(t *testing.T, s *store.Store, rows ...store.OutboxRow) {
	t.Helper()
	if err := s.AddOutbox(context.Background(), rows...); err != nil {
		t.Fatal(err)
	}
}

func backlog(t *testing.T, s *store.Store) int64 {
	t.Helper()
	n, _, err := s.OutboxBacklog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// queued lists the task ids waiting in a queue.
func queued(t *testing.T, insp *asynq.Inspector, queue string) []string {
	t.Helper()
	tasks, err := insp.ListPendingTasks(queue, asynq.PageSize(1000))
	if err != nil && !strings.Contains(err.Error(), "does not exist") {
		t.Fatal(err)
	}
	var ids []string
	for _, ti := range tasks {
		ids = append(ids, ti.ID)
	}
	return ids
}

func TestRelayMovesRowsOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		br := brokertest.Open(t)
		client := asynq.NewClient(br.Opt)
		defer client.Close()
		insp := asynq.NewInspector(br.Opt)
		defer insp.Close()
		reg := prometheus.NewRegistry()
		r := jobs.NewRelay(s, client, jobstest.Discard, reg, jobs.RelayConfig{})

		addRows(t, s,
			task.ConvergeUserRow("o", "u1", false),
			task.ConvergeUserRow("o", "u2", true),
			task.SendInviteRow("o", "i1"),
			task.SendInviteRow("o", "i1"), // the same decision relayed twice collapses
			task.ConvergeUserRow("o", "u3", false),
			task.ConvergeUserRow("o", "u1", false), // the same user twice in one batch
			task.ConvergeUserRow("p", "u9", false),
			task.ConvergeGroupRow("o", "g1"),
		)
		if got := metric(t, reg, "scimsync_outbox_backlog"); got != 8 {
			t.Errorf("backlog metric = %v, want 8", got)
		}
		n, err := r.RelayOnce(ctx)
		if err != nil || n != 8 {
			t.Fatalf("RelayOnce = %d, %v; want 8", n, err)
		}
		if n, err := r.RelayOnce(ctx); err != nil || n != 0 {
			t.Fatalf("second RelayOnce = %d, %v; want 0", n, err)
		}
		// Converges and invite e-mails are batched per organization, type
		// and queue, each entity once; other rows are tasks of their own.
		for queue, want := range map[string][]string{
			task.QueueDefault:  {"converge:groups o [g1]", "converge:users o [u1 u3]", "converge:users p [u9]"},
			task.QueueCritical: {"converge:users o [u2]"},
			task.QueueLow:      {"invite:sends o [i1]"},
		} {
			if diff := cmp.Diff(want, queuedTasks(t, insp, queue)); diff != "" {
				t.Errorf("queue %s (-want +got):\n%s", queue, diff)
			}
		}
		tasks, err := insp.ListPendingTasks(task.QueueCritical)
		if err != nil || len(tasks) != 1 {
			t.Fatalf("critical tasks %v, %v", tasks, err)
		}
		if info := tasks[0]; info.Type != task.TypeConvergeUsers || info.MaxRetry != 20 || info.Timeout != 5*time.Minute || !strings.HasPrefix(info.ID, "converge-batch-") {
			t.Errorf("batch task info %+v", info)
		}
		if backlog(t, s) != 0 || metric(t, reg, "scimsync_outbox_relayed_total") != 8 {
			t.Error("rows not marked sent or not counted")
		}
	})
}

// queuedTasks describes the tasks waiting in a queue, sorted: a batch as
// "type org [ids]", any other task as "type id".
func queuedTasks(t *testing.T, insp *asynq.Inspector, queue string) []string {
	t.Helper()
	tasks, err := insp.ListPendingTasks(queue, asynq.PageSize(1000))
	if err != nil && !strings.Contains(err.Error(), "does not exist") {
		t.Fatal(err)
	}
	var out []string
	for _, ti := range tasks {
		if ti.Type == task.TypeConvergeUsers || ti.Type == task.TypeConvergeGroups || ti.Type == task.TypeSendInvites {
			var b task.ConvergeBatch
			if err := json.Unmarshal(ti.Payload, &b); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s %v", ti.Type, b.OrgID, b.IDs))
			continue
		}
		out = append(out, ti.Type+" "+ti.ID)
	}
	slices.Sort(out)
	return out
}

// metric reads the value of a metric without labels (or the first series).
func metric(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestRelayWaitsOutRedisOutage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		direct, client, p := redisThroughProxy(t)
		insp := asynq.NewInspector(direct)
		defer insp.Close()
		r := jobs.NewRelay(s, client, jobstest.Discard, nil, jobs.RelayConfig{})

		p.Down()
		for i := range 5 {
			addRows(t, s, task.ConvergeUserRow("o", fmt.Sprint("u", i), false))
		}
		if n, err := r.RelayOnce(ctx); err == nil || n != 0 {
			t.Fatalf("RelayOnce with Redis down = %d, %v; want an error", n, err)
		}
		if got := backlog(t, s); got != 5 {
			t.Fatalf("backlog = %d, want all 5 rows waiting", got)
		}
		p.Up()
		// The Redis client redials on its own schedule: retry until it does.
		delivered := 0
		eventually(t, 10*time.Second, "the rows to be relayed", func() bool {
			n, _ := r.RelayOnce(ctx)
			delivered += n
			return delivered == 5
		})
		if got := backlog(t, s); got != 0 {
			t.Errorf("backlog = %d after recovery", got)
		}
		want := []string{"converge:users o [u0 u1 u2 u3 u4]"}
		if diff := cmp.Diff(want, queuedTasks(t, insp, task.QueueDefault)); diff != "" {
			t.Errorf("queued after recovery (-want +got):\n%s", diff)
		}
	})
}

var relayEpoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// nextWait waits until the relay waits on clk and returns how long it waits.
func nextWait(clk *clock.Fake) time.Duration {
	clk.BlockUntil(1)
	d, _ := clk.Next()
	return d
}

func TestRelayRunBacksOffAndLogsOncePerOutage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		direct, client, p := redisThroughProxy(t)
		insp := asynq.NewInspector(direct)
		defer insp.Close()
		clk := clock.NewFake(relayEpoch)
		var logs syncbuf.Buffer
		// No gather window: the fake clock would hold the notified pass.
		r := jobs.NewRelay(s, client, jobstest.TextLogger(&logs), nil, jobs.RelayConfig{Clock: clk, MaxBackoff: time.Second, Gather: -1})

		p.Down()
		addRows(t, s, task.ConvergeUserRow("o", "u1", false))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()

		var waits []time.Duration
		for range 5 {
			d := nextWait(clk)
			waits = append(waits, d)
			r.Notify() // writes keep coming; they must not cut the backoff short
			clk.Advance(d)
		}
		want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
		if diff := cmp.Diff(want, waits); diff != "" {
			t.Errorf("backoff waits (-want +got):\n%s", diff)
		}
		p.Up()
		// The Redis client redials on its own schedule (about once a
		// second after repeated failures): keep firing backoff timers until
		// a pass succeeds and the relay waits its poll interval.
		d := nextWait(clk)
		deadline := time.Now().Add(10 * time.Second)
		for {
			clk.Advance(d)
			if d = nextWait(clk); d == 200*time.Millisecond {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("relay did not recover after Redis came back")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := queued(t, insp, task.QueueDefault); len(got) != 1 {
			t.Errorf("queued %v, want the one row", got)
		}

		// Notify wakes the relay before its poll timer, which never fires.
		addRows(t, s, task.ConvergeUserRow("o", "u2", false))
		r.Notify()
		eventually(t, 5*time.Second, "the notified relay to enqueue", func() bool { return len(queued(t, insp, task.QueueDefault)) == 2 })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		out := logs.String()
		if n := strings.Count(out, "level=WARN"); n != 1 {
			t.Errorf("%d warnings for one outage, want 1:\n%s", n, out)
		}
		if !strings.Contains(out, "outbox relay recovered") {
			t.Errorf("no recovery message:\n%s", out)
		}
	})
}

func TestTwoRelaysSendEachRowOnce(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			u := storetest.DatabaseURL(t, b)
			open := func() *store.Store {
				s, err := store.Open(ctx, u, store.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
			s1, s2 := open(), open()
			if _, err := s1.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			br := brokertest.Open(t)
			client := asynq.NewClient(br.Opt)
			defer client.Close()
			// No TaskID collapse to hide a double send: count every enqueue.
			count := &countingEnqueuer{next: client}
			const rows = 400
			for i := 0; i < rows; i += 200 {
				batch := make([]store.OutboxRow, 200)
				for j := range batch {
					batch[j] = task.ConvergeUserRow("o", fmt.Sprint("u", i+j), false)
				}
				addRows(t, s1, batch...)
			}
			var wg sync.WaitGroup
			for _, s := range []*store.Store{s1, s2} {
				r := jobs.NewRelay(s, count, jobstest.Discard, nil, jobs.RelayConfig{BatchSize: 50})
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						n, err := r.RelayOnce(ctx)
						if err != nil {
							t.Error(err)
							return
						}
						if n == 0 {
							return
						}
					}
				}()
			}
			wg.Wait()
			if got := backlog(t, s1); got != 0 {
				t.Errorf("backlog = %d after both relays finished", got)
			}
			for id, n := range count.ids {
				if n != 1 {
					t.Errorf("task %s enqueued %d times", id, n)
				}
			}
			if len(count.entities) != rows {
				t.Errorf("enqueued converges of %d distinct users, want %d", len(count.entities), rows)
			}
			for id, n := range count.entities {
				if n != 1 {
					t.Errorf("user %s enqueued %d times", id, n)
				}
			}
		})
	}
}

func TestPurgeKeepsUnsentAndRecentRows(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			clk := clock.NewFake(relayEpoch)
			s := storetest.Open(t, b, store.Options{Clock: clk})
			br := brokertest.Open(t)
			client := asynq.NewClient(br.Opt)
			defer client.Close()
			r := jobs.NewRelay(s, client, jobstest.Discard, nil, jobs.RelayConfig{Clock: clk})
			addRows(t, s, task.ConvergeUserRow("o", "old", false))
			if _, err := r.RelayOnce(ctx); err != nil {
				t.Fatal(err)
			}
			clk.Advance(25 * time.Hour)
			addRows(t, s, task.ConvergeUserRow("o", "recent", false))
			if _, err := r.RelayOnce(ctx); err != nil {
				t.Fatal(err)
			}
			addRows(t, s, task.ConvergeUserRow("o", "unsent", false))
			n, _, err := r.Purge(ctx)
			if err != nil || n != 1 {
				t.Errorf("Purge = %d, %v; want the one old sent row", n, err)
			}
			if backlog(t, s) != 1 {
				t.Error("purge touched an unsent row")
			}
		})
	}
}

func TestPurgeDeletesEventsPastTheirRetention(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			clk := clock.NewFake(relayEpoch)
			s := storetest.Open(t, b, store.Options{Clock: clk})
			br := brokertest.Open(t)
			client := asynq.NewClient(br.Opt)
			defer client.Close()
			r := jobs.NewRelay(s, client, jobstest.Discard, nil, jobs.RelayConfig{Clock: clk, EventRetention: 48 * time.Hour})
			org, err := s.CreateOrg(ctx, "Acme")
			if err != nil {
				t.Fatal(err)
			}
			appendRun := func() {
				t.Helper()
				run := store.SyncRun{OrgID: org.ID, Trigger: "api"}
				if err := s.StartSyncRun(ctx, &run, clk.Now().Add(-time.Hour)); err != nil {
					t.Fatal(err)
				}
				if err := s.FinishSyncRun(ctx, org.ID, run.ID, store.RunSucceeded, "{}", "", 0); err != nil {
					t.Fatal(err)
				}
			}
			appendRun() // sequence 1
			appendRun() // 2
			clk.Advance(47 * time.Hour)
			appendRun() // 3, within the retention at the purge below
			clk.Advance(2 * time.Hour)
			_, n, err := r.Purge(ctx)
			if err != nil || n != 2 {
				t.Fatalf("Purge = %d events, %v; want the two past the retention", n, err)
			}
			cur, err := s.EventCursor(ctx, org.ID)
			if err != nil {
				t.Fatal(err)
			}
			if cur != (store.EventCursor{Latest: 3, PurgedThrough: 2}) {
				t.Errorf("cursor = %+v, want latest 3 purged through 2", cur)
			}
			evs, err := s.Events(ctx, org.ID, 0, cur.Latest, 10, nil)
			if err != nil || len(evs) != 1 || evs[0].Sequence != 3 {
				t.Errorf("events left = %+v, %v; want sequence 3", evs, err)
			}
		})
	}
}

// batchEnqueuer records the entity ids of each batch converge task it is
// given, in order, and accepts every task.
type batchEnqueuer struct {
	mu      sync.Mutex
	batches [][]string
}

func (e *batchEnqueuer) EnqueueContext(_ context.Context, t *asynq.Task, _ ...asynq.Option) (*asynq.TaskInfo, error) {
	var b task.ConvergeBatch
	if err := json.Unmarshal(t.Payload(), &b); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.batches = append(e.batches, b.IDs)
	return &asynq.TaskInfo{}, nil
}

func (e *batchEnqueuer) got() [][]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.batches)
}

func TestRelayGathersWritesAfterAPass(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		clk := clock.NewFake(relayEpoch)
		q := &batchEnqueuer{}
		r := jobs.NewRelay(s, q, jobstest.Discard, nil, jobs.RelayConfig{Clock: clk})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
		}()
		waitingFor := func(d time.Duration) func() bool {
			return func() bool { next, ok := clk.Next(); return ok && next == d }
		}
		if d := nextWait(clk); d != 200*time.Millisecond {
			t.Fatalf("first wait %v, want the poll interval", d)
		}

		// A write right after a pass waits out the rest of the window, and
		// the writes made meanwhile go with it in one pass.
		addRows(t, s, task.ConvergeUserRow("o", "u1", false))
		r.Notify()
		eventually(t, 5*time.Second, "the relay to wait out the gather window", waitingFor(10*time.Millisecond))
		addRows(t, s, task.ConvergeUserRow("o", "u2", false))
		r.Notify()
		if got := q.got(); len(got) != 0 {
			t.Fatalf("relayed %v inside the gather window", got)
		}
		clk.Advance(10 * time.Millisecond)
		eventually(t, 5*time.Second, "the gathered pass", func() bool { return len(q.got()) == 1 })
		eventually(t, 5*time.Second, "the relay to poll again", waitingFor(200*time.Millisecond))

		// After a quiet spell longer than the window, a write goes at once.
		clk.Advance(50 * time.Millisecond)
		addRows(t, s, task.ConvergeUserRow("o", "u3", false))
		r.Notify()
		eventually(t, 5*time.Second, "the write after a quiet spell", func() bool { return len(q.got()) == 2 })
		if diff := cmp.Diff([][]string{{"u1", "u2"}, {"u3"}}, q.got()); diff != "" {
			t.Errorf("batches (-want +got):\n%s", diff)
		}
	})
}
