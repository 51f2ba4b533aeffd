package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/internal/tcpproxy"
	"github.com/scimsync/scimsync/jobs/task"
)

// redisThroughProxy returns the test's Redis options, and an asynq client
// that reaches the same Redis through a switchable proxy. The client gives
// up on a dead Redis quickly, to keep the tests short.
func redisThroughProxy(t *testing.T) (direct asynq.RedisClientOpt, proxied *asynq.Client, p *tcpproxy.Proxy) {
	b := brokertest.Open(t)
	direct, ok := b.Opt.(asynq.RedisClientOpt)
	if !ok {
		t.Fatalf("broker options are %T, want RedisClientOpt", b.Opt)
	}
	p = tcpproxy.New(t, direct.Addr)
	rc := redis.NewClient(&redis.Options{
		Addr: p.Addr(), DB: direct.DB, Username: direct.Username, Password: direct.Password,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		DialerRetries: 1, PoolSize: 2, MaxRetries: -1,
	})
	proxied = asynq.NewClientFromRedisClient(rc)
	t.Cleanup(func() { proxied.Close(); rc.Close() })
	return direct, proxied, p
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countingEnqueuer counts successful enqueues by task id.
type countingEnqueuer struct {
	next interface {
		EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error)
	}
	mu  sync.Mutex
	ids map[string]int
	// entities counts the entity ids carried by batch converge tasks.
	entities map[string]int
}

func (c *countingEnqueuer) EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	info, err := c.next.EnqueueContext(ctx, t, opts...)
	if err == nil || errors.Is(err, asynq.ErrTaskIDConflict) {
		c.mu.Lock()
		if c.ids == nil {
			c.ids = map[string]int{}
		}
		for _, o := range opts {
			if o.Type() == asynq.TaskIDOpt {
				c.ids[o.Value().(string)]++
			}
		}
		var b task.ConvergeBatch
		if t.Type() == task.TypeConvergeUsers && json.Unmarshal(t.Payload(), &b) == nil {
			if c.entities == nil {
				c.entities = map[string]int{}
			}
			for _, id := range b.IDs {
				c.entities[id]++
			}
		}
		c.mu.Unlock()
	}
	return info, err
}
