package converge_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/lifecycle"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// BenchmarkConvergeUser converges new directory users (provision: user,
// membership, link into one large group, invite, outbox row, audit) and
// users already in step, one at a time and from parallel goroutines, on
// every backend. On Postgres:
//
//	TEST_DATABASE_URL=postgres://… go test -run '^$' -bench ConvergeUser ./converge/
func BenchmarkConvergeUser(b *testing.B) {
	for _, be := range storetest.Backends() {
		b.Run(be.Name, func(b *testing.B) {
			for _, mode := range []struct {
				name     string
				parallel bool
				existing bool
			}{
				{"provision", false, false},
				{"provision-parallel", true, false},
				{"unchanged", false, true},
			} {
				b.Run(mode.name, func(b *testing.B) {
					ctx := context.Background()
					s := storetest.Open(b, be, store.Options{})
					c := newConverger(s)
					org := jobstest.NewOrg(b, s)
					g := org.AddGroup("Everyone")
					ids := make([]string, b.N)
					for i := range ids {
						ids[i] = org.AddUser(fmt.Sprint("user", i), fmt.Sprintf("user%d@example.com", i)).ID
					}
					org.UpdateGroup(g.ID, "Everyone", ids...)
					if _, err := c.ConvergeGroup(ctx, org.ID, g.ID); err != nil {
						b.Fatal(err)
					}
					if mode.existing {
						for _, id := range ids {
							if _, err := c.ConvergeUser(ctx, org.ID, id); err != nil {
								b.Fatal(err)
							}
						}
					}
					want := lifecycle.Created
					if mode.existing {
						want = lifecycle.Unchanged
					}
					run := func(id string) {
						if o, err := c.ConvergeUser(ctx, org.ID, id); err != nil || o != want {
							b.Errorf("ConvergeUser = %q, %v; want %q", o, err, want)
						}
					}
					b.ResetTimer()
					if !mode.parallel {
						for _, id := range ids {
							run(id)
						}
						return
					}
					next := make(chan string, len(ids))
					for _, id := range ids {
						next <- id
					}
					close(next)
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							run(<-next)
						}
					})
				})
			}
		})
	}
}
