package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/jobs/task"
)

// QueueWeights is asynq's weighted priority for the queues: deprovisions
// go before provisioning, and provisioning before invite mail, when the
// queues are busy.
var QueueWeights = map[string]int{task.QueueCritical: 6, task.QueueDefault: 3, task.QueueLow: 1}

// ServerConfig returns the asynq server configuration for a worker.
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
		// asynq polls when its queues are empty; the default 1s would add up
		// to a second to every job that arrives while the worker is idle.
		TaskCheckInterval: 100 * time.Millisecond,
		// Task contexts must not outlive a graceful shutdown.
		BaseContext: context.Background,
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
