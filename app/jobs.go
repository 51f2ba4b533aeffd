package app

import (
	"context"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/mail"
	"github.com/scimsync/scimsync/jobs/webhook"
)

// jobParts are the outbox relay, converge and invites, built once per App
// whichever roles use them.
type jobParts struct {
	once   sync.Once
	client *asynq.Client
	relay  *jobs.Relay
	// webhooks queues deliveries of new events; deliver sends them.
	webhooks  *jobs.WebhookDispatcher
	deliver   *webhook.Deliverer
	converger *converge.Converger
	invites   *invite.Service
	// mailErr is a bad SMTP_URL or sender; it stops the worker, which is
	// the only part that sends mail.
	mailErr error
}

func (a *App) jobs() *jobParts {
	p := &a.work
	p.once.Do(func() {
		p.client = asynq.NewClient(a.Broker.Opt)
		p.relay = jobs.NewRelay(a.Store, p.client, a.Log, a.Registry, jobs.RelayConfig{EventRetention: a.Cfg.EventRetention})
		p.webhooks = jobs.NewWebhookDispatcher(a.Store, p.client, a.Log, nil, 0)
		p.deliver = &webhook.Deliverer{Store: a.Store, Box: a.Box, AllowPrivate: a.Cfg.WebhookAllowPrivate, Log: a.Log.With("component", "webhook")}
		var sender mail.Sender
		if a.Cfg.SMTPURL != "" {
			s, err := mail.NewSMTP(a.Cfg.SMTPURL, a.Cfg.MailFrom)
			if err != nil {
				p.mailErr = err
			} else {
				sender = s
			}
		}
		p.invites = &invite.Service{
			Store: a.Store, Mail: sender, Log: a.Log.With("component", "invite"), Notify: p.relay.Notify,
			Config: inviteConfig(a.Cfg),
		}
		// A converge writes events: the webhooks have news too.
		notify := func() { p.relay.Notify(); p.webhooks.Notify() }
		p.converger = &converge.Converger{Store: a.Store, Invites: p.invites, Notify: notify}
	})
	return p
}

// NotifyOutbox wakes the outbox relay; writers of outbox rows call it after
// their commit.
func (a *App) NotifyOutbox() { a.jobs().relay.Notify() }

// registerJobs puts the task handlers on the worker's mux.
func (a *App) registerJobs(mux *asynq.ServeMux) error {
	p := a.jobs()
	if p.mailErr != nil {
		return p.mailErr
	}
	if p.invites.Mail == nil {
		a.Log.Warn("SMTP_URL is not set: invite e-mails are recorded in the mail log, not sent")
	}
	jobs.Register(mux, jobs.Handlers{Converger: p.converger, Invites: p.invites, Reconciler: a.Reconciler(), Webhooks: p.deliver}, a.Registry)
	return nil
}

// startRelay runs the outbox relay and the webhook dispatcher until ctx
// ends. Every api and worker process runs one: relays share the outbox
// safely, dispatchers collapse on task ids, and each wakes promptly for
// the writes of its own process.
func (a *App) startRelay(ctx context.Context, wg *sync.WaitGroup) {
	p := a.jobs()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.client.Close() // after both loops, which share it
		var both sync.WaitGroup
		both.Add(2)
		go func() { defer both.Done(); p.relay.Run(ctx) }()
		go func() { defer both.Done(); p.webhooks.Run(ctx) }()
		both.Wait()
	}()
	a.Log.Info("outbox relay and webhook dispatcher started")
}
