package reconciler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// HandleTask carries out a reconcile:org task. A run that failed or was
// blocked is recorded, not retried: the next scheduled run tries again. A
// scheduled slot runs once, however often its task is delivered.
// A queued run that meets another run in progress is retried later; a
// scheduled one is dropped, since the run in progress does its work.
func (r *Reconciler) HandleTask(ctx context.Context, t *asynq.Task) error {
	var p task.Reconcile
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
