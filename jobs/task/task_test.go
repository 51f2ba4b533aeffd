package task_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
)

// The limits of every type are pinned: queued tasks and running workers
// of an older release carry them.
func TestLimits(t *testing.T) {
	for typ, want := range map[string]task.Limits{
		task.TypeConvergeUser:   {MaxRetry: 20, Timeout: 30 * time.Second},
		task.TypeConvergeGroup:  {MaxRetry: 20, Timeout: 5 * time.Minute},
		task.TypeConvergeUsers:  {MaxRetry: 20, Timeout: 5 * time.Minute},
		task.TypeConvergeGroups: {MaxRetry: 20, Timeout: 30 * time.Minute},
		task.TypeSendInvite:     {MaxRetry: 12, Timeout: 2 * time.Minute},
		task.TypeSendInvites:    {MaxRetry: 12, Timeout: 10 * time.Minute},
		task.TypeReconcile:      {MaxRetry: 3, Timeout: 6 * time.Hour},
	} {
		if got, ok := task.LimitsOf(typ); !ok || got != want {
			t.Errorf("%s: limits %+v, %v; want %+v", typ, got, ok, want)
		}
	}
	if l, ok := task.LimitsOf("no:such"); ok {
		t.Errorf("limits of an unknown type = %+v, want none", l)
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

// A scheduled run's row has the id every scheduler computes.
func TestScheduledReconcileRow(t *testing.T) {
	slot := time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("east", 9*3600))
	got := task.ScheduledReconcileRow("o1", slot)
	want := store.OutboxRow{OrgID: "o1", TaskType: "reconcile:org", TaskID: "reconcile:o1:1772409600", Queue: "default",
		Payload: []byte(`{"orgId":"o1","scheduledAt":1772409600}`)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("row (-want +got):\n%s", d)
	}
}

// A delivery retries within seconds at first, and its retries outlast the
// day after which a failing endpoint is switched off; other types keep
// asynq's default backoff.
func TestRetryDelay(t *testing.T) {
	var total time.Duration
	l, _ := task.LimitsOf(task.TypeWebhookDeliver)
	for n := range l.MaxRetry {
		d, ok := task.RetryDelay(task.TypeWebhookDeliver, n)
		if !ok {
			t.Fatalf("retry %d: no delay", n)
		}
		if n == 0 && d > 5*time.Second {
			t.Errorf("first retry after %s, want seconds", d)
		}
		total += d
	}
	if total < 24*time.Hour || total > 26*time.Hour {
		t.Errorf("retries span %s, want a little over a day", total)
	}
	if d, ok := task.RetryDelay(task.TypeWebhookDeliver, 100); !ok || d != 5*time.Hour {
		t.Errorf("a late retry waits %s, %v; want the last delay, 5h", d, ok)
	}
	if _, ok := task.RetryDelay(task.TypeConvergeUser, 0); ok {
		t.Error("converge:user has its own delay, want asynq's default")
	}
}

// Converge rows without a task id of their own and every invite row go in
// batches; any other row is a task of its own.
func TestBatchOf(t *testing.T) {
	withID := task.ConvergeUserRow("o", "u", false)
	withID.TaskID = "own"
	for _, tt := range []struct {
		row  store.OutboxRow
		want string
	}{
		{task.ConvergeUserRow("o", "u", true), task.TypeConvergeUsers},
		{task.ConvergeGroupRow("o", "g"), task.TypeConvergeGroups},
		{task.SendInviteRow("o", "i"), task.TypeSendInvites},
		{withID, ""},
		{task.ReconcileRow("o", "r"), ""},
		{task.WebhookDeliverRow("e", "o"), ""},
	} {
		if got := task.BatchOf(tt.row); got != tt.want {
			t.Errorf("BatchOf(%s %q) = %q, want %q", tt.row.TaskType, tt.row.TaskID, got, tt.want)
		}
	}
	org, id, err := task.EntityID(task.TypeSendInvite, task.SendInviteRow("o", "i").Payload)
	if org != "o" || id != "i" || err != nil {
		t.Errorf("EntityID of an invite row = %q, %q, %v", org, id, err)
	}
}
