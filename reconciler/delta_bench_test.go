package reconciler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/scimsync/scimsync/connectors/entra/entrafake"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// deltaIdP is an IdP fake of n users for BenchmarkDelta.
type deltaIdP struct {
	typ             string
	settings, creds []byte
	change          func(i int) // changes the i-th user's surname
	advance         func()      // moves the IdP's clock on by an hour
	latency         func(time.Duration)
}

func oktaDeltaIdP(b *testing.B, n int) deltaIdP {
	clk := clock.NewFake(time.Now().UTC(), clock.SleepAdvances)
	srv := oktafake.New(b, oktafake.WithClock(clk.Now))
	ids := make([]string, n)
	for i := range n {
		ids[i] = srv.AddUser(oktafake.User{Email: fmt.Sprintf("user%06d@example.com", i), FirstName: "Given", LastName: "Family"}).ID
	}
	settings, _ := json.Marshal(map[string]string{"orgUrl": srv.URL()})
	creds, _ := json.Marshal(map[string]string{"apiToken": srv.Token()})
	return deltaIdP{typ: "okta", settings: settings, creds: creds, latency: srv.Latency,
		change:  func(i int) { srv.UpdateUser(ids[i], func(u *oktafake.User) { u.LastName = "Changed" }) },
		advance: func() { clk.Advance(time.Hour) }}
}

func entraDeltaIdP(b *testing.B, n int) deltaIdP {
	srv := entrafake.New(b)
	ids := make([]string, n)
	for i := range n {
		ids[i] = srv.AddUser(entrafake.User{UserPrincipalName: fmt.Sprintf("user%06d@example.com", i), Mail: fmt.Sprintf("user%06d@example.com", i),
			GivenName: "Given", Surname: "Family"}).ID
	}
	settings, _ := json.Marshal(map[string]string{"tenantId": srv.TenantID(), "graphUrl": srv.URL(), "loginUrl": srv.URL()})
	creds, _ := json.Marshal(map[string]string{"clientId": srv.ClientID(), "clientSecret": srv.ClientSecret()})
	return deltaIdP{typ: "entra", settings: settings, creds: creds, latency: srv.Latency,
		change:  func(i int) { srv.UpdateUser(ids[i], func(u *entrafake.User) { u.Surname = "Changed" }) },
		advance: func() {}}
}

// BenchmarkDelta compares a full and a delta reconciliation of a settled
// organization of 100k users, against IdP fakes that take 20 ms per
// request, after 100 users changed: the IdP requests and wall time of each
// (full-requests, full-s, delta-requests, delta-s). Postgres when
// TEST_DATABASE_URL is set, else SQLite.
func BenchmarkDelta(b *testing.B) {
	const users, changed = 100_000, 100
	for _, c := range []struct {
		name string
		idp  func(*testing.B, int) deltaIdP
	}{{"okta", oktaDeltaIdP}, {"entra", entraDeltaIdP}} {
		b.Run(fmt.Sprintf("%s-100k-idp20ms", c.name), func(b *testing.B) {
			idp := c.idp(b, users)
			backend := storetest.Backends()[len(storetest.Backends())-1]
			ctx := context.Background()
			box, _ := secret.NewBox(make([]byte, 32))
			var full, delta time.Duration
			var fullReq, deltaReq int64
			for b.Loop() {
				b.StopTimer()
				idp.latency(0)
				o := newBenchOrg(b, backend, box, idp.typ, idp.settings, idp.creds, reconciler.Policy{Guard: 0.1})
				st, dbURL, org, r := o.st, o.dbURL, o.org, o.r
				reconcile := func(what string, opts reconciler.Options) (store.SyncRun, reconciler.Plan) {
					run, err := r.Reconcile(ctx, org.ID, opts)
					var p reconciler.Plan
					json.Unmarshal([]byte(run.Plan), &p)
					if err != nil || run.Status != store.RunSucceeded {
						b.Fatalf("%s run: %+v, %v", what, run, err)
					}
					return run, p
				}
				idp.advance()
				reconcile("first", reconciler.Options{Full: true})
				seedMembers(b, backend, dbURL, org.ID)
				idp.latency(20 * time.Millisecond)

				b.StartTimer()
				start := time.Now()
				run, _ := reconcile("full", reconciler.Options{Full: true})
				full += time.Since(start)
				fullReq += run.IdPRequests
				b.StopTimer()

				idp.advance()
				for i := range changed {
					idp.change(i * (users / changed))
				}
				idp.advance()
				b.StartTimer()
				start = time.Now()
				run, p := reconcile("delta", reconciler.Options{})
				delta += time.Since(start)
				deltaReq += run.IdPRequests
				b.StopTimer()
				b.Logf("delta run timings: %+v", p.Timings)
				if run.PullMode != store.PullDelta || p.Update != changed {
					b.Fatalf("delta run pulled %q and planned %+v, want a delta of %d updates", run.PullMode, p, changed)
				}
				st.Close()
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(fullReq)/n, "full-requests")
			b.ReportMetric(full.Seconds()/n, "full-s")
			b.ReportMetric(float64(deltaReq)/n, "delta-requests")
			b.ReportMetric(delta.Seconds()/n, "delta-s")
		})
	}
}
