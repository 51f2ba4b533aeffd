package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/jobs/task"
)

// proxy forwards TCP to a target and can be switched off and on, to take
// Redis away from a client without touching the server.
type proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.pipe(c)
		}
	}()
}

func (p *proxy) pipe(c net.Conn) {
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // went down meanwhile
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }()
	io.Copy(c, u)
	c.Close()
}

// down closes the listener and every connection: the target is
// unreachable through the proxy.
func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// up listens again on the same address.
func (p *proxy) up() {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after close
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// redisThroughProxy returns the test's Redis options, and an asynq client
// that reaches the same Redis through a switchable proxy. The client gives
// up on a dead Redis quickly, to keep the tests short.
func redisThroughProxy(t *testing.T) (direct asynq.RedisClientOpt, proxied *asynq.Client, p *proxy) {
	b := brokertest.Open(t)
	direct, ok := b.Opt.(asynq.RedisClientOpt)
	if !ok {
		t.Fatalf("broker options are %T, want RedisClientOpt", b.Opt)
	}
	p = newProxy(t, direct.Addr)
	rc := redis.NewClient(&redis.Options{
		Addr: p.addr, DB: direct.DB, Username: direct.Username, Password: direct.Password,
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
