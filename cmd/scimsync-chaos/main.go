// Command scimsync-chaos runs scimsync as replicas — two api, two worker
// and two scheduler processes — against a fresh Postgres database and a
// redis-server of its own, drives a random mix of SCIM writes and IdP-side
// changes, injects faults on a seeded schedule, then heals everything,
// reconciles, and checks that nothing acknowledged was lost, local state
// equals directory state, nobody active was deprovisioned, no invite was
// e-mailed twice, each scheduled reconcile was enqueued once and both
// workers shared the work.
//
//	scimsync-chaos -seed 1 -duration 2m
//	scimsync-chaos -seed 7 -duration 10m -ops 20000 -json
//
// Everything listens on 127.0.0.1. It exits 0 when no divergence was
// found, 1 on a divergence, 2 on bad flags, 3 when the run itself could not
// be carried out.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	seed         uint64
	duration     time.Duration
	ops          int64
	databaseURL  string
	redisServer  string
	scimsync     string
	jsonOut      bool
	keep         bool
	writers      int
	drainTimeout time.Duration
}

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func cli(args []string, out, errOut io.Writer) int {
	var o options
	fs := flag.NewFlagSet("scimsync-chaos", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the workload and the fault plan")
	fs.DurationVar(&o.duration, "duration", 2*time.Minute, "how long to drive writes and inject faults (then heal and check)")
	fs.Int64Var(&o.ops, "ops", 100000, "stop the workload after this many writes, whichever comes first")
	fs.StringVar(&o.databaseURL, "database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "Postgres admin URL (loopback) to create and drop the run's database with")
	fs.StringVar(&o.redisServer, "redis-server", "redis-server", "path of the redis-server binary to run a private Redis with")
	fs.StringVar(&o.scimsync, "scimsync", "", "path of the scimsync binary (default: build it from this module)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.BoolVar(&o.keep, "keep", false, "keep the database and the log directory after the run")
	fs.IntVar(&o.writers, "writers", 3, "concurrent SCIM writers")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 3*time.Minute, "how long healing may take for the queues to drain")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || o.duration <= 0 || o.ops <= 0 || o.writers < 1 {
		fmt.Fprintln(errOut, "scimsync-chaos: -duration, -ops and -writers must be positive, and no arguments are taken")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logw := errOut
	rep, err := run(ctx, o, logw)
	if rep != nil {
		if o.jsonOut {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			rep.Print(out)
		}
	}
	switch {
	case err != nil:
		fmt.Fprintln(errOut, "scimsync-chaos:", err)
		return 3
	case len(rep.Divergences) > 0:
		return 1
	}
	return 0
}
