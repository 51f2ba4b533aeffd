package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// BenchmarkWritePulledUsers writes a first pull of 100k users, in pages of
// 1,000 in a transaction each as the reconciler's writer does, into a new
// organization of the last backend (Postgres when TEST_DATABASE_URL is
// set). It is the database's share of a first reconciliation's pull.
func BenchmarkWritePulledUsers(b *testing.B) {
	const users, page = 100_000, 1000
	ctx := context.Background()
	backend := storetest.Backends()[len(storetest.Backends())-1]
	s := storetest.Open(b, backend, store.Options{})
	pages := make([][]store.PulledUser, users/page)
	for i := range pages {
		pages[i] = make([]store.PulledUser, page)
		for j := range pages[i] {
			n := i*page + j
			pages[i][j] = store.PulledUser{ExternalID: fmt.Sprintf("00u%017d", n), UserName: fmt.Sprintf("user%06d@example.com", n),
				Email: fmt.Sprintf("user%06d@example.com", n), GivenName: fmt.Sprint("Given", n), FamilyName: fmt.Sprint("Family", n),
				Active: true, RawStatus: "ACTIVE"}
		}
	}
	for b.Loop() {
		b.StopTimer()
		org, err := s.CreateOrg(ctx, "Bench")
		if err != nil {
			b.Fatal(err)
		}
		p := store.Pull{OrgID: org.ID, RunID: store.NewID(), Source: "okta", Snapshot: 1}
		b.StartTimer()
		for _, pg := range pages {
			if err := s.Tx(ctx, func(tx *store.Store) error { return tx.WritePulledUsers(ctx, p, pg) }); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*users), "µs/user")
}
