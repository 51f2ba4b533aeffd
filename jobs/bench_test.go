package jobs_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scimsync/scimsync/converge"
	"github.com/scimsync/scimsync/internal/jobstest"
	"github.com/scimsync/scimsync/jobs/invite"
	"github.com/scimsync/scimsync/jobs/task"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// BenchmarkPipeline measures the whole path from committed outbox rows to
// converged members: relay → asynq → converge, with the invite e-mails
// (recorded) competing for the same worker. It runs on the last backend,
// Postgres when configured, and is meant for a real Postgres and Redis:
//
//	TEST_DATABASE_URL=postgres://… TEST_REDIS_URL=redis://… \
//	  go test -run '^$' -bench Pipeline -benchtime 20000x ./jobs/
//
// provision/drain starts with b.N new users' rows waiting and reports how
// fast they are provisioned (each with an invite decision, whose e-mail is
// another job); provision/stream commits them while the pipeline runs (100
// per transaction, as a pull does) and also reports the relay lag, commit to
// enqueue, at the 99th percentile (the upper bound of its histogram
// bucket); unchanged/drain converges users already in step, as repeated
// events and reconciliation sweeps do. go-cpu-µs/converge is this
// process's CPU time per converge (relay, worker, and the writers when
// streaming), which contention on a shared machine changes less than the
// rate.
func BenchmarkPipeline(b *testing.B) {
	backends := storetest.Backends()
	be := backends[len(backends)-1]
	for _, mode := range []struct {
		name              string
		stream, unchanged bool
	}{
		{"provision/drain", false, false},
		{"provision/stream", true, false},
		{"unchanged/drain", false, true},
	} {
		b.Run(be.Name+"/"+mode.name, func(b *testing.B) {
			s := storetest.Open(b, be, store.Options{MaxOpenConns: 48})
			org := jobstest.NewOrg(b, s)
			want := "created"
			switch {
			case mode.unchanged:
				want = "unchanged"
				ids := writeUsers(b, s, org.ID, 0, b.N, nil)
				convergeAll(b, s, org.ID, ids)
				for i := 0; i < len(ids); i += 1000 {
					var rows []store.OutboxRow
					for _, id := range ids[i:min(i+1000, len(ids))] {
						rows = append(rows, task.ConvergeUserRow(org.ID, id, false))
					}
					if err := s.AddOutbox(context.Background(), rows...); err != nil {
						b.Fatal(err)
					}
				}
			case !mode.stream:
				writeUsers(b, s, org.ID, 0, b.N, nil)
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU(b)
			p := startPipeline(b, org, nil, 32)
			var written atomic.Int64 // nanoseconds from start until the writers finished
			if mode.stream {
				var wg sync.WaitGroup
				const writers = 2
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						writeUsers(b, s, org.ID, w*b.N/writers, (w+1)*b.N/writers, p.relay.Notify)
					}()
				}
				go func() { wg.Wait(); written.Store(int64(time.Since(start))) }()
				defer wg.Wait()
			}
			deadline := time.Now().Add(time.Duration(b.N)*5*time.Millisecond + time.Minute)
			for p.count(b, task.TypeConvergeUser, want) < float64(b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("only %v of %d users converged", p.count(b, task.TypeConvergeUser, want), b.N)
				}
				time.Sleep(20 * time.Millisecond)
			}
			elapsed, cpu := time.Since(start), processCPU(b)-cpu0
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "converges/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "go-cpu-µs/converge")
			if !mode.unchanged {
				b.ReportMetric(p.count(b, task.TypeSendInvite, "recorded")/elapsed.Seconds(), "invites/s")
			}
			if mode.stream {
				// Converges can go no faster than the rows are written: a
				// rate close to this one means the writers set the pace.
				b.ReportMetric(float64(b.N)/time.Duration(written.Load()).Seconds(), "written/s")
			}
			if mode.stream {
				b.ReportMetric(lagP99(b, p.reg), "relay-lag-p99-s")
			}
		})
	}
}

// processCPU is the CPU time (user and system) this process has used: the
// relay, the worker and, when streaming, the writers; not Postgres or Redis.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// convergeAll converges directory users directly, for a benchmark's setup.
func convergeAll(b *testing.B, s *store.Store, orgID string, ids []string) {
	c := &converge.Converger{Store: s, Invites: &invite.Service{Store: s, Log: jobstest.Discard, Config: invite.Config{TTL: time.Hour}}}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 8 {
				if _, err := c.ConvergeUser(context.Background(), orgID, ids[i]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// writeUsers commits directory users lo..hi-1 with their outbox rows, 100
// per transaction, calling notify after each commit, and returns their ids.
func writeUsers(b *testing.B, s *store.Store, orgID string, lo, hi int, notify func()) []string {
	ctx := context.Background()
	ids := make([]string, 0, hi-lo)
	for i := lo; i < hi; i += 100 {
		err := s.Tx(ctx, func(tx *store.Store) error {
			rows := make([]store.OutboxRow, 0, 100)
			for j := i; j < min(i+100, hi); j++ {
				u := store.DirectoryUser{OrgID: orgID, Source: "scim", UserName: fmt.Sprint("user", j), Email: fmt.Sprintf("user%d@example.com", j), Active: true}
				if err := tx.CreateDirectoryUser(ctx, &u); err != nil {
					return err
				}
				rows = append(rows, task.ConvergeUserRow(orgID, u.ID, false))
				ids = append(ids, u.ID)
			}
			return tx.AddOutbox(ctx, rows...)
		})
		if err != nil {
			b.Error(err)
			return ids
		}
		if notify != nil {
			notify()
		}
	}
	return ids
}

// lagP99 is the upper bound of the relay lag histogram bucket that holds
// the 99th percentile.
func lagP99(b *testing.B, reg prometheus.Gatherer) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "scimsync_outbox_relay_lag_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		want := 0.99 * float64(h.GetSampleCount())
		for _, bk := range h.GetBucket() {
			if float64(bk.GetCumulativeCount()) >= want {
				return bk.GetUpperBound()
			}
		}
	}
	return math.Inf(1)
}
