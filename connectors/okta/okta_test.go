package okta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/connectors/connectortest"
	"github.com/scimsync/scimsync/connectors/okta"
	"github.com/scimsync/scimsync/connectors/okta/oktafake"
	"github.com/scimsync/scimsync/internal/clock"
)

// fake adapts oktafake to the contract suite; DeleteUser and AddMember
// are the Server's own.
type fake struct{ *oktafake.Server }

func newFake(t *testing.T, env connectortest.Env) connectortest.Fake {
	return fake{oktafake.New(t, oktafake.WithClock(env.Now))}
}

func (f fake) Type() string                { return okta.Type }
func (f fake) Settings() map[string]any    { return map[string]any{"orgUrl": f.URL()} }
func (f fake) Credentials() map[string]any { return map[string]any{"apiToken": f.Token()} }
func (f fake) BadCredentials() map[string]any {
	return map[string]any{"apiToken": "00wrong-token-okta-refuses-12345"}
}
func (f fake) UnauthorizedMessage() string         { return oktafake.UnauthorizedSummary }
func (f fake) PageSize(connectortest.Endpoint) int { return 200 }
func (f fake) AddGroup(name string) string         { return f.Server.AddGroup(name).ID }

func (f fake) Statuses() []connectortest.Status {
	return []connectortest.Status{
		{Raw: oktafake.StatusActive, Active: true},
		{Raw: oktafake.StatusProvisioned, Active: true},
		{Raw: oktafake.StatusRecovery, Active: true},
		{Raw: oktafake.StatusLockedOut, Active: true},
		{Raw: oktafake.StatusPasswordExpired, Active: true},
		{Raw: oktafake.StatusStaged, Active: false},
		{Raw: oktafake.StatusSuspended, Active: false},
		{Raw: oktafake.StatusDeprovisioned, Active: false},
	}
}

func (f fake) AddUser(u connectors.User) string {
	return f.Server.AddUser(oktafake.User{Status: u.RawStatus, Login: u.UserName, Email: u.Email, FirstName: u.GivenName, LastName: u.FamilyName}).ID
}

func (f fake) UpdateUser(u connectors.User) {
	f.Server.UpdateUser(u.ExternalID, func(x *oktafake.User) {
		x.Login, x.Email, x.FirstName, x.LastName = u.UserName, u.Email, u.GivenName, u.FamilyName
		if u.RawStatus != "" {
			x.Status = u.RawStatus
		}
	})
}

// routes are the fake's routes of the suite's listings.
var routes = connectortest.Routes{
	Users:   oktafake.RouteUsers,
	Groups:  oktafake.RouteGroups,
	Members: oktafake.RouteGroupUsers,
}

func (f fake) Fail(ep connectortest.Endpoint, page int, flt connectortest.Fault) {
	routes.Fail(f.Server, ep, page, flt)
}
func (f fake) Requests(ep connectortest.Endpoint) int { return routes.Requests(f.Server, ep) }

func TestContract(t *testing.T) { connectortest.Run(t, newFake) }

// newClock is a fake clock whose sleeps advance it.
func newClock() *clock.Fake {
	return clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), clock.SleepAdvances)
}

func listUsers(t *testing.T, d connectors.Directory) []connectors.User {
	t.Helper()
	var all []connectors.User
	if err := d.ListUsers(context.Background(), func(p []connectors.User) error { all = append(all, p...); return nil }); err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	return all
}

// Okta leaves deactivated users out of its user listing; the connector
// lists them apart, paged like the rest, inactive with their status. A
// directory without any costs the request of that empty listing.
func TestDeactivatedUsersListedApart(t *testing.T) {
	tests := []struct {
		name         string
		statuses     string // a user each, in id order: Active or Deprovisioned
		wantRequests int    // a page of 2 each, and one for an empty listing
	}{
		{"both listings", "ADADADDD", 2 + 3},
		{"none deactivated", "AAA", 2 + 1},
		{"all deactivated", "DDD", 1 + 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oktafake.New(t, oktafake.WithMaxLimit(2))
			var want []connectors.User
			for i, c := range tt.statuses {
				status := oktafake.StatusActive
				if c == 'D' {
					status = oktafake.StatusDeprovisioned
				}
				u := srv.AddUser(oktafake.User{Email: fmt.Sprintf("u%d@example.com", i), Status: status})
				want = append(want, connectors.User{ExternalID: u.ID, UserName: u.Login, Email: u.Email,
					Active: status == oktafake.StatusActive, RawStatus: status})
			}
			d := connectortest.Open(t, okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())})
			var got []connectors.User
			pages := 0
			err := d.ListUsers(context.Background(), func(p []connectors.User) error {
				pages++
				got = append(got, p...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b connectors.User) bool { return a.ExternalID < b.ExternalID })); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			if n := srv.Requests(oktafake.RouteUsers); n != tt.wantRequests {
				t.Errorf("%d requests for %d pages, want %d", n, pages, tt.wantRequests)
			}
		})
	}
}

// A listing that fails part-way never looks complete, the deactivated
// users' included.
func TestDeactivatedListingFailureFailsListUsers(t *testing.T) {
	srv := oktafake.New(t, oktafake.WithMaxLimit(2))
	for i, st := range []string{oktafake.StatusActive, oktafake.StatusDeprovisioned, oktafake.StatusActive, oktafake.StatusDeprovisioned} {
		srv.AddUser(oktafake.User{Email: fmt.Sprintf("u%d@example.com", i), Status: st})
	}
	srv.FailPage(oktafake.RouteUsers, 2, http.StatusInternalServerError, 100) // the deactivated users' first page
	d := connectortest.Open(t, okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())})
	var seen []string
	err := d.ListUsers(context.Background(), func(p []connectors.User) error {
		for _, u := range p {
			seen = append(seen, u.RawStatus)
		}
		return nil
	})
	if !errors.Is(err, connectors.ErrUnavailable) || !strings.Contains(err.Error(), "deactivated") {
		t.Fatalf("got %v, want ErrUnavailable from the deactivated users' listing", err)
	}
	if diff := cmp.Diff([]string{oktafake.StatusActive, oktafake.StatusActive}, seen); diff != "" {
		t.Errorf("users handed over before the failure (-want +got):\n%s", diff)
	}
}

// A user whose status changes while ListUsers runs is listed once at most.
// Deactivated after the default listing passed it, it is listed as that
// listing saw it; re-activated after the default listing passed its place,
// it is in neither listing this once. The next listing sees it as it is.
func TestStatusChangeDuringListing(t *testing.T) {
	const (
		active = oktafake.StatusActive
		deprov = oktafake.StatusDeprovisioned
	)
	// In id order: a, d, b, c, e. The default listing's pages are [a b] and
	// [c]; the deactivated users' [d e]. Each case changes one user while
	// the first page is handed over.
	names := []string{"a", "d", "b", "c", "e"}
	initial := map[string]string{"a": active, "d": deprov, "b": active, "c": active, "e": deprov}
	tests := []struct {
		name   string
		user   string
		status string
		want   map[string]string // user → RawStatus last listed
	}{
		{"deactivated behind the default listing", "a", deprov,
			map[string]string{"a": deprov, "b": active, "c": active, "d": deprov, "e": deprov}},
		{"deactivated ahead of the default listing", "c", deprov,
			map[string]string{"a": active, "b": active, "c": deprov, "d": deprov, "e": deprov}},
		{"re-activated behind the default listing", "d", active,
			map[string]string{"a": active, "b": active, "c": active, "e": deprov}},
		{"re-activated ahead of the default listing", "e", active,
			map[string]string{"a": active, "b": active, "c": active, "d": deprov, "e": active}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oktafake.New(t, oktafake.WithMaxLimit(2))
			ids := map[string]string{}
			for _, n := range names {
				u := srv.AddUser(oktafake.User{Email: n + "@example.com", Status: initial[n]})
				ids[u.ID] = n
			}
			byName := map[string]string{}
			for id, n := range ids {
				byName[n] = id
			}
			d := connectortest.Open(t, okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())})
			list := func(onFirstPage func()) map[string]string {
				got := map[string]string{}
				pages := 0
				err := d.ListUsers(context.Background(), func(p []connectors.User) error {
					for _, u := range p {
						got[ids[u.ExternalID]] = u.RawStatus // the later sighting wins, as in the pull
					}
					if pages++; pages == 1 && onFirstPage != nil {
						onFirstPage()
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			got := list(func() { srv.SetStatus(byName[tt.user], tt.status) })
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("listing during the change (-want +got):\n%s", diff)
			}
			now := maps.Clone(initial)
			now[tt.user] = tt.status
			if diff := cmp.Diff(now, list(nil)); diff != "" {
				t.Errorf("next listing (-want +got):\n%s", diff)
			}
		})
	}
}

// The SDK loads ~/.okta/okta.yaml and OKTA_* variables before our settings;
// none of them may override what the connector was configured with.
func TestSDKEnvironmentDoesNotOverrideConfig(t *testing.T) {
	for k, v := range map[string]string{
		"OKTA_CLIENT_ORGURL":                 "https://attacker.example.com",
		"OKTA_CLIENT_TOKEN":                  "env-token-that-the-fake-refuses",
		"OKTA_CLIENT_AUTHORIZATIONMODE":      "Bearer",
		"OKTA_CLIENT_CACHE_ENABLED":          "true",
		"OKTA_CLIENT_CACHE_DEFAULT_TTL":      "3600",
		"OKTA_CLIENT_RATE_LIMIT_MAX_RETRIES": "9",
		"OKTA_CLIENT_REQUESTTIMEOUT":         "1",
		"OKTA_TESTING_DISABLE_HTTPS_CHECK":   "true",
	} {
		t.Setenv(k, v)
	}
	clock := newClock()
	srv := oktafake.New(t, oktafake.WithClock(clock.Now))
	u := srv.AddUser(oktafake.User{Email: "ada@example.com", FirstName: "Ada"})
	d, err := okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())}.Open(context.Background(), connectortest.Options(clock))
	if err != nil {
		t.Fatal(err)
	}
	if got := listUsers(t, d); len(got) != 1 || got[0].GivenName != "Ada" {
		t.Fatalf("first listing: %+v", got)
	}
	// With the cache back on, the second listing would be the first one.
	srv.UpdateUser(u.ID, func(x *oktafake.User) { x.FirstName = "Grace" })
	if got := listUsers(t, d); len(got) != 1 || got[0].GivenName != "Grace" {
		t.Fatalf("second listing is stale: %+v", got)
	}
	// Nor does the environment relax the https rule.
	_, err = okta.Config{OrgURL: "http://acme.okta.com", APIToken: "t0ken-value"}.Open(context.Background(), connectors.Options{})
	if !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Errorf("plain http to a remote host: got %v, want ErrInvalidConfig", err)
	}
}

func TestRateLimitWaitFollowsOktaHeaders(t *testing.T) {
	clock := newClock()
	srv := oktafake.New(t, oktafake.WithClock(clock.Now))
	srv.AddUser(oktafake.User{Email: "a@example.com"})
	d, err := okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())}.Open(context.Background(), connectortest.Options(clock))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(oktafake.RouteUsers, http.StatusTooManyRequests, 1) // resets 2 s after Date
	listUsers(t, d)
	// X-Rate-Limit-Reset − Date + 1 s, as Okta's SDK computes it.
	if slept, n := clock.Slept(); slept != 3*time.Second || n != 1 {
		t.Errorf("waited %v in %d sleeps, want 3s in 1", slept, n)
	}
}

func TestPacingKeepsWithinShare(t *testing.T) {
	tests := []struct {
		name      string
		share     float64
		wantSleep bool
	}{
		{"default half", 0, true},
		{"whole budget", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newClock()
			srv := oktafake.New(t, oktafake.WithClock(clock.Now))
			srv.RateLimit(oktafake.RouteGroupUsers, 10, time.Minute)
			user := srv.AddUser(oktafake.User{Email: "a@example.com"})
			var groups []string
			for i := range 8 {
				g := srv.AddGroup(fmt.Sprintf("g%d", i))
				srv.AddMember(g.ID, user.ID)
				groups = append(groups, g.ID)
			}
			opts := connectortest.Options(clock)
			opts.Retry.RateLimitShare = tt.share
			d, err := okta.Config{OrgURL: srv.URL(), APIToken: connectors.Secret(srv.Token())}.Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range groups {
				if err := d.ListGroupMembers(context.Background(), g, func([]string) error { return nil }); err != nil {
					t.Fatalf("ListGroupMembers(%s): %v", g, err)
				}
			}
			slept, _ := clock.Slept()
			if tt.wantSleep && (slept < time.Minute-5*time.Second || slept > time.Minute+5*time.Second) {
				t.Errorf("paced for %v, want about the rest of the one-minute window", slept)
			}
			if !tt.wantSleep && slept != 0 {
				t.Errorf("paced for %v with the whole budget allowed", slept)
			}
			// 8 requests against a budget of 10 never need a 429 either way.
			if got := srv.Requests(oktafake.RouteGroupUsers); got != len(groups) {
				t.Errorf("fake served %d requests, want %d", got, len(groups))
			}
		})
	}
}

// The SDK dereferences what it parsed from a Link header without checking; a
// malformed one must end the listing with an error, not a panic.
func TestMalformedLinkHeaderIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Link", `<http://[::1%zz/api/v1/users?after=x>; rel="next"`)
		_ = json.NewEncoder(w).Encode([]map[string]any{{"id": "00u1", "status": "ACTIVE", "profile": map[string]any{"login": "a"}}})
	}))
	t.Cleanup(srv.Close)
	d, err := okta.Config{OrgURL: srv.URL, APIToken: "t0ken-value"}.Open(context.Background(), connectors.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.ListUsers(context.Background(), func([]connectors.User) error { return nil })
	if err == nil {
		t.Fatal("ListUsers succeeded on a malformed Link header")
	}
}

func TestOpenValidation(t *testing.T) {
	tests := []struct {
		name      string
		settings  string
		creds     string
		wantField string // "" means valid
	}{
		{"valid https", `{"orgUrl":"https://acme.okta.com"}`, `{"apiToken":"t0ken"}`, ""},
		{"trailing slash", `{"orgUrl":"https://acme.okta.com/"}`, `{"apiToken":"t0ken"}`, ""},
		{"loopback http", `{"orgUrl":"http://127.0.0.1:8080"}`, `{"apiToken":"t0ken"}`, ""},
		{"localhost http", `{"orgUrl":"http://localhost:8080"}`, `{"apiToken":"t0ken"}`, ""},
		{"ipv6 loopback http", `{"orgUrl":"http://[::1]:8080"}`, `{"apiToken":"t0ken"}`, ""},
		{"with groups", `{"orgUrl":"https://acme.okta.com","groups":["Engineering"]}`, `{"apiToken":"t0ken"}`, ""},
		{"missing orgUrl", `{}`, `{"apiToken":"t0ken"}`, "settings.orgUrl"},
		{"remote http", `{"orgUrl":"http://acme.okta.com"}`, `{"apiToken":"t0ken"}`, "settings.orgUrl"},
		{"private address http", `{"orgUrl":"http://10.0.0.1"}`, `{"apiToken":"t0ken"}`, "settings.orgUrl"},
		{"other scheme", `{"orgUrl":"ftp://acme.okta.com"}`, `{"apiToken":"t0ken"}`, "settings.orgUrl"},
		{"with path", `{"orgUrl":"https://acme.okta.com/api/v1"}`, `{"apiToken":"t0ken"}`, "settings.orgUrl"},
		{"admin console", `{"orgUrl":"https://acme-admin.okta.com"}`, `{"apiToken":"t0ken"}`, "settings.orgUrl"},
		{"user info", `{"orgUrl":"https://u:p@acme.okta.com"}`, `{"apiToken":"t0ken"}`, "settings.orgUrl"},
		{"missing token", `{"orgUrl":"https://acme.okta.com"}`, `{}`, "credentials.apiToken"},
		{"token in settings", `{"orgUrl":"https://acme.okta.com","apiToken":"t0ken"}`, `{"apiToken":"t0ken"}`, "settings.apiToken"},
		{"token not a string", `{"orgUrl":"https://acme.okta.com"}`, `{"apiToken":42}`, "credentials.apiToken"},
		{"settings not an object", `["x"]`, `{"apiToken":"t0ken"}`, "settings"},
		{"empty group name", `{"orgUrl":"https://acme.okta.com","groups":[""]}`, `{"apiToken":"t0ken"}`, "settings.groups"},
		{"groups not a list", `{"orgUrl":"https://acme.okta.com","groups":"Eng"}`, `{"apiToken":"t0ken"}`, "settings.groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			connectortest.CheckConfig(t, okta.Type, tt.settings, tt.creds, tt.wantField)
		})
	}
}
