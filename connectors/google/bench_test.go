package google_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/google/googlefake"
)

// BenchmarkGoogleList lists every user from the fake, 500 a page; the
// 20ms cases give each request that response time, as a real API has. The
// fake runs in process, so allocations include its JSON encoding.
func BenchmarkGoogleList(b *testing.B) {
	for _, bc := range []struct {
		name    string
		users   int
		latency time.Duration
	}{
		{"10k", 10_000, 0},
		{"100k", 100_000, 0},
		{"100k-20ms", 100_000, 20 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := googlefake.New(b)
			for i := range bc.users {
				srv.AddUser(googlefake.User{
					PrimaryEmail: fmt.Sprintf("user%06d@example.com", i),
					GivenName:    fmt.Sprintf("Given%d", i),
					FamilyName:   fmt.Sprintf("Family%d", i),
					Suspended:    i%10 == 9,
				})
			}
			srv.Latency(bc.latency)
			d := connectortest.Open(b, config(srv))
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				n := 0
				err := d.ListUsers(context.Background(), func(page []connectors.User) error {
					n += len(page)
					return nil
				})
				if err != nil || n != bc.users {
					b.Fatalf("listed %d users, err %v", n, err)
				}
			}
		})
	}
}
