package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/jobs/webhook"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// BenchmarkDeliver delivers 2,000 events of one organization to a local
// receiver through one Deliver (one endpoint, in order, each attempt
// signed and recorded), on the last backend (Postgres when
// TEST_DATABASE_URL is set), and reports events/s.
func BenchmarkDeliver(b *testing.B) {
	const n = 2000
	ctx := context.Background()
	backend := storetest.Backends()[len(storetest.Backends())-1]
	st := storetest.Open(b, backend, store.Options{})
	box, _ := secret.NewBox([]byte(strings.Repeat("k", 32)))
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer srv.Close()
	d := &webhook.Deliverer{Store: st, Box: box}
	org, _ := st.CreateOrg(ctx, "Bench")
	changes := make([]store.Change, n)
	for i := range changes {
		changes[i] = store.Change{Type: lifecycle.EventMemberUpdated, EntityType: store.EntitySyncRun, EntityID: fmt.Sprint(i), Data: map[string]any{"i": i, "email": fmt.Sprintf("user%d@example.com", i)}}
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ep := store.WebhookEndpoint{ID: store.NewID(), URL: srv.URL, Enabled: true}
		ep.Secret = box.Seal([]byte(testSecret), []byte(ep.ID))
		if err := st.CreateWebhookEndpoint(ctx, &ep); err != nil {
			b.Fatal(err)
		}
		// A new endpoint starts after the feed's latest: this round's
		// events are its first.
		if err := st.StartWebhookCursors(ctx, ep.ID, org.ID); err != nil {
			b.Fatal(err)
		}
		if err := st.Tx(ctx, func(tx *store.Store) error { return tx.AppendEvents(ctx, org.ID, changes) }); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := d.Deliver(ctx, ep.ID, org.ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if want := int64(b.N) * n; got.Load() != want {
		b.Fatalf("received %d, want %d", got.Load(), want)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}
