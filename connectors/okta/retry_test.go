package okta_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/okta"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
)

// Okta names its rate-limit window's reset on every answer, a 500 included.
// A burst of server errors is retried after a backoff of seconds, never held
// until that reset: three 500s, then the page, within 10 s.
func TestServerErrorsAreNotHeldUntilTheRateLimitReset(t *testing.T) {
	clock := newClock()
	srv := oktafake.New(t, oktafake.WithClock(clock.Now))
	srv.RateLimit(oktafake.RouteUsers, 600, time.Minute) // headers on every answer, as Okta sends them
	srv.AddUser(oktafake.User{Email: "a@example.com"})
	opts := connectortest.Options(clock) // the default retry policy, on the fake clock
	d, err := okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())}.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.FailPage(oktafake.RouteUsers, 1, http.StatusInternalServerError, 3)

	if got := listUsers(t, d); len(got) != 1 {
		t.Fatalf("listed %d users, want 1", len(got))
	}
	if slept, n := clock.Slept(); n != 3 || slept >= 10*time.Second {
		t.Errorf("waited %v in %d sleeps; want 3 backoffs within 10s, not the minute's reset", slept, n)
	}
	if got := srv.Requests(oktafake.RouteUsers); got != 5 {
		t.Errorf("fake served %d requests, want 5 (three 500s, the page, and the page of deactivated users)", got)
	}
}
