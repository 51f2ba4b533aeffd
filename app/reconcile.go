package app

import (
	"context"
	"log/slog"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/config"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
)

// Reconciler is the reconciliation bound to this app, for the worker's
// reconcile:org handler.
func (a *App) Reconciler() *reconciler.Reconciler {
	p := a.jobs()
	r := newReconciler(a.Cfg, a.Store, a.Connectors(), p.invites, a.Log, a.Registry)
	r.Notify = p.relay.Notify
	return r
}

// OpenReconciler opens the database named by cfg and returns a reconciler
// over it, for running one reconciliation in-process (the reconcile
// command): no Redis is needed, its work goes to the outbox. close releases
// the database.
func OpenReconciler(ctx context.Context, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (*reconciler.Reconciler, func(), error) {
	st, _, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	box, err := loadBox(cfg, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	inv := &invite.Service{Store: st, Log: log.With("component", "invite"), Config: inviteConfig(cfg)}
	return newReconciler(cfg, st, newOpener(st, box, log), inv, log, reg), func() { st.Close() }, nil
}

func inviteConfig(cfg config.Config) invite.Config {
	return invite.Config{PublicURL: cfg.PublicURL, TTL: cfg.InviteTTL, ResendAfter: cfg.InviteResendAfter, MaxSends: cfg.InviteMaxSends}
}

func newReconciler(cfg config.Config, st *store.Store, dirs reconciler.Directories, inv reconciler.InviteResender, log *slog.Logger, reg prometheus.Registerer) *reconciler.Reconciler {
	return &reconciler.Reconciler{
		Store: st, Directories: dirs, Invites: inv, Policy: reconciler.PolicyFromConfig(cfg),
		Log: log.With("component", "reconciler"), Metrics: reconciler.NewMetrics(reg),
	}
}

// startScheduler runs the reconcile scheduler until ctx ends.
func (a *App) startScheduler(ctx context.Context, wg *sync.WaitGroup) {
	client := asynq.NewClient(a.Broker.Opt)
	s := &reconciler.Scheduler{
		Orgs: a.Store, Queue: client, Default: a.Cfg.ReconcileSchedule,
		Log: a.Log.With("component", "scheduler"), Metrics: reconciler.NewMetrics(a.Registry),
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer client.Close()
		s.Run(ctx)
	}()
	a.Log.Info("scheduler started", "default_schedule", a.Cfg.ReconcileSchedule)
}
