package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// QueueWeights is asynq's weighted priority for the queues: deprovisions
// go before provisioning, and provisioning before invite mail, when the
// queues are busy. A worker tries the queues in an order drawn by weight
// among those that hold tasks, so while provisioning is busy mail is
// tried first in 1 of 31 picks: it never starves, yet an organization's
// first provisioning is not held back by the mail it implies (at 3:1,
// invite batches, each longer than a converge batch, took most of the
// workers' time).
var QueueWeights = map[string]int{task.QueueCritical: 60, task.QueueDefault: 30, task.QueueLow: 1}

// NewTask is the asynq task of a catalogue row: its type, payload, id (when
// set) and queue, with the limits of its type (task.LimitsOf).
func NewTask(r store.OutboxRow) *asynq.Task {
	opts := []asynq.Option{asynq.Queue(r.Queue)}
	if r.TaskID != "" {
		opts = append(opts, asynq.TaskID(r.TaskID))
	}
	if l, ok := task.LimitsOf(r.TaskType); ok {
		opts = append(opts, asynq.MaxRetry(l.MaxRetry), asynq.Timeout(l.Timeout))
	}
	return asynq.NewTask(r.TaskType, r.Payload, opts...)
}

// ServerConfig returns the asynq server configuration for a worker. Its
// ErrorHandler logs every failed task run (logFailure), and IsFailure keeps
// expected retries out of the failure counts.
func ServerConfig(log *slog.Logger, concurrency int, shutdownTimeout time.Duration) asynq.Config {
	if concurrency <= 0 {
		concurrency = 16
	}
	return asynq.Config{
		Concurrency:     concurrency,
		Queues:          QueueWeights,
		Logger:          NewAsynqLogger(log),
		LogLevel:        asynq.InfoLevel,
		ShutdownTimeout: shutdownTimeout,
		IsFailure:       IsFailure,
		RetryDelayFunc:  retryDelay,
		ErrorHandler:    logFailure(log.With("component", "jobs")),
		// asynq polls when its queues are empty; the default 1s would add up
		// to a second to every job that arrives while the worker is idle.
		TaskCheckInterval: 100 * time.Millisecond,
		// Task contexts must not outlive a graceful shutdown.
		BaseContext: context.Background,
	}
}

// retryDelay is the catalogue's wait before a retry (task.RetryDelay),
// else asynq's default backoff.
func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	if d, ok := task.RetryDelay(t.Type(), n); ok {
		return d
	}
	return asynq.DefaultRetryDelayFunc(n, err, t)
}

// IsFailure reports whether a task's error is a failure. A queued
// reconcile that meets another run of its organization (store.ErrRunBusy)
// is not: it waits its turn, so asynq neither counts it in the queue's
// failures nor spends one of its retries on it.
func IsFailure(err error) bool {
	return err != nil && !errors.Is(err, store.ErrRunBusy)
}

// logFailure logs a failed task run, as asynq goes on to handle it:
// archived on asynq.SkipRetry or when its retries are spent, else retried.
func logFailure(log *slog.Logger) asynq.ErrorHandlerFunc {
	return func(ctx context.Context, t *asynq.Task, err error) {
		id, _ := asynq.GetTaskID(ctx)
		retried, _ := asynq.GetRetryCount(ctx)
		maxRetry, _ := asynq.GetMaxRetry(ctx)
		attrs := []any{"type", t.Type(), "task", id, "retried", retried, "max_retry", maxRetry, "err", err}
		switch {
		case errors.Is(err, asynq.SkipRetry) || retried >= maxRetry:
			log.WarnContext(ctx, "task failed for good; archived", attrs...)
		case !IsFailure(err):
			log.InfoContext(ctx, "task cannot run yet; will retry", attrs...)
		default:
			log.WarnContext(ctx, "task failed; will retry", attrs...)
		}
	}
}

// AsynqLogger adapts slog to asynq's logger interface.
type AsynqLogger struct{ log *slog.Logger }

// NewAsynqLogger returns an adapter that logs through log with
// component=asynq.
func NewAsynqLogger(log *slog.Logger) *AsynqLogger {
	return &AsynqLogger{log: log.With("component", "asynq")}
}

func (l *AsynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l *AsynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l *AsynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l *AsynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }

// Fatal logs and exits, as asynq's Logger contract requires.
func (l *AsynqLogger) Fatal(args ...any) {
	l.log.Error(fmt.Sprint(args...))
	os.Exit(1)
}
