package task_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// The options of every type are pinned: queued tasks and running workers
// of an older release carry them.
func TestOptions(t *testing.T) {
	type limits struct {
		MaxRetry int
		Timeout  time.Duration
	}
	for typ, want := range map[string]limits{
		task.TypeConvergeUser:   {20, 30 * time.Second},
		task.TypeConvergeGroup:  {20, 5 * time.Minute},
		task.TypeConvergeUsers:  {20, 5 * time.Minute},
		task.TypeConvergeGroups: {20, 30 * time.Minute},
		task.TypeSendInvite:     {12, 2 * time.Minute},
		task.TypeReconcile:      {3, 6 * time.Hour},
	} {
		var got limits
		for _, o := range task.Options(typ) {
			switch o.Type() {
			case asynq.MaxRetryOpt:
				got.MaxRetry = o.Value().(int)
			case asynq.TimeoutOpt:
				got.Timeout = o.Value().(time.Duration)
			default:
				t.Errorf("%s: unexpected option %v", typ, o)
			}
		}
		if got != want {
			t.Errorf("%s: options %+v, want %+v", typ, got, want)
		}
	}
	if o := task.Options("no:such"); o != nil {
		t.Errorf("options of an unknown type = %v, want none", o)
	}
}

// A queued run's row keeps the id, queue and payload JSON that outbox rows
// already written and deployed handlers use.
func TestReconcileRow(t *testing.T) {
	got := task.ReconcileRow("o1", "r1")
	want := store.OutboxRow{OrgID: "o1", TaskType: "reconcile:org", TaskID: "reconcile-run-r1", Queue: "default",
		Payload: []byte(`{"orgId":"o1","runId":"r1"}`)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("row (-want +got):\n%s", d)
	}
}

// A scheduled run's task reaches Redis with the id every scheduler
// computes, its queue, payload JSON and the reconcile options.
func TestNewScheduledReconcile(t *testing.T) {
	client := asynq.NewClient(brokertest.Open(t).Opt)
	t.Cleanup(func() { client.Close() })
	slot := time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("east", 9*3600))
	if id := task.ScheduledReconcileID("o1", slot); id != "reconcile:o1:1772409600" {
		t.Errorf("id = %q", id)
	}
	info, err := client.EnqueueContext(context.Background(), task.NewScheduledReconcile("o1", slot))
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
