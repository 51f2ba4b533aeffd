package inbound_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/scimsync/scimsync/inbound"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// BenchmarkSCIM measures the SCIM layer over HTTP on the last storetest
// backend (Postgres when TEST_DATABASE_URL is set), 32 clients at once as
// scripts/bench-scim.sh drives a real server. Profile it with
//
//	go test -run '^$' -bench BenchmarkSCIM -cpuprofile cpu.out ./inbound/
func BenchmarkSCIM(b *testing.B) {
	backends := storetest.Backends()
	st := storetest.Open(b, backends[len(backends)-1], store.Options{})
	h := newHarness(b, st, func(s *inbound.Server) { s.AuthCacheTTL = 0 })
	tn := h.tenant()
	// 32 clients keep 32 connections open, as the load generator does.
	h.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64

	var seq atomic.Int64
	b.Run("create", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := seq.Add(1)
				r := tn.do("POST", "/Users", map[string]any{
					"schemas": []string{userURN}, "userName": fmt.Sprintf("bench-%d@example.com", n),
					"name":   map[string]any{"givenName": "B", "familyName": "M"},
					"emails": []any{map[string]any{"value": fmt.Sprintf("bench-%d@example.com", n), "type": "work", "primary": true}},
				})
				if r.Status != http.StatusCreated {
					b.Errorf("create: %d %s", r.Status, r.Raw)
				}
			}
		})
	})
	b.Run("filter", func(b *testing.B) {
		if seq.Load() == 0 {
			tn.createUser(user("bench-1@example.com"))
			seq.Store(1)
		}
		last := seq.Load()
		var i atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := i.Add(1)%last + 1
				r := tn.do("GET", "/Users?filter="+urlQuery(fmt.Sprintf(`userName eq "bench-%d@example.com"`, n)), nil)
				if r.Status != http.StatusOK || r.Body["totalResults"] != 1.0 {
					b.Errorf("filter: %d %s", r.Status, r.Raw)
				}
			}
		})
	})
}
