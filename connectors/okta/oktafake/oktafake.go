// Package oktafake is an Okta Management API fake for tests: an httptest
// server on loopback that speaks the user, group and group-member listings
// the okta connector reads, with Okta's JSON shapes, Link-header pagination,
// rate-limit headers and error bodies.
//
// As in Okta, the user listing leaves DEPROVISIONED (deactivated) users out
// unless asked for them with filter=status eq "DEPROVISIONED", which lists
// only them; group member listings include them, since Okta keeps a
// deactivated user in its groups. The fake models that one filter: any other
// gets Okta's 400 "Invalid search criteria.".
//
// Tests mutate its directory between listings (AddUser, SetStatus,
// DeleteUser, AddMember, ...) and inject failures on a route or a given page
// (FailNext, FailPage, HangPage, RateLimit). Routes are the Route* constants.
// Both user listings are RouteUsers, one endpoint as Okta counts its rate
// limits, and their pages are numbered as the okta connector reads them:
// the default listing's pages first, then the deactivated users' (page N is
// the Nth request of a complete listing of every user).
package oktafake

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/connectors/internal/fakeidp"
)

// Routes, for counting requests and injecting failures.
const (
	RouteUsers      = "/api/v1/users"
	RouteGroups     = "/api/v1/groups"
	RouteGroupUsers = "/api/v1/groups/{id}/users"
	RouteLogs       = "/api/v1/logs"
)

// Okta user statuses.
const (
	StatusStaged          = "STAGED"
	StatusProvisioned     = "PROVISIONED"
	StatusActive          = "ACTIVE"
	StatusRecovery        = "RECOVERY"
	StatusLockedOut       = "LOCKED_OUT"
	StatusPasswordExpired = "PASSWORD_EXPIRED"
	StatusSuspended       = "SUSPENDED"
	StatusDeprovisioned   = "DEPROVISIONED"
)

// FilterDeprovisioned is the filter of the user listing that lists the
// deactivated users, which the default listing leaves out.
const FilterDeprovisioned = `status eq "DEPROVISIONED"`

// DefaultToken is the API token the fake accepts unless WithToken says
// otherwise.
const DefaultToken = "00fake-okta-api-token-0123456789abcdef"

// UnauthorizedSummary is the errorSummary of Okta's 401 answer.
const UnauthorizedSummary = "Invalid token provided"

// User is an Okta user as the fake stores it.
type User struct {
	ID        string // assigned by AddUser when empty
	Status    string // ACTIVE when empty
	Login     string // the e-mail when empty
	Email     string
	FirstName string // an empty name is left out of the profile
	LastName  string
	// Attributes are extra profile attributes, as custom user types add.
	Attributes map[string]any
}

// Group is an Okta group as the fake stores it.
type Group struct {
	ID   string // assigned by AddGroup
	Name string
	Type string // OKTA_GROUP
}

// Option configures a Server.
type Option func(*Server)

// WithToken sets the API token the fake accepts.
func WithToken(token string) Option { return func(s *Server) { s.token = token } }

// WithClock makes the fake read time from now, which its Date and
// X-Rate-Limit-Reset headers and rate-limit windows follow.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithMaxLimit caps the page size the fake serves whatever limit is asked
// (Okta's cap is 200 for users).
func WithMaxLimit(n int) Option { return func(s *Server) { s.maxLimit = n } }

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	// Controls inject failures and count requests by route: FailNext,
	// FailPage, HangPage, RateLimit and Requests. A rate limit's budget is
	// advertised in X-Rate-Limit-* headers; a 429, injected or from a spent
	// rate limit, comes with them and Okta's error body.
	fakeidp.Controls

	core     *fakeidp.Server
	tb       testing.TB
	token    string
	now      func() time.Time // set by WithClock; nil means real time
	maxLimit int

	mu  sync.Mutex
	seq int
	// listed are the users of the default listing, deprovisioned those of
	// the listing filtered on their status; each is sorted by ID, which is
	// the listing order and the cursor.
	listed, deprovisioned []*User
	byID                  map[string]*User
	groups                []*group // sorted by ID
	gByID                 map[string]*group
	// updated is each user's lastUpdated, set on every change.
	updated map[string]time.Time
	// events is the System Log, oldest first: one event per membership
	// change and deletion.
	events []event
}

// event is a System Log event.
type event struct {
	UUID      string      `json:"uuid"`
	Published time.Time   `json:"published"`
	EventType string      `json:"eventType"`
	Target    []logTarget `json:"target"`
}

type logTarget struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	AlternateID string `json:"alternateId,omitempty"`
	DisplayName string `json:"displayName,omitempty"`
}

// System Log event types the fake records.
const (
	EventMemberAdd    = "group.user_membership.add"
	EventMemberRemove = "group.user_membership.remove"
	EventUserDelete   = "user.lifecycle.delete.initiated"
	EventGroupDelete  = "group.lifecycle.delete"
)

// record appends a System Log event; s.mu is held.
func (s *Server) record(eventType string, targets ...logTarget) {
	s.events = append(s.events, event{UUID: fmt.Sprintf("evt%017d", len(s.events)+1), Published: s.core.Now().UTC(), EventType: eventType, Target: targets})
}

// Events returns how many System Log events the fake recorded.
func (s *Server) Events() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

type group struct {
	Group
	created time.Time
	updated time.Time
	members []string // user ids, sorted
}

// New starts a fake on a loopback port; it closes when the test ends.
// Misuse of the mutation methods (an unknown id) fails the test.
func New(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := start(tb, opts)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a fake outside a test, such as in a helper process; the
// caller closes it. Misuse of the mutation methods panics.
func Start(opts ...Option) *Server { return start(nil, opts) }

func start(tb testing.TB, opts []Option) *Server {
	s := &Server{tb: tb, token: DefaultToken, maxLimit: 200, byID: map[string]*User{}, gByID: map[string]*group{}, updated: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	s.core = fakeidp.Start(s, s.now, fakeidp.Dialect{Throttle: throttle, WriteError: writeFault})
	s.Controls = s.core.Controls()
	return s
}

func (s *Server) fatalf(format string, args ...any) {
	if s.tb == nil {
		panic(fmt.Sprintf(format, args...))
	}
	s.tb.Fatalf(format, args...)
}

// URL is the org URL to configure the connector with.
func (s *Server) URL() string { return s.core.URL() }

// Token is the API token the fake accepts.
func (s *Server) Token() string { return s.token }

// Close stops the fake.
func (s *Server) Close() { s.core.Close() }

// AddUser adds u and returns it as stored, with its ID and defaults filled.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.ID == "" {
		s.seq++
		u.ID = fmt.Sprintf("00u%017d", s.seq)
	}
	if u.Status == "" {
		u.Status = StatusActive
	}
	if u.Login == "" {
		u.Login = u.Email
	}
	if _, dup := s.byID[u.ID]; dup {
		s.fatalf("oktafake: AddUser: duplicate id %s", u.ID)
	}
	stored := u
	s.file(&stored)
	s.byID[u.ID] = &stored
	s.updated[u.ID] = s.core.Now()
	return u
}

// listingOf is the user listing u belongs in.
func (s *Server) listingOf(u *User) *[]*User {
	if u.Status == StatusDeprovisioned {
		return &s.deprovisioned
	}
	return &s.listed
}

// file puts u in its listing, in ID order.
func (s *Server) file(u *User) {
	l := s.listingOf(u)
	i, _ := slices.BinarySearchFunc(*l, u.ID, byID)
	*l = slices.Insert(*l, i, u)
}

// unfile takes u out of its listing.
func (s *Server) unfile(u *User) {
	l := s.listingOf(u)
	if i, found := slices.BinarySearchFunc(*l, u.ID, byID); found {
		*l = slices.Delete(*l, i, i+1)
	}
}

func byID(u *User, id string) int { return strings.Compare(u.ID, id) }

// User returns the stored user with id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// UpdateUser changes the user with id through fn (its ID cannot change).
func (s *Server) UpdateUser(id string, fn func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.mustUser("UpdateUser", id)
	s.unfile(u)
	fn(u)
	u.ID = id
	s.file(u)
	s.updated[id] = s.core.Now()
}

// SetStatus sets the user's Okta status. As in Okta, a DEPROVISIONED user
// drops out of the default user listing and is listed by
// FilterDeprovisioned instead.
func (s *Server) SetStatus(id, status string) {
	s.UpdateUser(id, func(u *User) { u.Status = status })
}

// DeleteUser deletes the user, from the listings and from its groups.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.mustUser("DeleteUser", id)
	s.unfile(u)
	delete(s.byID, id)
	delete(s.updated, id)
	for _, g := range s.groups {
		g.members = slices.DeleteFunc(g.members, func(m string) bool { return m == id })
	}
	s.record(EventUserDelete, logTarget{ID: id, Type: "User", AlternateID: u.Login})
}

// AddGroup adds an OKTA_GROUP named name.
func (s *Server) AddGroup(name string) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	g := &group{Group: Group{ID: fmt.Sprintf("00g%017d", s.seq), Name: name, Type: "OKTA_GROUP"}, created: s.core.Now(), updated: s.core.Now()}
	s.groups = append(s.groups, g)
	s.gByID[g.ID] = g
	return g.Group
}

// RenameGroup renames a group.
func (s *Server) RenameGroup(groupID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("RenameGroup", groupID)
	g.Name, g.updated = name, s.core.Now()
}

// DeleteGroup deletes the group, recording it in the System Log.
func (s *Server) DeleteGroup(groupID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("DeleteGroup", groupID)
	delete(s.gByID, groupID)
	s.groups = slices.DeleteFunc(s.groups, func(x *group) bool { return x == g })
	s.record(EventGroupDelete, logTarget{ID: groupID, Type: "UserGroup", DisplayName: g.Name})
}

// AddMember puts the user in the group.
func (s *Server) AddMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("AddMember", groupID)
	u := s.mustUser("AddMember", userID)
	i, found := slices.BinarySearch(g.members, userID)
	if !found {
		g.members = slices.Insert(g.members, i, userID)
		s.record(EventMemberAdd, logTarget{ID: userID, Type: "User", AlternateID: u.Login}, logTarget{ID: groupID, Type: "UserGroup", DisplayName: g.Name})
	}
}

// RemoveMember takes the user out of the group.
func (s *Server) RemoveMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("RemoveMember", groupID)
	if i, found := slices.BinarySearch(g.members, userID); found {
		g.members = slices.Delete(g.members, i, i+1)
		s.record(EventMemberRemove, logTarget{ID: userID, Type: "User"}, logTarget{ID: groupID, Type: "UserGroup", DisplayName: g.Name})
	}
}

func (s *Server) mustUser(op, id string) *User {
	u, ok := s.byID[id]
	if !ok {
		s.fatalf("oktafake: %s: no user %s", op, id)
	}
	return u
}

func (s *Server) mustGroup(op, id string) *group {
	g, ok := s.gByID[id]
	if !ok {
		s.fatalf("oktafake: %s: no group %s", op, id)
	}
	return g
}

// ServeHTTP answers the Okta Management API listings.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.core.SetDate(w)
	w.Header().Set("X-Okta-Request-Id", "fake-"+rand.Text()[:16])
	route, groupID := fakeidp.Match(r.URL.Path, RouteUsers, RouteGroups, RouteGroupUsers, RouteLogs)
	if route == "" {
		writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.URL.Path+" (Resource)")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	q := r.URL.Query()
	limit := s.maxLimit
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 {
		limit = min(l, s.maxLimit)
	}
	after := q.Get("after")
	filter, filtered := q.Get("filter"), q.Has("filter")
	// The filters modelled: the user listing's deactivated users, and
	// users or groups updated since a time (every status, as Okta's filters
	// include DEPROVISIONED users).
	since, bySince := parseSince(filter)
	badFilter := filtered && !(route == RouteUsers && filter == FilterDeprovisioned) &&
		!(bySince && (route == RouteUsers || route == RouteGroups)) && route != RouteLogs
	deprovisioned := filtered && route == RouteUsers && filter == FilterDeprovisioned
	if route == RouteLogs {
		s.serveLogs(w, r)
		return
	}

	s.mu.Lock()
	page := 1
	if !badFilter && !bySince {
		page = s.pageOf(route, groupID, deprovisioned, after, limit)
	}
	s.mu.Unlock()
	v := s.core.Admit(route, page)
	if v.Limit > 0 {
		setRateHeaders(w.Header(), v.Limit, v.Left, v.ResetsAt)
	}
	if r.Header.Get("Authorization") != "SSWS "+s.token {
		writeError(w, http.StatusUnauthorized, "E0000011", UnauthorizedSummary)
		return
	}
	if s.core.Fail(w, r, v) {
		return
	}
	if badFilter {
		writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.")
		return
	}

	s.mu.Lock()
	var body any
	var next string
	switch route {
	case RouteUsers:
		l := s.listed
		switch {
		case deprovisioned:
			l = s.deprovisioned
		case bySince:
			l = s.usersSince(since)
		}
		body, next = s.usersPage(l, after, limit)
	case RouteGroups:
		body, next = s.groupsPage(s.groupsSince(since, bySince), after, limit)
	case RouteGroupUsers:
		g, ok := s.gByID[groupID]
		if !ok {
			s.mu.Unlock()
			writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+groupID+" (UserGroup)")
			return
		}
		body, next = s.membersPage(g, after, limit)
	}
	s.mu.Unlock()

	// Okta sends each Link on its own header line; the SDK depends on it.
	// Both links keep the listing's filter, as Okta's do.
	base := "http://" + r.Host + r.URL.Path
	if !deprovisioned && !bySince {
		filter = ""
	}
	w.Header().Add("Link", "<"+pageURL(base, after, limit, filter)+`>; rel="self"`)
	if next != "" {
		w.Header().Add("Link", "<"+pageURL(base, next, limit, filter)+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func pageURL(base, after string, limit int, filter string) string {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	if filter != "" {
		q.Set("filter", filter)
	}
	return base + "?" + q.Encode()
}

// pageOf tells which page (1-based) a cursor starts, for FailPage. The
// deactivated users' pages follow the default listing's.
func (s *Server) pageOf(route, groupID string, deprovisioned bool, after string, limit int) int {
	id := func(u *User) string { return u.ID }
	switch {
	case route == RouteUsers && deprovisioned:
		return pages(len(s.listed), limit) + fakeidp.PageAfter(s.deprovisioned, id, after, limit)
	case route == RouteUsers:
		return fakeidp.PageAfter(s.listed, id, after, limit)
	case route == RouteGroups:
		return fakeidp.PageAfter(s.groups, func(g *group) string { return g.ID }, after, limit)
	}
	var members []string // none for an unknown group
	if g, ok := s.gByID[groupID]; ok {
		members = g.members
	}
	return fakeidp.PageAfter(members, func(id string) string { return id }, after, limit)
}

// pages is how many pages a listing of n items takes: an empty listing is
// one empty page.
func pages(n, limit int) int { return max(1, (n+limit-1)/limit) }

func (s *Server) usersPage(users []*User, after string, limit int) ([]userJSON, string) {
	i, found := slices.BinarySearchFunc(users, after, byID)
	if found {
		i++
	}
	end := min(i+limit, len(users))
	out := make([]userJSON, 0, end-i)
	for _, u := range users[i:end] {
		out = append(out, s.userJSON(u))
	}
	if end < len(users) {
		return out, users[end-1].ID
	}
	return out, ""
}

func (s *Server) groupsPage(groups []*group, after string, limit int) ([]groupJSON, string) {
	i, found := slices.BinarySearchFunc(groups, after, func(g *group, id string) int { return strings.Compare(g.ID, id) })
	if found {
		i++
	}
	end := min(i+limit, len(groups))
	out := make([]groupJSON, 0, end-i)
	for _, g := range groups[i:end] {
		out = append(out, groupJSON{
			ID: g.ID, Created: g.created, LastUpdated: g.updated, LastMembershipUpdated: g.created,
			ObjectClass: []string{"okta:user_group"}, Type: g.Type,
			Profile: groupProfile{Name: g.Name, Description: nil},
			Links:   map[string]any{"users": map[string]string{"href": "/api/v1/groups/" + g.ID + "/users"}},
		})
	}
	if end < len(groups) {
		return out, groups[end-1].ID
	}
	return out, ""
}

func (s *Server) membersPage(g *group, after string, limit int) ([]userJSON, string) {
	i, found := slices.BinarySearch(g.members, after)
	if found {
		i++
	}
	end := min(i+limit, len(g.members))
	out := make([]userJSON, 0, end-i)
	for _, id := range g.members[i:end] {
		if u, ok := s.byID[id]; ok {
			out = append(out, s.userJSON(u))
		}
	}
	if end < len(g.members) {
		return out, g.members[end-1]
	}
	return out, ""
}

type userJSON struct {
	ID              string         `json:"id"`
	Status          string         `json:"status"`
	Created         time.Time      `json:"created"`
	Activated       *time.Time     `json:"activated"`
	StatusChanged   *time.Time     `json:"statusChanged"`
	LastLogin       *time.Time     `json:"lastLogin"`
	LastUpdated     time.Time      `json:"lastUpdated"`
	PasswordChanged *time.Time     `json:"passwordChanged"`
	Type            map[string]any `json:"type"`
	Profile         map[string]any `json:"profile"`
	Credentials     map[string]any `json:"credentials"`
	Links           map[string]any `json:"_links"`
}

type groupJSON struct {
	ID                    string         `json:"id"`
	Created               time.Time      `json:"created"`
	LastUpdated           time.Time      `json:"lastUpdated"`
	LastMembershipUpdated time.Time      `json:"lastMembershipUpdated"`
	ObjectClass           []string       `json:"objectClass"`
	Type                  string         `json:"type"`
	Profile               groupProfile   `json:"profile"`
	Links                 map[string]any `json:"_links"`
}

type groupProfile struct {
	Name        string  `json:"name"`
	Description *string `json:"description"`
}

var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func (s *Server) userJSON(u *User) userJSON {
	profile := map[string]any{"login": u.Login, "email": u.Email, "mobilePhone": nil, "secondEmail": nil}
	// Unset names are left out, as with user types whose schema lacks them,
	// so a client decoding pages into reused structs would show stale values.
	if u.FirstName != "" {
		profile["firstName"] = u.FirstName
	}
	if u.LastName != "" {
		profile["lastName"] = u.LastName
	}
	for k, v := range u.Attributes {
		profile[k] = v
	}
	return userJSON{
		ID: u.ID, Status: u.Status, Created: epoch, Activated: &epoch, StatusChanged: &epoch,
		LastUpdated: s.updated[u.ID], PasswordChanged: &epoch,
		Type:        map[string]any{"id": "oty00000000000000001"},
		Profile:     profile,
		Credentials: map[string]any{"provider": map[string]string{"type": "OKTA", "name": "OKTA"}},
		Links:       map[string]any{"self": map[string]string{"href": "/api/v1/users/" + u.ID}},
	}
}

func setRateHeaders(h http.Header, limit, left int, reset time.Time) {
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(max(left, 0)))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix(), 10))
}

// throttle marks a 429 as Okta does, with no budget left. A route with a
// rate limit already carries its X-Rate-Limit-* headers; an injected 429 on
// one without gets a budget of 600 that resets 2 s from now, since Okta
// limits every route.
func throttle(h http.Header, v fakeidp.Verdict, now time.Time) {
	if v.Limit == 0 {
		setRateHeaders(h, 600, 0, now.Add(2*time.Second))
	}
	h.Set("X-Rate-Limit-Remaining", "0")
}

// writeFault writes Okta's error for a 429 or an injected failure.
func writeFault(w http.ResponseWriter, status int) {
	if status == http.StatusTooManyRequests {
		writeError(w, status, "E0000047", "API call exceeded rate limit due to too many requests.")
		return
	}
	writeError(w, status, "E0000009", http.StatusText(status))
}

func writeError(w http.ResponseWriter, status int, code, summary string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errorCode": code, "errorSummary": summary, "errorLink": code,
		"errorId": "oaefake0000000000000000", "errorCauses": []any{},
	})
}

// parseSince reads the filter lastUpdated gt "<time>".
func parseSince(filter string) (time.Time, bool) {
	ts, ok := strings.CutPrefix(filter, `lastUpdated gt "`)
	if !ok || !strings.HasSuffix(ts, `"`) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSuffix(ts, `"`))
	return t, err == nil
}

// usersSince are the users of every status updated after t, by ID.
func (s *Server) usersSince(t time.Time) []*User {
	var out []*User
	for _, l := range [][]*User{s.listed, s.deprovisioned} {
		for _, u := range l {
			if s.updated[u.ID].After(t) {
				out = append(out, u)
			}
		}
	}
	slices.SortFunc(out, func(a, b *User) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// groupsSince are the groups updated after t, or all without a filter.
func (s *Server) groupsSince(t time.Time, filtered bool) []*group {
	if !filtered {
		return s.groups
	}
	var out []*group
	for _, g := range s.groups {
		if g.updated.After(t) {
			out = append(out, g)
		}
	}
	return out
}

// serveLogs answers GET /api/v1/logs: events published after since (and
// before until, when given) whose type the filter names, oldest first.
// As Okta's, a request without until is a poll whose Link rel="next" is
// always there; a bounded one ends on its last page.
func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	v := s.core.Admit(RouteLogs, 1)
	if r.Header.Get("Authorization") != "SSWS "+s.token {
		writeError(w, http.StatusUnauthorized, "E0000011", UnauthorizedSummary)
		return
	}
	if s.core.Fail(w, r, v) {
		return
	}
	q := r.URL.Query()
	var since, until time.Time
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeError(w, http.StatusBadRequest, "E0000001", "Api validation failed: since")
			return
		}
	}
	if v := q.Get("until"); v != "" {
		if until, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeError(w, http.StatusBadRequest, "E0000001", "Api validation failed: until")
			return
		}
	}
	types := map[string]bool{}
	if f := q.Get("filter"); f != "" {
		for _, clause := range strings.Split(f, " or ") {
			t, ok := strings.CutPrefix(strings.TrimSpace(clause), `eventType eq "`)
			if !ok || !strings.HasSuffix(t, `"`) {
				writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.")
				return
			}
			types[strings.TrimSuffix(t, `"`)] = true
		}
	}
	limit := 100
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 {
		limit = min(l, 1000)
	}
	after, _ := strconv.Atoi(q.Get("after")) // the index of the next event
	s.mu.Lock()
	var out []event
	i := after
	for ; i < len(s.events) && len(out) < limit; i++ {
		e := s.events[i]
		if !e.Published.After(since) || (!until.IsZero() && !e.Published.Before(until)) || (len(types) > 0 && !types[e.EventType]) {
			continue
		}
		out = append(out, e)
	}
	more := i < len(s.events)
	s.mu.Unlock()

	next := url.Values{}
	for k, v := range q {
		next[k] = v
	}
	next.Set("after", strconv.Itoa(i))
	w.Header().Add("Link", "<http://"+r.Host+r.URL.Path+"?"+q.Encode()+`>; rel="self"`)
	if more || until.IsZero() {
		w.Header().Add("Link", "<http://"+r.Host+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	if out == nil {
		out = []event{}
	}
	_ = json.NewEncoder(w).Encode(out)
}
