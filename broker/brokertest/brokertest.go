// Package brokertest gives tests a Redis for asynq: the embedded one by
// default, or, when TEST_REDIS_URL is set, a database of that server that
// no other test holds at the same time. Test packages run in parallel, so
// each test leases one of Redis's numbered databases and flushes it.
package brokertest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/broker"
)

// Real reports whether tests run against a real Redis.
func Real() bool { return os.Getenv("TEST_REDIS_URL") != "" }

// Open returns a broker for one test, closed and released at cleanup.
func Open(t testing.TB) *broker.Broker {
	t.Helper()
	ctx := context.Background()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		b, err := broker.Open(ctx, "", nil)
		if err != nil {
			t.Fatalf("embedded redis: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	opt, err := broker.ParseURL(u)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	co, ok := opt.(asynq.RedisClientOpt)
	if !ok {
		t.Fatalf("TEST_REDIS_URL must be a plain redis:// URL for tests")
	}
	db := lease(t, co)
	co.DB = db
	b, err := broker.Open(ctx, fmt.Sprintf("redis://%s/%d", co.Addr, db), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Keep password and TLS from the original URL.
	b.Opt = co
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("TEST_REDIS_URL is set but Redis is unreachable: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// lease takes an unused database number (1–15) for the test and flushes it;
// database 0 holds the leases.
func lease(t testing.TB, co asynq.RedisClientOpt) int {
	t.Helper()
	ctx := context.Background()
	ctl := redis.NewClient(&redis.Options{Addr: co.Addr, Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig, DB: 0})
	t.Cleanup(func() { ctl.Close() })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("scimsync:test-lease:%d", db)
			ok, err := ctl.SetNX(ctx, key, t.Name(), 10*time.Minute).Result()
			if err != nil {
				t.Fatalf("TEST_REDIS_URL is set but Redis is unreachable: %v", err)
			}
			if !ok {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: co.Addr, Username: co.Username, Password: co.Password, TLSConfig: co.TLSConfig, DB: db})
			if err := c.FlushDB(ctx).Err(); err != nil {
				t.Fatalf("flush test database: %v", err)
			}
			t.Cleanup(func() {
				c.FlushDB(context.Background())
				c.Close()
				ctl.Del(context.Background(), key)
			})
			return db
		}
		if time.Now().After(deadline) {
			t.Fatal("no free Redis test database after 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
