// Package jobs owns the work that moves local state to match directory
// state: the asynq queues and task handlers, the outbox relay that feeds
// them, the converge functions, and invite e-mail.
package jobs
