// Command scimsync keeps an application's organizations, members and groups
// in step with identity providers: it pulls from IdP APIs, accepts SCIM
// pushes, applies changes through jobs, and reconciles on a schedule.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/scimsync/scimsync/connectors/all" // the connectors this binary offers
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
