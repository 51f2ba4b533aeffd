package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// Enqueuer puts tasks into the job queue; *asynq.Client is one.
type Enqueuer interface {
	EnqueueContext(ctx context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// pinger is an Enqueuer that can check Redis cheaply (*asynq.Client can).
type pinger interface{ Ping() error }

// RelayConfig tunes a Relay. Zero fields take the defaults.
type RelayConfig struct {
	// BatchSize is how many rows one transaction relays (500), and
	// Parallel how many tasks are enqueued at a time (8).
	BatchSize, Parallel int
	// ConvergeBatch is how many converge or invite rows of one
	// organization, type and queue go into one batch task (100); 1 relays
	// each as a task of its own.
	ConvergeBatch int
	// PollInterval is the wait between empty polls (200ms); Notify cuts
	// it short.
	PollInterval time.Duration
	// Gather is the least time from one pass's start to the next when a
	// notification wakes the relay (10ms; negative for none). A write
	// after a quiet spell is relayed at once; under a stream of writes
	// each pass takes the rows of the last Gather together, instead of a
	// transaction and a Redis call for each write.
	Gather time.Duration
	// MinBackoff and MaxBackoff bound the doubling wait after a failure
	// (200ms, 30s).
	MinBackoff, MaxBackoff time.Duration
	// Retention is how long sent rows are kept (24h), and PurgeEvery how
	// often they are purged (10m).
	Retention, PurgeEvery time.Duration
	// EventRetention is how long the change feed's events are kept (30
	// days); they are purged with the sent rows.
	EventRetention time.Duration
	// Clock times the waits between passes and tells the time of lags,
	// purges and outages (default the real clock).
	Clock clock.Clock
}

func (c *RelayConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 500
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.ConvergeBatch <= 0 {
		c.ConvergeBatch = task.MaxBatch
	}
	def(&c.PollInterval, 200*time.Millisecond)
	if c.Gather == 0 {
		c.Gather = 10 * time.Millisecond
	}
	def(&c.MinBackoff, 200*time.Millisecond)
	def(&c.MaxBackoff, 30*time.Second)
	def(&c.Retention, 24*time.Hour)
	def(&c.PurgeEvery, 10*time.Minute)
	def(&c.EventRetention, 30*24*time.Hour)
	c.Clock = clock.OrReal(c.Clock)
}

// Relay moves committed outbox rows into the job queue.
//
// Delivery is at least once: a row is marked sent in the transaction that
// claimed it, after its task is enqueued; if that commit fails the row is
// relayed again. Its asynq task id (the row's TaskID, else "outbox-<id>")
// makes a second enqueue collapse into the first while that task is still
// queued (asynq.ErrTaskIDConflict counts as delivered); after the task has
// finished, a repeat runs the job again, which the jobs tolerate. Any
// number of relays may run against one database: each claims rows that
// no other holds.
//
// Converge rows (of TypeConvergeUser and TypeConvergeGroup, without a task
// id of their own) and invite rows (TypeSendInvite; see task.BatchOf)
// claimed together are grouped by organization, type and queue into batch
// tasks of up to ConvergeBatch entities, so deprovisions keep their
// priority. A batch's task id is derived from its rows' ids: the
// same rows relayed again collapse as a single row does; rows grouped
// differently on a later claim are converged again, which is harmless.
//
// When Redis is down, rows wait in the database and the relay retries with
// a doubling backoff, logging once when the outage starts and once when it
// ends.
type Relay struct {
	store  *store.Store
	q      Enqueuer
	log    *slog.Logger
	cfg    RelayConfig
	notify chan struct{}
	// failing is set while passes fail; see RelayOnce.
	failing atomic.Bool

	relayed  prometheus.Counter
	failures prometheus.Counter
	lag      prometheus.Histogram
}

// NewRelay returns a relay from st to q. Its metrics, including the
// backlog read at scrape time, are registered on reg when reg is not nil.
func NewRelay(st *store.Store, q Enqueuer, log *slog.Logger, reg prometheus.Registerer, cfg RelayConfig) *Relay {
	cfg.defaults()
	r := &Relay{
		store: st, q: q, log: log.With("component", "outbox-relay"), cfg: cfg,
		notify: make(chan struct{}, 1),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimsync_outbox_relayed_total", Help: "Outbox rows moved into the job queue.",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scimsync_outbox_relay_failures_total", Help: "Relay passes that failed (database or Redis unreachable).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "scimsync_outbox_relay_lag_seconds", Help: "Time from an outbox row's commit to its enqueue.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	if reg != nil {
		reg.MustRegister(r.relayed, r.failures, r.lag, &backlogCollector{store: st, now: cfg.Clock.Now})
	}
	return r
}

// Notify wakes the relay now rather than at its next poll. Writers call it
// after committing outbox rows; it never blocks.
func (r *Relay) Notify() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends, then returns nil.
func (r *Relay) Run(ctx context.Context) error {
	var (
		backoff   time.Duration
		downSince time.Time // zero while the last pass succeeded
		lastPurge time.Time
	)
	for {
		// Writers notify after their commit, so the pass about to claim
		// sees every write notified so far: those notifications are spent.
		select {
		case <-r.notify:
		default:
		}
		passStart := r.cfg.Clock.Now()
		n, err := r.RelayOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := r.cfg.PollInterval
		wake := r.notify
		if err != nil {
			r.failures.Inc()
			backoff = min(max(2*backoff, r.cfg.MinBackoff), r.cfg.MaxBackoff)
			wait = backoff
			// A notification must not cut a backoff short, or every write
			// would hammer a Redis that is down.
			wake = nil
			if downSince.IsZero() {
				downSince = r.cfg.Clock.Now()
				r.log.WarnContext(ctx, "outbox relay failing; rows wait in the database and will be relayed when it recovers", "err", err)
			} else {
				r.log.DebugContext(ctx, "outbox relay still failing", "err", err, "retry_in", wait)
			}
		} else {
			if !downSince.IsZero() {
				r.log.InfoContext(ctx, "outbox relay recovered", "down_for", r.cfg.Clock.Now().Sub(downSince).Round(time.Millisecond))
				downSince = time.Time{}
			}
			backoff = 0
			if now := r.cfg.Clock.Now(); now.Sub(lastPurge) >= r.cfg.PurgeEvery {
				lastPurge = now
				if _, _, err := r.Purge(ctx); err != nil && ctx.Err() == nil {
					r.log.WarnContext(ctx, "outbox and events purge failed", "err", err)
				}
			}
			if n == r.cfg.BatchSize {
				continue // more rows are likely waiting
			}
		}
		woken := false
		timer := r.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-wake:
			woken = true
		case <-timer.C():
		}
		timer.Stop()
		if woken && !r.gather(ctx, passStart) {
			return nil
		}
	}
}

// gather waits, after a notification, until Gather has passed since the
// last pass started. It returns false when ctx ends first.
func (r *Relay) gather(ctx context.Context, passStart time.Time) bool {
	rest := r.cfg.Gather - r.cfg.Clock.Now().Sub(passStart)
	if rest <= 0 {
		return true
	}
	timer := r.cfg.Clock.NewTimer(rest)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C():
		return true
	}
}

// RelayOnce relays up to one batch and returns how many rows it delivered.
// Rows are enqueued several at a time, in no particular order (converge
// acts on state, not on event order). The first failure stops the batch:
// the rows delivered are marked sent, the failed ones get the error, the
// rest wait untouched, and the error is returned.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	n, err := r.relayOnce(ctx)
	r.failing.Store(err != nil)
	return n, err
}

func (r *Relay) relayOnce(ctx context.Context) (int, error) {
	// While Redis is failing, check it before claiming rows: the claim's
	// transaction would otherwise hold its locks (on SQLite, the database's
	// write lock) for as long as a dead Redis takes to refuse.
	if p, ok := r.q.(pinger); ok && r.failing.Load() {
		if err := p.Ping(); err != nil {
			return 0, fmt.Errorf("relay outbox: %w", err)
		}
	}
	var (
		sent   int
		enqErr error
	)
	err := r.store.Tx(ctx, func(tx *store.Store) error {
		rows, err := tx.ClaimOutbox(ctx, r.cfg.BatchSize)
		if err != nil {
			return err
		}
		ds := r.deliveries(rows)
		errs := r.enqueueAll(ctx, ds)
		ids := make([]int64, 0, len(rows))
		for i, d := range ds {
			switch {
			case errs[i] == errNotTried:
			case errs[i] != nil:
				if enqErr == nil {
					enqErr = errs[i]
				}
				for _, row := range d.rows {
					if err := tx.MarkOutboxFailed(ctx, row.ID, errs[i].Error()); err != nil {
						return err
					}
				}
			default:
				for _, row := range d.rows {
					ids = append(ids, row.ID)
				}
			}
		}
		if err := tx.MarkOutboxSent(ctx, ids); err != nil {
			return err
		}
		sent = len(ids)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", err)
	}
	r.relayed.Add(float64(sent))
	if enqErr != nil {
		return sent, fmt.Errorf("relay outbox: %w", enqErr)
	}
	return sent, nil
}

// errNotTried marks a row left alone after another row's failure.
var errNotTried = errors.New("not tried")

// delivery is one task and the outbox rows it delivers.
type delivery struct {
	rows     []store.OutboxRow
	taskType string
	taskID   string
	queue    string
	payload  []byte
}

// deliveries turns claimed rows into tasks: converge and invite rows
// grouped into batches, every other row a task of its own.
func (r *Relay) deliveries(rows []store.OutboxRow) []delivery {
	type key struct{ org, typ, queue string }
	var (
		out     []delivery
		batches []*task.ConvergeBatch
		open    = map[key]int{} // the index in out of the batch filling up
	)
	for _, row := range rows {
		bt := task.BatchOf(row)
		var orgID, id string
		var err error
		if bt != "" {
			orgID, id, err = task.EntityID(row.TaskType, row.Payload)
		}
		if bt == "" || err != nil || r.cfg.ConvergeBatch == 1 {
			// An undecodable payload goes as it is: its handler archives
			// it with the reason.
			tid := row.TaskID
			if tid == "" {
				tid = "outbox-" + strconv.FormatInt(row.ID, 10)
			}
			out = append(out, delivery{rows: []store.OutboxRow{row}, taskType: row.TaskType, taskID: tid, queue: row.Queue, payload: row.Payload})
			batches = append(batches, nil)
			continue
		}
		k := key{orgID, bt, row.Queue}
		i, ok := open[k]
		if !ok || len(out[i].rows) == r.cfg.ConvergeBatch {
			i = len(out)
			open[k] = i
			out = append(out, delivery{taskType: bt, queue: row.Queue})
			batches = append(batches, &task.ConvergeBatch{OrgID: orgID})
		}
		out[i].rows = append(out[i].rows, row)
		if !slices.Contains(batches[i].IDs, id) {
			batches[i].IDs = append(batches[i].IDs, id)
		}
	}
	for i, b := range batches {
		if b == nil {
			continue
		}
		p, err := json.Marshal(b)
		if err != nil {
			panic(fmt.Sprintf("relay: marshal batch: %v", err)) // strings always marshal
		}
		out[i].payload, out[i].taskID = p, batchTaskID(out[i].taskType, out[i].rows)
	}
	return out
}

// batchTaskID names a batch by the outbox rows it carries.
func batchTaskID(taskType string, rows []store.OutboxRow) string {
	prefix := "converge-batch-"
	if taskType == task.TypeSendInvites {
		prefix = "invite-batch-"
	}
	h := sha256.New()
	var b [8]byte
	for _, row := range rows {
		binary.BigEndian.PutUint64(b[:], uint64(row.ID))
		h.Write(b[:])
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// enqueueAll enqueues ds with up to Parallel at a time and returns each
// one's error. After a failure no new one is tried.
func (r *Relay) enqueueAll(ctx context.Context, ds []delivery) []error {
	errs := make([]error, len(ds))
	for i := range errs {
		errs[i] = errNotTried
	}
	var (
		next   atomic.Int64
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	for range min(r.cfg.Parallel, len(ds)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= len(ds) {
					return
				}
				if errs[i] = r.enqueue(ctx, ds[i]); errs[i] != nil {
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

func (r *Relay) enqueue(ctx context.Context, d delivery) error {
	t := NewTask(store.OutboxRow{TaskType: d.taskType, TaskID: d.taskID, Queue: d.queue, Payload: d.payload})
	_, err := r.q.EnqueueContext(ctx, t)
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue %s task %s: %w", d.taskType, d.taskID, err)
	}
	now := r.cfg.Clock.Now()
	for _, row := range d.rows {
		r.lag.Observe(now.Sub(row.CreatedAt).Seconds())
	}
	return nil
}

// Purge deletes rows sent longer than Retention ago, and events older
// than EventRetention, and returns how many of each.
func (r *Relay) Purge(ctx context.Context) (rows, events int64, err error) {
	const batch = 5000
	now := r.cfg.Clock.Now()
	if rows, err = purgeAll(ctx, now.Add(-r.cfg.Retention), batch, r.store.PurgeOutbox); err != nil {
		return rows, 0, err
	}
	events, err = purgeAll(ctx, now.Add(-r.cfg.EventRetention), batch, r.store.PurgeEvents)
	return rows, events, err
}

// purgeAll calls purge in batches until one is short.
func purgeAll(ctx context.Context, before time.Time, batch int, purge func(context.Context, time.Time, int) (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := purge(ctx, before, batch)
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
	}
}

// backlogCollector reports the unsent rows at scrape time.
type backlogCollector struct {
	store *store.Store
	now   func() time.Time
}

var (
	backlogDesc = prometheus.NewDesc("scimsync_outbox_backlog", "Outbox rows not yet relayed.", nil, nil)
	oldestDesc  = prometheus.NewDesc("scimsync_outbox_oldest_age_seconds", "Age of the oldest outbox row not yet relayed (0 when none).", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.store.OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	age := 0.0
	if n > 0 {
		age = max(c.now().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
