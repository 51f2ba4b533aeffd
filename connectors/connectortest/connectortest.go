// Package connectortest is the contract every connector passes. Run drives a
// connector, opened through connectors.Open, against a fake of its IdP and
// checks pagination, status mapping, that a deactivated user is listed
// (inactive) and a deleted one is not, the "groups" setting, error
// classification, retries and waits, fresh reads, cancellation, and that no
// credential reaches an error or a log line.
//
// Each connector's tests adapt its IdP fake to the Fake interface and call
// Run. Waits go through a fake clock (clock.Fake, whose Sleep advances it)
// shared by the connector and the IdP fake, so the suite sleeps for real
// only to let one attempt time out.
package connectortest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/scimsync/scimsync/connectors"
	"github.com/scimsync/scimsync/internal/clock"
	"github.com/scimsync/scimsync/internal/syncbuf"
)

// Endpoint is one of the listings a Directory reads.
type Endpoint int

const (
	Users   Endpoint = iota + 1 // the user listing
	Groups                      // the group listing
	Members                     // the member listing of any group
)

func (e Endpoint) String() string {
	switch e {
	case Users:
		return "users"
	case Groups:
		return "groups"
	case Members:
		return "members"
	}
	return fmt.Sprintf("Endpoint(%d)", int(e))
}

// Status is a user status of the IdP and what the connector must make of it.
// A user of any status is listed: only a deleted user is not.
type Status struct {
	Raw    string // as the connector reports it in User.RawStatus
	Active bool
}

// Fault is a failure for the fake to inject.
type Fault struct {
	Status int  // HTTP status to answer with
	Hang   bool // hold the request until the client gives up, instead
	Times  int  // how many requests it hits
}

// Fake is an IdP fake as the suite drives it.
type Fake interface {
	// Type is the connector type to pass to connectors.Open.
	Type() string
	// Settings points the connector at the fake (without "groups").
	Settings() map[string]any
	// Credentials are accepted by the fake; BadCredentials are refused.
	Credentials() map[string]any
	BadCredentials() map[string]any
	// UnauthorizedMessage is the IdP's own words when it refuses
	// credentials; the connector's error must carry them.
	UnauthorizedMessage() string
	// PageSize is how many items a full page of the listing holds.
	PageSize(Endpoint) int
	// Statuses lists the IdP's user statuses; the first is what AddUser
	// gives a user whose RawStatus is empty.
	Statuses() []Status
	// AddUser adds a user from u's names, e-mail and RawStatus, and returns
	// its id. UpdateUser changes the user u.ExternalID likewise: with a
	// RawStatus, it is how the suite deactivates a user. DeleteUser deletes
	// the user, as the IdP does for good.
	AddUser(u connectors.User) string
	UpdateUser(u connectors.User)
	DeleteUser(id string)
	AddGroup(name string) string
	AddMember(groupID, userID string)
	// Fail injects f into requests for page (1-based) of the listing.
	Fail(ep Endpoint, page int, f Fault)
	// Requests counts the requests the listing has received.
	Requests(Endpoint) int
}

// EmailIsUserName is implemented by a Fake whose IdP has one address for
// both, as Google's primaryEmail is: the suite then changes them together.
type EmailIsUserName interface {
	EmailIsUserName() bool
}

// Routes names a fake's routes for the suite's listings, for a fake that
// injects failures and counts requests by route, as the fakes built on
// fakeidp do. Its Fail and Requests then serve as the Fake's.
type Routes struct{ Users, Groups, Members string }

// RouteFake injects failures and counts requests by route.
type RouteFake interface {
	FailPage(route string, page, status, count int)
	HangPage(route string, page, count int)
	Requests(route string) int
}

// Route is the route of the listing ep.
func (r Routes) Route(ep Endpoint) string {
	switch ep {
	case Users:
		return r.Users
	case Groups:
		return r.Groups
	}
	return r.Members
}

// Fail injects flt into page of ep's route on f, as Fake.Fail does.
func (r Routes) Fail(f RouteFake, ep Endpoint, page int, flt Fault) {
	if flt.Hang {
		f.HangPage(r.Route(ep), page, flt.Times)
		return
	}
	f.FailPage(r.Route(ep), page, flt.Status, flt.Times)
}

// Requests is how many requests ep's route on f has received, as
// Fake.Requests counts them.
func (r Routes) Requests(f RouteFake, ep Endpoint) int { return f.Requests(r.Route(ep)) }

// Env is what the suite hands a new fake.
type Env struct {
	// Now is the suite's clock, which the fake's Date and rate-limit headers
	// must follow: the connector waits on the same clock.
	Now func() time.Time
}

// Retry budget the suite opens connectors with.
const (
	maxRetries        = 2
	maxRateLimitWaits = 3
	hangTimeout       = 200 * time.Millisecond
)

// Run runs the contract suite; newFake returns a fresh, empty fake.
func Run(t *testing.T, newFake func(t *testing.T, env Env) Fake) {
	t.Run("Pagination", func(t *testing.T) { testPagination(t, newFake) })
	t.Run("StatusMapping", func(t *testing.T) { testStatusMapping(t, newFake) })
	t.Run("DeactivatedListedDeletedGone", func(t *testing.T) { testDeactivated(t, newFake) })
	t.Run("GroupsSetting", func(t *testing.T) { testGroupsSetting(t, newFake) })
	t.Run("Unauthorized", func(t *testing.T) { testUnauthorized(t, newFake) })
	t.Run("Faults", func(t *testing.T) { testFaults(t, newFake) })
	t.Run("AttemptTimeoutRetried", func(t *testing.T) { testTimeout(t, newFake) })
	t.Run("FreshEachListing", func(t *testing.T) { testFresh(t, newFake) })
	t.Run("Cancellation", func(t *testing.T) { testCancellation(t, newFake) })
	t.Run("CallbackError", func(t *testing.T) { testCallbackError(t, newFake) })
	t.Run("UnknownGroupMembers", func(t *testing.T) { testUnknownGroup(t, newFake) })
	t.Run("TestConnection", func(t *testing.T) { testTestConnection(t, newFake) })
	t.Run("ConcurrentListings", func(t *testing.T) { testConcurrent(t, newFake) })
}

// Options are connector options whose retries wait and read time on c, so
// that a test on a clock.Fake made with clock.SleepAdvances never sleeps for
// real.
func Options(c clock.Clock) connectors.Options {
	return connectors.Options{Retry: connectors.RetryPolicy{Clock: c}}
}

// start is when the suite's clocks start.
var start = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Open opens cfg, a connector's Config, with the options of a fresh fake
// clock, for a connector test outside the suite. It fails the test if Open
// fails.
func Open[D connectors.Directory](t testing.TB, cfg interface {
	Open(context.Context, connectors.Options) (D, error)
}) D {
	t.Helper()
	d, err := cfg.Open(context.Background(), Options(clock.NewFake(start, clock.SleepAdvances)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// CheckConfig opens a connector of type typ from raw JSON settings and
// credentials. With wantField "" it must open; otherwise it must fail with a
// *connectors.ConfigError, matching ErrInvalidConfig, that blames wantField.
// It returns Open's error for the caller's own checks.
func CheckConfig(t testing.TB, typ, settings, credentials, wantField string) error {
	t.Helper()
	_, err := connectors.Open(context.Background(), typ, json.RawMessage(settings), json.RawMessage(credentials), connectors.Options{})
	if wantField == "" {
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return nil
	}
	var ce *connectors.ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, connectors.ErrInvalidConfig) {
		t.Fatalf("got %v, want a *ConfigError", err)
	}
	if diff := cmp.Diff(wantField, ce.Field); diff != "" {
		t.Errorf("field (-want +got): %s (error %q)", diff, err)
	}
	return err
}

// harness is one subtest's fake, clock and log, and the checks they share.
type harness struct {
	t       *testing.T
	fake    Fake
	clock   *clock.Fake
	logs    *syncbuf.Buffer
	secrets []string
	timeout time.Duration
}

func newHarness(t *testing.T, newFake func(*testing.T, Env) Fake) *harness {
	t.Helper()
	clk := clock.NewFake(start, clock.SleepAdvances)
	h := &harness{t: t, clock: clk, logs: &syncbuf.Buffer{}, timeout: 10 * time.Second}
	h.fake = newFake(t, Env{Now: clk.Now})
	for _, creds := range []map[string]any{h.fake.Credentials(), h.fake.BadCredentials()} {
		for _, v := range creds {
			if s, ok := v.(string); ok && len(s) >= 8 {
				h.secrets = append(h.secrets, s)
			}
		}
	}
	t.Cleanup(func() {
		logs := h.logs.String()
		for _, s := range h.secrets {
			if strings.Contains(logs, s) {
				t.Errorf("a credential appears in the connector's log:\n%s", logs)
			}
		}
	})
	return h
}

// open opens the connector with creds (nil: the valid ones) and the groups
// setting.
func (h *harness) open(creds map[string]any, groups ...string) connectors.Directory {
	h.t.Helper()
	if creds == nil {
		creds = h.fake.Credentials()
	}
	settings := map[string]any{}
	for k, v := range h.fake.Settings() {
		settings[k] = v
	}
	if len(groups) > 0 {
		settings["groups"] = groups
	}
	opts := connectors.Options{
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry: connectors.RetryPolicy{
			MaxRetries:        maxRetries,
			MaxRateLimitWaits: maxRateLimitWaits,
			BaseDelay:         time.Second,
			MaxDelay:          4 * time.Second,
			MaxRateLimitWait:  time.Minute,
			AttemptTimeout:    h.timeout,
			Clock:             h.clock,
		},
	}
	d, err := connectors.Open(context.Background(), h.fake.Type(), mustJSON(h.t, settings), mustJSON(h.t, creds), opts)
	if err != nil {
		h.t.Fatalf("connectors.Open(%s): %v", h.fake.Type(), err)
	}
	return d
}

// checkErr fails the test if err carries a credential.
func (h *harness) checkErr(err error) {
	h.t.Helper()
	if err == nil {
		return
	}
	for _, s := range h.secrets {
		if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v", err), s) {
			h.t.Errorf("error carries a credential: %v", err)
		}
	}
}

// listing is what one call of a listing method saw.
type listing struct {
	pages [][]string // item ids per page
	users []connectors.User
	grps  []connectors.Group
	ids   []string
	err   error
}

// list runs the listing ep (Members: of groupID). stop, if set, runs inside
// the callback after each page and its error is returned from it.
func (h *harness) list(ctx context.Context, d connectors.Directory, ep Endpoint, groupID string, stop func(page int) error) listing {
	h.t.Helper()
	var l listing
	after := func() error {
		if stop != nil {
			return stop(len(l.pages))
		}
		return nil
	}
	switch ep {
	case Users:
		l.err = d.ListUsers(ctx, func(page []connectors.User) error {
			var ids []string
			for _, u := range page {
				ids = append(ids, u.ExternalID)
			}
			l.pages = append(l.pages, ids)
			l.users = append(l.users, page...)
			return after()
		})
	case Groups:
		l.err = d.ListGroups(ctx, func(page []connectors.Group) error {
			var ids []string
			for _, g := range page {
				ids = append(ids, g.ExternalID)
			}
			l.pages = append(l.pages, ids)
			l.grps = append(l.grps, page...)
			return after()
		})
	case Members:
		l.err = d.ListGroupMembers(ctx, groupID, func(page []string) error {
			l.pages = append(l.pages, page)
			l.ids = append(l.ids, page...)
			return after()
		})
	}
	h.checkErr(l.err)
	return l
}

func (l listing) items() []string {
	var all []string
	for _, p := range l.pages {
		all = append(all, p...)
	}
	return all
}

var (
	sortUsers  = cmpopts.SortSlices(func(a, b connectors.User) bool { return a.ExternalID < b.ExternalID })
	sortGroups = cmpopts.SortSlices(func(a, b connectors.Group) bool { return a.ExternalID < b.ExternalID })
	sortIDs    = cmpopts.SortSlices(func(a, b string) bool { return a < b })
)

// sampleUser is the i-th test user. Names are missing in runs whose period
// (14) divides no page size, so a later page has a missing name where an
// earlier page had one: a client that decodes pages into reused structs
// would show the earlier user's name.
func sampleUser(prefix string, i int) connectors.User {
	u := connectors.User{
		UserName:   fmt.Sprintf("%s%05d@example.com", prefix, i),
		Email:      fmt.Sprintf("%s%05d@example.com", prefix, i),
		GivenName:  fmt.Sprintf("Given%d", i),
		FamilyName: fmt.Sprintf("Family%d", i),
	}
	if (i/7)%2 == 1 {
		u.GivenName = ""
	}
	if (i/5)%3 == 2 {
		u.FamilyName = ""
	}
	return u
}

// fixture fills the fake with n users, n groups, and a group "all" whose
// members are the n users, and returns what the listings should give.
type fixture struct {
	users   []connectors.User
	groups  []connectors.Group
	allID   string
	members []string
}

func (h *harness) populate(users, groups int, members bool) fixture {
	h.t.Helper()
	var f fixture
	def := h.fake.Statuses()[0]
	for i := range users {
		u := sampleUser("user", i)
		u.ExternalID = h.fake.AddUser(u)
		u.Active, u.RawStatus = def.Active, def.Raw
		f.users = append(f.users, u)
	}
	for i := range groups {
		name := fmt.Sprintf("Group %05d", i)
		f.groups = append(f.groups, connectors.Group{ExternalID: h.fake.AddGroup(name), Name: name})
	}
	if members {
		f.allID = h.fake.AddGroup("all")
		f.groups = append(f.groups, connectors.Group{ExternalID: f.allID, Name: "all"})
		for _, u := range f.users {
			h.fake.AddMember(f.allID, u.ExternalID)
			f.members = append(f.members, u.ExternalID)
		}
	}
	return f
}

func testPagination(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	ps := h.fake.PageSize(Users)
	n := 2*ps + ps/2 // three pages, the last short
	// The groups page size may differ; fill its three pages too.
	f := h.populate(n, 2*h.fake.PageSize(Groups)+h.fake.PageSize(Groups)/2, true)
	// A page and one more of users of each other status: a connector that
	// reads some statuses through a listing of their own (Okta, its
	// deactivated users) pages through that one too. No listing, of any
	// set of statuses, is empty or ends on a full page, so that a request
	// for a page that lists nothing is a request too many.
	users := append([]connectors.User(nil), f.users...)
	for i, st := range h.fake.Statuses()[1:] {
		for j := range ps + 1 {
			u := sampleUser(fmt.Sprintf("status%d-", i+1), j)
			u.RawStatus = st.Raw
			u.ExternalID = h.fake.AddUser(u)
			u.Active = st.Active
			users = append(users, u)
		}
	}
	d := h.open(nil)
	ctx := context.Background()

	tests := []struct {
		ep   Endpoint
		want func(l listing) string
	}{
		{Users, func(l listing) string { return cmp.Diff(users, l.users, sortUsers) }},
		{Groups, func(l listing) string { return cmp.Diff(f.groups, l.grps, sortGroups) }},
		{Members, func(l listing) string { return cmp.Diff(f.members, l.ids, sortIDs) }},
	}
	for _, tt := range tests {
		t.Run(tt.ep.String(), func(t *testing.T) {
			before := h.fake.Requests(tt.ep)
			l := h.list(ctx, d, tt.ep, f.allID, nil)
			if l.err != nil {
				t.Fatalf("listing failed: %v", l.err)
			}
			if diff := tt.want(l); diff != "" {
				t.Errorf("listing mismatch (-want +got):\n%s", diff)
			}
			if len(l.pages) < 3 {
				t.Errorf("got %d pages, want at least 3", len(l.pages))
			}
			for i, p := range l.pages {
				if len(p) > h.fake.PageSize(tt.ep) {
					t.Errorf("page %d has %d items, more than a page (%d)", i+1, len(p), h.fake.PageSize(tt.ep))
				}
			}
			if got := h.fake.Requests(tt.ep) - before; got != len(l.pages) {
				t.Errorf("fake served %d requests for %d pages; want one each", got, len(l.pages))
			}
			if dup := duplicates(l.items()); len(dup) > 0 {
				t.Errorf("items listed twice: %v", dup)
			}
		})
	}
}

func duplicates(ids []string) []string {
	seen := map[string]bool{}
	var dup []string
	for _, id := range ids {
		if seen[id] {
			dup = append(dup, id)
		}
		seen[id] = true
	}
	return dup
}

func testStatusMapping(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	var want []connectors.User
	for i, st := range h.fake.Statuses() {
		u := sampleUser("status", i)
		u.RawStatus = st.Raw
		u.ExternalID = h.fake.AddUser(u)
		u.Active = st.Active
		want = append(want, u)
	}
	l := h.list(context.Background(), h.open(nil), Users, "", nil)
	if l.err != nil {
		t.Fatalf("ListUsers: %v", l.err)
	}
	if diff := cmp.Diff(want, l.users, sortUsers); diff != "" {
		t.Errorf("users by status (-want +got):\n%s", diff)
	}
}

// testDeactivated checks the rule every path keeps: a user the IdP
// deactivates is still listed, inactive with its RawStatus, also through
// the "groups" setting and in its groups' member listings, so that the
// reconciler deprovisions it and keeps its group links; only a user the
// IdP deletes is no longer listed, and is removed.
func testDeactivated(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	def := h.fake.Statuses()[0]
	add := func(prefix string, i int) connectors.User {
		u := sampleUser(prefix, i)
		u.ExternalID = h.fake.AddUser(u)
		u.Active, u.RawStatus = def.Active, def.Raw
		return u
	}
	eng := h.fake.AddGroup("Engineering")
	h.fake.AddGroup("Sales")
	stay := add("stay", 0)
	h.fake.AddMember(eng, stay.ExternalID)
	var inScope, outOfScope []connectors.User // deactivated, in Engineering or in no group
	for i, st := range h.fake.Statuses() {
		if st.Active {
			continue
		}
		in, out := add("in", i), add("out", i)
		h.fake.AddMember(eng, in.ExternalID)
		for _, u := range []*connectors.User{&in, &out} {
			u.RawStatus, u.Active = st.Raw, st.Active
			h.fake.UpdateUser(*u)
		}
		inScope, outOfScope = append(inScope, in), append(outOfScope, out)
	}
	if len(inScope) == 0 {
		t.Fatal("the fake offers no inactive status")
	}
	deleted := add("gone", 0)
	h.fake.AddMember(eng, deleted.ExternalID)
	h.fake.DeleteUser(deleted.ExternalID)
	gone := add("gone", 1) // deactivated, then deleted
	gone.RawStatus = inScope[0].RawStatus
	h.fake.UpdateUser(gone)
	h.fake.DeleteUser(gone.ExternalID)
	ctx := context.Background()

	all := append(append([]connectors.User{stay}, inScope...), outOfScope...)
	engMembers := []string{stay.ExternalID}
	for _, u := range inScope {
		engMembers = append(engMembers, u.ExternalID)
	}
	tests := []struct {
		name        string
		groups      []string
		wantUsers   []connectors.User
		wantMembers []string
	}{
		{"whole directory", nil, all, engMembers},
		{"groups setting", []string{"Engineering"}, append([]connectors.User{stay}, inScope...), engMembers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := h.open(nil, tt.groups...)
			l := h.list(ctx, d, Users, "", nil)
			if l.err != nil {
				t.Fatalf("ListUsers: %v", l.err)
			}
			if diff := cmp.Diff(tt.wantUsers, l.users, sortUsers); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
			if dup := duplicates(l.items()); len(dup) > 0 {
				t.Errorf("users listed twice: %v", dup)
			}
			m := h.list(ctx, d, Members, eng, nil)
			if diff := cmp.Diff(tt.wantMembers, m.ids, sortIDs); m.err != nil || diff != "" {
				t.Errorf("members of Engineering: err %v, diff (-want +got):\n%s", m.err, diff)
			}
		})
	}
}

func testGroupsSetting(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	var users []connectors.User
	def := h.fake.Statuses()[0]
	for i := range 5 {
		u := sampleUser("grp", i)
		u.ExternalID = h.fake.AddUser(u)
		u.Active, u.RawStatus = def.Active, def.Raw
		users = append(users, u)
	}
	eng := h.fake.AddGroup("Engineering")
	ops := h.fake.AddGroup("Ops")
	sales := h.fake.AddGroup("Sales")
	h.fake.AddMember(eng, users[0].ExternalID)
	h.fake.AddMember(eng, users[1].ExternalID)
	h.fake.AddMember(ops, users[1].ExternalID)
	h.fake.AddMember(ops, users[2].ExternalID)
	h.fake.AddMember(sales, users[3].ExternalID)
	ctx := context.Background()

	t.Run("limits users and groups", func(t *testing.T) {
		d := h.open(nil, "engineering", "OPS") // names match case-insensitively
		l := h.list(ctx, d, Users, "", nil)
		if l.err != nil {
			t.Fatalf("ListUsers: %v", l.err)
		}
		if diff := cmp.Diff(users[:3], l.users, sortUsers); diff != "" {
			t.Errorf("users (-want +got):\n%s", diff)
		}
		g := h.list(ctx, d, Groups, "", nil)
		if g.err != nil {
			t.Fatalf("ListGroups: %v", g.err)
		}
		want := []connectors.Group{{ExternalID: eng, Name: "Engineering"}, {ExternalID: ops, Name: "Ops"}}
		if diff := cmp.Diff(want, g.grps, sortGroups); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
		m := h.list(ctx, d, Members, eng, nil)
		if diff := cmp.Diff([]string{users[0].ExternalID, users[1].ExternalID}, m.ids, sortIDs); m.err != nil || diff != "" {
			t.Errorf("members of Engineering: err %v, diff (-want +got):\n%s", m.err, diff)
		}
	})

	t.Run("unknown group is an error", func(t *testing.T) {
		d := h.open(nil, "Engineering", "No Such Group")
		for _, ep := range []Endpoint{Users, Groups} {
			l := h.list(ctx, d, ep, "", nil)
			if !errors.Is(l.err, connectors.ErrGroupNotFound) || !strings.Contains(l.err.Error(), "No Such Group") {
				t.Errorf("%v: got err %v, want ErrGroupNotFound naming the group", ep, l.err)
			}
			if len(l.pages) > 0 {
				t.Errorf("%v: callback saw %d pages before the error", ep, len(l.pages))
			}
		}
		err := d.TestConnection(ctx)
		h.checkErr(err)
		if !errors.Is(err, connectors.ErrGroupNotFound) {
			t.Errorf("TestConnection: got %v, want ErrGroupNotFound", err)
		}
	})
}

func testUnauthorized(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	f := h.populate(3, 1, true)
	d := h.open(h.fake.BadCredentials())
	ctx := context.Background()
	check := func(t *testing.T, err error) {
		t.Helper()
		h.checkErr(err)
		if !errors.Is(err, connectors.ErrUnauthorized) {
			t.Errorf("got %v, want ErrUnauthorized", err)
		}
		if err != nil && !strings.Contains(err.Error(), h.fake.UnauthorizedMessage()) {
			t.Errorf("error %q does not carry the IdP's message %q", err, h.fake.UnauthorizedMessage())
		}
	}
	for _, ep := range []Endpoint{Users, Groups, Members} {
		t.Run(ep.String(), func(t *testing.T) {
			l := h.list(ctx, d, ep, f.allID, nil)
			check(t, l.err)
			if len(l.pages) > 0 {
				t.Errorf("callback saw %d pages", len(l.pages))
			}
		})
	}
	t.Run("TestConnection", func(t *testing.T) { check(t, d.TestConnection(ctx)) })
}

// testFaults injects failures on page 2 of each listing.
func testFaults(t *testing.T, newFake func(*testing.T, Env) Fake) {
	tests := []struct {
		name      string
		fault     Fault
		wantErr   error // nil: the listing completes
		wantExtra int   // requests beyond one per page
	}{
		{"429 waited out", Fault{Status: http.StatusTooManyRequests, Times: maxRateLimitWaits}, nil, maxRateLimitWaits},
		{"429 beyond budget", Fault{Status: http.StatusTooManyRequests, Times: 100}, connectors.ErrRateLimited, maxRateLimitWaits},
		{"transient 500 retried", Fault{Status: http.StatusInternalServerError, Times: 1}, nil, 1},
		{"transient 503 retried", Fault{Status: http.StatusServiceUnavailable, Times: maxRetries}, nil, maxRetries},
		{"500 beyond budget", Fault{Status: http.StatusInternalServerError, Times: 100}, connectors.ErrUnavailable, maxRetries},
	}
	for _, ep := range []Endpoint{Users, Groups, Members} {
		for _, tt := range tests {
			t.Run(ep.String()+"/"+tt.name, func(t *testing.T) {
				h := newHarness(t, newFake)
				f := h.twoPages(ep)
				d := h.open(nil)
				h.fake.Fail(ep, 2, tt.fault)
				l := h.list(context.Background(), d, ep, f.allID, nil)
				if _, sleeps := h.clock.Slept(); sleeps != tt.wantExtra {
					t.Errorf("waited %d times, want once before each retry (%d)", sleeps, tt.wantExtra)
				}
				if tt.wantErr == nil {
					if l.err != nil {
						t.Fatalf("listing failed: %v", l.err)
					}
					if got, want := len(l.items()), f.count(ep); got != want {
						t.Errorf("listed %d items, want %d", got, want)
					}
				} else {
					if !errors.Is(l.err, tt.wantErr) {
						t.Fatalf("got err %v, want %v", l.err, tt.wantErr)
					}
					if len(l.pages) != 1 {
						t.Errorf("callback saw %d pages, want only page 1", len(l.pages))
					}
				}
				// Page 1, page 2 and its retries; page 3 only when completed.
				want := 2 + tt.wantExtra
				if tt.wantErr == nil {
					want = len(l.pages) + tt.wantExtra
				}
				if got := h.fake.Requests(ep); got != want {
					t.Errorf("fake served %d requests, want %d", got, want)
				}
			})
		}
	}
}

// twoPages fills the fake so that listing ep takes two pages. Users come
// with one more of each other status, so that a connector reading some
// statuses through a listing of their own meets no empty listing: each
// request it makes is a page.
func (h *harness) twoPages(ep Endpoint) fixture {
	n := h.fake.PageSize(ep) + h.fake.PageSize(ep)/2
	switch ep {
	case Users:
		f := h.populate(n, 0, false)
		for i, st := range h.fake.Statuses()[1:] {
			u := sampleUser("other", i)
			u.RawStatus = st.Raw
			u.ExternalID = h.fake.AddUser(u)
			u.Active = st.Active
			f.users = append(f.users, u)
		}
		return f
	case Groups:
		return h.populate(0, n, false)
	default:
		return h.populate(n, 0, true)
	}
}

func (f fixture) count(ep Endpoint) int {
	switch ep {
	case Users:
		return len(f.users)
	case Groups:
		return len(f.groups)
	}
	return len(f.members)
}

func testTimeout(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	h.timeout = hangTimeout // real time: the one place the suite waits
	h.populate(0, 2, false)
	d := h.open(nil)
	h.fake.Fail(Groups, 1, Fault{Hang: true, Times: 1})
	l := h.list(context.Background(), d, Groups, "", nil)
	if l.err != nil {
		t.Fatalf("ListGroups after one timed-out attempt: %v", l.err)
	}
	if len(l.grps) != 2 || h.fake.Requests(Groups) != 2 {
		t.Errorf("got %d groups in %d requests, want 2 in 2", len(l.grps), h.fake.Requests(Groups))
	}
}

func testFresh(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	f := h.populate(3, 1, true)
	d := h.open(nil)
	ctx := context.Background()
	first := h.list(ctx, d, Users, "", nil)
	if first.err != nil {
		t.Fatalf("first ListUsers: %v", first.err)
	}
	h.list(ctx, d, Groups, "", nil)
	h.list(ctx, d, Members, f.allID, nil)

	// Change the directory between listings.
	statuses := h.fake.Statuses()
	inactive := statuses[0]
	for _, st := range statuses {
		if !st.Active {
			inactive = st
			break
		}
	}
	changed := f.users[0]
	changed.GivenName, changed.FamilyName, changed.Email = "Renamed", "Person", "renamed@example.com"
	if f, ok := h.fake.(EmailIsUserName); ok && f.EmailIsUserName() {
		changed.UserName = changed.Email
	}
	changed.RawStatus, changed.Active = inactive.Raw, inactive.Active
	h.fake.UpdateUser(changed)
	h.fake.DeleteUser(f.users[1].ExternalID)
	added := sampleUser("added", 1)
	added.ExternalID = h.fake.AddUser(added)
	added.Active, added.RawStatus = statuses[0].Active, statuses[0].Raw
	h.fake.AddMember(f.allID, added.ExternalID)
	newGroup := connectors.Group{ExternalID: h.fake.AddGroup("Newcomers"), Name: "Newcomers"}

	users := h.list(ctx, d, Users, "", nil)
	if diff := cmp.Diff([]connectors.User{changed, f.users[2], added}, users.users, sortUsers); users.err != nil || diff != "" {
		t.Errorf("second ListUsers: err %v, diff (-want +got):\n%s", users.err, diff)
	}
	groups := h.list(ctx, d, Groups, "", nil)
	if diff := cmp.Diff(append(f.groups, newGroup), groups.grps, sortGroups); groups.err != nil || diff != "" {
		t.Errorf("second ListGroups: err %v, diff (-want +got):\n%s", groups.err, diff)
	}
	members := h.list(ctx, d, Members, f.allID, nil)
	want := []string{f.users[0].ExternalID, f.users[2].ExternalID, added.ExternalID}
	if diff := cmp.Diff(want, members.ids, sortIDs); members.err != nil || diff != "" {
		t.Errorf("second ListGroupMembers: err %v, diff (-want +got):\n%s", members.err, diff)
	}
}

func testCancellation(t *testing.T, newFake func(*testing.T, Env) Fake) {
	for _, ep := range []Endpoint{Users, Groups, Members} {
		t.Run(ep.String(), func(t *testing.T) {
			h := newHarness(t, newFake)
			f := h.twoPages(ep)
			d := h.open(nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			start := time.Now()
			l := h.list(ctx, d, ep, f.allID, func(int) error { cancel(); return nil })
			if !errors.Is(l.err, context.Canceled) {
				t.Errorf("got err %v, want context.Canceled", l.err)
			}
			if len(l.pages) != 1 || h.fake.Requests(ep) != 1 {
				t.Errorf("after cancelling on page 1: %d pages seen, %d requests; want 1 and 1", len(l.pages), h.fake.Requests(ep))
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Errorf("cancelled listing took %v", el)
			}
		})
	}
}

func testCallbackError(t *testing.T, newFake func(*testing.T, Env) Fake) {
	errStop := errors.New("callback says stop")
	for _, ep := range []Endpoint{Users, Groups, Members} {
		t.Run(ep.String(), func(t *testing.T) {
			h := newHarness(t, newFake)
			f := h.twoPages(ep)
			l := h.list(context.Background(), h.open(nil), ep, f.allID, func(int) error { return errStop })
			if !errors.Is(l.err, errStop) {
				t.Errorf("got err %v, want the callback's error wrapped", l.err)
			}
			if len(l.pages) != 1 || h.fake.Requests(ep) != 1 {
				t.Errorf("%d pages seen, %d requests; want 1 and 1", len(l.pages), h.fake.Requests(ep))
			}
		})
	}
}

func testUnknownGroup(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	f := h.populate(1, 0, true)
	// An id shaped like the IdP's that it never issued, as when a group is
	// deleted between listing groups and listing its members.
	unknown := strings.Repeat("0", len(f.allID))
	l := h.list(context.Background(), h.open(nil), Members, unknown, nil)
	if l.err == nil {
		t.Errorf("members of a group that does not exist: no error, %d pages", len(l.pages))
	}
}

func testTestConnection(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	h.populate(1, 0, false)
	if err := h.open(nil).TestConnection(context.Background()); err != nil {
		t.Errorf("TestConnection with valid credentials: %v", err)
	}
}

func testConcurrent(t *testing.T, newFake func(*testing.T, Env) Fake) {
	h := newHarness(t, newFake)
	f := h.populate(4, 3, true)
	d := h.open(nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]listing, 6)
	for i, ep := range []Endpoint{Users, Groups, Members, Users, Groups, Members} {
		wg.Go(func() { results[i] = h.list(ctx, d, ep, f.allID, nil) })
	}
	wg.Wait()
	for i, l := range results {
		if l.err != nil {
			t.Errorf("listing %d: %v", i, l.err)
		}
	}
	if len(results[0].users) != 4 || len(results[1].grps) != 4 || len(results[2].ids) != 4 {
		t.Errorf("concurrent listings saw %d users, %d groups, %d members; want 4 each",
			len(results[0].users), len(results[1].grps), len(results[2].ids))
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
