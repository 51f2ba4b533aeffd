package app

import (
	"context"
	"sync"

	"github.com/hibiken/asynq"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/mail"
)

// jobParts are the outbox relay, converge and invites, built once per App
// whichever roles use them.
type jobParts struct {
	once      sync.Once
	client    *asynq.Client
	relay     *jobs.Relay
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
		p.converger = &converge.Converger{Store: a.Store, Invites: p.invites, Notify: p.relay.Notify}
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
	jobs.Register(mux, jobs.Handlers{Converger: p.converger, Invites: p.invites, Reconciler: a.Reconciler()}, a.Registry)
	return nil
}

// startRelay runs the outbox relay until ctx ends. Every api and worker
// process runs one: relays share the outbox safely, and each wakes
// promptly for the writes of its own process.
func (a *App) startRelay(ctx context.Context, wg *sync.WaitGroup) {
	p := a.jobs()
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.client.Close()
		p.relay.Run(ctx)
	}()
	a.Log.Info("outbox relay started")
}
