package reconciler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// RunTask carries out a reconcile:org task and names its outcome: "ran";
// "skipped", a scheduled run that met a run in progress, which does its
// work; or "duplicate", a queued run or a slot that an earlier delivery
// carried out. A run that failed or was blocked ran: it is recorded, not
// retried, and the next scheduled run tries again. A queued run that meets
// another run in progress returns store.ErrRunBusy, to be retried later.
func (r *Reconciler) RunTask(ctx context.Context, p task.Reconcile) (outcome string, err error) {
	opts := Options{Trigger: TriggerSchedule, RunID: p.RunID}
	if p.RunID != "" {
		opts.Trigger = TriggerAPI
	} else if p.ScheduledAt > 0 {
		opts.Slot = time.Unix(p.ScheduledAt, 0)
	}
	_, err = r.Reconcile(ctx, p.OrgID, opts)
	switch {
	case err == nil:
		return "ran", nil
	case errors.Is(err, store.ErrRunBusy) && p.RunID == "":
		r.log().InfoContext(ctx, "scheduled reconciliation skipped: a run is in progress", "org", p.OrgID)
		return "skipped", nil
	case errors.Is(err, store.ErrRunNotQueued):
		return "duplicate", nil
	case errors.Is(err, store.ErrSlotRan):
		r.log().InfoContext(ctx, "scheduled reconciliation skipped: its slot has run already", "org", p.OrgID, "slot", opts.Slot.UTC())
		return "duplicate", nil
	case errors.Is(err, store.ErrNotFound):
		// The organization (or the run) is gone.
		return "", fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return "", err
}
