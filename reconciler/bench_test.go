package reconciler_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite", to seed SQLite
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to seed Postgres

	"github.com/scimsync/scimsync/admin"
	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/memsample"
	"github.com/scimsync/scimsync/internal/secret"
	"github.com/scimsync/scimsync/reconciler"
	"github.com/scimsync/scimsync/source"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/store/storetest"
)

// fakeUsersEnv makes the test binary serve an Okta fake with that many
// users instead of running tests, so that the benchmark's memory is only
// the reconciler's; fakeLatencyEnv gives the fake a response time.
const (
	fakeUsersEnv   = "RECONCILE_BENCH_FAKE_USERS"
	fakeLatencyEnv = "RECONCILE_BENCH_FAKE_LATENCY"
)

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(fakeUsersEnv)); err == nil {
		srv := oktafake.Start()
		if d, err := time.ParseDuration(os.Getenv(fakeLatencyEnv)); err == nil {
			srv.Latency(d)
		}
		for i := range n {
			srv.AddUser(oktafake.User{Email: fmt.Sprintf("user%06d@example.com", i), FirstName: fmt.Sprintf("Given%d", i), LastName: fmt.Sprintf("Family%d", i)})
		}
		fmt.Println(srv.URL(), srv.Token())
		_, _ = io.Copy(io.Discard, os.Stdin) // serve until the benchmark ends
		srv.Close()
		return
	}
	os.Exit(m.Run())
}

func startFake(b *testing.B, n int, latency time.Duration) (url, token string, pid int) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fakeUsersEnv+"="+strconv.Itoa(n), fakeLatencyEnv+"="+latency.String())
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 2 {
		b.Fatalf("fake process said %q: %v", line, err)
	}
	return f[0], f[1], cmd.Process.Pid
}

// BenchmarkReconcile reconciles an Okta fake of 10k and 100k users (in a
// child process) into Postgres when TEST_DATABASE_URL is set, else SQLite.
// Per iteration, on a fresh database, it reports:
//
//   - list-s: merely paging through the fake's user listing with the
//     connector, the floor a pull cannot beat;
//   - first-s and first/list: the first reconciliation (every user pulled,
//     planned, and a converge queued for each);
//   - noop-s and noop-own-s: a reconciliation with every member in place,
//     and that minus the listing time;
//   - list-cores and first-cores: how many of the machine's CPUs were busy,
//     on average, while listing and during the first reconciliation
//     (from /proc/stat, so Linux only; the fake, the database and the
//     reconciler share them);
//   - peak-rss-MB: the process's peak resident set during the runs
//     (VmHWM, reset before them); peak-heap-MB: the highest HeapInuse
//     sampled every 5 ms, above the level before.
//
// The sizes run against a fake that answers at once, where the listing is
// as fast as the two processes' CPUs allow, and 100k once more against a
// fake that takes 20 ms per page of 200 users. Okta's typical budget of
// 600 requests a minute on /api/v1/users alone keeps a real listing at
// 100 ms or more per page on average.
func BenchmarkReconcile(b *testing.B) {
	for _, c := range []struct {
		users   int
		latency time.Duration
	}{{10_000, 0}, {100_000, 0}, {100_000, 20 * time.Millisecond}} {
		name := fmt.Sprintf("%dk", c.users/1000)
		if c.latency > 0 {
			name += "-idp" + c.latency.String()
		}
		b.Run(name, func(b *testing.B) { benchReconcile(b, c.users, c.latency) })
	}
}

func benchReconcile(b *testing.B, n int, latency time.Duration) {
	url, token, fakePID := startFake(b, n, latency)
	backend := storetest.Backends()[len(storetest.Backends())-1]
	ctx := context.Background()
	box, _ := secret.NewBox(make([]byte, 32))
	settings, _ := json.Marshal(map[string]string{"orgUrl": url})
	creds, _ := json.Marshal(map[string]string{"apiToken": token})

	var list, first, noop time.Duration
	var listBusy, firstBusy float64                    // CPU-seconds of the whole machine
	var listOwn, listFake, firstOwn, firstFake float64 // CPU-seconds of this process and of the fake
	var peakRSS, peakHeap uint64
	for b.Loop() {
		b.StopTimer()
		o := newBenchOrg(b, backend, box, "okta", settings, creds,
			reconciler.Policy{Guard: 0.1, InviteMaxSends: 5, InviteResendAfter: 24 * time.Hour})
		st, dbURL, org, src, r := o.st, o.dbURL, o.org, o.src, o.r

		dir, _, err := src.Directory(ctx, org.ID)
		if err != nil {
			b.Fatal(err)
		}
		busy, own, fake := busyCPUSeconds(), processCPUSeconds(os.Getpid()), processCPUSeconds(fakePID)
		start := time.Now()
		count := 0
		if err := dir.ListUsers(ctx, func(p []connectors.User) error { count += len(p); return nil }); err != nil || count != n {
			b.Fatalf("listed %d: %v", count, err)
		}
		list += time.Since(start)
		listBusy += busyCPUSeconds() - busy
		listOwn += processCPUSeconds(os.Getpid()) - own
		listFake += processCPUSeconds(fakePID) - fake

		mem := memsample.Start()
		b.StartTimer()
		busy, own, fake = busyCPUSeconds(), processCPUSeconds(os.Getpid()), processCPUSeconds(fakePID)
		start = time.Now()
		run, err := r.Reconcile(ctx, org.ID, reconciler.Options{Trigger: reconciler.TriggerCLI})
		first += time.Since(start)
		firstBusy += busyCPUSeconds() - busy
		firstOwn += processCPUSeconds(os.Getpid()) - own
		firstFake += processCPUSeconds(fakePID) - fake
		b.StopTimer()
		if err != nil || run.Status != store.RunSucceeded {
			b.Fatalf("first run: %+v, %v", run, err)
		}
		var fp reconciler.Plan
		json.Unmarshal([]byte(run.Plan), &fp)
		b.Logf("first run timings: %+v", fp.Timings)
		seedMembers(b, backend, dbURL, org.ID)
		b.StartTimer()
		start = time.Now()
		// Full: the second run would otherwise read a delta.
		run, err = r.Reconcile(ctx, org.ID, reconciler.Options{Trigger: reconciler.TriggerCLI, Full: true})
		noop += time.Since(start)
		b.StopTimer()
		heap, rss := mem.Stop()
		peakRSS, peakHeap = max(peakRSS, rss), max(peakHeap, heap)
		var p reconciler.Plan
		json.Unmarshal([]byte(run.Plan), &p)
		b.Logf("no-op timings: %+v", p.Timings)
		if err != nil || run.Status != store.RunSucceeded || p.Provision+p.Update+p.Remove+p.Deprovision != 0 {
			b.Fatalf("no-op run: %+v %+v, %v", run, p, err)
		}
		st.Close()
		b.StartTimer()
	}
	iters := float64(b.N)
	b.ReportMetric(list.Seconds()/iters, "list-s")
	b.ReportMetric(first.Seconds()/iters, "first-s")
	b.ReportMetric(first.Seconds()/list.Seconds(), "first/list")
	b.ReportMetric(noop.Seconds()/iters, "noop-s")
	b.ReportMetric(listBusy/list.Seconds(), "list-cores")
	b.ReportMetric(firstBusy/first.Seconds(), "first-cores")
	b.ReportMetric(listOwn/iters, "list-own-cpu-s")
	b.ReportMetric(listFake/iters, "list-fake-cpu-s")
	b.ReportMetric(firstOwn/iters, "first-own-cpu-s")
	b.ReportMetric(firstFake/iters, "first-fake-cpu-s")
	b.ReportMetric((firstBusy-firstOwn-firstFake)/iters, "first-rest-cpu-s")
	b.ReportMetric((noop-list).Seconds()/iters, "noop-own-s")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-rss-MB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
}

// benchOrg is a fresh database with one organization whose connector is
// the given IdP, and a reconciler over it.
type benchOrg struct {
	st    *store.Store
	dbURL string
	org   store.Org
	src   *source.Opener
	r     *reconciler.Reconciler
}

func newBenchOrg(b *testing.B, backend storetest.Backend, box *secret.Box, typ string, settings, creds []byte, policy reconciler.Policy) benchOrg {
	b.Helper()
	ctx := context.Background()
	dbURL := storetest.DatabaseURL(b, backend)
	st, err := store.Open(ctx, dbURL, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	org, err := st.CreateOrg(ctx, "Bench")
	if err != nil {
		b.Fatal(err)
	}
	src := &source.Opener{Store: st, Box: box}
	if _, err := (&admin.Service{Store: st, Connectors: src}).PutConnector(ctx, org.ID, typ, settings, creds); err != nil {
		b.Fatal(err)
	}
	r := &reconciler.Reconciler{Store: st, Directories: src, Log: slog.New(slog.DiscardHandler), Policy: policy}
	return benchOrg{st: st, dbURL: dbURL, org: org, src: src, r: r}
}

// seedMembers gives every directory user an active membership in bulk, as
// converging them all would.
func seedMembers(b *testing.B, backend storetest.Backend, dbURL, orgID string) {
	driver, dsn := "pgx", dbURL
	if backend.URL == "" {
		driver, dsn = "sqlite", "file:"+strings.TrimPrefix(dbURL, "sqlite://")+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	org := "'" + orgID + "'"
	for _, q := range []string{
		"INSERT INTO users (id, email, email_key, created_at, updated_at) SELECT 'u-' || id, email, email_key, created_at, updated_at FROM directory_users WHERE org_id = " + org,
		`INSERT INTO org_memberships (id, org_id, user_id, directory_user_id, status, role, email, first_name, last_name, source, external_id, created_at, updated_at)
SELECT 'm-' || id, org_id, 'u-' || id, id, 'active', 'member', email, given_name, family_name, source, external_id, created_at, updated_at FROM directory_users WHERE org_id = ` + org,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
}

// processCPUSeconds is the CPU time, user and system, that process pid
// has used (0 where /proc is not to be read).
func processCPUSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses: utime
	// and stime are the 12th and 13th of them.
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// busyCPUSeconds is how long the machine's CPUs have been busy since boot,
// summed over CPUs (0 where /proc/stat is not to be read).
func busyCPUSeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var ticks float64
	for i, v := range strings.Fields(line)[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		ticks += n
	}
	return ticks / 100 // USER_HZ
}
