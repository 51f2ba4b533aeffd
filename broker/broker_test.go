package broker

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want asynq.RedisConnOpt
	}{
		{"redis://127.0.0.1:6379/3", asynq.RedisClientOpt{Addr: "127.0.0.1:6379", DB: 3}},
		{"redis://:pw@r:6379", asynq.RedisClientOpt{Addr: "r:6379", Password: "pw"}},
		{"redis-cluster://n1:7000,n2:7001", asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7001"}}},
		{"redis-cluster://u:p%40ss@n1:7000", asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000"}, Username: "u", Password: "p@ss"}},
		{"redis-sentinel://:pw@s1:26379,s2:26379?master=mm", asynq.RedisFailoverClientOpt{MasterName: "mm", SentinelAddrs: []string{"s1:26379", "s2:26379"}, SentinelPassword: "pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURL(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if opt, err := ParseURL("rediss://r:6380"); err != nil || opt.(asynq.RedisClientOpt).TLSConfig == nil {
		t.Errorf("rediss:// = %+v, %v; want TLS", opt, err)
	}
	for _, bad := range []string{"memcached://x", "redis-cluster://", "nourl"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) accepted", bad)
		}
	}
}

func TestEmbedded(t *testing.T) {
	b, err := Open(context.Background(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Embedded {
		t.Error("not embedded")
	}
	if err := b.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAdvanceClockExpiresKeys shows why the ticker exists: without it a key
// with a TTL never expires in miniredis.
func TestAdvanceClockExpiresKeys(t *testing.T) {
	m := miniredis.RunT(t)
	m.Set("lock", "x")
	m.SetTTL("lock", 2*time.Second)
	ticks := make(chan time.Time)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() { advanceClock(m, ticks, done); close(finished) }()
	start := time.Now()
	ticks <- start.Add(time.Second)
	ticks <- start.Add(2 * time.Second) // blocks until the first tick was handled
	ticks <- start.Add(3 * time.Second)
	close(done)
	<-finished
	if m.Exists("lock") {
		t.Error("key with a 2s TTL still exists after 3 ticks")
	}
}

func TestRealRedis(t *testing.T) {
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		t.Skip("TEST_REDIS_URL not set")
	}
	b, err := Open(context.Background(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("TEST_REDIS_URL is set but Redis is unreachable: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	b, err := Open(context.Background(), "redis://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err == nil {
		t.Error("ping of a closed port succeeded")
	}
}

func TestChannelCarriesTheDatabase(t *testing.T) {
	tests := []struct {
		opt  asynq.RedisConnOpt
		want string
	}{
		{asynq.RedisClientOpt{Addr: "r:6379"}, "scimsync:db0:x"},
		{asynq.RedisClientOpt{Addr: "r:6379", DB: 3}, "scimsync:db3:x"},
		{asynq.RedisFailoverClientOpt{MasterName: "m", DB: 2}, "scimsync:db2:x"},
		{asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000"}}, "scimsync:db0:x"},
	}
	for _, tt := range tests {
		if got := (&Broker{Opt: tt.opt}).Channel("x"); got != tt.want {
			t.Errorf("Channel for %+v = %q, want %q", tt.opt, got, tt.want)
		}
	}
}
