// Package jobs is the asynq transport of the work that moves local state to
// match directory state: the queues and task handlers, and the outbox relay
// that feeds them. The decisions live elsewhere: provisioning in package
// converge, invites and their acceptance in jobs/invite, SMTP in jobs/mail,
// webhook delivery in jobs/webhook, reconciliation runs in package
// reconciler.
//
// Delivery, end to end:
//
//   - A directory change and its outbox row commit together; nothing
//     acknowledged is lost while Redis is down, the row waits.
//   - The relay delivers each row at least once. A repeat within the life of
//     the queued task collapses on its task id; a later repeat runs the job
//     again, which is harmless: converge is idempotent, and an invite's
//     e-mail is keyed by its decision. Converge and invite rows claimed
//     together are delivered as batch tasks per organization, type and
//     queue; the same entity may so be converged by two batches, which is
//     harmless too, and an invite in two batches is sent by the first.
//   - Task handlers may run more than once (asynq retries, lost acks).
//     A batch with a failing entity is retried whole; its other entities
//     committed already (an invite batch's other e-mails are sent, and the
//     retry finds them claimed). Converge re-reads state and writes only
//     differences; an invite decision (membership, send number) is
//     recorded once; its e-mail is sent at most once (a claim in the mail
//     log precedes the send).
//   - Terminal failures (an undecodable payload, a mail server's permanent
//     rejection, a send whose outcome is unknown, a reconcile of an
//     organization that is gone) are archived at once with asynq.SkipRetry;
//     all others are retried with asynq's backoff. A queued reconcile that
//     meets a run in progress is retried too, but is no failure (IsFailure):
//     it spends none of its retries. The worker's ErrorHandler logs each
//     failed run, and whether it will be retried or is archived.
//   - Webhooks: the WebhookDispatcher queues one webhook:deliver task per
//     enabled endpoint and organization whose cursor is behind (every
//     second and when converge commits), collapsing on its task id. The
//     task delivers in sequence order and fails at the first refusal; on
//     its last retry it ends instead of being archived, so that the pair
//     can be queued again.
package jobs
