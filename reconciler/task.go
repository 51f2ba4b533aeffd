package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// Task is the payload of a reconcile:org task.
type Task struct {
	OrgID string `json:"orgId"`
	// RunID is the queued run the admin API created; empty for a scheduled
	// run, which the handler creates.
	RunID string `json:"runId,omitempty"`
	// ScheduledAt is the schedule slot (Unix seconds) of a scheduled run.
	ScheduledAt int64 `json:"scheduledAt,omitempty"`
}

// TaskRow is the outbox row that has a worker carry out a queued run. Its
// task id is the run's, so the run is queued once however often the row is
// relayed.
func TaskRow(orgID, runID string) store.OutboxRow {
	b, _ := json.Marshal(Task{OrgID: orgID, RunID: runID}) // strings always marshal
	return store.OutboxRow{OrgID: orgID, TaskType: task.TypeReconcile, TaskID: "reconcile-run-" + runID, Queue: task.QueueDefault, Payload: b}
}

// ScheduledTaskID names the scheduled run of an organization at a slot:
// every scheduler computes the same id for the same run, so the queue
// holds it once.
func ScheduledTaskID(orgID string, slot time.Time) string {
	return "reconcile:" + orgID + ":" + strconv.FormatInt(slot.Unix(), 10)
}

// HandleTask carries out a reconcile:org task. A run that failed or was
// blocked is recorded, not retried: the next scheduled run tries again. A
// scheduled slot runs once, however often its task is delivered.
// A queued run that meets another run in progress is retried later; a
// scheduled one is dropped, since the run in progress does its work.
func (r *Reconciler) HandleTask(ctx context.Context, t *asynq.Task) error {
	var p Task
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.OrgID == "" {
		return fmt.Errorf("reconcile task: bad payload: %w", asynq.SkipRetry)
	}
	opts := Options{Trigger: TriggerSchedule, RunID: p.RunID}
	if p.RunID != "" {
		opts.Trigger = TriggerAPI
	} else if p.ScheduledAt > 0 {
		opts.Slot = time.Unix(p.ScheduledAt, 0)
	}
	_, err := r.Reconcile(ctx, p.OrgID, opts)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrRunBusy) && p.RunID == "":
		r.log().InfoContext(ctx, "scheduled reconciliation skipped: a run is in progress", "org", p.OrgID)
		return nil
	case errors.Is(err, store.ErrRunNotQueued):
		return nil // carried out by an earlier delivery
	case errors.Is(err, store.ErrSlotRan):
		r.log().InfoContext(ctx, "scheduled reconciliation skipped: its slot has run already", "org", p.OrgID, "slot", opts.Slot.UTC())
		return nil
	case errors.Is(err, store.ErrNotFound):
		// The organization (or the run) is gone.
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}

// Mux is the part of *asynq.ServeMux that Register needs.
type Mux interface {
	HandleFunc(pattern string, handler func(context.Context, *asynq.Task) error)
}

// Register adds the reconcile:org handler to a worker's mux.
func Register(mux Mux, r *Reconciler) {
	mux.HandleFunc(task.TypeReconcile, r.HandleTask)
}
