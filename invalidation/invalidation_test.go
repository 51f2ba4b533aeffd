package invalidation_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/scimsync/scimsync/broker"
	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/internal/syncbuf"
	"github.com/scimsync/scimsync/internal/tcpproxy"
	"github.com/scimsync/scimsync/invalidation"
)

// recorder is a cache that records what it is told to forget.
type recorder struct{ calls chan string }

func newRecorder() *recorder { return &recorder{calls: make(chan string, 100)} }

func (r *recorder) Forget(orgID, tokenID string) { r.calls <- "forget " + orgID + "/" + tokenID }
func (r *recorder) ForgetAll()                   { r.calls <- "forget all" }

// next waits for the recorder's next call; the bound is generous because
// only a broken bus, never a slow one, should reach it.
func (r *recorder) next(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-r.calls:
		if got != want {
			t.Fatalf("cache told %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("cache not told %q within 10s", want)
	}
}

// now fails unless the recorder's next call has happened already.
func (r *recorder) now(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-r.calls:
		if got != want {
			t.Fatalf("cache told %q, want %q", got, want)
		}
	default:
		t.Fatalf("cache not told %q before Invalidate returned", want)
	}
}

func newLog() (*slog.Logger, *syncbuf.Buffer) {
	buf := &syncbuf.Buffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

// run runs bus until the test ends.
func run(t *testing.T, bus *invalidation.Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestInvalidateReachesOtherProcesses(t *testing.T) {
	br := brokertest.Open(t)
	ctx := context.Background()
	log, _ := newLog()
	here, there := newRecorder(), newRecorder()
	run(t, invalidation.New(br, there, log))
	there.next(t, "forget all") // subscribed

	bus := invalidation.New(br, here, log)
	for _, tt := range []struct {
		name, org, token, want string
	}{
		{"a token", "o1", "t1", "forget o1/t1"},
		{"an organization", "o1", "", "forget o1/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			bus.Invalidate(ctx, tt.org, tt.token)
			here.now(t, tt.want)
			there.next(t, tt.want)
			t.Logf("the other process heard of it %v after the change", time.Since(start))
		})
	}
}

func TestInvalidateWithRedisDown(t *testing.T) {
	br, err := broker.Open(context.Background(), "redis://127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { br.Close() })
	log, logs := newLog()
	here := newRecorder()
	bus := invalidation.New(br, here, log)

	start := time.Now()
	bus.Invalidate(context.Background(), "o1", "t1")
	t.Logf("Invalidate returned after %v", time.Since(start))
	here.now(t, "forget o1/t1")
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "err=") || !strings.Contains(got, "token_id=t1") {
		t.Errorf("log = %q, want a warning with the token and err", got)
	}
}

func TestInvalidateOutlivesItsCaller(t *testing.T) {
	br := brokertest.Open(t)
	log, _ := newLog()
	there := newRecorder()
	run(t, invalidation.New(br, there, log))
	there.next(t, "forget all")

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the admin client hung up after the change committed
	invalidation.New(br, nil, log).Invalidate(ctx, "o1", "t1")
	there.next(t, "forget o1/t1")
}

// TestResubscribeAfterLostConnection takes Redis away from a subscriber
// and brings it back: the subscriber resubscribes by itself and, since it
// missed a message meanwhile, forgets everything.
func TestResubscribeAfterLostConnection(t *testing.T) {
	br := brokertest.Open(t)
	co := br.Opt.(asynq.RedisClientOpt)
	px := tcpproxy.New(t, co.Addr)
	client := redis.NewClient(&redis.Options{Addr: px.Addr(), Username: co.Username, Password: co.Password, DB: co.DB})
	t.Cleanup(func() { client.Close() })
	log, logs := newLog()
	there := newRecorder()
	run(t, &invalidation.Bus{Client: client, Channel: br.Channel(invalidation.ChannelName), Local: there, Log: log})
	there.next(t, "forget all")

	px.Down()
	invalidation.New(br, nil, log).Invalidate(context.Background(), "o1", "missed")
	px.Up()
	there.next(t, "forget all")
	if !strings.Contains(logs.String(), "resubscribed") {
		t.Errorf("log = %q, want the resubscription noted", logs.String())
	}

	invalidation.New(br, nil, log).Invalidate(context.Background(), "o1", "t1")
	there.next(t, "forget o1/t1")
}

func TestUnreadableMessageForgetsEverything(t *testing.T) {
	br := brokertest.Open(t)
	log, _ := newLog()
	there := newRecorder()
	run(t, invalidation.New(br, there, log))
	there.next(t, "forget all")

	for _, payload := range []string{"not json", `{"tokenId":"t1"}`} {
		if err := br.Client().Publish(context.Background(), br.Channel(invalidation.ChannelName), payload).Err(); err != nil {
			t.Fatal(err)
		}
		there.next(t, "forget all")
	}
}
