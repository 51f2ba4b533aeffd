package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Postgres is the run's own database, created through an admin URL and
// dropped at the end.
type Postgres struct {
	AdminURL string
	Name     string
	URL      string // the run's database
}

// NewPostgres derives the run's database URL from the admin URL.
func NewPostgres(adminURL, name string) (*Postgres, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("-database-url must be postgres://…")
	}
	if err := loopbackOnly(u.Host); err != nil {
		return nil, fmt.Errorf("-database-url: %w", err)
	}
	run := *u
	run.Path = "/" + name
	return &Postgres{AdminURL: adminURL, Name: name, URL: run.String()}, nil
}

func (p *Postgres) admin(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, p.AdminURL)
	if err != nil {
		return fmt.Errorf("connect to the admin database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn)
}

// Create makes a fresh database (dropping a leftover of the same name).
func (p *Postgres) Create(ctx context.Context) error {
	return p.admin(ctx, func(c *pgx.Conn) error {
		id := pgx.Identifier{p.Name}.Sanitize()
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", p.Name, err)
		}
		if _, err := c.Exec(ctx, "CREATE DATABASE "+id); err != nil {
			return fmt.Errorf("create database %s: %w", p.Name, err)
		}
		return nil
	})
}

// Drop removes the database.
func (p *Postgres) Drop(ctx context.Context) error {
	return p.admin(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{p.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", p.Name, err)
		}
		return nil
	})
}

// TerminateBackends cuts every connection to the run's database, as a
// Postgres failover or restart would, and returns how many it cut.
func (p *Postgres) TerminateBackends(ctx context.Context) (int, error) {
	var n int
	err := p.admin(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()) t`, p.Name).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("terminate backends: %w", err)
	}
	return n, nil
}

// query runs fn on a connection to the run's database.
func (p *Postgres) query(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", p.Name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn)
}

// PendingOutbox counts outbox rows not yet relayed.
func (p *Postgres) PendingOutbox(ctx context.Context) (int, error) {
	var n int
	err := p.query(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`).Scan(&n)
	})
	return n, err
}

// MailClaims counts, per recipient, the mail-log keys whose e-mail may
// have gone out: sent, uncertain, or claimed and never settled (a worker
// killed while sending).
func (p *Postgres) MailClaims(ctx context.Context) (map[string]int, map[string]int, error) {
	claims := map[string]int{}
	byStatus := map[string]int{}
	err := p.query(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT lower(recipient), status, count(*) FROM mail_log GROUP BY 1, 2`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var to, status string
			var n int
			if err := rows.Scan(&to, &status, &n); err != nil {
				return err
			}
			byStatus[status] += n
			if status == "sent" || status == "uncertain" || status == "sending" {
				claims[to] += n
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read the mail log: %w", err)
	}
	return claims, byStatus, nil
}

// Redis is the run's own redis-server, so that restarting and flushing it
// disturbs nobody else.
type Redis struct {
	Proc *Proc
	Addr string
}

func (r *Redis) URL() string { return "redis://" + r.Addr + "/0" }

func (r *Redis) client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: 2 * time.Second})
}

// FlushAll empties it, as an operator's mistake or a failover to an empty
// replica would.
func (r *Redis) FlushAll(ctx context.Context) error {
	c := r.client()
	defer c.Close()
	if err := c.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("redis FLUSHALL: %w", err)
	}
	return nil
}

// Restart kills redis-server and starts it again; with no persistence it
// comes back empty.
func (r *Redis) Restart(ctx context.Context) error {
	r.Proc.Kill()
	return r.Proc.Restart(ctx)
}

// Queues reads the asynq queues.
type Queues struct{ insp *asynq.Inspector }

func NewQueues(addr string) *Queues {
	return &Queues{insp: asynq.NewInspector(asynq.RedisClientOpt{Addr: addr, DialTimeout: 2 * time.Second})}
}

func (q *Queues) Close() { q.insp.Close() }

// Busy counts tasks not yet done (pending, active, scheduled, retry) and
// archived ones, over all queues.
func (q *Queues) Busy() (busy, archived int, err error) {
	names, err := q.insp.Queues()
	if err != nil {
		return 0, 0, fmt.Errorf("list queues: %w", err)
	}
	for _, n := range names {
		info, err := q.insp.GetQueueInfo(n)
		if err != nil {
			return 0, 0, fmt.Errorf("queue %s: %w", n, err)
		}
		busy += info.Pending + info.Active + info.Scheduled + info.Retry
		archived += info.Archived
	}
	return busy, archived, nil
}

// Hurry runs retry and scheduled tasks now instead of at their backoff,
// as an operator would in the dashboard after a repaired outage.
func (q *Queues) Hurry() {
	names, err := q.insp.Queues()
	if err != nil {
		return
	}
	for _, n := range names {
		_, _ = q.insp.RunAllRetryTasks(n)
		_, _ = q.insp.RunAllScheduledTasks(n)
	}
}

// ArchivedSummary lists archived tasks by type with their last error, for
// the report.
func (q *Queues) ArchivedSummary() []string {
	names, err := q.insp.Queues()
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		tasks, err := q.insp.ListArchivedTasks(n, asynq.PageSize(50))
		if err != nil {
			continue
		}
		for _, t := range tasks {
			out = append(out, fmt.Sprintf("%s %s: %s", n, t.Type, strings.TrimSpace(t.LastErr)))
		}
	}
	return out
}
