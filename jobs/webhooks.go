package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// WebhookDispatcher queues a webhook:deliver task for every enabled
// endpoint and organization whose cursor is behind the organization's
// feed, every Every (1s) and on Notify. A pair already queued or running
// keeps its one task: the task id collapses duplicates.
type WebhookDispatcher struct {
	Store *store.Store
	Queue Enqueuer
	Log   *slog.Logger
	Clock clock.Clock
	Every time.Duration

	notify chan struct{}
}

// NewWebhookDispatcher returns a dispatcher; every is 1s when zero.
func NewWebhookDispatcher(st *store.Store, q Enqueuer, log *slog.Logger, clk clock.Clock, every time.Duration) *WebhookDispatcher {
	return &WebhookDispatcher{Store: st, Queue: q, Log: log.With("component", "webhook-dispatcher"), Clock: clock.OrReal(clk),
		Every: cmp.Or(every, time.Second), notify: make(chan struct{}, 1)}
}

// Notify wakes the dispatcher now; it never blocks.
func (w *WebhookDispatcher) Notify() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// DispatchOnce queues the pairs behind and returns how many it queued
// (those already queued not counted).
func (w *WebhookDispatcher) DispatchOnce(ctx context.Context) (int, error) {
	bs, err := w.Store.WebhookBacklogs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, b := range bs {
		_, err := w.Queue.EnqueueContext(ctx, NewTask(task.WebhookDeliverRow(b.EndpointID, b.OrgID)))
		switch {
		case errors.Is(err, asynq.ErrTaskIDConflict), errors.Is(err, asynq.ErrDuplicateTask):
		case err != nil:
			return n, fmt.Errorf("queue webhook delivery: %w", err)
		default:
			n++
		}
	}
	return n, nil
}

// Run dispatches until ctx ends.
func (w *WebhookDispatcher) Run(ctx context.Context) {
	t := w.Clock.NewTicker(w.Every)
	defer t.Stop()
	failing := false
	for {
		_, err := w.DispatchOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !failing {
			w.Log.WarnContext(ctx, "webhook dispatch failing", "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-w.notify:
		case <-t.C():
		}
	}
}
