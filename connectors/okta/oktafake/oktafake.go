// Package oktafake is an Okta Management API fake for tests: an httptest
// server on loopback that speaks the user, group and group-member listings
// the okta connector reads, with Okta's JSON shapes, Link-header pagination,
// rate-limit headers and error bodies.
//
// Tests mutate its directory between listings (AddUser, SetStatus,
// DeleteUser, AddMember, ...) and inject failures on a route or a given page
// (FailNext, FailPage, HangPage, RateLimit). Routes are the Route* constants.
package oktafake

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
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

	mu     sync.Mutex
	seq    int
	users  []*User // sorted by ID, which is the listing order and the cursor
	byID   map[string]*User
	groups []*group // sorted by ID
	gByID  map[string]*group
}

type group struct {
	Group
	created time.Time
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
	s := &Server{tb: tb, token: DefaultToken, maxLimit: 200, byID: map[string]*User{}, gByID: map[string]*group{}}
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
	i, _ := slices.BinarySearchFunc(s.users, u.ID, func(x *User, id string) int { return strings.Compare(x.ID, id) })
	s.users = slices.Insert(s.users, i, &stored)
	s.byID[u.ID] = &stored
	return u
}

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
	fn(u)
	u.ID = id
}

// SetStatus sets the user's Okta status. DEPROVISIONED users drop out of
// the user listing, as in Okta.
func (s *Server) SetStatus(id, status string) {
	s.UpdateUser(id, func(u *User) { u.Status = status })
}

// DeleteUser deletes the user, from the listings and from its groups.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustUser("DeleteUser", id)
	delete(s.byID, id)
	s.users = slices.DeleteFunc(s.users, func(u *User) bool { return u.ID == id })
	for _, g := range s.groups {
		g.members = slices.DeleteFunc(g.members, func(m string) bool { return m == id })
	}
}

// AddGroup adds an OKTA_GROUP named name.
func (s *Server) AddGroup(name string) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	g := &group{Group: Group{ID: fmt.Sprintf("00g%017d", s.seq), Name: name, Type: "OKTA_GROUP"}, created: s.core.Now()}
	s.groups = append(s.groups, g)
	s.gByID[g.ID] = g
	return g.Group
}

// RenameGroup renames a group.
func (s *Server) RenameGroup(groupID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustGroup("RenameGroup", groupID).Name = name
}

// AddMember puts the user in the group.
func (s *Server) AddMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("AddMember", groupID)
	s.mustUser("AddMember", userID)
	i, found := slices.BinarySearch(g.members, userID)
	if !found {
		g.members = slices.Insert(g.members, i, userID)
	}
}

// RemoveMember takes the user out of the group.
func (s *Server) RemoveMember(groupID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup("RemoveMember", groupID)
	g.members = slices.DeleteFunc(g.members, func(m string) bool { return m == userID })
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
	route, groupID := fakeidp.Match(r.URL.Path, RouteUsers, RouteGroups, RouteGroupUsers)
	if route == "" {
		writeError(w, http.StatusNotFound, "E0000007", "Not found: Resource not found: "+r.URL.Path+" (Resource)")
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	limit := s.maxLimit
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 {
		limit = min(l, s.maxLimit)
	}
	after := r.URL.Query().Get("after")

	s.mu.Lock()
	page := s.pageOf(route, groupID, after, limit)
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

	s.mu.Lock()
	var body any
	var next string
	switch route {
	case RouteUsers:
		body, next = s.usersPage(after, limit)
	case RouteGroups:
		body, next = s.groupsPage(after, limit)
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
	base := "http://" + r.Host + r.URL.Path
	self := pageURL(base, after, limit)
	w.Header().Add("Link", "<"+self+`>; rel="self"`)
	if next != "" {
		w.Header().Add("Link", "<"+pageURL(base, next, limit)+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func pageURL(base, after string, limit int) string {
	if after == "" {
		return fmt.Sprintf("%s?limit=%d", base, limit)
	}
	return fmt.Sprintf("%s?after=%s&limit=%d", base, after, limit)
}

// pageOf tells which page (1-based) a cursor starts, for FailPage.
func (s *Server) pageOf(route, groupID, after string, limit int) int {
	switch route {
	case RouteUsers:
		return fakeidp.PageAfter(s.users, func(u *User) string { return u.ID }, after, limit)
	case RouteGroups:
		return fakeidp.PageAfter(s.groups, func(g *group) string { return g.ID }, after, limit)
	}
	var members []string // none for an unknown group
	if g, ok := s.gByID[groupID]; ok {
		members = g.members
	}
	return fakeidp.PageAfter(members, func(id string) string { return id }, after, limit)
}

func (s *Server) usersPage(after string, limit int) ([]userJSON, string) {
	i, found := slices.BinarySearchFunc(s.users, after, func(u *User, id string) int { return strings.Compare(u.ID, id) })
	if found {
		i++
	}
	out := make([]userJSON, 0, limit)
	for ; i < len(s.users); i++ {
		u := s.users[i]
		if u.Status == StatusDeprovisioned {
			continue // the default listing leaves them out
		}
		if len(out) == limit {
			return out, out[len(out)-1].ID
		}
		out = append(out, s.userJSON(u))
	}
	return out, ""
}

func (s *Server) groupsPage(after string, limit int) ([]groupJSON, string) {
	i, found := slices.BinarySearchFunc(s.groups, after, func(g *group, id string) int { return strings.Compare(g.ID, id) })
	if found {
		i++
	}
	end := min(i+limit, len(s.groups))
	out := make([]groupJSON, 0, end-i)
	for _, g := range s.groups[i:end] {
		out = append(out, groupJSON{
			ID: g.ID, Created: g.created, LastUpdated: g.created, LastMembershipUpdated: g.created,
			ObjectClass: []string{"okta:user_group"}, Type: g.Type,
			Profile: groupProfile{Name: g.Name, Description: nil},
			Links:   map[string]any{"users": map[string]string{"href": "/api/v1/groups/" + g.ID + "/users"}},
		})
	}
	if end < len(s.groups) {
		return out, s.groups[end-1].ID
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
		LastUpdated: epoch, PasswordChanged: &epoch,
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
