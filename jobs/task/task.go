// Package task is the catalogue of scimsync's jobs: each type's name,
// payload and limits, and the outbox rows that carry them. Writers of
// directory state (SCIM, the reconciler, the scheduler) and the job
// handlers agree through this package alone. It names no queue library, so
// that converge can write the rows of the work it implies without
// depending on the transport; package jobs turns rows into asynq tasks.
package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/scimsync/scimsync/store"
)

// Task types.
const (
	TypeConvergeUser  = "converge:user"
	TypeConvergeGroup = "converge:group"
	TypeSendInvite    = "invite:send"
	TypeReconcile     = "reconcile:org"
	// The batch forms, which the relay makes from converge rows of one
	// organization and queue.
	TypeConvergeUsers  = "converge:users"
	TypeConvergeGroups = "converge:groups"
	// TypeSendInvites, the batch form of TypeSendInvite, which the relay
	// makes from invite rows of one organization.
	TypeSendInvites = "invite:sends"
	// TypeWebhookDeliver delivers one organization's new events to one
	// webhook endpoint, in order; one task per pair (WebhookDeliverTaskID).
	TypeWebhookDeliver = "webhook:deliver"
)

// Queue names. Weights (see jobs) put removals before provisioning and
// provisioning before mail.
const (
	QueueCritical = "critical"
	QueueDefault  = "default"
	QueueLow      = "low"
)

// Limits are the retry and time limits that every task of a type is
// enqueued with.
type Limits struct {
	MaxRetry int
	Timeout  time.Duration
}

// LimitsOf returns the limits of a task type, and false for a type that
// is not in the catalogue. Converges fail only on database trouble, so they
// retry for long; an invite e-mail that a server keeps deferring is given
// about a day.
func LimitsOf(taskType string) (Limits, bool) {
	switch taskType {
	case TypeConvergeUser:
		return Limits{MaxRetry: 20, Timeout: 30 * time.Second}, true
	case TypeConvergeGroup, TypeConvergeUsers:
		// A large group's member diff, or a batch of users, takes longer
		// than one user.
		return Limits{MaxRetry: 20, Timeout: 5 * time.Minute}, true
	case TypeConvergeGroups:
		return Limits{MaxRetry: 20, Timeout: 30 * time.Minute}, true
	case TypeSendInvite:
		return Limits{MaxRetry: 12, Timeout: 2 * time.Minute}, true
	case TypeSendInvites:
		// A batch's e-mails go one after the other to the mail server.
		return Limits{MaxRetry: 12, Timeout: 10 * time.Minute}, true
	case TypeWebhookDeliver:
		// 14 retries after webhookRetryDelays span about 25 hours, past
		// the day after which a failing endpoint is switched off.
		return Limits{MaxRetry: 14, Timeout: 10 * time.Minute}, true
	case TypeReconcile:
		// A full pull of a large IdP takes a while; the next scheduled run
		// is the better retry for a run that keeps failing.
		return Limits{MaxRetry: 3, Timeout: 6 * time.Hour}, true
	}
	return Limits{}, false
}

// webhookRetryDelays are the waits before a delivery's retries. A failed
// delivery holds its organization's stream, which is delivered in order,
// so the first retries come within seconds rather than after asynq's
// default 15 s and more.
var webhookRetryDelays = []time.Duration{
	time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 4 * time.Hour, 4 * time.Hour, 4 * time.Hour, 5 * time.Hour,
}

// RetryDelay returns the wait before the retry of a task type's task that
// has been retried n times so far, and false for a type that keeps
// asynq's default backoff.
func RetryDelay(taskType string, n int) (time.Duration, bool) {
	if taskType != TypeWebhookDeliver {
		return 0, false
	}
	return webhookRetryDelays[min(max(n, 0), len(webhookRetryDelays)-1)], true
}

// ConvergeUser asks to make an organization's local member match one
// directory user (which may no longer exist).
type ConvergeUser struct {
	OrgID           string `json:"orgId"`
	DirectoryUserID string `json:"directoryUserId"`
}

// ConvergeGroup asks to make a local group match one directory group.
type ConvergeGroup struct {
	OrgID            string `json:"orgId"`
	DirectoryGroupID string `json:"directoryGroupId"`
}

// ConvergeUserRow is the outbox row for a converge of one directory user.
// urgent puts it on the critical queue (deactivations and deletions).
func ConvergeUserRow(orgID, directoryUserID string, urgent bool) store.OutboxRow {
	q := QueueDefault
	if urgent {
		q = QueueCritical
	}
	return row(orgID, TypeConvergeUser, q, ConvergeUser{OrgID: orgID, DirectoryUserID: directoryUserID})
}

// ConvergeGroupRow is the outbox row for a converge of one directory group.
func ConvergeGroupRow(orgID, directoryGroupID string) store.OutboxRow {
	return row(orgID, TypeConvergeGroup, QueueDefault, ConvergeGroup{OrgID: orgID, DirectoryGroupID: directoryGroupID})
}

// ConvergeUsersRow is the outbox row for a converge of many directory
// users of one organization, as the relay would batch them. urgent puts it
// on the critical queue.
func ConvergeUsersRow(orgID string, directoryUserIDs []string, urgent bool) store.OutboxRow {
	q := QueueDefault
	if urgent {
		q = QueueCritical
	}
	return row(orgID, TypeConvergeUsers, q, ConvergeBatch{OrgID: orgID, IDs: directoryUserIDs})
}

// ConvergeGroupsRow is the outbox row for a converge of many directory
// groups of one organization.
func ConvergeGroupsRow(orgID string, directoryGroupIDs []string) store.OutboxRow {
	return row(orgID, TypeConvergeGroups, QueueDefault, ConvergeBatch{OrgID: orgID, IDs: directoryGroupIDs})
}

// MaxBatch is how many entities a batch converge task carries at most.
const MaxBatch = 100

// ConvergeBatch asks to converge many entities of one organization: the
// payload of TypeConvergeUsers (directory user ids) and TypeConvergeGroups
// (directory group ids); and to send many invite e-mails, the payload of
// TypeSendInvites (invite ids).
type ConvergeBatch struct {
	OrgID string   `json:"orgId"`
	IDs   []string `json:"ids"`
}

// BatchType is the batch task type that carries rows of taskType, "" for
// a type that is not batched.
func BatchType(taskType string) string {
	switch taskType {
	case TypeConvergeUser:
		return TypeConvergeUsers
	case TypeConvergeGroup:
		return TypeConvergeGroups
	case TypeSendInvite:
		return TypeSendInvites
	}
	return ""
}

// BatchOf is the batch task type that may carry r, "" when r goes as a
// task of its own. A converge row with a task id of its own is not
// batched; an invite row always is: its task id only collapses repeats,
// and the mail log's claim sends each decision's e-mail once however it
// is queued.
func BatchOf(r store.OutboxRow) string {
	if r.TaskID != "" && r.TaskType != TypeSendInvite {
		return ""
	}
	return BatchType(r.TaskType)
}

// EntityID reads the entity id of a single payload of a type that is
// batched (BatchType).
func EntityID(taskType string, payload []byte) (orgID, id string, err error) {
	switch taskType {
	case TypeSendInvite:
		var p SendInvite
		err = json.Unmarshal(payload, &p)
		orgID, id = p.OrgID, p.InviteID
	case TypeConvergeUser:
		var p ConvergeUser
		err = json.Unmarshal(payload, &p)
		orgID, id = p.OrgID, p.DirectoryUserID
	case TypeConvergeGroup:
		var p ConvergeGroup
		err = json.Unmarshal(payload, &p)
		orgID, id = p.OrgID, p.DirectoryGroupID
	default:
		return "", "", fmt.Errorf("task type %s names no entity", taskType)
	}
	if err == nil && (orgID == "" || id == "") {
		err = errors.New("a required field is empty")
	}
	if err != nil {
		return "", "", fmt.Errorf("read %s payload: %w", taskType, err)
	}
	return orgID, id, nil
}

// SendInvite asks to e-mail one invite decision. The e-mail's token is
// minted when it is sent, so the payload carries no secret.
type SendInvite struct {
	OrgID    string `json:"orgId"`
	InviteID string `json:"inviteId"`
}

// SendInviteRow is the outbox row for one invite e-mail. Its task id is
// the invite's, so the e-mail of one decision is queued once however often
// the row is relayed.
func SendInviteRow(orgID, inviteID string) store.OutboxRow {
	r := row(orgID, TypeSendInvite, QueueLow, SendInvite{OrgID: orgID, InviteID: inviteID})
	r.TaskID = "invite-" + inviteID
	return r
}

// Reconcile is the payload of a reconcile:org task.
type Reconcile struct {
	OrgID string `json:"orgId"`
	// RunID is the queued run the admin API created; empty for a scheduled
	// run, which the handler creates.
	RunID string `json:"runId,omitempty"`
	// ScheduledAt is the schedule slot (Unix seconds) of a scheduled run.
	ScheduledAt int64 `json:"scheduledAt,omitempty"`
}

// ReconcileRow is the outbox row that has a worker carry out a queued run.
// Its task id is the run's, so the run is queued once however often the
// row is relayed.
func ReconcileRow(orgID, runID string) store.OutboxRow {
	r := row(orgID, TypeReconcile, QueueDefault, Reconcile{OrgID: orgID, RunID: runID})
	r.TaskID = "reconcile-run-" + runID
	return r
}

// ScheduledReconcileID names the scheduled run of an organization at a
// slot: every scheduler computes the same id for the same run, so the queue
// holds it once.
func ScheduledReconcileID(orgID string, slot time.Time) string {
	return "reconcile:" + orgID + ":" + strconv.FormatInt(slot.Unix(), 10)
}

// ScheduledReconcileRow is the row of an organization's scheduled run at a
// slot, with its id (ScheduledReconcileID). The scheduler enqueues it
// directly (jobs.NewTask) rather than through the outbox: a lost one is
// made again at the next tick.
func ScheduledReconcileRow(orgID string, slot time.Time) store.OutboxRow {
	r := row(orgID, TypeReconcile, QueueDefault, Reconcile{OrgID: orgID, ScheduledAt: slot.Unix()})
	r.TaskID = ScheduledReconcileID(orgID, slot)
	return r
}

func row(orgID, typ, queue string, payload any) store.OutboxRow {
	return store.OutboxRow{OrgID: orgID, TaskType: typ, Queue: queue, Payload: marshal(typ, payload)}
}

func marshal(typ string, payload any) []byte {
	b, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("task: marshal %s payload: %v", typ, err)) // plain structs of strings and numbers always marshal
	}
	return b
}

// WebhookDeliver asks to deliver an organization's events to an endpoint.
type WebhookDeliver struct {
	EndpointID string `json:"endpointId"`
	OrgID      string `json:"orgId"`
}

// WebhookDeliverRow is the task of a WebhookDeliver. Its task id is one per
// (endpoint, organization), so that duplicates collapse while one waits.
func WebhookDeliverRow(endpointID, orgID string) store.OutboxRow {
	r := row(orgID, TypeWebhookDeliver, QueueDefault, WebhookDeliver{EndpointID: endpointID, OrgID: orgID})
	r.TaskID = TypeWebhookDeliver + ":" + endpointID + ":" + orgID
	return r
}
