package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/lifecycle"
)

// Converger is what the converge handlers need.
type Converger interface {
	ConvergeUser(ctx context.Context, orgID, directoryUserID string) (lifecycle.Outcome, error)
	ConvergeGroup(ctx context.Context, orgID, directoryGroupID string) (lifecycle.Outcome, error)
	ApplyUsers(ctx context.Context, orgID string, directoryUserIDs []string) ([]converge.UserPlan, error)
	ApplyGroups(ctx context.Context, orgID string, directoryGroupIDs []string) ([]converge.GroupPlan, error)
}

// InviteSender is what the invite e-mail handler needs.
type InviteSender interface {
	Send(ctx context.Context, orgID, inviteID string) (invite.SendOutcome, error)
	SendAll(ctx context.Context, orgID string, inviteIDs []string) ([]invite.SendOutcome, error)
}

// Reconciler is what the reconcile handler needs; *reconciler.Reconciler
// is one.
type Reconciler interface {
	RunTask(ctx context.Context, p task.Reconcile) (outcome string, err error)
}

// WebhookDeliverer is what the webhook handler needs; *webhook.Deliverer
// is one.
type WebhookDeliverer interface {
	Deliver(ctx context.Context, endpointID, orgID string) error
}

// Handlers are the task handlers' dependencies.
type Handlers struct {
	Converger  Converger
	Invites    InviteSender
	Reconciler Reconciler
	// Webhooks, when set, serves TypeWebhookDeliver.
	Webhooks WebhookDeliverer
}

// errBadPayload marks a task no retry can fix.
var errBadPayload = errors.New("bad task payload")

// terminal lists the failures that retrying cannot change; their tasks are
// archived at once (asynq.SkipRetry, which a handler may return itself).
var terminal = []error{asynq.SkipRetry, errBadPayload, mail.ErrRejected, mail.ErrUncertain}

// Register adds the task handlers to mux and registers their metrics on
// reg: runs by task type and outcome, and run time by task type. The
// entities of a batch converge count as runs of their single type
// (converge:user, converge:group, invite:send), so the outcomes read the
// same however the work was batched.
//
// A batch whose entities partly fail is retried as a whole: the entities
// that converged are committed and find nothing to do the next time.
func Register(mux *asynq.ServeMux, h Handlers, reg prometheus.Registerer) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scimsync_jobs_total",
			Help: "Task runs by type and outcome (converge, send and reconcile outcomes, \"error\" for a retry, \"busy\" for a retry that is no failure, \"failed\" for an archived task).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "scimsync_job_duration_seconds", Help: "Task run time by type.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"type"}),
	}
	reg.MustRegister(m.runs, m.duration)

	mux.Handle(task.TypeConvergeUser, m.handler(task.TypeConvergeUser, func(ctx context.Context, payload []byte) (string, error) {
		var p task.ConvergeUser
		if err := decode(payload, &p, &p.OrgID, &p.DirectoryUserID); err != nil {
			return "", err
		}
		o, err := h.Converger.ConvergeUser(ctx, p.OrgID, p.DirectoryUserID)
		return string(o), err
	}))
	mux.Handle(task.TypeConvergeGroup, m.handler(task.TypeConvergeGroup, func(ctx context.Context, payload []byte) (string, error) {
		var p task.ConvergeGroup
		if err := decode(payload, &p, &p.OrgID, &p.DirectoryGroupID); err != nil {
			return "", err
		}
		o, err := h.Converger.ConvergeGroup(ctx, p.OrgID, p.DirectoryGroupID)
		return string(o), err
	}))
	mux.Handle(task.TypeConvergeUsers, m.batchHandler(task.TypeConvergeUsers, task.TypeConvergeUser, func(ctx context.Context, orgID string, ids []string) ([]string, error) {
		ps, err := h.Converger.ApplyUsers(ctx, orgID, ids)
		return outcomes(ps, converge.UserPlan.Outcome), err
	}))
	mux.Handle(task.TypeConvergeGroups, m.batchHandler(task.TypeConvergeGroups, task.TypeConvergeGroup, func(ctx context.Context, orgID string, ids []string) ([]string, error) {
		ps, err := h.Converger.ApplyGroups(ctx, orgID, ids)
		return outcomes(ps, converge.GroupPlan.Outcome), err
	}))
	mux.Handle(task.TypeSendInvite, m.handler(task.TypeSendInvite, func(ctx context.Context, payload []byte) (string, error) {
		var p task.SendInvite
		if err := decode(payload, &p, &p.OrgID, &p.InviteID); err != nil {
			return "", err
		}
		o, err := h.Invites.Send(ctx, p.OrgID, p.InviteID)
		return string(o), err
	}))
	mux.Handle(task.TypeSendInvites, m.batchHandler(task.TypeSendInvites, task.TypeSendInvite, func(ctx context.Context, orgID string, ids []string) ([]string, error) {
		os, err := h.Invites.SendAll(ctx, orgID, ids)
		return outcomes(os, func(o invite.SendOutcome) invite.SendOutcome { return o }), err
	}))
	if h.Webhooks != nil {
		mux.Handle(task.TypeWebhookDeliver, m.handler(task.TypeWebhookDeliver, func(ctx context.Context, payload []byte) (string, error) {
			var p task.WebhookDeliver
			if err := decode(payload, &p, &p.EndpointID, &p.OrgID); err != nil {
				return "", err
			}
			err := h.Webhooks.Deliver(ctx, p.EndpointID, p.OrgID)
			if err != nil && isLastRetry(ctx) {
				// Done rather than archived: an archived task would keep
				// its id, and the dispatcher could not queue the pair again.
				return "gave_up", nil
			}
			return "delivered", err
		}))
	}
	mux.Handle(task.TypeReconcile, m.handler(task.TypeReconcile, func(ctx context.Context, payload []byte) (string, error) {
		var p task.Reconcile
		if err := decode(payload, &p, &p.OrgID); err != nil {
			return "", err
		}
		return h.Reconciler.RunTask(ctx, p)
	}))
}

// decode reads a payload into v and checks that the required fields (of v)
// are set.
func decode(payload []byte, v any, required ...*string) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: %v", errBadPayload, err)
	}
	for _, f := range required {
		if *f == "" {
			return fmt.Errorf("%w: a required field is empty", errBadPayload)
		}
	}
	return nil
}

type metrics struct {
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// outcomes lists the outcomes of a batch's plans or sends.
func outcomes[P any, O ~string](ps []P, outcome func(P) O) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(outcome(p))
	}
	return out
}

// batchHandler wraps a batch converge or invite send: it counts each
// entity's outcome under entityType, then fails the task as handler does
// when any entity failed.
func (m *metrics) batchHandler(taskType, entityType string, fn func(ctx context.Context, orgID string, ids []string) ([]string, error)) asynq.Handler {
	return m.handler(taskType, func(ctx context.Context, payload []byte) (string, error) {
		var p task.ConvergeBatch
		if err := decode(payload, &p, &p.OrgID); err != nil {
			return "", err
		}
		if len(p.IDs) == 0 {
			return "", fmt.Errorf("%w: no entity ids", errBadPayload)
		}
		outcomes, err := fn(ctx, p.OrgID, p.IDs)
		for _, o := range outcomes {
			m.runs.WithLabelValues(entityType, o).Inc()
		}
		if err != nil {
			return "", fmt.Errorf("%d of %d done: %w", len(outcomes), len(p.IDs), err)
		}
		return "batch", nil
	})
}

// handler wraps fn with metrics and the retry decision. Failures are
// logged by the server's ErrorHandler (ServerConfig).
func (m *metrics) handler(taskType string, fn func(context.Context, []byte) (string, error)) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		start := time.Now()
		outcome, err := fn(ctx, t.Payload())
		m.duration.WithLabelValues(taskType).Observe(time.Since(start).Seconds())
		switch {
		case err == nil:
			m.runs.WithLabelValues(taskType, outcome).Inc()
			return nil
		case isTerminal(err):
			m.runs.WithLabelValues(taskType, "failed").Inc()
			if errors.Is(err, asynq.SkipRetry) {
				return err
			}
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		case !IsFailure(err):
			m.runs.WithLabelValues(taskType, "busy").Inc()
			return err
		}
		m.runs.WithLabelValues(taskType, "error").Inc()
		return err
	})
}

func isLastRetry(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	max, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= max
}

func isTerminal(err error) bool {
	for _, e := range terminal {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
