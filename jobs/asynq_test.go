package jobs_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

func TestIsFailure(t *testing.T) {
	isFailure := jobs.ServerConfig(slog.New(slog.DiscardHandler), 1, time.Second).IsFailure
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("reconcile org o: %w", store.ErrRunBusy), false},
		{errors.New("database down"), true},
		{fmt.Errorf("bad payload: %w", asynq.SkipRetry), true},
		{context.DeadlineExceeded, true},
	} {
		if got := isFailure(tt.err); got != tt.want {
			t.Errorf("IsFailure(%v) = %t, want %t", tt.err, got, tt.want)
		}
	}
}

// logged is what a test reads of a failure's log line.
type logged struct {
	Level, Msg        string
	Retried, MaxRetry int
}

// failureLogs reads the JSON log lines of one task, by task id.
func failureLogs(t *testing.T, logs string, id string) []logged {
	t.Helper()
	var out []logged
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var l struct {
			Level, Msg, Task, Type, Err, Component string
			Retried                                int
			MaxRetry                               int `json:"max_retry"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l.Task != id {
			continue
		}
		if l.Type != task.TypeReconcile || l.Err == "" || l.Component != "jobs" {
			t.Errorf("log line %s: want type, err and component=jobs", sc.Text())
		}
		out = append(out, logged{l.Level, l.Msg, l.Retried, l.MaxRetry})
	}
	return out
}

// TestErrorHandlerLogsFailures runs a worker whose reconciler fails in each
// way: the server's ErrorHandler logs each failed run once, as asynq then
// handles it, and a busy run is retried without spending its retries.
func TestErrorHandlerLogsFailures(t *testing.T) {
	br := brokertest.Open(t)
	var (
		logs syncbuf.Buffer
		mu   sync.Mutex
		busy = 3 // times the "busy" organization meets a run in progress
	)
	rec := reconcileFunc(func(_ context.Context, p task.Reconcile) (string, error) {
		switch p.OrgID {
		case "down":
			return "", errors.New("reconcile: database down")
		case "gone":
			return "", fmt.Errorf("reconcile: org not found: %w", asynq.SkipRetry)
		case "busy":
			mu.Lock()
			defer mu.Unlock()
			if busy > 0 {
				busy--
				return "", fmt.Errorf("reconcile org busy: %w", store.ErrRunBusy)
			}
		}
		return "ran", nil
	})
	cfg := jobs.ServerConfig(slog.New(slog.NewJSONHandler(&logs, nil)), 2, 5*time.Second)
	cfg.LogLevel = asynq.FatalLevel
	cfg.RetryDelayFunc = func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond }
	cfg.DelayedTaskCheckInterval = 50 * time.Millisecond
	srv := asynq.NewServer(br.Opt, cfg)
	mux := asynq.NewServeMux()
	reg := prometheus.NewRegistry()
	jobs.Register(mux, jobs.Handlers{Reconciler: rec}, reg)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	client := asynq.NewClient(br.Opt)
	t.Cleanup(func() { client.Close() })
	insp := asynq.NewInspector(br.Opt)
	t.Cleanup(func() { insp.Close() })

	slot := time.Unix(1772409600, 0)
	ids := map[string]string{}
	for _, org := range []string{"down", "gone", "busy"} {
		// One retry: the busy organization would be archived if its runs
		// counted as failures.
		info, err := client.Enqueue(jobs.NewTask(task.ScheduledReconcileRow(org, slot)), asynq.MaxRetry(1))
		if err != nil {
			t.Fatal(err)
		}
		ids[org] = info.ID
	}
	p := &pipeline{reg: reg}
	eventually(t, 10*time.Second, "two tasks archived and one run", func() bool {
		archived, _ := insp.ListArchivedTasks(task.QueueDefault)
		return len(archived) == 2 && p.count(t, task.TypeReconcile, "ran") == 1
	})

	for org, want := range map[string][]logged{
		"down": {
			{"WARN", "task failed; will retry", 0, 1},
			{"WARN", "task failed for good; archived", 1, 1},
		},
		"gone": {{"WARN", "task failed for good; archived", 0, 1}},
		"busy": {
			{"INFO", "task cannot run yet; will retry", 0, 1},
			{"INFO", "task cannot run yet; will retry", 0, 1},
			{"INFO", "task cannot run yet; will retry", 0, 1},
		},
	} {
		if d := cmp.Diff(want, failureLogs(t, logs.String(), ids[org])); d != "" {
			t.Errorf("%s: logs (-want +got):\n%s", org, d)
		}
	}
	for outcome, n := range map[string]float64{"ran": 1, "busy": 3, "error": 2, "failed": 1} {
		if c := p.count(t, task.TypeReconcile, outcome); c != n {
			t.Errorf("scimsync_jobs_total{type=reconcile:org,outcome=%s} = %v, want %v", outcome, c, n)
		}
	}
}

// A catalogue row reaches Redis with its id, queue and payload JSON and
// the limits of its type: a scheduled run's id is the one every scheduler
// computes.
func TestNewTask(t *testing.T) {
	client := asynq.NewClient(brokertest.Open(t).Opt)
	t.Cleanup(func() { client.Close() })
	slot := time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("east", 9*3600))
	info, err := client.EnqueueContext(context.Background(), jobs.NewTask(task.ScheduledReconcileRow("o1", slot)))
	if err != nil {
		t.Fatal(err)
	}
	type pinned struct {
		ID, Queue, Type, Payload string
		MaxRetry                 int
		Timeout                  time.Duration
	}
	got := pinned{info.ID, info.Queue, info.Type, string(info.Payload), info.MaxRetry, info.Timeout}
	want := pinned{"reconcile:o1:1772409600", "default", "reconcile:org", `{"orgId":"o1","scheduledAt":1772409600}`, 3, 6 * time.Hour}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("enqueued task (-want +got):\n%s", d)
	}
}

// The worker waits the catalogue's delay before a delivery's retry, and
// asynq's default before any other.
func TestServerRetryDelays(t *testing.T) {
	cfg := jobs.ServerConfig(slog.New(slog.DiscardHandler), 1, time.Second)
	if d := cfg.RetryDelayFunc(0, errors.New("503"), asynq.NewTask(task.TypeWebhookDeliver, nil)); d != time.Second {
		t.Errorf("first delivery retry after %s, want 1s", d)
	}
	if d := cfg.RetryDelayFunc(0, errors.New("db"), asynq.NewTask(task.TypeConvergeUser, nil)); d < 15*time.Second {
		t.Errorf("first converge retry after %s, want asynq's default (15s or more)", d)
	}
}
