package inbound_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/internal/httpjson"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// A request that waits for a pooled Postgres connection waits only until
// its deadline, then gets a 503 with Retry-After, as for an outage; nothing
// of it is written, and once the pool frees up, requests are served again.
// (On SQLite a request waits for the one writer's lock instead, bounded by
// the busy timeout, after which it is answered 503 as unavailable.)
func TestPoolWaitEndsAtTheRequestDeadline(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			if b.URL == "" {
				t.Skip("SQLite waits on its busy timeout, not on a pool")
			}
			// Migrating takes two connections, so the pool has two.
			const holders = 2
			st := storetest.Open(t, b, store.Options{MaxOpenConns: holders})
			h := newHarness(t, st, func(s *inbound.Server) { s.RequestTimeout = 300 * time.Millisecond })
			tn := h.tenant()
			tn.do("POST", "/Users", map[string]any{"schemas": []string{userURN}, "userName": "held@example.com"}).want(t, http.StatusCreated)

			// Hold every connection of the pool until the test says.
			waiting := []request{
				{method: "GET", path: "/Users?filter=" + urlQuery(`userName eq "held@example.com"`)},
				{method: "POST", path: "/Users", body: map[string]any{"schemas": []string{userURN}, "userName": "waits@example.com"}},
			}
			release := make(chan struct{})
			var held sync.WaitGroup
			errs := make(chan error, holders)
			for range holders {
				held.Add(1)
				go func() {
					errs <- st.Tx(context.Background(), func(tx *store.Store) error {
						_, err := tx.Org(context.Background(), tn.org.ID)
						held.Done()
						<-release
						return err
					})
				}()
			}
			held.Wait()
			for _, rq := range waiting {
				r := tn.send(rq)
				r.wantError(t, http.StatusServiceUnavailable, "")
				if got := r.Header.Get("Retry-After"); got != httpjson.RetryAfterUnavailable {
					t.Errorf("%s %s: Retry-After %q, want %q", rq.method, rq.path, got, httpjson.RetryAfterUnavailable)
				}
			}
			close(release)
			for range holders {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			tn.do("POST", "/Users", map[string]any{"schemas": []string{userURN}, "userName": "waits@example.com"}).want(t, http.StatusCreated)
		})
	}
}
