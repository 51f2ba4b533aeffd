// Package broker connects scimsync to the Redis that carries its job queues:
// it reads REDIS_URL into asynq's connection options, or, when REDIS_URL is
// empty, runs an embedded in-memory Redis for a single process.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// EmbeddedWarning is logged when no REDIS_URL is given.
const EmbeddedWarning = "REDIS_URL is not set: using embedded Redis (in-memory, jobs do not survive restart)"

// Broker is a Redis connection for asynq, plus a client for health checks.
type Broker struct {
	// Opt is what asynq clients, servers, inspectors and the dashboard use.
	Opt      asynq.RedisConnOpt
	Embedded bool

	client redis.UniversalClient
	stop   func()
}

// Open parses redisURL, or starts an embedded Redis when it is empty.
func Open(ctx context.Context, redisURL string, log *slog.Logger) (*Broker, error) {
	if redisURL == "" {
		return openEmbedded(log)
	}
	opt, err := ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	b := &Broker{Opt: opt, stop: func() {}}
	b.client = opt.MakeRedisClient().(redis.UniversalClient)
	return b, nil
}

func openEmbedded(log *slog.Logger) (*Broker, error) {
	if log != nil {
		log.Warn(EmbeddedWarning)
	}
	m := miniredis.NewMiniRedis()
	if err := m.Start(); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	opt := asynq.RedisClientOpt{Addr: m.Addr()}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		advanceClock(m, time.NewTicker(time.Second).C, done)
	}()
	var once sync.Once
	b := &Broker{Opt: opt, Embedded: true}
	b.client = opt.MakeRedisClient().(redis.UniversalClient)
	b.stop = func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			m.Close()
		})
	}
	return b, nil
}

// advanceClock moves miniredis's TTL clock forward once per tick. miniredis
// does not count TTLs down by itself, and asynq relies on expiring keys for
// unique locks, heartbeats and scheduler entries. (miniredis's own ClockTTL
// mode is far slower.)
func advanceClock(m *miniredis.Miniredis, ticks <-chan time.Time, done <-chan struct{}) {
	last := time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-ticks:
			m.FastForward(now.Sub(last))
			m.SetTime(now)
			last = now
		}
	}
}

// Ping checks that Redis answers.
func (b *Broker) Ping(ctx context.Context) error {
	if err := b.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Client is a plain Redis client on the same connection settings.
func (b *Broker) Client() redis.UniversalClient { return b.client }

// Channel names a pub/sub channel of this deployment. Redis has one
// pub/sub namespace per server, shared by all its numbered databases, so
// the name carries the database number: deployments, and tests, that share
// a server on different databases do not hear each other's messages.
func (b *Broker) Channel(name string) string {
	db := 0
	switch o := b.Opt.(type) {
	case asynq.RedisClientOpt:
		db = o.DB
	case asynq.RedisFailoverClientOpt:
		db = o.DB
	}
	return fmt.Sprintf("scimsync:db%d:%s", db, name)
}

// Close closes the client and stops an embedded Redis.
func (b *Broker) Close() error {
	err := b.client.Close()
	b.stop()
	return err
}

// ParseURL reads a REDIS_URL: redis://, rediss://, redis-socket:// and
// redis-sentinel:// as asynq reads them, plus
// redis-cluster://[user:pass@]host:port,host:port for Redis Cluster.
func ParseURL(raw string) (asynq.RedisConnOpt, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("REDIS_URL: not a URL")
	}
	if scheme != "redis-cluster" {
		opt, err := asynq.ParseRedisURI(raw)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", redactURLError(err))
		}
		return opt, nil
	}
	var user, pass string
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		ui, err := url.Parse("x://" + rest[:at+1] + "h")
		if err != nil {
			return nil, errors.New("REDIS_URL: bad credentials in redis-cluster URL")
		}
		user = ui.User.Username()
		pass, _ = ui.User.Password()
		rest = rest[at+1:]
	}
	hosts, _, _ := strings.Cut(rest, "/")
	hosts, _, _ = strings.Cut(hosts, "?")
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			addrs = append(addrs, h)
		}
	}
	if len(addrs) == 0 {
		return nil, errors.New("REDIS_URL: redis-cluster:// needs host:port[,host:port…]")
	}
	return asynq.RedisClusterClientOpt{Addrs: addrs, Username: user, Password: pass}, nil
}

// redactURLError keeps a parse error from echoing a password.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New("could not parse the URL")
	}
	return err
}

// slogPrinter adapts slog to go-redis's logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(ctx context.Context, format string, v ...any) {
	p.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// RouteLibraryLogs sends go-redis's own messages (dial failures and the
// like) to log instead of the standard logger. go-redis keeps one logger per
// process, so the command line calls this once at start.
func RouteLibraryLogs(log *slog.Logger) {
	redis.SetLogger(slogPrinter{log.With("component", "redis")})
}
