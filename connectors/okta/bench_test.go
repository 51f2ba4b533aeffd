package okta_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/okta"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/memsample"
)

// fakeUsersEnv makes the test binary serve an Okta fake with that many users
// instead of running tests, so that a benchmark's heap holds only the
// connector's memory, not the fake's directory.
const fakeUsersEnv = "OKTA_BENCH_FAKE_USERS"

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(fakeUsersEnv)); err == nil {
		serveFake(n)
		return
	}
	os.Exit(m.Run())
}

// serveFake serves until its standard input closes. One user in ten is
// deactivated, so that a listing reads both of Okta's user listings.
func serveFake(n int) {
	srv := oktafake.Start()
	defer srv.Close()
	for i := range n {
		status := oktafake.StatusActive
		if i%10 == 9 {
			status = oktafake.StatusDeprovisioned
		}
		srv.AddUser(oktafake.User{
			Email:     fmt.Sprintf("user%06d@example.com", i),
			FirstName: fmt.Sprintf("Given%d", i),
			LastName:  fmt.Sprintf("Family%d", i),
			Status:    status,
		})
	}
	fmt.Println(srv.URL(), srv.Token())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startFake runs serveFake in a child process and returns its URL and token.
func startFake(b *testing.B, n int) (string, string) {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fakeUsersEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 2 {
		b.Fatalf("fake process said %q: %v", line, err)
	}
	return f[0], f[1]
}

// BenchmarkOktaList10k and BenchmarkOktaList100k list every user of an Okta
// fake (in a child process) through the SDK. Besides time and allocations
// per listing, they report the benchmark process's heap above its level
// before the first listing:
//
//   - peak-inuse-MB: the highest HeapInuse, sampled every 5 ms during the
//     timed listings (garbage not yet collected included);
//   - retained-KB: the most live heap, measured after a forced GC at every
//     25th page of one more listing.
//
// Besides one page, the connector holds the ids it listed (about 60 bytes
// each) until it has listed the deactivated users, so that none is listed
// twice: both grow with the users by that much.
func BenchmarkOktaList10k(b *testing.B)  { benchmarkList(b, 10_000) }
func BenchmarkOktaList100k(b *testing.B) { benchmarkList(b, 100_000) }

func benchmarkList(b *testing.B, n int) {
	url, token := startFake(b, n)
	d, err := okta.Config{OrgURL: url, APIToken: connectors.Secret(token)}.Open(context.Background(), connectors.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	list := func(onPage func(page int)) {
		count, page := 0, 0
		err := d.ListUsers(ctx, func(p []connectors.User) error {
			count += len(p)
			page++
			if onPage != nil {
				onPage(page)
			}
			return nil
		})
		if err != nil || count != n {
			b.Fatalf("listed %d of %d users: %v", count, n, err)
		}
	}

	mem := memsample.Start()
	base := mem.Base()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		list(nil)
	}
	b.StopTimer()
	peak, _ := mem.Stop()

	var retained uint64
	list(func(page int) {
		if page%25 != 0 {
			return
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > base.HeapAlloc {
			retained = max(retained, ms.HeapAlloc-base.HeapAlloc)
		}
	})
	b.ReportMetric(float64(peak)/(1<<20), "peak-inuse-MB")
	b.ReportMetric(float64(retained)/1024, "retained-KB")
	b.ReportMetric(float64(n), "users")
}
