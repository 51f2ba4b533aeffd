// Package ops owns what operators point tools at: /healthz and /readyz, the
// Prometheus /metrics (HTTP and job-queue metrics), and the asynq dashboard
// at /monitoring/ behind the admin token.
package ops
