package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/broker/brokertest"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/jobs"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/jobs/webhook"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// The dispatcher queues one task per endpoint and organization behind,
// and the worker delivers through it: every event reaches the receiver,
// with a 500 retried.
func TestWebhookDispatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		opt := brokertest.Open(t).Opt
		client := asynq.NewClient(opt)
		t.Cleanup(func() { client.Close() })
		box, _ := secret.NewBox([]byte(strings.Repeat("k", 32)))

		var mu sync.Mutex
		var seqs []string
		fails := 1
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			if fails > 0 {
				fails--
				w.WriteHeader(500)
				return
			}
			seqs = append(seqs, r.Header.Get("webhook-id"))
		}))
		t.Cleanup(srv.Close)

		org, _ := st.CreateOrg(ctx, "Acme")
		ep := store.WebhookEndpoint{ID: store.NewID(), URL: srv.URL, Enabled: true}
		ep.Secret = box.Seal([]byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), []byte(ep.ID))
		if err := st.CreateWebhookEndpoint(ctx, &ep); err != nil {
			t.Fatal(err)
		}
		appendEvents := func(n int) {
			for i := range n {
				if err := st.Tx(ctx, func(tx *store.Store) error {
					return tx.AppendEvents(ctx, org.ID, []store.Change{{Type: lifecycle.EventSyncRunFinished, EntityType: store.EntitySyncRun, EntityID: fmt.Sprint(i), Data: i}})
				}); err != nil {
					t.Fatal(err)
				}
			}
		}
		appendEvents(5)
		d := jobs.NewWebhookDispatcher(st, client, jobstest.Discard, nil, 0)
		for i, want := range []int{1, 0} { // the second collapses on the task id
			if n, err := d.DispatchOnce(ctx); err != nil || n != want {
				t.Fatalf("dispatch %d = %d, %v; want %d", i, n, err, want)
			}
		}

		cfg := jobs.ServerConfig(jobstest.Discard, 2, 5*time.Second)
		cfg.LogLevel = asynq.FatalLevel
		cfg.RetryDelayFunc = func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond }
		cfg.DelayedTaskCheckInterval = 50 * time.Millisecond
		worker := asynq.NewServer(opt, cfg)
		mux := asynq.NewServeMux()
		jobs.Register(mux, jobs.Handlers{Webhooks: &webhook.Deliverer{Store: st, Box: box}}, prometheus.NewRegistry())
		if err := worker.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(worker.Shutdown)
		got := func() int { mu.Lock(); defer mu.Unlock(); return len(seqs) }
		eventually(t, 10*time.Second, "five events delivered", func() bool { return got() == 5 })

		// Caught up: nothing to queue; new events queue the pair again.
		if n, err := d.DispatchOnce(ctx); err != nil || n != 0 {
			t.Errorf("dispatch when caught up = %d, %v", n, err)
		}
		appendEvents(3)
		eventually(t, 10*time.Second, "the pair queued again", func() bool {
			n, err := d.DispatchOnce(ctx)
			return err == nil && n == 1
		})
		eventually(t, 10*time.Second, "eight events delivered", func() bool { return got() == 8 })
	})
}

// A delivery task that spends its last retry ends instead of being
// archived, so the pair can be queued again under the same task id.
func TestWebhookDeliverLastRetryFreesTheID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		opt := brokertest.Open(t).Opt
		client := asynq.NewClient(opt)
		t.Cleanup(func() { client.Close() })
		box, _ := secret.NewBox([]byte(strings.Repeat("k", 32)))
		var calls atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			w.WriteHeader(500)
		}))
		t.Cleanup(srv.Close)
		org, _ := st.CreateOrg(ctx, "Acme")
		ep := store.WebhookEndpoint{ID: store.NewID(), URL: srv.URL, Enabled: true}
		ep.Secret = box.Seal([]byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), []byte(ep.ID))
		if err := st.CreateWebhookEndpoint(ctx, &ep); err != nil {
			t.Fatal(err)
		}
		if err := st.Tx(ctx, func(tx *store.Store) error {
			return tx.AppendEvents(ctx, org.ID, []store.Change{{Type: lifecycle.EventSyncRunFinished, EntityType: store.EntitySyncRun, EntityID: "r", Data: 1}})
		}); err != nil {
			t.Fatal(err)
		}
		// One try only: the first run is the last retry.
		if _, err := client.EnqueueContext(ctx, jobs.NewTask(task.WebhookDeliverRow(ep.ID, org.ID)), asynq.MaxRetry(0)); err != nil {
			t.Fatal(err)
		}
		cfg := jobs.ServerConfig(jobstest.Discard, 1, 5*time.Second)
		cfg.LogLevel = asynq.FatalLevel
		worker := asynq.NewServer(opt, cfg)
		mux := asynq.NewServeMux()
		jobs.Register(mux, jobs.Handlers{Webhooks: &webhook.Deliverer{Store: st, Box: box}}, prometheus.NewRegistry())
		if err := worker.Start(mux); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(worker.Shutdown)
		eventually(t, 10*time.Second, "one attempt", func() bool { return calls.Load() == 1 })
		d := jobs.NewWebhookDispatcher(st, client, jobstest.Discard, nil, 0)
		eventually(t, 10*time.Second, "the pair queued again", func() bool {
			n, err := d.DispatchOnce(ctx)
			return err == nil && n == 1
		})
		insp := asynq.NewInspector(opt)
		t.Cleanup(func() { insp.Close() })
		if archived, _ := insp.ListArchivedTasks(task.QueueDefault); len(archived) != 0 {
			t.Errorf("%d archived tasks, want none", len(archived))
		}
	})
}
